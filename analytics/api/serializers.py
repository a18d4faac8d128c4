"""Input and output serializers for the analytics API: event ingestion, recommendations, staff data."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from analytics.ingest import events as ingest_events
from analytics.ml.reasons import reasons_display
from analytics.models import Campaign, Event, JobRun, ModelVersion
from config.celery import app as celery_app
from config.storable_text import find_unstorable

# --------------------------------------------------------------------------------------------------------------
# Event ingestion

MAX_BATCH = 500
MAX_ID = 2**63 - 1  # bigint primary keys: a larger number is a 400, never a database overflow
MAX_EVENT_AGE = timedelta(days=30)
MAX_PROPERTIES_BYTES = 4096
CLIENT_SOURCES = [Event.Source.WEB, Event.Source.MOBILE]
# Clients report what they saw and did; what was bought, paid, subscribed or completed is recorded by the server's
# own services. An allow-list keeps a client from forging the events every revenue and retention figure counts.
CLIENT_EVENT_KINDS = frozenset({
    "app_opened", "app_backgrounded", "page_viewed", "screen_viewed", "course_viewed", "lesson_viewed",
    "video_played", "video_paused", "video_progress", "search_performed", "share_clicked", "notification_opened",
    "email_opened", "email_clicked", "recommendation_impression", "recommendation_click", "recommendation_dismiss",
    "post_viewed", "checkout_started", "tier_viewed",
})
EVENT_ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"


class EventInput(serializers.Serializer):
    event_id = serializers.RegexField(EVENT_ID_PATTERN, help_text="Client-generated id, unique per member (a UUID).")
    kind = serializers.ChoiceField(choices=sorted(CLIENT_EVENT_KINDS))
    object_type = serializers.CharField(max_length=ingest_events.MAX_OBJECT_TYPE_LENGTH, required=False, allow_blank=True,
                                        default="")
    object_id = serializers.CharField(max_length=ingest_events.MAX_OBJECT_ID_LENGTH, required=False, allow_blank=True,
                                      default="")
    occurred_at = serializers.DateTimeField(
        help_text="ISO 8601 with offset. Rejected when more than EVENT_MAX_CLOCK_SKEW_SECONDS in the future or more "
        "than 30 days old."
    )
    properties = serializers.DictField(required=False, default=dict)

    def validate_occurred_at(self, value: datetime) -> datetime:
        now: datetime = self.context.get("now") or timezone.now()
        if value > now + timedelta(seconds=settings.EVENT_MAX_CLOCK_SKEW_SECONDS):
            raise serializers.ValidationError("Timestamp is in the future beyond the allowed clock skew.")
        if value < now - MAX_EVENT_AGE:
            raise serializers.ValidationError("Timestamp is older than 30 days.")
        return value

    def validate_properties(self, value: dict[str, Any]) -> dict[str, Any]:
        encoded = json.dumps(value, default=str)
        if len(encoded) > MAX_PROPERTIES_BYTES:
            raise serializers.ValidationError(f"Properties are larger than {MAX_PROPERTIES_BYTES} bytes.")
        # PostgreSQL's jsonb refuses NUL and no UTF-8 text holds a lone surrogate ("\ud800", which json.dumps
        # escapes, so a search of the encoded text misses it); one such event would otherwise fail the whole batch.
        bad = find_unstorable(value)
        if bad is not None:
            where, reason = bad
            raise serializers.ValidationError(f"{where or 'properties'}: {reason}.")
        return value


class EventBatchInput(serializers.Serializer):
    source = serializers.ChoiceField(choices=CLIENT_SOURCES, default=Event.Source.WEB)
    # Each element is validated on its own (EventInput) so one bad event does not reject the batch.
    events = serializers.ListField(child=serializers.DictField(), min_length=1, max_length=MAX_BATCH,
                                   help_text=f"Up to {MAX_BATCH} events, each shaped like EventInput.")


class EventErrorOutput(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the event in the request's list (0-based).")
    event_id = serializers.CharField(allow_blank=True)
    field = serializers.CharField()
    message = serializers.CharField()


class EventBatchOutput(serializers.Serializer):
    received = serializers.IntegerField()
    accepted = serializers.IntegerField(help_text="Newly stored events.")
    duplicates = serializers.IntegerField(help_text="Events already stored (a retried batch); not stored again.")
    rejected = serializers.IntegerField()
    errors = EventErrorOutput(many=True)


# --------------------------------------------------------------------------------------------------------------
# Recommendations


class RecommendedCourseOutput(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.SlugField()
    title = serializers.CharField()
    price = serializers.DecimalField(max_digits=10, decimal_places=2)
    currency = serializers.CharField()


class RecommendationOutput(serializers.Serializer):
    """A card as the home page shows it (analytics.recommendations.selectors.recommendation_cards)."""
    id = serializers.IntegerField(
        allow_null=True, help_text="The member's stored recommendation set of the run, shared by its cards (with `rank` "
                                   "it names one); null for a popular fallback.")
    rank = serializers.IntegerField()
    score = serializers.FloatField(allow_null=True)
    course = RecommendedCourseOutput(read_only=True)
    reason = serializers.CharField(help_text="Reason code; \"popular\" for the fallback.")
    reason_text = serializers.CharField(help_text="The reason in the viewer's language.")
    reason_course = serializers.CharField(allow_null=True, help_text="Slug of the course the reason names.")
    source = serializers.ChoiceField(choices=["model", "popular"])


class RecommendationFeedbackInput(serializers.Serializer):
    action = serializers.ChoiceField(choices=["impression", "click", "dismiss"])
    course = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="Course id of the recommendation.")
    rank = serializers.IntegerField(min_value=1, required=False)


class RecommendationFeedbackOutput(serializers.Serializer):
    recorded = serializers.CharField(help_text="The event kind recorded.")


# --------------------------------------------------------------------------------------------------------------
# Staff


class StaffMemberOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    display_name = serializers.CharField(allow_blank=True)
    date_joined = serializers.DateTimeField()
    tier = serializers.CharField(allow_null=True)
    engagement_score = serializers.FloatField(allow_null=True)
    engagement_as_of = serializers.DateTimeField(allow_null=True)
    segment = serializers.CharField(allow_null=True)
    probability = serializers.FloatField(allow_null=True, help_text="Serving model's purchase/renewal probability.")
    churn_risk = serializers.SerializerMethodField()
    propensity_as_of = serializers.DateTimeField(allow_null=True)
    top_reasons = serializers.SerializerMethodField(
        help_text="Stored reason codes and figures, each with `text` rendered in the viewer's language.")

    def get_top_reasons(self, obj: Any) -> list[dict] | None:
        return None if obj.top_reasons is None else reasons_display(obj.top_reasons)

    def get_churn_risk(self, obj: Any) -> float | None:
        return None if obj.probability is None else round(1.0 - obj.probability, 6)


class FigureTrendOutput(serializers.Serializer):
    label = serializers.CharField()
    value = serializers.FloatField(allow_null=True)


class FigureOutput(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    unit = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    previous = serializers.FloatField(allow_null=True)
    change = serializers.FloatField(allow_null=True)
    detail = serializers.CharField(allow_blank=True)
    trend = FigureTrendOutput(many=True)


class WindowOutput(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class OverviewOutput(serializers.Serializer):
    window = WindowOutput()
    previous = WindowOutput()
    figures = FigureOutput(many=True)


class OverviewQueryInput(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=366, default=30)
    tier = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID, help_text="Tier id.")
    segment = serializers.CharField(required=False, max_length=40)


class CampaignOutput(serializers.ModelSerializer):
    tier = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    assigned = serializers.IntegerField(read_only=True)

    class Meta:
        model = Campaign
        fields = ["id", "name", "status", "audience", "segment", "tier", "min_churn_risk", "max_churn_risk",
                  "discount_type", "percent_off", "amount_off", "holdout_share", "starts_at", "ends_at",
                  "created_at", "assigned"]


class GroupResultOutput(serializers.Serializer):
    n = serializers.IntegerField()
    conversions = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)
    revenue = serializers.DecimalField(max_digits=14, decimal_places=2)
    revenue_per_member = serializers.DecimalField(max_digits=14, decimal_places=2)


class CampaignResultOutput(serializers.Serializer):
    treatment = GroupResultOutput()
    control = GroupResultOutput()
    uplift = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    ci_method = serializers.CharField()
    significant = serializers.BooleanField()
    coupons_issued = serializers.IntegerField()
    coupons_redeemed = serializers.IntegerField()
    discount_given = serializers.DecimalField(max_digits=14, decimal_places=2)
    incremental_revenue = serializers.DecimalField(max_digits=14, decimal_places=2)


class CampaignDetailOutput(CampaignOutput):
    results = CampaignResultOutput(read_only=True)

    class Meta(CampaignOutput.Meta):
        fields = [*CampaignOutput.Meta.fields, "results"]


class ModelVersionOutput(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = ["id", "kind", "created_at", "as_of", "horizon_days", "algorithm", "features", "metrics", "baselines",
                  "is_serving", "notes"]


class JobRunOutput(serializers.ModelSerializer):
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = JobRun
        fields = ["id", "job", "status", "as_of", "params", "started_at", "finished_at", "duration_seconds", "rows",
                  "error", "message"]


class JobTriggerInput(serializers.Serializer):
    # Only the jobs the beat schedule runs anyway may be triggered: an arbitrary task name would let a staff token
    # call any task with no arguments.
    job = serializers.ChoiceField(choices=sorted(celery_app.conf.beat_schedule),
                                  help_text="A beat-schedule entry name, e.g. `nightly-analytics`.")


class JobTriggerOutput(serializers.Serializer):
    job = serializers.CharField()
    task = serializers.CharField()
    task_id = serializers.CharField()


class BinOutput(serializers.Serializer):
    label = serializers.CharField()
    count = serializers.IntegerField()


class RiskDistributionOutput(serializers.Serializer):
    model = serializers.CharField(allow_blank=True)
    as_of = serializers.DateTimeField(allow_null=True)
    scored = serializers.IntegerField()
    bins = BinOutput(many=True)


class CohortRowOutput(serializers.Serializer):
    cohort = serializers.CharField()
    size = serializers.IntegerField()
    values = serializers.ListField(child=serializers.FloatField(allow_null=True),
                                   help_text="Share per month since the cohort month; null where not closed yet.")


class CohortTableOutput(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    basis = serializers.CharField()
    offsets = serializers.ListField(child=serializers.IntegerField())
    rows = CohortRowOutput(many=True)


class CohortReportOutput(serializers.Serializer):
    as_of = serializers.DateTimeField()
    tables = CohortTableOutput(many=True)


class ReportFilterInput(serializers.Serializer):
    months = serializers.IntegerField(min_value=1, max_value=36, default=12)
    tier = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID, help_text="Tier id.")
    segment = serializers.CharField(required=False, max_length=40)


# --------------------------------------------------------------------------------------------------------------
# Query parameters of the staff lists (validated like bodies, so odd input is a 400 rather than a database error)

MEMBER_ORDERINGS = ["id", "probability", "-probability", "engagement_score", "-engagement_score"]


class StaffMemberQueryInput(serializers.Serializer):
    segment = serializers.CharField(required=False, max_length=40)
    tier = serializers.SlugField(required=False, help_text="Tier slug of the live subscription.")
    min_probability = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    max_probability = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    ordering = serializers.ChoiceField(choices=MEMBER_ORDERINGS, default="id")


class ModelVersionQueryInput(serializers.Serializer):
    kind = serializers.CharField(required=False, max_length=40)


class JobRunQueryInput(serializers.Serializer):
    job = serializers.CharField(required=False, max_length=80)
    status = serializers.ChoiceField(choices=JobRun.Status.choices, required=False)
