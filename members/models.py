"""Members own accounts, tiers and benefits, subscriptions, the catalogue, orders, coupons and payment methods."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.storage import private_media_storage

ZERO = Decimal("0.00")


class Currency(models.TextChoices):
    CNY = "CNY", "CNY"
    USD = "USD", "USD"
    EUR = "EUR", "EUR"


class Language(models.TextChoices):
    EN = "en", _("English")
    ZH_HANS = "zh-hans", _("Simplified Chinese")


class BillingPeriod(models.TextChoices):
    MONTH = "month", _("Monthly")
    YEAR = "year", _("Yearly")


# --------------------------------------------------------------------------------------------------------------
# Accounts


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: object) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    class AcquisitionSource(models.TextChoices):
        ORGANIC = "organic", _("Organic")
        REFERRAL = "referral", _("Referral")
        CAMPAIGN = "campaign", _("Campaign")
        SOCIAL = "social", _("Social")
        IMPORT = "import", _("Imported")

    email = models.EmailField(_("email address"), unique=True)
    display_name = models.CharField(_("display name"), max_length=120, blank=True)
    preferred_language = models.CharField(
        _("preferred language"), max_length=10, choices=Language.choices, default=Language.EN
    )
    time_zone = models.CharField(_("time zone"), max_length=64, default="UTC")
    # Opt-in, never assumed: PIPL and GDPR need an unticked box and a record of when consent was given. This is the
    # "offers" category; the newsletter and the community digest are opt-in too. Reminders about a paid membership
    # are service messages (on by default, one click to turn off).
    marketing_opt_in = models.BooleanField(_("marketing email"), default=False)
    marketing_consent_at = models.DateTimeField(_("marketing consent given at"), null=True, blank=True)
    reminders_opt_in = models.BooleanField(_("renewal reminders"), default=True)
    newsletter_opt_in = models.BooleanField(_("newsletter"), default=False)
    digest_opt_in = models.BooleanField(_("weekly community digest"), default=False)
    country = models.CharField(_("country"), max_length=2, blank=True)
    acquisition_source = models.CharField(
        _("acquisition source"), max_length=20, choices=AcquisitionSource.choices, default=AcquisitionSource.ORGANIC
    )
    # The platform's own id for members imported from another system's history.
    external_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    is_staff = models.BooleanField(_("staff status"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now, db_index=True)
    anonymized_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")

    def __str__(self) -> str:
        return self.display_name or self.email

    @property
    def name(self) -> str:
        return self.display_name or self.email.split("@", 1)[0]


class PaymentMethod(models.Model):
    """A reference to a payment instrument held by the provider. No card data is ever stored here."""

    member = models.ForeignKey(User, on_delete=models.CASCADE, related_name="payment_methods")
    provider = models.CharField(max_length=40, default="local")
    token = models.CharField(max_length=120, help_text=_("The provider's opaque reference."))
    label = models.CharField(max_length=80, help_text=_("What the member sees, e.g. 'Test card ending 4242'."))
    is_default = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["member"], condition=Q(is_default=True), name="one_default_payment_method_per_member"
            )
        ]

    def __str__(self) -> str:
        return self.label


# --------------------------------------------------------------------------------------------------------------
# Tiers and benefits


class MembershipTier(models.Model):
    name = models.CharField(_("name"), max_length=80)
    slug = models.SlugField(unique=True)
    description = models.TextField(_("description"), blank=True)
    monthly_price = models.DecimalField(_("monthly price"), max_digits=10, decimal_places=2)
    yearly_price = models.DecimalField(_("yearly price"), max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.CNY)
    trial_days = models.PositiveIntegerField(_("trial days"), default=0)
    is_public = models.BooleanField(_("public"), default=True)
    is_active = models.BooleanField(_("active"), default=True)
    order = models.PositiveIntegerField(default=0)
    external_id = models.CharField(max_length=100, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["order", "monthly_price"]
        constraints = [
            models.CheckConstraint(condition=Q(monthly_price__gte=0) & Q(yearly_price__gte=0), name="tier_prices_not_negative")
        ]

    def __str__(self) -> str:
        return self.name

    def price_for(self, period: str) -> Decimal:
        return self.yearly_price if period == BillingPeriod.YEAR else self.monthly_price

    def benefit_value(self, kind: str) -> Decimal | None:
        for benefit in self.benefits.all():
            if benefit.kind == kind:
                return benefit.value if benefit.value is not None else Decimal("1")
        return None

    def has_benefit(self, kind: str) -> bool:
        return self.benefit_value(kind) is not None


class Benefit(models.Model):
    class Kind(models.TextChoices):
        ALL_COURSES = "all_courses", _("All-course access")
        COURSE_DISCOUNT = "course_discount", _("Course discount %")
        COMMUNITY = "community", _("Community access")
        LIVE_QA = "live_qa", _("Live Q&A")
        DOWNLOADS = "downloads", _("Downloads")
        MONTHLY_CREDITS = "monthly_credits", _("Monthly credits")
        CERTIFICATES = "certificates", _("Certificates")

    tier = models.ForeignKey(MembershipTier, on_delete=models.CASCADE, related_name="benefits", db_index=False)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    value = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    description = models.CharField(max_length=200, blank=True)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]
        constraints = [models.UniqueConstraint(fields=["tier", "kind"], name="one_benefit_kind_per_tier")]

    def __str__(self) -> str:
        label = self.get_kind_display()
        return f"{label}: {self.value}" if self.value is not None else str(label)


class RetentionOffer(models.Model):
    """The save offer shown in the cancellation flow before a cancellation is final."""

    class Kind(models.TextChoices):
        DISCOUNT = "discount", _("Discounted renewal")
        PAUSE = "pause", _("Pause membership")

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    percent_off = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    pause_days = models.PositiveIntegerField(null=True, blank=True)
    headline = models.CharField(max_length=200, blank=True)
    tiers = models.ManyToManyField(MembershipTier, blank=True, help_text=_("Empty means every tier."))
    # The cancellation reasons this offer answers (Subscription.CancellationReason values). The flow shows the
    # offer written for the member's reason first, an offer for any reason otherwise.
    reasons = models.JSONField(
        _("reasons"), default=list, blank=True,
        help_text=_("Cancellation reasons this offer answers, e.g. [\"not_using\"]. Empty means any reason."),
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name

    def answers(self, reason: str) -> bool:
        return not self.reasons or reason in self.reasons

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        valid = set(Subscription.CancellationReason.values)
        if not isinstance(self.reasons, list) or not all(isinstance(r, str) and r in valid for r in self.reasons):
            raise ValidationError({"reasons": _("Choose reasons from the cancellation survey's list.")})


# --------------------------------------------------------------------------------------------------------------
# Subscriptions


class Subscription(models.Model):
    class Status(models.TextChoices):
        TRIALING = "trialing", _("Trialing")
        ACTIVE = "active", _("Active")
        PAST_DUE = "past_due", _("Past due")
        CANCELED = "canceled", _("Canceled")
        EXPIRED = "expired", _("Expired")

    LIVE_STATUSES = (Status.TRIALING, Status.ACTIVE, Status.PAST_DUE)

    class CancellationReason(models.TextChoices):
        TOO_EXPENSIVE = "too_expensive", _("Too expensive")
        NOT_USING = "not_using", _("Not using it enough")
        CONTENT = "content", _("Content doesn't fit my needs")
        FINISHED = "finished", _("Finished what I came for")
        TECHNICAL = "technical", _("Technical problems")
        PAYMENT = "payment", _("Payment failed")
        OTHER = "other", _("Other")

    member = models.ForeignKey(User, on_delete=models.CASCADE, related_name="subscriptions")
    tier = models.ForeignKey(MembershipTier, on_delete=models.PROTECT, related_name="subscriptions")
    billing_period = models.CharField(max_length=10, choices=BillingPeriod.choices, default=BillingPeriod.MONTH)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    started_at = models.DateTimeField(default=timezone.now)
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField(db_index=True)
    trial_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    cancellation_reason = models.CharField(max_length=30, choices=CancellationReason.choices, blank=True)
    cancellation_note = models.TextField(blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Dunning: when the grace period after a failed renewal runs out, and how many charge attempts were made.
    grace_until = models.DateTimeField(null=True, blank=True)
    renewal_attempts = models.PositiveIntegerField(default=0)
    last_renewal_attempt_at = models.DateTimeField(null=True, blank=True)
    renewal_count = models.PositiveIntegerField(default=0)
    paused_until = models.DateTimeField(null=True, blank=True)
    # A downgrade or a yearly → monthly switch waits for the period the member already paid for to end; the
    # renewal at period end charges and applies it (members.subscriptions.services.subscription_renew).
    scheduled_tier = models.ForeignKey(
        MembershipTier, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    scheduled_billing_period = models.CharField(max_length=10, choices=BillingPeriod.choices, blank=True)
    external_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            # At most one live subscription per member. The database refuses the second one, so two concurrent
            # "subscribe" clicks cannot both succeed.
            models.UniqueConstraint(
                fields=["member"],
                condition=Q(status__in=["trialing", "active", "past_due"]),
                name="one_live_subscription_per_member",
            ),
            models.CheckConstraint(
                condition=Q(current_period_end__gt=models.F("current_period_start")), name="subscription_period_positive"
            ),
        ]
        indexes = [models.Index(fields=["status", "current_period_end"], name="sub_status_period_end")]

    def __str__(self) -> str:
        return f"{self.member} · {self.tier} ({self.get_status_display()})"

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE_STATUSES

    def is_active_at(self, when: datetime | None = None) -> bool:
        """Whether the member currently enjoys the tier's benefits (trial, paid period, or dunning grace)."""
        when = when or timezone.now()
        if self.status in (self.Status.TRIALING, self.Status.ACTIVE):
            return self.current_period_end > when or self.status == self.Status.ACTIVE
        if self.status == self.Status.PAST_DUE:
            return bool(self.grace_until and self.grace_until > when)
        if self.status == self.Status.CANCELED:
            return self.current_period_end > when
        return False

    @property
    def is_active(self) -> bool:
        return self.is_active_at()

    def days_left(self, when: datetime | None = None) -> int:
        when = when or timezone.now()
        return max(0, (self.current_period_end - when).days)

    @property
    def price(self) -> Decimal:
        return self.tier.price_for(self.billing_period)

    @property
    def next_tier(self) -> MembershipTier:
        """The tier the next renewal charges for (a scheduled downgrade, else the current tier)."""
        return self.scheduled_tier or self.tier

    @property
    def next_billing_period(self) -> str:
        return self.scheduled_billing_period or self.billing_period


