"""Analytics owns events, job runs, scores, segments, model versions, recommendations, reminders, campaigns and the
message log. It reads members and community through their selectors and never writes their tables, with one
exception owned by services here: campaign coupons are issued through members.services.coupon_issue."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Event(models.Model):
    """One thing a member did (or that happened to them). Append-only."""

    class Source(models.TextChoices):
        SERVER = "server", _("Server")
        WEB = "web", _("Web")
        MOBILE = "mobile", _("Mobile")
        IMPORT = "import", _("Import")
        DEMO = "demo", _("Demo seed")

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
, db_index=False)
    kind = models.CharField(max_length=60)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    received_at = models.DateTimeField(default=timezone.now)
    properties = models.JSONField(default=dict, blank=True)
    # How much of it: seconds watched, pages read, clicks, units. Null when the event has no measure; the ML features
    # sum it per member and window next to the event counts.
    quantity = models.FloatField(null=True, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.SERVER)
    # A retried client batch or a re-import carries the same key, and the unique index drops the duplicate.
    idempotency_key = models.CharField(max_length=120, null=True, blank=True)  # noqa: DJ001 (NULL: no key; never equal)

    class Meta:
        constraints = [
            # A constraint rather than unique=True: on PostgreSQL that also made a second, pattern-ops (`_like`) index
            # on the column for LIKE 'prefix%' queries, which nothing runs; one index less to keep up per event.
            models.UniqueConstraint(fields=["idempotency_key"], name="event_idempotency_key_unique"),
        ]
        indexes = [
            models.Index(fields=["member", "occurred_at"], name="event_member_time"),
            models.Index(fields=["kind", "occurred_at"], name="event_kind_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.member_id} at {self.occurred_at:%Y-%m-%d %H:%M}"


class JobRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    job = models.CharField(max_length=80, db_index=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    as_of = models.DateTimeField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    rows = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        # The staff reports' permission lives here because reports own no model of their own.
        permissions = [
            ("view_reports", "Can view the staff retention reports and CSV exports"),
            ("view_member_profiles", "Can view staff member profiles (personal data and scores)"),
            ("run_jobs", "Can trigger a scheduled job now"),
        ]

    def __str__(self) -> str:
        return f"{self.job} {self.status} {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


# The nightly rows below (engagement, segment assignments, propensity scores; recommendations further down) are
# derived, 100,000 a night each at 100,000 members, written only by analytics.scoring.services from ids it has just
# read, and never edited. Their foreign keys have no database constraint: PostgreSQL checked each of them per row at
# commit, and without them the three stages of a next night at 100k members went from 5.5 to 4.0 s
# (bench/bench_pipeline.py; docs/PERFORMANCE.md, session 10). Deleting a member, run or model version still removes
# their rows through Django's on_delete.


class EngagementScore(models.Model):
    """Daily snapshot of a member's engagement (0–100), kept so trends show."""

    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="engagement_scores",
                               db_index=False, db_constraint=False)
    as_of = models.DateTimeField(db_index=True)
    score = models.FloatField()
    raw = models.FloatField(default=0.0)
    components = models.JSONField(default=dict, blank=True)
    weights_source = models.CharField(max_length=20, default="hand")

    class Meta:
        # The unique (member, as_of) index also serves "a member's latest": an index is read backwards as well.
        constraints = [models.UniqueConstraint(fields=["member", "as_of"], name="one_engagement_score_per_day")]

    def __str__(self) -> str:
        return f"{self.member_id} engagement {self.score:.0f} at {self.as_of:%Y-%m-%d}"


class EngagementWeights(models.Model):
    """Engagement component weights learned at as_of: a logistic regression of who bought in the
    LEARN_WINDOW_DAYS before as_of on their components at the window's start (analytics.ml.engagement). Later
    nights reuse the newest row until it is ANALYTICS_RELEARN_DAYS old, the cadence at which the propensity model
    is retrained; a backfill only uses rows learned at or before its own as_of."""

    as_of = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    weights = models.JSONField(default=dict)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-as_of"]

    def __str__(self) -> str:
        return f"engagement weights learned at {self.as_of:%Y-%m-%d}"


