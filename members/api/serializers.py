"""Input and output serializers for the members API. Inputs validate shape only; services own the rules.

Outputs are read-only views of model rows; each endpoint names its own pair so a change to one response never
leaks into another.
"""
from __future__ import annotations

import functools
import zoneinfo

from rest_framework import serializers

from members.models import (
    Benefit,
    BillingPeriod,
    Coupon,
    Course,
    Enrollment,
    Language,
    Lesson,
    MembershipTier,
    Order,
    Subscription,
    User,
)

# --------------------------------------------------------------------------------------------------------------
# Catalogue


class BenefitOutput(serializers.ModelSerializer):
    class Meta:
        model = Benefit
        fields = ["kind", "value", "description"]


class TierOutput(serializers.ModelSerializer):
    benefits = BenefitOutput(many=True, read_only=True)

    class Meta:
        model = MembershipTier
        fields = ["id", "slug", "name", "description", "monthly_price", "yearly_price", "currency", "trial_days",
                  "benefits"]


class CourseListOutput(serializers.ModelSerializer):
    lesson_count = serializers.IntegerField(read_only=True)
    title_zh = serializers.CharField(source="chinese_title", read_only=True)

    class Meta:
        model = Course
        fields = ["id", "slug", "title", "title_zh", "summary", "instructor", "topic", "tags", "level", "price",
                  "currency", "published_at", "lesson_count"]


class LessonOutput(serializers.ModelSerializer):
    class Meta:
        model = Lesson
        fields = ["id", "position", "title", "duration_minutes", "is_preview", "media_kind", "drip_days"]


class CourseDetailOutput(serializers.ModelSerializer):
    lessons = LessonOutput(many=True, read_only=True)
    title_zh = serializers.CharField(source="chinese_title", read_only=True)

    class Meta:
        model = Course
        fields = ["id", "slug", "title", "title_zh", "summary", "description", "audience", "instructor", "topic",
                  "tags", "level", "price", "currency", "published_at", "lessons"]


# --------------------------------------------------------------------------------------------------------------
# Me: profile, tokens


class ProfileOutput(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "display_name", "preferred_language", "time_zone", "marketing_opt_in", "country",
                  "date_joined", "is_staff"]


class ProfileUpdateInput(serializers.Serializer):
    display_name = serializers.CharField(max_length=120, required=False, allow_blank=True)
    preferred_language = serializers.ChoiceField(choices=Language.choices, required=False)
    time_zone = serializers.CharField(max_length=64, required=False)
    marketing_opt_in = serializers.BooleanField(required=False)

    def validate_time_zone(self, value: str) -> str:
        # Checked against the known names rather than by loading: ZoneInfo() of an arbitrary string can touch the
        # file system (a directory name, a path) and fail in more ways than "not found".
        if value not in _time_zones():
            raise serializers.ValidationError("Unknown time zone.")
        return value


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class TokenCreateInput(serializers.Serializer):
    email = serializers.EmailField(required=False, help_text="Required unless the request is already authenticated.")
    password = serializers.CharField(required=False, write_only=True, style={"input_type": "password"},
                                     help_text="Re-checked even for a logged-in session when given.")


class TokenOutput(serializers.Serializer):
    token = serializers.CharField()
    created = serializers.DateTimeField()


# --------------------------------------------------------------------------------------------------------------
# Membership


class SubscriptionOutput(serializers.ModelSerializer):
    tier = TierOutput(read_only=True)
    scheduled_tier = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True,
                                                  help_text="The tier the next renewal moves to (a downgrade).")
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = Subscription
        fields = ["id", "tier", "billing_period", "status", "is_active", "started_at", "current_period_start",
                  "current_period_end", "trial_end", "cancel_at_period_end", "canceled_at", "cancellation_reason",
                  "grace_until", "scheduled_tier", "scheduled_billing_period"]


class MembershipOutput(serializers.Serializer):
    subscription = SubscriptionOutput(allow_null=True)