class SubscriptionChange(models.Model):
    """Append-only ledger of a subscription's state: one row per change, holding the state *after* it.

    The Subscription row says how things stand today; this says how they stood at any past instant (the last row
    before it), which the ML layer needs to compute features at an as_of without seeing later pauses, cancellations
    or period switches. Every service that changes a subscription appends one row in the same transaction
    (members.services.subscription_record). Rows are never updated. Subscriptions older than the ledger have no
    rows for their early life; analytics/ml/datasets.py falls back to reconstructing those from today's row.
    """

    class Kind(models.TextChoices):
        STARTED = "started", _("Started")
        TRIAL_CONVERTED = "trial_converted", _("Trial converted")
        RENEWED = "renewed", _("Renewed")
        RECOVERED = "recovered", _("Recovered from past due")
        PAST_DUE = "past_due", _("Renewal failed, past due")
        RETRY_FAILED = "retry_failed", _("Renewal retry failed")
        PERIOD_CHANGED = "period_changed", _("Billing period changed")
        TIER_CHANGED = "tier_changed", _("Tier changed")
        CHANGE_SCHEDULED = "change_scheduled", _("Change scheduled for period end")
        PAUSED = "paused", _("Paused")
        PAUSE_EXTENDED = "pause_extended", _("Period extended by a pause")
        CANCEL_SCHEDULED = "cancel_scheduled", _("Cancellation scheduled")
        CANCEL_UNDONE = "cancel_undone", _("Cancellation undone")
        CANCELED = "canceled", _("Canceled")
        EXPIRED = "expired", _("Expired")
        ACCOUNT_DELETED = "account_deleted", _("Ended by account deletion")
        EDITED = "edited", _("Edited by staff")

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="changes", db_index=False)
    # Denormalised from the subscription so a chunk task reads its member-id range without a join.
    member = models.ForeignKey(User, on_delete=models.CASCADE, related_name="subscription_changes", db_index=False)
    at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # The state after the change.
    status = models.CharField(max_length=20, choices=Subscription.Status.choices)
    tier = models.ForeignKey(MembershipTier, on_delete=models.PROTECT, related_name="+")
    billing_period = models.CharField(max_length=10, choices=BillingPeriod.choices)
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    paused_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            # "Last row before as_of per subscription" and "rows of a member-id range before as_of".
            models.Index(fields=["subscription", "at"], name="subchange_sub_at"),
            models.Index(fields=["member", "at"], name="subchange_member_at"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.kind} at {self.at:%Y-%m-%d %H:%M}"

    @classmethod
    def of(cls, sub: Subscription, kind: str, at: datetime) -> SubscriptionChange:
        """An unsaved row holding `sub`'s current state (bulk writers save many at once)."""
        return cls(
            subscription_id=sub.pk, member_id=sub.member_id, at=at, kind=kind, status=sub.status, tier_id=sub.tier_id,
            billing_period=sub.billing_period, current_period_start=sub.current_period_start,
            current_period_end=sub.current_period_end, cancel_at_period_end=sub.cancel_at_period_end,
            canceled_at=sub.canceled_at, paused_until=sub.paused_until,
        )