class SegmentRun(models.Model):
    as_of = models.DateTimeField(db_index=True)
    k = models.PositiveIntegerField()
    criterion = models.CharField(max_length=40, default="silhouette")
    criterion_scores = models.JSONField(default=dict, blank=True)
    centroids = models.JSONField(default=dict, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-as_of"]

    def __str__(self) -> str:
        return f"segments k={self.k} at {self.as_of:%Y-%m-%d}"


class SegmentAssignment(models.Model):
    run = models.ForeignKey(SegmentRun, on_delete=models.CASCADE, related_name="assignments", db_index=False,
                            db_constraint=False)
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="segments",
                               db_index=False, db_constraint=False)
    as_of = models.DateTimeField(db_index=True)
    cluster = models.PositiveIntegerField()
    label = models.CharField(max_length=40, db_index=True)
    features = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "member"], name="one_segment_per_member_per_run")]
        indexes = [models.Index(fields=["member", "-as_of"], name="segment_member_latest")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.label} at {self.as_of:%Y-%m-%d}"


class ModelVersion(models.Model):
    kind = models.CharField(max_length=40, default="repurchase")
    created_at = models.DateTimeField(default=timezone.now)
    as_of = models.DateTimeField()
    horizon_days = models.PositiveIntegerField()
    data_start = models.DateTimeField(null=True, blank=True)
    data_end = models.DateTimeField(null=True, blank=True)
    train_cutoffs = models.JSONField(default=list, blank=True)
    validation_cutoff = models.DateTimeField(null=True, blank=True)
    algorithm = models.CharField(max_length=60)
    features = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    baselines = models.JSONField(default=dict, blank=True)
    feature_importance = models.JSONField(default=dict, blank=True)
    calibration = models.JSONField(default=list, blank=True)
    artifact_path = models.CharField(max_length=400, blank=True)
    is_serving = models.BooleanField(default=False)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["kind"], condition=Q(is_serving=True), name="one_serving_model_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.kind} v{self.pk} ({self.algorithm})"


class PropensityScore(models.Model):
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="propensity_scores",
                               db_index=False, db_constraint=False)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="scores",
                                      db_constraint=False)
    as_of = models.DateTimeField(db_index=True)
    probability = models.FloatField()
    top_reasons = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "model_version", "as_of"], name="one_propensity_per_member_run")
        ]
        indexes = [models.Index(fields=["member", "-as_of"], name="propensity_member_latest")]

    def __str__(self) -> str:
        return f"{self.member_id} p={self.probability:.2f} at {self.as_of:%Y-%m-%d}"

    @property
    def churn_risk(self) -> float:
        return 1.0 - self.probability


class RecommendationRun(models.Model):
    as_of = models.DateTimeField(db_index=True)
    k = models.PositiveIntegerField(default=10)
    created_at = models.DateTimeField(default=timezone.now)
    params = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    baseline_metrics = models.JSONField(default=dict, blank=True)
    is_current = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"recommendations #{self.pk} at {self.as_of:%Y-%m-%d}"


@dataclass(frozen=True)
class RecommendedCourse:
    """One course of a member's RecommendationSet, as stored (analytics.recommendations.selectors adds the objects)."""
    rank: int
    course_id: int
    score: float
    reason: str  # a reason code of analytics/ml/recommendations.py
    reason_course_id: int | None