class SubscribeInput(serializers.Serializer):
    tier = serializers.SlugField(help_text="Tier slug.")
    period = serializers.ChoiceField(choices=BillingPeriod.choices, default=BillingPeriod.MONTH)
    coupon_code = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    payment_token = serializers.CharField(max_length=120, required=False, allow_blank=True, default="",
                                          help_text="Provider reference; the default payment method when empty.")
    use_trial = serializers.BooleanField(default=True)


class SwitchPeriodInput(serializers.Serializer):
    period = serializers.ChoiceField(choices=BillingPeriod.choices)
    payment_token = serializers.CharField(max_length=120, required=False, allow_blank=True, default="",
                                          help_text="Provider reference; the default payment method when empty.")


class ChangeTierInput(serializers.Serializer):
    tier = serializers.SlugField(help_text="Tier slug.")
    payment_token = serializers.CharField(max_length=120, required=False, allow_blank=True, default="",
                                          help_text="Provider reference; the default payment method when empty.")


class RenewInput(serializers.Serializer):
    payment_token = serializers.CharField(max_length=120, required=False, allow_blank=True, default="",
                                          help_text="Provider reference; the default payment method when empty.")


class CancelInput(serializers.Serializer):
    reason = serializers.ChoiceField(choices=Subscription.CancellationReason.choices)
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


# --------------------------------------------------------------------------------------------------------------
# Orders, coupons, purchases


class OrderOutput(serializers.ModelSerializer):
    item_title = serializers.CharField(read_only=True)
    course = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    tier = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    coupon = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)

    class Meta:
        model = Order
        fields = ["id", "kind", "item_title", "course", "tier", "billing_period", "is_renewal", "list_price",
                  "discount", "amount_paid", "currency", "coupon", "status", "created_at", "paid_at", "refunded_at",
                  "failure_reason"]


class PlanChangeOutput(serializers.Serializer):
    subscription = SubscriptionOutput()
    order = OrderOutput(allow_null=True, help_text="The prorated charge made now; null when nothing was charged.")
    scheduled = serializers.BooleanField(help_text="The change waits for the end of the paid period.")


class CouponOutput(serializers.ModelSerializer):
    value_label = serializers.CharField(read_only=True)

    class Meta:
        model = Coupon
        fields = ["code", "description", "discount_type", "percent_off", "amount_off", "currency", "applies_to",
                  "value_label", "valid_from", "valid_until", "source"]


class PurchaseInput(serializers.Serializer):
    coupon_code = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    payment_token = serializers.CharField(max_length=120, required=False, allow_blank=True, default="",
                                          help_text="Provider reference; the default payment method when empty.")
    provider = serializers.ChoiceField(
        choices=["", "alipay", "wechatpay", "stripe"], required=False, allow_blank=True, default="",
        help_text="Pay at a configured provider instead: the order is created pending and the answer carries the "
        "provider's checkout (open `url`, or show it as a QR code when `kind` is qr). Empty: charge the payment "
        "method now.")


class CheckoutOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["redirect", "qr"])
    url = serializers.CharField()
    return_url = serializers.CharField(help_text="Where the provider sends the member back; shows the order.")


class ProviderPurchaseOutput(serializers.Serializer):
    order = OrderOutput()
    checkout = CheckoutOutput()


class QuoteInput(serializers.Serializer):
    course = serializers.SlugField(required=False, help_text="Course slug (exactly one of course or tier).")
    tier = serializers.SlugField(required=False, help_text="Tier slug (exactly one of course or tier).")
    period = serializers.ChoiceField(choices=BillingPeriod.choices, default=BillingPeriod.MONTH)
    coupon_code = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("course")) == bool(attrs.get("tier")):
            raise serializers.ValidationError("Give exactly one of course or tier.")
        return attrs


class QuoteOutput(serializers.Serializer):
    list_price = serializers.DecimalField(max_digits=10, decimal_places=2)
    member_discount = serializers.DecimalField(max_digits=10, decimal_places=2)
    coupon_discount = serializers.DecimalField(max_digits=10, decimal_places=2)
    discount = serializers.DecimalField(max_digits=10, decimal_places=2)
    total = serializers.DecimalField(max_digits=10, decimal_places=2)
    currency = serializers.CharField()
    coupon_code = serializers.CharField(allow_blank=True)


