"""Admin input (issue 13.5): every range and choice is checked by clean() and by a database constraint, the admin
shows sentences rather than constraint names, and a campaign that cannot run is marked failed in its own JobRun
and skipped without stopping the others. Before: a campaign saved with only a name raised IntegrityError
(coupon_discount_matches_type) on every run_campaigns, blocking every campaign after it."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from analytics.ml.segmentation import LADDER_ORDER
from analytics.models import SEGMENT_NAMES, Campaign, CampaignAssignment, JobRun, ModelVersion, PropensityScore
from analytics.outreach import campaigns
from analytics.outreach.tasks import run_campaigns
from tests.members.factories import UserFactory

pytestmark = [pytest.mark.adversarial, pytest.mark.django_db]


def _add_form(**overrides):
    now = timezone.now()
    data = {
        "name": "Win back", "status": "active", "audience": "at_risk", "segment": "", "tier": "",
        "min_churn_risk": "0.5", "max_churn_risk": "", "days_to_renewal": "", "lapsed_days": "",
        "discount_type": "percent", "percent_off": "20", "amount_off": "", "applies_to": "all",
        "validity_days": "14", "holdout_share": "0.2", "starts_at_0": f"{now:%Y-%m-%d}", "starts_at_1": "00:00:00",
        "ends_at_0": "", "ends_at_1": "", "daily_cap": "", "max_probability": "", "cooldown_days": "30",
        "conversion_window_days": "30", "created_at_0": f"{now:%Y-%m-%d}", "created_at_1": "00:00:00",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"percent_off": ""}, "percent_off", "A percent discount needs a percent off"),
    ({"discount_type": "fixed", "percent_off": ""}, "amount_off", "An amount discount needs an amount off"),
    ({"ends_at_0": "2020-01-01", "ends_at_1": "00:00:00"}, "ends_at", "The campaign must end after it starts"),
    ({"min_churn_risk": "0.9", "max_churn_risk": "0.2"}, "max_churn_risk", "at least the minimum churn risk"),
    ({"min_churn_risk": "1.5"}, "min_churn_risk", "less than or equal to 1"),
    ({"max_probability": "-0.1"}, "max_probability", "greater than or equal to 0"),
    ({"percent_off": "150"}, "percent_off", "less than or equal to 100"),
    ({"audience": "segment", "segment": ""}, "segment", "A segment campaign needs a segment"),
    ({"audience": "segment", "segment": "whales"}, "segment", "Select a valid choice"),
])
def test_admin_refuses_a_campaign_that_cannot_run_with_a_sentence(admin_client, overrides, field, message):
    response = admin_client.post("/admin/analytics/campaign/add/", _add_form(**overrides))
    assert response.status_code == 200, "the form must come back with errors, not save"
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors.get(field, [])), errors
    assert "constraint" not in response.content.decode().lower()
    assert not Campaign.objects.exists()


def test_admin_saves_a_complete_campaign(admin_client):
    response = admin_client.post("/admin/analytics/campaign/add/", _add_form())
    assert response.status_code == 302
    assert Campaign.objects.get().percent_off == Decimal(20)


def test_admin_refuses_an_inverted_or_free_text_reminder_rule(admin_client):
    response = admin_client.post("/admin/analytics/reminderrule/add/", {
        "name": "Late", "days_before": "9999", "billing_period": "any", "min_churn_risk": "2", "segment": "whales",
        "is_active": "on", "created_at_0": "2026-01-01", "created_at_1": "00:00:00"})
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"days_before", "min_churn_risk", "segment"}


@pytest.mark.parametrize("fields", [
    {"name": "only a name", "status": "active"},
    {"name": "fixed, no amount", "status": "active", "discount_type": "fixed"},
    {"name": "inverted", "percent_off": 10, "ends_at": timezone.now() - timedelta(days=9)},
    {"name": "risk", "percent_off": 10, "min_churn_risk": 0.9, "max_churn_risk": 0.1},
    {"name": "risk range", "percent_off": 10, "min_churn_risk": 7},
    {"name": "segment", "percent_off": 10, "segment": "whales"},
    {"name": "status", "percent_off": 10, "status": "sideways"},
])
def test_database_refuses_what_the_admin_refuses(fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.create(**fields)


def test_constraint_messages_are_sentences_for_any_model_form():
    campaign = Campaign(name="x", status="active", discount_type="fixed", audience="at_risk")
    with pytest.raises(ValidationError) as caught:
        campaign.validate_constraints()
    assert "an amount discount needs an amount off above 0" in str(caught.value)
    assert "campaign_discount_matches_type" not in str(caught.value)


def test_segment_choices_cover_every_name_segmentation_gives():
    assert set(LADDER_ORDER) | {"All members"} == set(SEGMENT_NAMES)


def _scored(n: int) -> None:
    version = ModelVersion.objects.create(as_of=timezone.now(), horizon_days=30, algorithm="test")
    PropensityScore.objects.bulk_create([
        PropensityScore(member=UserFactory(), model_version=version, probability=0.1,
                        as_of=timezone.now() - timedelta(hours=1)) for _ in range(n)])


def _live(**kwargs) -> Campaign:
    return Campaign.objects.create(**{"status": "active", "audience": "at_risk", "min_churn_risk": 0.5,
                                      "percent_off": Decimal(20), "starts_at": timezone.now() - timedelta(days=1),
                                      **kwargs})


def test_a_campaign_that_cannot_run_is_failed_in_its_job_run_and_the_others_still_run():
    _scored(6)
    # Stored fine, then its tier was deleted (SET_NULL): clean() says it cannot run.
    broken = _live(name="Tier campaign, tier deleted", audience="tier")
    crashing = _live(name="Crashes")
    healthy = _live(name="Healthy")
    real_run = campaigns.campaign_run

    def run(*, campaign, **kwargs):
        if campaign.pk == crashing.pk:
            raise IntegrityError("coupon_discount_matches_type")
        return real_run(campaign=campaign, **kwargs)

    with mock.patch.object(campaigns, "campaign_run", side_effect=run):
        result = run_campaigns.delay().get()
    assert result["failed"] == 2
    assert CampaignAssignment.objects.filter(campaign=healthy).count() == 6
    failed = {r.params["campaign"]: r.error for r in JobRun.objects.filter(job="run_campaign", status="failed")}
    assert set(failed) == {broken.pk, crashing.pk}
    assert "A tier campaign needs a tier" in failed[broken.pk]
    assert "IntegrityError" in failed[crashing.pk]
    overall = JobRun.objects.get(job="run_campaigns")
    assert overall.status == "succeeded" and f"{broken.pk}, {crashing.pk}" in overall.message
    assert JobRun.objects.get(job="run_campaign", params__campaign=healthy.pk).status == "succeeded"


def test_activating_an_incomplete_draft_is_refused_with_a_message(admin_client):
    draft = Campaign.objects.create(name="Half done")
    response = admin_client.post("/admin/analytics/campaign/", {
        "action": "activate_campaigns", "_selected_action": [draft.pk]}, follow=True)
    assert "was not activated" in response.content.decode()
    assert "A percent discount needs a percent off" in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == "draft"