# --------------------------------------------------------------------------------------------------------------
# Catalogue


class Topic(models.Model):
    """A catalogue topic: Course.topic holds the slug (a stable code); the name is translated."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(_("name"), max_length=80)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


def course_cover_path(instance: Course, filename: str) -> str:
    return f"covers/{instance.slug or 'course'}/{filename}"


class Course(models.Model):
    class Level(models.TextChoices):
        BEGINNER = "beginner", _("Beginner")
        INTERMEDIATE = "intermediate", _("Intermediate")
        ADVANCED = "advanced", _("Advanced")

    title = models.CharField(_("title"), max_length=200)
    title_zh = models.CharField(_("Chinese title"), max_length=200, blank=True)
    slug = models.SlugField(max_length=200, unique=True)
    summary = models.CharField(_("summary"), max_length=300, blank=True)
    description = models.TextField(_("description"), blank=True)
    audience = models.TextField(_("who it is for"), blank=True)
    instructor = models.CharField(_("instructor"), max_length=120, blank=True)
    topic = models.CharField(_("topic"), max_length=60, blank=True, db_index=True)
    cover = models.ImageField(_("cover image"), upload_to=course_cover_path, blank=True,
                              help_text=_("Shown on course cards, 16:9. Without one a generated cover is shown."))
    tags = models.JSONField(_("tags"), default=list, blank=True)
    level = models.CharField(_("level"), max_length=20, choices=Level.choices, default=Level.BEGINNER)
    price = models.DecimalField(_("price"), max_digits=10, decimal_places=2, default=ZERO)
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.CNY)
    is_published = models.BooleanField(_("published"), default=False, db_index=True)
    published_at = models.DateTimeField(null=True, blank=True)
    # A course that only exists to book imported orders without a product id; never shown in the catalogue.
    is_generic = models.BooleanField(default=False)
    external_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["title"]
        constraints = [models.CheckConstraint(condition=Q(price__gte=0), name="course_price_not_negative")]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("members:course_detail", kwargs={"slug": self.slug})

    def display_title(self, language: str | None = None) -> str:
        # title_zh_hans is the translated column (modeltranslation, members/translation.py); title_zh is the
        # older API field, still honoured for rows written through it.
        if language and language.startswith("zh"):
            return getattr(self, "title_zh_hans", "") or self.title_zh or self.title_en_or_title
        return self.title_en_or_title

    @property
    def chinese_title(self) -> str:
        """The Chinese title, or "" when there is none (the API's `title_zh`; pages fall back to English)."""
        return getattr(self, "title_zh_hans", "") or self.title_zh or ""

    @property
    def title_en_or_title(self) -> str:
        return getattr(self, "title_en", "") or self.__dict__.get("title") or ""


class LessonMediaKind(models.TextChoices):
    NONE = "none", _("Text only")
    VIDEO = "video", _("Video")
    AUDIO = "audio", _("Audio")


class Lesson(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="lessons", db_index=False)
    position = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    duration_minutes = models.PositiveIntegerField(default=10)
    is_preview = models.BooleanField(default=False, help_text=_("Visible without buying the course."))
    # Rich lessons (members/learning/): media, drip schedule. Attachments, quiz: LessonAttachment, Quiz below.
    media_kind = models.CharField(_("media"), max_length=10, choices=LessonMediaKind.choices, default=LessonMediaKind.NONE)
    media_file = models.FileField(_("media file"), upload_to="lessons/media/", storage=private_media_storage, blank=True,
                                  help_text=_("A video (WebM, MP4) or audio file (MP3, Ogg, WAV)."))
    media_url = models.URLField(_("HLS stream URL"), max_length=500, blank=True,
                                help_text=_("An external HLS (.m3u8) address, used when no file is uploaded."))
    drip_days = models.PositiveIntegerField(_("unlocks after (days)"), default=0,
                                            help_text=_("Days after enrolment before this lesson opens; 0 opens it at once."))

    class Meta:
        ordering = ["course", "position"]
        constraints = [models.UniqueConstraint(fields=["course", "position"], name="unique_lesson_position")]

    def __str__(self) -> str:
        return f"{self.position}. {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("learning:lesson_detail", kwargs={"slug": self.course.slug, "position": self.position})


class Enrollment(models.Model):
    class Source(models.TextChoices):
        PURCHASE = "purchase", _("Purchase")
        MEMBERSHIP = "membership", _("Membership")
        GIFT = "gift", _("Gift")
        FREE = "free", _("Free")

    member = models.ForeignKey(User, on_delete=models.CASCADE, related_name="enrollments", db_index=False)
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="enrollments")
    source = models.CharField(max_length=20, choices=Source.choices)
    enrolled_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "course"], name="one_enrollment_per_member_course")]
        indexes = [models.Index(fields=["member", "last_activity_at"], name="enrollment_member_activity")]

    def __str__(self) -> str:
        return f"{self.member} → {self.course}"


