"""Staff report pages: who may see them, page vs htmx fragment, CSV exports, pinned query counts."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from analytics.models import (
    Campaign,
    Event,
    ModelVersion,
    PropensityScore,
    RecommendationRun,
    SegmentAssignment,
    SegmentRun,
)
from members.models import Subscription
from tests.analytics.reports.test_metrics import ledger  # noqa: F401  (the hand-built ledger fixture)
from tests.members.factories import UserFactory

PAGES = ["overview", "cohorts", "repurchase", "churn", "models", "segments", "campaigns"]
# The ledger's May 2026, as the filter form spells it.
MAY_QUERY = {"start": "2026-05-01", "end": "2026-05-31"}


@pytest.fixture
def analyst(db):
    """Staff (not superuser) holding the report permission."""
    user = UserFactory(email="analyst@example.com", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_reports", content_type__app_label="analytics"))
    return user


@pytest.fixture
def analyst_client(client, analyst):
    client.force_login(analyst)
    return client


@pytest.fixture
def scored(ledger):  # noqa: F811
    """Scores, a segmentation run, a recommendation run, events and a campaign on top of the ledger."""
    m = ledger["members"]
    now = timezone.now()
    old = ModelVersion.objects.create(
        kind="repurchase", as_of=now - timedelta(days=120), horizon_days=30, algorithm="logistic_regression",
        metrics={"roc_auc": 0.71, "brier": 0.18}, baselines={"roc_auc": 0.5, "brier": 0.2},
        feature_importance={"recency_days": -0.8, "orders_90d": 0.5}, is_serving=True,
    )
    closed_as_of = now - timedelta(days=60)
    # Calibration window: scored 60 days ago, 30-day horizon -> closed. A and H get high probabilities.
    for name, p in {"A": 0.9, "B": 0.2, "C": 0.1, "E": 0.3, "H": 0.8, "G": 0.4}.items():
        PropensityScore.objects.create(member=m[name], model_version=old, as_of=closed_as_of, probability=p)
        PropensityScore.objects.create(member=m[name], model_version=old, as_of=now - timedelta(days=1),
                                       probability=p / 2, top_reasons=[{"feature": "recency_days", "label": "Inactive"}])
    run = SegmentRun.objects.create(as_of=now - timedelta(days=1), k=2)
    for name in "ABCDE":
        SegmentAssignment.objects.create(run=run, member=m[name], as_of=run.as_of, cluster=0 if name < "C" else 1,
                                         label="loyal" if name < "C" else "at_risk",
                                         features={"recency_days": 10.0 if name < "C" else 40.0, "frequency": 3})
    RecommendationRun.objects.create(as_of=now, k=5, is_current=True, metrics={"precision@5": 0.12, "ndcg@5": 0.2},
                                     baseline_metrics={"precision@5": 0.08, "ndcg@5": 0.15})
    Event.objects.create(member=m["J"], kind="recommendation_impression", object_type="course", object_id="1")
    Campaign.objects.create(name="Win back", status=Campaign.Status.ACTIVE, percent_off=20)
    return ledger


def url(page: str, **params: str) -> str:
    base = reverse(f"analytics:{page}")
    if not params:
        return base
    return base + "?" + "&".join(f"{k}={v}" for k, v in params.items())


# ------------------------------------------------------------------------------------------------------------------
# Permissions: every page and every export


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("fmt", ["", "csv"])
def test_anonymous_is_sent_to_login(client, db, page, fmt):
    response = client.get(url(page, **({"format": fmt} if fmt else {})))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("fmt", ["", "csv"])
def test_learner_gets_403(alice_client, page, fmt):
    assert alice_client.get(url(page, **({"format": fmt} if fmt else {}))).status_code == 403


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("fmt", ["", "csv"])
def test_staff_without_the_permission_gets_403(client, db, page, fmt):
    client.force_login(UserFactory(is_staff=True))
    assert client.get(url(page, **({"format": fmt} if fmt else {}))).status_code == 403


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("fmt", ["", "csv"])
def test_staff_with_the_permission_sees_page_and_export(analyst_client, scored, page, fmt):
    response = analyst_client.get(url(page, **MAY_QUERY, **({"format": fmt} if fmt else {})))
    assert response.status_code == 200
    if fmt:
        assert response["Content-Type"].startswith("text/csv")
        body = b"".join(response.streaming_content) if response.streaming else response.content
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        assert rows and rows[0]  # a header at least
    else:
        assert b"Staff reports" in response.content


def test_superuser_sees_reports(staff_client, db):
    assert staff_client.get(url("overview")).status_code == 200


# ------------------------------------------------------------------------------------------------------------------
# Content, fragments and exports


def test_overview_shows_the_ledger_figures(analyst_client, ledger):  # noqa: F811
    response = analyst_client.get(url("overview", **MAY_QUERY))
    html = response.content.decode()
    # MRR at 06-01 is 90.00 (see test_reports_metrics) and renewal rate 50 %.
    assert 'data-figure="mrr"' in html and "90.00" in html
    assert "50.0%" in html
    assert "<svg" in html  # sparklines are inline SVG


def test_overview_csv_matches_the_metrics(analyst_client, ledger):  # noqa: F811
    response = analyst_client.get(url("overview", **MAY_QUERY, format="csv"))
    rows = {r[0]: r for r in csv.reader(io.StringIO(response.content.decode("utf-8-sig")))}
    assert float(rows["MRR"][1]) == pytest.approx(90.0)
    assert float(rows["MRR"][2]) == pytest.approx(180.0)
    assert float(rows["Paying members"][1]) == 2


def test_htmx_request_gets_only_the_report_fragment(analyst_client, ledger):  # noqa: F811
    full = analyst_client.get(url("overview", **MAY_QUERY)).content.decode()
    fragment = analyst_client.get(url("overview", **MAY_QUERY), headers={"HX-Request": "true"}).content.decode()
    assert "<html" in full and 'id="report"' in full
    assert "<html" not in fragment and fragment.lstrip().startswith('<div id="report">')
    assert "<form" not in fragment  # the filters stay on the page; only the figures are swapped


@pytest.mark.parametrize("page", PAGES)
def test_every_page_has_a_fragment(analyst_client, scored, page):
    fragment = analyst_client.get(url(page, **MAY_QUERY), headers={"HX-Request": "true"}).content.decode()
    assert fragment.lstrip().startswith('<div id="report">')


def test_filter_form_works_without_javascript(analyst_client, ledger):  # noqa: F811
    html = analyst_client.get(url("overview")).content.decode()
    assert '<form method="get"' in html and 'hx-push-url="true"' in html and 'type="submit"' in html


def test_tier_filter_changes_the_figures(analyst_client, ledger):  # noqa: F811
    from tests.members.factories import TierFactory

    other = TierFactory()
    response = analyst_client.get(url("overview", **MAY_QUERY, tier=str(other.pk), format="csv"))
    rows = {r[0]: r for r in csv.reader(io.StringIO(response.content.decode("utf-8-sig")))}
    assert float(rows["MRR"][1]) == 0


def test_churn_page_lists_live_members_by_risk_and_exports_them(analyst_client, scored):
    response = analyst_client.get(url("churn"))
    html = response.content.decode()
    # Live memberships: A, B, D (trial), E. Latest probabilities A 0.45, B 0.10, E 0.15; D unscored (last).
    assert html.index("<td>B</td>") < html.index("<td>E</td>") < html.index("<td>A</td>") < html.index("<td>D</td>")
    assert "Inactive" in html
    export = analyst_client.get(url("churn", format="csv"))
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == ["B", "E", "A", "D"]
    assert float(rows[1][6]) == pytest.approx(0.9)  # churn risk = 1 - 0.10


def test_churn_filters_narrow_the_list(analyst_client, scored):
    export = analyst_client.get(url("churn", format="csv", min_risk="0.86"))
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == ["B"]  # risk 0.90; E is 0.85


def test_calibration_uses_the_closed_window(analyst_client, scored):
    response = analyst_client.get(url("churn", format="csv", table="calibration"))
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    # Six members scored 60 days ago with a 30-day horizon; nobody in the ledger bought in that (recent) window,
    # so every decile's actual rate is 0 while predictions range 0.1..0.9.
    assert len(rows) > 1
    assert all(float(r[3]) == 0 for r in rows[1:])
    assert float(rows[-1][2]) == pytest.approx(0.9)


def test_calibration_says_so_when_no_window_has_closed(analyst_client, ledger):  # noqa: F811
    now = timezone.now()
    model = ModelVersion.objects.create(kind="repurchase", as_of=now, horizon_days=90, algorithm="x", is_serving=True)
    PropensityScore.objects.create(member=ledger["members"]["A"], model_version=model, as_of=now, probability=0.5)
    html = analyst_client.get(url("churn")).content.decode()
    assert 'data-calibration="none"' in html


def test_model_card_renders_metrics_and_baselines(analyst_client, scored):
    html = analyst_client.get(url("models")).content.decode()
    assert "roc_auc" in html and "0.7100" in html and "0.5000" in html
    assert "precision@5" in html
    assert "Feature importance" in html


def test_model_card_tells_the_weeks_blend_selection_from_a_night(analyst_client, scored):
    selection = RecommendationRun.objects.create(
        as_of=timezone.now(), k=5, params={"selection_only": True, "weights": [1.0], "tuned": True},
        metrics={"ndcg@5": 0.21}, baseline_metrics={"ndcg@5": 0.15})
    html = analyst_client.get(url("models")).content.decode()
    assert html.count("the week's blend selection (no rows)") == 1
    assert f"Run {selection.pk} " in html


def test_segments_page_profiles_each_segment(analyst_client, scored):
    response = analyst_client.get(url("segments", **MAY_QUERY, format="csv", table="profiles"))
    rows = {r[0]: r for r in csv.reader(io.StringIO(response.content.decode("utf-8-sig")))}
    header = next(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    # loyal = A, B (recency 10); at_risk = C, D, E (recency 40). In May: A renewed (loyal); C ended (at_risk).
    assert rows["loyal"][1] == "2" and rows["at_risk"][1] == "3"
    assert float(rows["loyal"][header.index("recency_days")]) == pytest.approx(10.0)
    assert rows["loyal"][header.index("renewed")] == "1"
    assert rows["at_risk"][header.index("ended")] == "1"


def test_cohort_csv_has_a_row_per_month(analyst_client, ledger):  # noqa: F811
    response = analyst_client.get(url("cohorts", end="2026-05-31", format="csv", table="repurchase"))
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    by_cohort = {r[0]: r for r in rows[1:]}
    # January 2026 first buyers: G, H, I. Cumulative repurchase: by end of Feb (m1) G -> 1/3; by end of May (m4)
    # G and H -> 2/3.
    jan = by_cohort["2026-01"]
    assert jan[1] == "3"
    assert float(jan[2]) == 0 and float(jan[3]) == pytest.approx(1 / 3) and float(jan[6]) == pytest.approx(2 / 3)


def test_unknown_csv_table_is_404(analyst_client, ledger):  # noqa: F811
    assert analyst_client.get(url("overview", format="csv", table="nope")).status_code == 404


def test_campaigns_page_lists_campaigns(analyst_client, scored):
    html = analyst_client.get(url("campaigns")).content.decode()
    assert "Win back" in html


# ------------------------------------------------------------------------------------------------------------------
# Query counts: pinned so an N+1 (or a per-month query loop) fails here.

# Every page starts with 5: session, user, the two permission lookups, and the unread-notification count of the
# community context processor. Then the filter form (segment labels of the latest run: one query; tier choices) and the
# report's own fixed set of aggregate queries. Cold cache; a warm cache skips the report queries.
QUERY_COUNTS = {
    "overview": 15,  # 5 + form 2 + 8 metric queries (each one query for all 15 windows)
    "cohorts": 11,  # 5 + form 2 (tier and course choices) + sizes, active, repurchase, revenue
    "repurchase": 12,  # 5 + form 2 + gaps, probabilities, transitions (pairs, per-first, titles)
    "churn": 14,  # 5 + form 2 + serving model, risk (max, bins), calibration (max, rows), page (count, rows)
    "models": 9,  # 5 + versions, recommendation runs, funnel (counts, purchases)
    "segments": 13,  # 5 + runs, sizes, latest run, sample features, profiles, renewed, ended, reasons
    "campaigns": 7,  # 5 + campaigns with group counts + analytics.campaigns.campaign_results (one per campaign)
}


@pytest.mark.parametrize("page", PAGES)
def test_query_counts_are_pinned(analyst_client, scored, page, django_assert_num_queries):
    with django_assert_num_queries(QUERY_COUNTS[page]):
        analyst_client.get(url(page, **MAY_QUERY))


def test_churn_query_count_does_not_grow_with_rows(analyst_client, scored, django_assert_num_queries):
    from members.models import MembershipTier

    tier = MembershipTier.objects.first()
    for _ in range(10):
        member = UserFactory()
        Subscription.objects.create(member=member, tier=tier, current_period_start=timezone.now(),
                                    current_period_end=timezone.now() + timedelta(days=5))
    with django_assert_num_queries(QUERY_COUNTS["churn"]):
        analyst_client.get(url("churn", **MAY_QUERY))


def test_window_is_inclusive_of_the_end_day(analyst_client, ledger):  # noqa: F811
    response = analyst_client.get(url("overview", start="2026-05-01", end="2026-05-31"))
    # Days are the reporting zone's (Asia/Shanghai by default): the end day runs to June 1st 00:00 there.
    assert response.context["window"].end == datetime(2026, 6, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