class RecommendationSet(models.Model):
    """A member's top-k courses of one recommendation run, best first, in one row: `items` holds
    [course id, score, reason code, reason course id or null] per rank. Derived, written every night for every member
    and never edited. One row per member, not one per course: the night's 1,000,000 rows at 100,000 members (k = 10)
    were most of the recommendation stage's time on PostgreSQL (server-side, three index entries and a sequence value
    per row) and on SQLite. A course deleted later simply stops being shown (the readers look the ids up).

    No database-level foreign keys and no index on run or member alone: the unique (run, member) and the
    (member, run) index serve those lookups. The rows are written only by analytics.scoring.services from ids it has
    just read; deleting a member or a run still removes them through Django's on_delete."""
    run = models.ForeignKey(RecommendationRun, on_delete=models.CASCADE, related_name="sets", db_index=False,
                            db_constraint=False)
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                               related_name="recommendation_sets", db_index=False, db_constraint=False)
    items = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "member"], name="one_recommendation_set_per_member")]
        indexes = [models.Index(fields=["member", "run"], name="recommendation_set_member_run")]

    def __str__(self) -> str:
        return f"{self.member_id}: {len(self.items)} courses (run {self.run_id})"

    def entries(self) -> list[RecommendedCourse]:
        return recommended_courses(self.items)


def recommended_courses(items: list[list[Any]]) -> list[RecommendedCourse]:
    """A RecommendationSet's `items` (as read with values_list too) as RecommendedCourse, rank 1 first."""
    return [RecommendedCourse(rank=rank, course_id=int(course), score=float(score), reason=str(reason),
                              reason_course_id=None if because is None else int(because))
            for rank, (course, score, reason, because) in enumerate(items, start=1)]


# --------------------------------------------------------------------------------------------------------------
# Acting on the scores

# The names analytics.ml.segmentation gives its clusters (NAME_LADDER, plus the one-cluster fallback). A reminder rule
# or campaign filters on one of these; free text would match nobody, silently (tests/analytics/test_admin_input.py).
SEGMENT_CHOICES = [
    ("Champions", _("Champions")), ("Loyal", _("Loyal")), ("Promising", _("Promising")), ("New", _("New")),
    ("Needs attention", _("Needs attention")), ("At risk", _("At risk")), ("Hibernating", _("Hibernating")),
    ("Lost", _("Lost")), ("All members", _("All members")),
]
SEGMENT_NAMES = [name for name, _label in SEGMENT_CHOICES]
BILLING_PERIOD_CHOICES = [("any", _("Any")), ("month", _("Monthly")), ("year", _("Yearly"))]
DISCOUNT_TYPE_CHOICES = [("percent", _("Percent")), ("fixed", _("Amount"))]
APPLIES_TO_CHOICES = [("all", _("Everything")), ("tiers", _("Memberships")), ("courses", _("Courses"))]
MAX_REMINDER_DAYS = 366


def _in_unit_range(field: str) -> Q:
    return Q(**{f"{field}__isnull": True}) | (Q(**{f"{field}__gte": 0}) & Q(**{f"{field}__lte": 1}))