class LessonProgress(models.Model):
    member = models.ForeignKey(User, on_delete=models.CASCADE, related_name="lesson_progress", db_index=False)
    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="progress")
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Where the player stopped (resumed on return) and how much was really played, both in whole seconds.
    position_seconds = models.PositiveIntegerField(default=0)
    seconds_watched = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "lesson progress"
        constraints = [models.UniqueConstraint(fields=["member", "lesson"], name="one_progress_per_member_lesson")]
        indexes = [models.Index(fields=["member", "completed_at"], name="progress_member_completed")]

    def __str__(self) -> str:
        return f"{self.member} · {self.lesson}"


# --------------------------------------------------------------------------------------------------------------
# Coupons and orders


class Coupon(models.Model):
    class DiscountType(models.TextChoices):
        PERCENT = "percent", _("Percent off")
        FIXED = "fixed", _("Fixed amount off")

    class AppliesTo(models.TextChoices):
        ALL = "all", _("Everything")
        TIERS = "tiers", _("Memberships")
        COURSES = "courses", _("Courses")

    class Source(models.TextChoices):
        MANUAL = "manual", _("Manual")
        BULK = "bulk", _("Bulk generated")
        CAMPAIGN = "campaign", _("Campaign")
        RETENTION = "retention", _("Save offer")
        REFERRAL = "referral", _("Referral")

    code = models.CharField(_("code"), max_length=40, unique=True)
    description = models.CharField(max_length=200, blank=True)
    discount_type = models.CharField(max_length=10, choices=DiscountType.choices, default=DiscountType.PERCENT)
    percent_off = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("100"))],
    )
    amount_off = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.CNY)
    applies_to = models.CharField(max_length=10, choices=AppliesTo.choices, default=AppliesTo.ALL)
    courses = models.ManyToManyField(Course, blank=True, related_name="coupons")
    tiers = models.ManyToManyField(MembershipTier, blank=True, related_name="coupons")
    valid_from = models.DateTimeField(default=timezone.now)
    valid_until = models.DateTimeField(null=True, blank=True)
    max_redemptions = models.PositiveIntegerField(null=True, blank=True, help_text=_("Empty means unlimited."))
    max_per_member = models.PositiveIntegerField(default=1)
    times_redeemed = models.PositiveIntegerField(default=0, editable=False)
    assigned_member = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="assigned_coupons"
    )
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.MANUAL)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(discount_type="percent") & Q(percent_off__isnull=False))
                | (Q(discount_type="fixed") & Q(amount_off__isnull=False) & Q(amount_off__gt=0)),
                name="coupon_discount_matches_type",
            ),
            models.CheckConstraint(
                condition=Q(max_redemptions__isnull=True) | Q(times_redeemed__lte=models.F("max_redemptions")),
                name="coupon_not_over_redeemed",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def value_label(self) -> str:
        if self.discount_type == self.DiscountType.PERCENT:
            return f"{self.percent_off.normalize():f}%" if self.percent_off is not None else ""
        return f"{self.amount_off} {self.currency}"

    def is_within_window(self, when: datetime | None = None) -> bool:
        when = when or timezone.now()
        return self.valid_from <= when and (self.valid_until is None or when < self.valid_until)


class Order(models.Model):
    """The purchase ledger every repurchase and renewal figure comes from."""

    class Kind(models.TextChoices):
        COURSE = "course", _("Course")
        SUBSCRIPTION = "subscription", _("Membership period")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Failed")
        REFUNDED = "refunded", _("Refunded")

    member = models.ForeignKey(User, on_delete=models.PROTECT, related_name="orders", db_index=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    course = models.ForeignKey(Course, null=True, blank=True, on_delete=models.PROTECT, related_name="orders")
    tier = models.ForeignKey(MembershipTier, null=True, blank=True, on_delete=models.PROTECT, related_name="orders")
    billing_period = models.CharField(max_length=10, choices=BillingPeriod.choices, blank=True)
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
    )
    is_renewal = models.BooleanField(default=False)
    list_price = models.DecimalField(max_digits=10, decimal_places=2)
    discount = models.DecimalField(max_digits=10, decimal_places=2, default=ZERO)
    amount_paid = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.CNY)
    quantity = models.PositiveIntegerField(default=1)
    coupon = models.ForeignKey(Coupon, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True, db_index=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=40, blank=True)
    provider_reference = models.CharField(max_length=120, blank=True)
    # The platform's own id for orders imported from another system's history.
    external_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    # Membership orders: the start of the period this order pays for (a tier upgrade: the period it prorates).
    period_start = models.DateTimeField(null=True, blank=True)
    # Receipt bookkeeping (members/commerce/receipts.py): the task claims the order (claimed_at) before it sends and
    # stamps sent_at after, so a redelivered or retried task never sends a second receipt.
    receipt_claimed_at = models.DateTimeField(null=True, blank=True)
    receipt_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One open (pending or paid) order per member and course for orders placed here: two concurrent
            # purchases cannot both reserve, so at most one reaches the provider. Imported history (external_id)
            # keeps whatever the other platform recorded.
            models.UniqueConstraint(
                fields=["member", "course"],
                condition=Q(kind="course", status__in=["pending", "paid"], external_id__isnull=True),
                name="one_open_course_order_per_member",
            ),
            # One open order per membership period and tier: two concurrent "Renew now" (or the hourly job racing
            # a click) cannot both charge for the same period. An upgrade's prorated order names the new tier, so
            # it sits beside the period's own order.
            models.UniqueConstraint(
                fields=["subscription", "period_start", "tier"],
                condition=Q(status__in=["pending", "paid"], subscription__isnull=False, period_start__isnull=False),
                name="one_open_order_per_subscription_period",
            ),
            models.CheckConstraint(condition=Q(amount_paid__gte=0), name="order_amount_not_negative"),
            models.CheckConstraint(condition=Q(discount__gte=0), name="order_discount_not_negative"),
            models.CheckConstraint(
                condition=(Q(kind="course") & Q(course__isnull=False)) | (Q(kind="subscription") & Q(tier__isnull=False)),
                name="order_item_matches_kind",
            ),
            models.CheckConstraint(
                condition=~Q(status="paid") | Q(paid_at__isnull=False), name="paid_order_has_paid_at"
            ),
        ]
        indexes = [
            models.Index(fields=["member", "paid_at"], name="order_member_paid_at"),
            models.Index(fields=["status", "paid_at"], name="order_status_paid_at"),
            # The staff reports' buyers statement (analytics/reports/buyers.py) reads every paid course order in
            # member order; this covering partial index is read without touching the table or sorting.
            models.Index(
                fields=["member", "paid_at"], include=["course", "amount_paid"],
                condition=Q(status="paid", kind="course"), name="order_paid_course_member",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.item_title} · {self.amount_paid} {self.currency} ({self.get_status_display()})"

    def get_absolute_url(self) -> str:
        return reverse("members:order_detail", kwargs={"pk": self.pk})

    @property
    def item_title(self) -> str:
        if self.kind == self.Kind.COURSE and self.course_id:
            return self.course.title
        if self.tier_id:
            return f"{self.tier.name} ({self.get_billing_period_display()})"
        return "—"


class CouponRedemption(models.Model):
    coupon = models.ForeignKey(Coupon, on_delete=models.CASCADE, related_name="redemptions", db_index=False)
    member = models.ForeignKey(User, on_delete=models.CASCADE, related_name="coupon_redemptions")
    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="redemption")
    redeemed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["coupon", "member"], name="redemption_coupon_member")]

    def __str__(self) -> str:
        return f"{self.coupon} by {self.member}"


