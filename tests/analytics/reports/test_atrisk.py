"""The at-risk list speaks about the model's horizon: by default it lists only memberships due to renew within it,
and its reasons are the ones lowering the predicted probability."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from analytics.models import ModelVersion, PropensityScore
from members.models import BillingPeriod, Subscription
from tests.members.factories import TierFactory, UserFactory


@pytest.fixture
def staff_client(client, db):
    user = UserFactory(email="analyst@example.com", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_reports", content_type__app_label="analytics"))
    client.force_login(user)
    return client


@pytest.fixture
def renewals(db):
    """A monthly member renewing in 10 days and a yearly one renewing in 200; a 30-day serving model scored both,
    the yearly member far lower (the riskier one on an unfiltered list)."""
    now = timezone.now()
    tier = TierFactory()
    model = ModelVersion.objects.create(kind="repurchase", as_of=now - timedelta(days=1), horizon_days=30,
                                        algorithm="logistic_regression", is_serving=True)
    people = {}
    for name, period, days, p in (("Monthly Near", BillingPeriod.MONTH, 10, 0.4),
                                  ("Yearly Far", BillingPeriod.YEAR, 200, 0.05)):
        member = UserFactory(display_name=name)
        Subscription.objects.create(member=member, tier=tier, billing_period=period, status=Subscription.Status.ACTIVE,
                                    started_at=now - timedelta(days=100), current_period_start=now - timedelta(days=5),
                                    current_period_end=now + timedelta(days=days))
        PropensityScore.objects.create(
            member=member, model_version=model, as_of=model.as_of, probability=p,
            top_reasons=[
                {"feature": "renewals_total", "text": "renewed 3 times", "effect": "+", "weight": 1.2},
                {"feature": "recency_days", "text": "no activity for 40 days", "effect": "-", "weight": -0.8},
                {"feature": "legacy", "text": "unsigned legacy reason"},
            ],
        )
        people[name] = member
    return people


def _export(client, **params: str) -> list[list[str]]:
    response = client.get(reverse("analytics:churn"), {"format": "csv", **params})
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_far_renewal_is_excluded_by_default_and_back_when_the_filter_is_cleared(staff_client, renewals):
    assert [r[0] for r in _export(staff_client)[1:]] == ["Monthly Near"]
    assert [r[0] for r in _export(staff_client, within="")[1:]] == ["Yearly Far", "Monthly Near"]
    assert [r[0] for r in _export(staff_client, within="any")[1:]] == ["Yearly Far", "Monthly Near"]
    assert [r[0] for r in _export(staff_client, within="365")[1:]] == ["Yearly Far", "Monthly Near"]


def test_page_prefills_the_horizon_and_says_why(staff_client, renewals):
    html = staff_client.get(reverse("analytics:churn")).content.decode()
    assert 'name="within" value="30"' in html
    assert "chance of a paid order within 30 days" in html
    assert "Monthly Near" in html and "Yearly Far" not in html
    cleared = staff_client.get(reverse("analytics:churn"), {"within": ""}).content.decode()
    assert "Yearly Far" in cleared and 'name="within" value="30"' not in cleared


def test_reasons_are_only_the_ones_lowering_the_probability(staff_client, renewals):
    header, row = _export(staff_client)[:2]
    reasons = row[header.index("top reasons")]
    assert "no activity for 40 days" in reasons
    assert "unsigned legacy reason" in reasons  # no sign stored: unknown, shown
    assert "renewed 3 times" not in reasons
