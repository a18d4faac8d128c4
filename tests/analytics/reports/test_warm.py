"""Churn calibration from a past scoring run, and the nightly warm-up of the report caches."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from analytics.models import ModelVersion, PropensityScore
from analytics.reports import churn, metrics
from analytics.reports.common import bump_cache_version
from analytics.reports.warm import default_window, warm_default_views
from members.models import Order
from tests.analytics.reports.test_metrics import course_order, ledger  # noqa: F401
from tests.members.factories import UserFactory


@pytest.fixture
def past_run(ledger):  # noqa: F811
    """Model v_old (30-day horizon) scored ten members 40 days ago; today's serving model v_new scored them
    yesterday (its window is still open). Outcomes in [as_of, as_of + 30 d): the five highest-scored members buy,
    one of them exactly at as_of (counts); member 0 buys exactly at as_of + 30 d (does not count); member 1 has only
    a refunded order in the window (does not count)."""
    now = timezone.now()
    as_of = now - timedelta(days=40)
    course = ledger["x"]
    old = ModelVersion.objects.create(kind="repurchase", as_of=as_of, horizon_days=30, algorithm="logistic_regression",
                                      is_serving=False)
    new = ModelVersion.objects.create(kind="repurchase", as_of=now, horizon_days=30, algorithm="gbm", is_serving=True)
    members = [UserFactory() for _ in range(10)]
    for i, member in enumerate(members):
        PropensityScore.objects.create(member=member, model_version=old, as_of=as_of, probability=(i + 0.5) / 10)
        PropensityScore.objects.create(member=member, model_version=new, as_of=now - timedelta(days=1),
                                       probability=0.5)
    for i in range(5, 10):
        course_order(members[i], course, as_of if i == 5 else as_of + timedelta(days=i), 100)
    course_order(members[0], course, as_of + timedelta(days=30), 100)
    course_order(members[1], course, as_of + timedelta(days=3), 100, status=Order.Status.REFUNDED)
    return {"now": now, "as_of": as_of, "old": old, "new": new}


def test_calibration_uses_the_latest_closed_run_of_whichever_model_wrote_it(past_run):
    result = churn.calibration(now=past_run["now"])
    assert result is not None
    assert result.model == str(past_run["old"])  # not the serving model: its scores are a day old
    assert result.as_of == past_run["as_of"]
    # Ten members, one per decile, probabilities 0.05..0.95; the top five bought in the window.
    assert [r.members for r in result.rows] == [1] * 10
    assert [r.actual for r in result.rows] == [0.0] * 5 + [1.0] * 5
    assert [round(r.predicted, 2) for r in result.rows] == [round((i + 0.5) / 10, 2) for i in range(10)]


def test_calibration_is_none_before_any_window_closes(past_run):
    # 20 days after the old run, its 30-day horizon is still open.
    assert churn.calibration(now=past_run["as_of"] + timedelta(days=20)) is None


def test_churn_page_names_the_model_behind_the_calibration(client, past_run):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_reports", content_type__app_label="analytics"))
    client.force_login(staff)
    html = client.get(reverse("analytics:churn")).content.decode()
    assert 'data-calibration="none"' not in html
    assert str(past_run["old"]) in html


def test_a_version_bump_hides_results_cached_before_it(ledger):  # noqa: F811
    window = default_window(30)
    first = metrics.overview(window=window)
    course_order(UserFactory(), ledger["x"], window.start + timedelta(days=1), 123)
    assert metrics.overview(window=window) == first  # still the cached result
    bump_cache_version()
    assert metrics.overview(window=window).figure("arpu").value != first.figure("arpu").value


def test_warmed_default_views_need_no_report_queries(client, past_run, django_assert_num_queries):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_reports", content_type__app_label="analytics"))
    client.force_login(staff)
    warmed = warm_default_views()
    assert warmed == ["overview", "cohorts", "repurchase", "segments", "churn"]
    # Base queries only (session, user, two permission lookups, notifications) plus the filter form's choices and,
    # on the churn page, the serving model and the page of rows: no report aggregate runs.
    for page, expected in {"overview": 7, "cohorts": 7, "repurchase": 7, "segments": 5, "churn": 9}.items():
        with django_assert_num_queries(expected):
            assert client.get(reverse(f"analytics:{page}")).status_code == 200