# --------------------------------------------------------------------------------------------------------------
# Reviews, referrals and audit (issue 8)


class Review(models.Model):
    """A member's rating (1–5) of a course they are enrolled in, with an optional written review. One per course."""

    member = models.ForeignKey(User, on_delete=models.CASCADE, related_name="reviews", db_index=False)
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="reviews", db_index=False)
    rating = models.PositiveSmallIntegerField(
        _("rating"), validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    body = models.TextField(_("review"), blank=True)
    is_hidden = models.BooleanField(_("hidden by staff"), default=False)
    # Denormalised from ReviewHelpful so "most helpful first" is an index scan, kept in step by a conditional UPDATE.
    helpful_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-helpful_count", "-created_at"]
        constraints = [
            # Two concurrent submits from the same member: the second INSERT fails and becomes an update.
            models.UniqueConstraint(fields=["member", "course"], name="one_review_per_member_course"),
            models.CheckConstraint(condition=Q(rating__gte=1) & Q(rating__lte=5), name="review_rating_1_to_5"),
        ]
        indexes = [models.Index(fields=["course", "is_hidden", "-helpful_count"], name="review_course_helpful")]

    def __str__(self) -> str:
        return f"{self.member} · {self.course} · {self.rating}★"


class ReviewHelpful(models.Model):
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="helpful_marks", db_index=False)
    member = models.ForeignKey(User, on_delete=models.CASCADE, related_name="helpful_marks")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["review", "member"], name="one_helpful_mark_per_member")]

    def __str__(self) -> str:
        return f"{self.member} found review {self.review_id} helpful"