class ReminderRule(models.Model):
    name = models.CharField(max_length=120)
    days_before = models.PositiveIntegerField(
        help_text=_("Days before the period ends."), validators=[MaxValueValidator(MAX_REMINDER_DAYS)]
    )
    billing_period = models.CharField(max_length=10, choices=BILLING_PERIOD_CHOICES, default="any")
    min_churn_risk = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_("Only members whose churn risk (1 − renewal probability) is at least this."),
    )
    segment = models.CharField(
        max_length=40, blank=True, choices=SEGMENT_CHOICES, help_text=_("Only members in this segment.")
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-days_before"]
        # The database refuses what clean() refuses, so a script, the API or a bulk write cannot store a rule the
        # sender would misread; violation_error_message is what the admin shows instead of the constraint's name.
        constraints = [
            models.CheckConstraint(
                condition=Q(days_before__lte=MAX_REMINDER_DAYS), name="reminder_days_before_at_most_a_year",
                violation_error_message=_("Days before must be at most 366."),
            ),
            models.CheckConstraint(
                condition=_in_unit_range("min_churn_risk"), name="reminder_churn_risk_in_range",
                violation_error_message=_("Minimum churn risk must be between 0 and 1."),
            ),
            models.CheckConstraint(
                condition=Q(billing_period__in=["any", "month", "year"]), name="reminder_billing_period_valid",
                violation_error_message=_("Choose a billing period from the list."),
            ),
            models.CheckConstraint(
                condition=Q(segment="") | Q(segment__in=SEGMENT_NAMES), name="reminder_segment_valid",
                violation_error_message=_("Choose a segment from the list."),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")
        FINISHED = "finished", _("Finished")

    class Audience(models.TextChoices):
        AT_RISK = "at_risk", _("Churn-risk band")
        SEGMENT = "segment", _("Segment")
        TIER = "tier", _("Tier members")
        RENEWAL_DUE = "renewal_due", _("Renewal due soon")
        LAPSED_SUBSCRIBERS = "lapsed_subscribers", _("Lapsed subscribers")
        LAPSED_BUYERS = "lapsed_buyers", _("Lapsed course buyers")

    name = models.CharField(max_length=120)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True)
    audience = models.CharField(max_length=30, choices=Audience.choices, default=Audience.AT_RISK)
    segment = models.CharField(max_length=40, blank=True, choices=SEGMENT_CHOICES)
    tier = models.ForeignKey("members.MembershipTier", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    min_churn_risk = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    max_churn_risk = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    days_to_renewal = models.PositiveIntegerField(null=True, blank=True)
    lapsed_days = models.PositiveIntegerField(null=True, blank=True)
    discount_type = models.CharField(max_length=10, choices=DISCOUNT_TYPE_CHOICES, default="percent")
    percent_off = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("100"))],
    )
    amount_off = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(Decimal("0.01"))]
    )
    applies_to = models.CharField(max_length=10, choices=APPLIES_TO_CHOICES, default="all")
    validity_days = models.PositiveIntegerField(default=14)
    holdout_share = models.DecimalField(
        max_digits=4, decimal_places=3, default=Decimal("0.200"),
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("0.99"))],
    )
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True)
    daily_cap = models.PositiveIntegerField(null=True, blank=True)
    max_probability = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_("Never discount members whose predicted purchase probability is above this."),
    )
    cooldown_days = models.PositiveIntegerField(default=30)
    conversion_window_days = models.PositiveIntegerField(default=30)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("manage_campaigns", "Can pause and activate campaigns")]
        # Every range and choice the admin form checks, held by the database too: a campaign stored by a script or a
        # bulk write can no longer reach run_campaigns in a state that makes coupon_issue fail on every run. A draft
        # may be incomplete (nothing runs a draft); anything else must carry the discount its type names.
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=F("starts_at")), name="campaign_ends_after_start",
                violation_error_message=_("The campaign must end after it starts."),
            ),
            models.CheckConstraint(
                condition=_in_unit_range("min_churn_risk") & _in_unit_range("max_churn_risk"),
                name="campaign_churn_risk_in_range",
                violation_error_message=_("Churn risk limits must be between 0 and 1."),
            ),
            models.CheckConstraint(
                condition=Q(min_churn_risk__isnull=True) | Q(max_churn_risk__isnull=True)
                | Q(min_churn_risk__lte=F("max_churn_risk")),
                name="campaign_churn_risk_ordered",
                violation_error_message=_("Minimum churn risk must not be above maximum churn risk."),
            ),
            models.CheckConstraint(
                condition=_in_unit_range("max_probability"), name="campaign_max_probability_in_range",
                violation_error_message=_("Maximum probability must be between 0 and 1."),
            ),
            models.CheckConstraint(
                condition=Q(holdout_share__gte=Decimal("0.01")) & Q(holdout_share__lte=Decimal("0.99")),
                name="campaign_holdout_share_in_range",
                violation_error_message=_("Holdout share must be between 0.01 and 0.99."),
            ),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "active", "paused", "finished"])
                & Q(audience__in=["at_risk", "segment", "tier", "renewal_due", "lapsed_subscribers", "lapsed_buyers"])
                & Q(discount_type__in=["percent", "fixed"]) & Q(applies_to__in=["all", "tiers", "courses"]),
                name="campaign_choices_valid",
                violation_error_message=_("Choose status, audience, discount type and scope from their lists."),
            ),
            models.CheckConstraint(
                condition=Q(segment="") | Q(segment__in=SEGMENT_NAMES), name="campaign_segment_valid",
                violation_error_message=_("Choose a segment from the list."),
            ),
            models.CheckConstraint(
                condition=Q(status="draft")
                # isnull=False spelled out: a CHECK whose expression is NULL passes, and NULL > 0 is NULL.
                | (Q(discount_type="percent") & Q(percent_off__isnull=False) & Q(percent_off__gt=0)
                   & Q(percent_off__lte=100))
                | (Q(discount_type="fixed") & Q(amount_off__isnull=False) & Q(amount_off__gt=0)),
                name="campaign_discount_matches_type",
                violation_error_message=_("A percent discount needs a percent off (0–100); an amount discount needs "
                                          "an amount off above 0."),
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | ~Q(audience="segment") | ~Q(segment=""),
                name="campaign_segment_audience_names_segment",
                violation_error_message=_("A segment campaign needs a segment."),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Field-level messages for the admin form; the constraints above repeat them for every other writer."""
        errors: dict[str, str] = {}
        if self.ends_at is not None and self.starts_at is not None and self.ends_at <= self.starts_at:
            errors["ends_at"] = _("The campaign must end after it starts.")
        if (self.min_churn_risk is not None and self.max_churn_risk is not None
                and self.min_churn_risk > self.max_churn_risk):
            errors["max_churn_risk"] = _("Maximum churn risk must be at least the minimum churn risk.")
        if self.discount_type == "percent" and self.percent_off is None:
            errors["percent_off"] = _("A percent discount needs a percent off (for example 20).")
        if self.discount_type == "fixed" and self.amount_off is None:
            errors["amount_off"] = _("An amount discount needs an amount off.")
        if self.audience == self.Audience.SEGMENT and not self.segment:
            errors["segment"] = _("A segment campaign needs a segment.")
        if self.audience == self.Audience.TIER and self.tier_id is None:
            errors["tier"] = _("A tier campaign needs a tier.")
        if errors:
            raise ValidationError(errors)


class CampaignAssignment(models.Model):
    class Group(models.TextChoices):
        TREATMENT = "treatment", _("Treatment")
        CONTROL = "control", _("Control (holdout)")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="assignments", db_index=False)
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="campaign_assignments")
    group = models.CharField(max_length=20, choices=Group.choices)
    assigned_at = models.DateTimeField(default=timezone.now)
    probability_at_assignment = models.FloatField(null=True, blank=True)
    coupon = models.OneToOneField("members.Coupon", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    emailed_at = models.DateTimeField(null=True, blank=True)
    converted_at = models.DateTimeField(null=True, blank=True)
    conversion_order = models.ForeignKey("members.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revenue = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "member"], name="one_assignment_per_campaign_member")]

    def __str__(self) -> str:
        return f"{self.member_id} in {self.campaign_id} ({self.group})"


class MessageLog(models.Model):
    class Kind(models.TextChoices):
        RENEWAL_REMINDER = "renewal_reminder", _("Renewal reminder")
        DUNNING = "dunning", _("Dunning")
        CAMPAIGN = "campaign", _("Campaign offer")
        RECEIPT = "receipt", _("Receipt")
        REVIEW_INVITE = "review_invite", _("Review invitation")
        NEWSLETTER = "newsletter", _("Newsletter")
        COMMUNITY_DIGEST = "community_digest", _("Community digest")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        # Claimed by one email task (conditional UPDATE queued → sending) so no second task sends it again.
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="messages", db_index=False)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    # The exactly-once key, e.g. "reminder:<subscription>:<period_end>:<rule>". A second insert fails.
    dedupe_key = models.CharField(max_length=200, unique=True)
    subject = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(default=timezone.now)
    # Set by the queued → sending claim, so the recovery sweep can tell a send in progress from one whose worker died.
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Claims so far; the sweep stops retrying a message that keeps dying mid-send (analytics/recovery.py).
    attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    context = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["member", "created_at"], name="message_member_created")]

    def __str__(self) -> str:
        return f"{self.kind} to {self.member_id}: {self.subject}"




class ImportJob(models.Model):
    """A platform import started from the admin: the uploaded files, the options, its progress and outcome.

    The import itself is the command's (members/importing.py); this row only carries it through a Celery task so a
    large file does not hold a web request. Progress while running lives in the cache (analytics/ingest/jobs.py): the
    all-or-nothing import holds one transaction, so progress written to this row would only appear at the end."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        REJECTED = "rejected", _("Rows rejected")
        FAILED = "failed", _("Failed")

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    dry_run = models.BooleanField(_("dry run"), default=True, help_text=_("Validate and report; write nothing."))
    partial = models.BooleanField(_("import the good rows"), default=False,
                                  help_text=_("Import the valid rows even if some rows are rejected."))
    encoding = models.CharField(_("encoding"), max_length=20, blank=True,
                                help_text=_("Empty: detect UTF-8 or GBK/GB18030. .xlsx files need none."))
    members_file = models.FileField(_("members file"), upload_to="imports/%Y/%m/", blank=True)
    products_file = models.FileField(_("products file"), upload_to="imports/%Y/%m/", blank=True)
    orders_file = models.FileField(_("orders file"), upload_to="imports/%Y/%m/", blank=True)
    events_file = models.FileField(_("events file"), upload_to="imports/%Y/%m/", blank=True)
    errors_file = models.FileField(upload_to="imports/errors/%Y/%m/", blank=True)
    error_count = models.PositiveIntegerField(default=0)
    written = models.BooleanField(default=False)
    report = models.TextField(blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    FILE_FIELDS = ("members_file", "products_file", "orders_file", "events_file")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import #{self.pk} ({self.get_status_display()})"


class MessageTemplate(models.Model):
    """Staff-edited copy for one kind of email in one language. When no row exists the file templates
    (templates/emails/analytics/) are used. Only the variables listed for the kind may appear
    (analytics/outreach/templates.py validates on save)."""

    kind = models.CharField(_("kind"), max_length=30, choices=MessageLog.Kind.choices)
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES)
    subject = models.CharField(_("subject"), max_length=300)
    text_body = models.TextField(_("text body"))
    html_body = models.TextField(_("HTML body"), blank=True, help_text=_("Empty: the text body, escaped."))
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["kind", "language"]
        constraints = [models.UniqueConstraint(fields=["kind", "language"], name="message_template_kind_language")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.language})"


class EmailSuppression(models.Model):
    """An address we must not email again: a hard bounce or a spam complaint reported by the provider's webhook,
    or added by staff. Checked before every non-transactional send (and dunning: the address is dead)."""

    class Reason(models.TextChoices):
        BOUNCE = "bounce", _("Hard bounce")
        COMPLAINT = "complaint", _("Spam complaint")
        MANUAL = "manual", _("Added by staff")

    email = models.EmailField(unique=True)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    source = models.CharField(max_length=40, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} ({self.reason})"


class Newsletter(models.Model):
    """One newsletter issue sent to a segment (the latest segmentation run's label) or to everyone, through the same
    exactly-once send path as reminders and campaigns (one MessageLog per member, dedupe key newsletter:<id>:<m>)."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SENT = "sent", _("Sent")

    subject = models.CharField(_("subject"), max_length=300)
    text_body = models.TextField(_("text body"))
    html_body = models.TextField(_("HTML body"), blank=True)
    segment = models.CharField(_("segment"), max_length=40, blank=True, help_text=_("Empty: every member."))
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    recipients = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.subject