# --------------------------------------------------------------------------------------------------------------
# Learning


class EnrollmentCourseOutput(serializers.ModelSerializer):
    class Meta:
        model = Course
        fields = ["id", "slug", "title"]


class EnrollmentOutput(serializers.ModelSerializer):
    course = EnrollmentCourseOutput(read_only=True)
    lessons_total = serializers.IntegerField(read_only=True)
    lessons_done = serializers.IntegerField(read_only=True)
    progress_percent = serializers.SerializerMethodField()

    class Meta:
        model = Enrollment
        fields = ["id", "course", "source", "enrolled_at", "completed_at", "last_activity_at", "lessons_total",
                  "lessons_done", "progress_percent"]

    def get_progress_percent(self, obj: Enrollment) -> int:
        total = getattr(obj, "lessons_total", 0)
        return round(100 * getattr(obj, "lessons_done", 0) / total) if total else 0


class LessonProgressOutput(serializers.Serializer):
    lesson = serializers.IntegerField(source="lesson_id")
    course = serializers.IntegerField(source="lesson.course_id")
    started_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)


# --------------------------------------------------------------------------------------------------------------
# More of what a learner does on the site: payment method, save offer, reviews, referrals, lesson views


class PaymentMethodInput(serializers.Serializer):
    token = serializers.CharField(max_length=120, help_text="The provider's opaque reference (never card data).")
    label = serializers.CharField(max_length=80, help_text="What the member sees, e.g. 'Card ending 4242'.")


class PaymentMethodOutput(serializers.Serializer):
    label = serializers.CharField()
    retried = serializers.BooleanField(help_text="A past-due renewal was retried with the new method.")
    recovered = serializers.BooleanField(help_text="That retry succeeded.")
    error = serializers.CharField(allow_blank=True)


class RetentionOfferOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    headline = serializers.CharField(allow_blank=True)
    percent_off = serializers.DecimalField(max_digits=5, decimal_places=2, allow_null=True)
    pause_days = serializers.IntegerField(allow_null=True)


class RetentionOfferSlotOutput(serializers.Serializer):
    offer = RetentionOfferOutput(allow_null=True)


class OfferAcceptInput(serializers.Serializer):
    reason = serializers.ChoiceField(choices=Subscription.CancellationReason.choices, required=False, default="")


class OfferAcceptOutput(serializers.Serializer):
    kind = serializers.CharField()
    coupon_code = serializers.CharField(allow_blank=True, help_text="Discount offers: the next renewal uses it.")
    paused_until = serializers.DateTimeField(allow_null=True, help_text="Pause offers.")


class ReviewAuthorOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ReviewOutput(serializers.Serializer):
    id = serializers.IntegerField()
    member = ReviewAuthorOutput()
    rating = serializers.IntegerField()
    body = serializers.CharField(allow_blank=True)
    helpful_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ReviewInput(serializers.Serializer):
    rating = serializers.IntegerField(min_value=1, max_value=5)
    body = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class HelpfulOutput(serializers.Serializer):
    marked = serializers.BooleanField(help_text="False when this member had already marked it.")
    helpful_count = serializers.IntegerField()


class ReferralRowOutput(serializers.Serializer):
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    rewarded_at = serializers.DateTimeField(allow_null=True)


class ReferralOutput(serializers.Serializer):
    code = serializers.CharField()
    invite_url = serializers.CharField()
    referrals = ReferralRowOutput(many=True)


class MemberExportOutput(serializers.Serializer):
    format = serializers.CharField()
    exported_at = serializers.DateTimeField()
    member = serializers.DictField()
    models = serializers.DictField(child=serializers.ListField(child=serializers.DictField()),
                                   help_text='Every record that refers to me, by model label ("members.Order").')