class ReferralProgram(models.Model):
    """The referral terms an admin sets. The newest active row is the one in force."""

    class RewardKind(models.TextChoices):
        PERCENT = "percent", _("Percent-off coupon")
        CREDIT = "credit", _("Credit (fixed amount coupon)")

    name = models.CharField(max_length=120, default="Invite a friend")
    friend_percent_off = models.DecimalField(
        _("friend's welcome discount %"), max_digits=5, decimal_places=2, default=Decimal("20.00"),
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("100"))],
    )
    friend_coupon_valid_days = models.PositiveIntegerField(default=30)
    reward_kind = models.CharField(max_length=10, choices=RewardKind.choices, default=RewardKind.PERCENT)
    reward_percent_off = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, default=Decimal("25.00"),
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("100"))],
    )
    reward_amount = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    reward_currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.CNY)
    reward_valid_days = models.PositiveIntegerField(default=90)
    refund_window_days = models.PositiveIntegerField(_("refund window (days)"), default=14)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(reward_kind="percent") & Q(reward_percent_off__isnull=False))
                | (Q(reward_kind="credit") & Q(reward_amount__isnull=False) & Q(reward_amount__gt=0)),
                name="referral_reward_matches_kind",
            )
        ]

    def __str__(self) -> str:
        return self.name


class ReferralCode(models.Model):
    """A member's personal invite code; kept apart from User so the account table stays untouched."""

    member = models.OneToOneField(User, on_delete=models.CASCADE, related_name="referral_code")
    code = models.CharField(max_length=20, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.code


class Referral(models.Model):
    class Status(models.TextChoices):
        SIGNED_UP = "signed_up", _("Signed up")
        QUALIFIED = "qualified", _("Paid, in refund window")
        REWARDED = "rewarded", _("Rewarded")
        REJECTED = "rejected", _("Rejected")

    referrer = models.ForeignKey(User, on_delete=models.CASCADE, related_name="referrals_made")
    # A member is referred at most once: the unique one-to-one refuses a second attribution.
    referred = models.OneToOneField(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="referral_received"
    )
    code = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SIGNED_UP)
    rejection_reason = models.CharField(max_length=200, blank=True)
    welcome_coupon = models.ForeignKey(Coupon, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    first_order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Exactly one reward: the coupon is a one-to-one, and the grant flips qualified→rewarded in one conditional UPDATE.
    reward_coupon = models.OneToOneField(
        Coupon, null=True, blank=True, on_delete=models.SET_NULL, related_name="referral_reward"
    )
    created_at = models.DateTimeField(default=timezone.now)
    qualified_at = models.DateTimeField(null=True, blank=True)
    rewarded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="referral_status_created")]

    def __str__(self) -> str:
        return f"{self.referrer_id} → {self.referred_id} ({self.status})"


class AuditLog(models.Model):
    """Who did what to whose data. target_member_id is a plain integer so the row outlives anonymisation."""

    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=60, db_index=True)
    target_member_id = models.PositiveIntegerField(null=True, blank=True, db_index=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.action} on {self.target_member_id} by {self.actor_id}"


# --------------------------------------------------------------------------------------------------------------
# Money operations: idempotency and save-offer acceptances (issue 13)


class IdempotencyRecord(models.Model):
    """One row per (member, operation, client key): the first request's fingerprint and, once it finished, its result.

    Stripe's model: a retried request with the same key gets the first result back instead of a second charge; the
    same key with a different payload is refused (409). The unique constraint is what makes two concurrent first
    requests impossible: the loser's INSERT waits on the winner's row, then sees it.
    """

    class State(models.TextChoices):
        STARTED = "started", _("Started")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    member = models.ForeignKey(User, on_delete=models.CASCADE, related_name="idempotency_records", db_index=False)
    operation = models.CharField(max_length=40)
    key = models.CharField(max_length=255)
    # sha256 of the operation's arguments (what was bought, at which price inputs), not of the raw request.
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=State.choices, default=State.STARTED)
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    subscription = models.ForeignKey(Subscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    coupon = models.ForeignKey(Coupon, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "operation", "key"], name="one_idempotency_key_per_operation"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]

    def __str__(self) -> str:
        return f"{self.operation} {self.key} ({self.state})"


class RetentionOfferAcceptance(models.Model):
    """A member took a save offer instead of cancelling. One per subscription and billing period: the database
    refuses a second, so repeated or concurrent accepts cannot mint a second coupon or pause."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="offer_acceptances", db_index=False)
    member = models.ForeignKey(User, on_delete=models.CASCADE, related_name="offer_acceptances")
    offer = models.ForeignKey(RetentionOffer, null=True, on_delete=models.SET_NULL, related_name="acceptances")
    period_start = models.DateTimeField()
    reason = models.CharField(max_length=30, choices=Subscription.CancellationReason.choices, blank=True)
    coupon = models.ForeignKey(Coupon, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    accepted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscription", "period_start"], name="one_offer_accept_per_period"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} accepted {self.offer_id} for {self.period_start:%Y-%m-%d}"
# Rich lessons: attachments, quizzes, certificates (services in members/learning/)


class LessonAttachment(models.Model):
    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="attachments")
    title = models.CharField(_("title"), max_length=200)
    file = models.FileField(_("file"), upload_to="lessons/attachments/", storage=private_media_storage)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.title

    @property
    def filename(self) -> str:
        return self.file.name.rsplit("/", 1)[-1]


class Quiz(models.Model):
    lesson = models.OneToOneField(Lesson, on_delete=models.CASCADE, related_name="quiz")
    pass_mark = models.PositiveSmallIntegerField(
        _("pass mark (%)"), default=60, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )

    class Meta:
        verbose_name_plural = "quizzes"

    def __str__(self) -> str:
        return f"Quiz · {self.lesson}"


class QuizQuestion(models.Model):
    quiz = models.ForeignKey(Quiz, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveIntegerField(default=0)
    text = models.CharField(_("question"), max_length=300)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.text


class QuizChoice(models.Model):
    question = models.ForeignKey(QuizQuestion, on_delete=models.CASCADE, related_name="choices")
    text = models.CharField(_("answer"), max_length=200)
    is_correct = models.BooleanField(_("correct"), default=False)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.text


class QuizAttempt(models.Model):
    member = models.ForeignKey(User, on_delete=models.CASCADE, related_name="quiz_attempts", db_index=False)
    quiz = models.ForeignKey(Quiz, on_delete=models.CASCADE, related_name="attempts")
    correct = models.PositiveIntegerField()
    total = models.PositiveIntegerField()
    passed = models.BooleanField()
    answers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["member", "quiz", "passed"], name="quizattempt_member_quiz")]

    def __str__(self) -> str:
        return f"{self.member_id} · {self.quiz_id}: {self.correct}/{self.total}"

    @property
    def percent(self) -> int:
        return round(100 * self.correct / self.total) if self.total else 0


class Certificate(models.Model):
    """Issued once per member and course when every lesson is done and every quiz passed."""

    member = models.ForeignKey(User, on_delete=models.CASCADE, related_name="certificates", db_index=False)
    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="certificates")
    # Unguessable (token_urlsafe(16): 128 bits): the public verification URL carries it.
    code = models.CharField(max_length=40, unique=True)
    issued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "course"], name="one_certificate_per_member_course")]

    def __str__(self) -> str:
        return f"{self.member} · {self.course}"

    def get_absolute_url(self) -> str:
        return reverse("learning:certificate_verify", kwargs={"code": self.code})
class PaymentNotification(models.Model):
    """One row per provider notification (or status query) that was applied to an order.

    The unique (provider, event_id) is what makes applying a notification idempotent across processes: the same
    notification delivered twice, or a notification racing the member's return page (both resolve to the provider's
    transaction id), inserts one row; the second insert fails and changes nothing.
    """

    provider = models.CharField(max_length=20)
    event_id = models.CharField(max_length=128)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payment_notifications")
    kind = models.CharField(max_length=20, default="paid")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="payment_notification_once"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id} -> order {self.order_id}"


class BillingSequence(models.Model):
    """The last number issued per document kind and year; locked (select_for_update) while a number is taken, so
    numbers are sequential without gaps or duplicates across processes."""

    kind = models.CharField(max_length=20)
    year = models.PositiveIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "year"], name="billing_sequence_kind_year")]

    def __str__(self) -> str:
        return f"{self.kind} {self.year}: {self.last}"


class BillingDocument(models.Model):
    """A numbered invoice for a paid order, or a credit note for its refund (one of each per order at most)."""

    class Kind(models.TextChoices):
        INVOICE = "invoice", _("Invoice")
        CREDIT_NOTE = "credit_note", _("Credit note")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    number = models.CharField(max_length=30, unique=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="billing_documents", db_index=False)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    issued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["issued_at"]
        constraints = [models.UniqueConstraint(fields=["order", "kind"], name="billing_document_once_per_order")]

    def __str__(self) -> str:
        return self.number
