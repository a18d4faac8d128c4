from __future__ import annotations

import csv
import json

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from modeltranslation.admin import TranslationAdmin, TranslationTabularInline

from analytics.tracking import member_events
from members.commerce.services import coupon_save, coupons_generate_bulk
from members.models import (
    Benefit,
    Coupon,
    CouponRedemption,
    Course,
    Enrollment,
    Lesson,
    LessonProgress,
    MembershipTier,
    Order,
    PaymentMethod,
    RetentionOffer,
    Subscription,
    SubscriptionChange,
    Topic,
    User,
)
from members.privacy.admin import delete_member, export_member_data
from members.subscriptions.services import subscription_staff_edit


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    fields = ("tier", "billing_period", "status", "current_period_start", "current_period_end", "cancel_at_period_end", "cancellation_reason")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


class OrderInline(admin.TabularInline):
    model = Order
    fk_name = "member"
    fields = ("created_at", "kind", "course", "tier", "amount_paid", "currency", "coupon", "status", "is_renewal")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("-created_at",)


class AssignedCouponInline(admin.TabularInline):
    model = Coupon
    fk_name = "assigned_member"
    fields = ("code", "discount_type", "percent_off", "amount_off", "valid_until", "times_redeemed", "source")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("-date_joined",)
    actions = [export_member_data, delete_member]  # the member's data: export (zip of JSON), delete (anonymise)
    list_display = ("email", "display_name", "preferred_language", "acquisition_source", "is_staff", "date_joined")
    list_filter = ("is_staff", "is_active", "preferred_language", "acquisition_source", "marketing_opt_in")
    search_fields = ("email", "display_name", "external_id")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Profile"), {"fields": ("display_name", "preferred_language", "time_zone", "country", "marketing_opt_in", "marketing_consent_at",
                                   "acquisition_source", "external_id")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Dates"), {"fields": ("last_login", "date_joined", "anonymized_at")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "display_name", "password1", "password2")}),)
    inlines = [SubscriptionInline, OrderInline, AssignedCouponInline]
    readonly_fields = ("recent_events",)

    def get_fieldsets(self, request: HttpRequest, obj: User | None = None) -> object:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return (*fieldsets, (_("Recent events"), {"fields": ("recent_events",)}))

    @admin.display(description=_("Last 20 events"))
    def recent_events(self, obj: User) -> str:
        # Through analytics.tracking, the one analytics module members may import.
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            ((e.occurred_at.strftime("%Y-%m-%d %H:%M"), e.kind, f"{e.object_type} {e.object_id}".strip(),
              json.dumps(e.properties, ensure_ascii=False)[:120]) for e in member_events(member=obj, limit=20)),
        )
        if not rows:
            return _("No events yet.")
        return format_html('<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>',
                           _("When"), _("Event"), _("Object"), _("Properties"), rows)


# Translated models (members/translation.py): TranslationAdmin puts each field's English and Chinese columns next
# to each other in the form, so an editor sees what is missing.
class BenefitInline(TranslationTabularInline):
    model = Benefit
    extra = 1


@admin.register(MembershipTier)
class MembershipTierAdmin(TranslationAdmin):
    list_display = ("name", "monthly_price", "yearly_price", "currency", "trial_days", "is_public", "is_active", "order")
    list_editable = ("order", "is_public", "is_active")
    list_filter = ("is_public", "is_active", "currency")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [BenefitInline]


class RetentionOfferForm(forms.ModelForm):
    # Ticked reasons instead of a JSON list typed by hand; none ticked means the offer answers any reason.
    reasons = forms.MultipleChoiceField(
        label=_("Reasons"), required=False, widget=forms.CheckboxSelectMultiple,
        choices=[(v, label) for v, label in Subscription.CancellationReason.choices if v != "payment"],
        help_text=_("Show this offer to members who leave for these reasons. None ticked: any reason."),
    )

    class Meta:
        model = RetentionOffer
        fields = ("name", "kind", "percent_off", "pause_days", "headline", "reasons", "tiers", "is_active", "created_at")


@admin.register(RetentionOffer)
class RetentionOfferAdmin(admin.ModelAdmin):
    form = RetentionOfferForm
    list_display = ("name", "kind", "percent_off", "pause_days", "reasons", "is_active")
    list_filter = ("kind", "is_active")
    filter_horizontal = ("tiers",)


class SubscriptionChangeInline(admin.TabularInline):
    """The subscription's ledger, read-only: rows are appended by the services, never edited."""

    model = SubscriptionChange
    fields = ("at", "kind", "status", "tier", "billing_period", "current_period_start", "current_period_end",
              "cancel_at_period_end", "canceled_at", "paused_until")
    readonly_fields = fields
    ordering = ("-at", "-id")
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("member", "tier", "billing_period", "status", "current_period_end", "cancel_at_period_end", "renewal_count")
    list_filter = ("status", "billing_period", "tier", "cancel_at_period_end", "cancellation_reason")
    search_fields = ("member__email", "member__display_name")
    raw_id_fields = ("member",)
    date_hierarchy = "started_at"
    list_select_related = ("member", "tier")
    inlines = [SubscriptionChangeInline]

    def save_model(self, request: HttpRequest, obj: Subscription, form: forms.ModelForm, change: bool) -> None:
        subscription_staff_edit(subscription=obj)  # saves and appends the EDITED ledger row in one transaction


class LessonInline(TranslationTabularInline):
    model = Lesson
    extra = 1
    fields = ("position", "title", "duration_minutes", "is_preview", "media_kind", "drip_days")
    show_change_link = True  # media, attachments and the quiz are edited on the lesson's own page


@admin.action(description=_("Publish selected courses"))
def publish_courses(modeladmin: admin.ModelAdmin, request: object, queryset: object) -> None:

    queryset.filter(is_published=False).update(is_published=True, published_at=timezone.now())  # type: ignore[attr-defined]


@admin.action(description=_("Unpublish selected courses"))
def unpublish_courses(modeladmin: admin.ModelAdmin, request: object, queryset: object) -> None:
    queryset.update(is_published=False)  # type: ignore[attr-defined]


@admin.register(Course)
class CourseAdmin(TranslationAdmin):
    list_display = ("title_en", "title_zh_hans", "topic", "level", "price", "currency", "is_published", "instructor")
    list_filter = ("is_published", "level", "topic", "currency")
    search_fields = ("title_en", "title_zh_hans", "title_zh", "summary_en", "summary_zh_hans", "instructor",
                     "external_id")
    # title_zh is the older single Chinese-title field; the form edits title_zh_hans next to title_en instead.
    exclude = ("title_zh",)
    prepopulated_fields = {"slug": ("title",)}
    inlines = [LessonInline]
    actions = [publish_courses, unpublish_courses]


@admin.register(Topic)
class TopicAdmin(TranslationAdmin):
    list_display = ("slug", "name_en", "name_zh_hans")
    search_fields = ("slug", "name_en", "name_zh_hans")


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ("member", "course", "source", "enrolled_at", "completed_at")
    list_filter = ("source",)
    search_fields = ("member__email", "course__title")
    raw_id_fields = ("member", "course")
    list_select_related = ("member", "course")


@admin.register(LessonProgress)
class LessonProgressAdmin(admin.ModelAdmin):
    list_display = ("member", "lesson", "started_at", "completed_at")
    raw_id_fields = ("member", "lesson")
    list_select_related = ("member", "lesson", "lesson__course")
    search_fields = ("member__email",)


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("id", "member", "kind", "item", "amount_paid", "currency", "status", "is_renewal", "created_at", "paid_at")
    list_filter = ("status", "kind", "is_renewal", "currency")
    search_fields = ("member__email", "external_id", "provider_reference", "coupon__code")
    raw_id_fields = ("member", "course", "tier", "subscription", "coupon")
    date_hierarchy = "created_at"
    list_select_related = ("member", "course", "tier")

    @admin.display(description=_("item"))
    def item(self, obj: Order) -> str:
        return obj.item_title

    # The ledger is written by members.commerce services only (checkout, renewal, refund, import): staff read it here.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(CouponRedemption)
class CouponRedemptionAdmin(admin.ModelAdmin):
    list_display = ("coupon", "member", "order", "redeemed_at")
    raw_id_fields = ("coupon", "member", "order")
    search_fields = ("coupon__code", "member__email")
    list_select_related = ("coupon", "member", "order")


class GenerateCodesForm(forms.Form):
    count = forms.IntegerField(label=_("How many codes"), min_value=1, max_value=5000, initial=100)
    prefix = forms.CharField(label=_("Code prefix"), max_length=12, initial="GIFT")
    valid_days = forms.IntegerField(label=_("Valid for (days)"), min_value=1, max_value=3650, initial=30)


@admin.action(description=_("Generate N single-use codes like the selected coupon"))
def generate_codes(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Coupon]) -> HttpResponse | None:
    """Intermediate form: the first selected coupon is the template for the discount; the service makes the codes."""
    template = queryset.order_by("pk").first()
    form = GenerateCodesForm(request.POST if "apply" in request.POST else None)
    if form.is_valid() and template is not None:
        coupons = coupons_generate_bulk(
            count=form.cleaned_data["count"], prefix=form.cleaned_data["prefix"],
            percent_off=template.percent_off if template.discount_type == Coupon.DiscountType.PERCENT else None,
            amount_off=template.amount_off if template.discount_type == Coupon.DiscountType.FIXED else None,
            applies_to=template.applies_to, valid_days=form.cleaned_data["valid_days"],
        )
        modeladmin.message_user(request, _("%(n)d single-use codes generated.") % {"n": len(coupons)}, messages.SUCCESS)
        return None
    return render(request, "admin/members/coupon/generate_codes.html", {
        **modeladmin.admin_site.each_context(request), "title": _("Generate single-use codes"), "form": form,
        "template_coupon": template, "queryset": queryset, "opts": modeladmin.model._meta,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
    })


@admin.action(description=_("Export selected coupons as CSV"))
def export_coupons_csv(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Coupon]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="coupons.csv"'
    writer = csv.writer(response)
    writer.writerow(["code", "discount_type", "percent_off", "amount_off", "currency", "applies_to", "valid_from",
                     "valid_until", "max_redemptions", "times_redeemed", "assigned_member", "source", "is_active"])
    for c in queryset.select_related("assigned_member").order_by("code").iterator(chunk_size=1000):
        writer.writerow([c.code, c.discount_type, c.percent_off or "", c.amount_off or "", c.currency, c.applies_to,
                         c.valid_from.isoformat(), c.valid_until.isoformat() if c.valid_until else "",
                         c.max_redemptions or "", c.times_redeemed,
                         c.assigned_member.email if c.assigned_member else "", c.source, c.is_active])
    return response


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    list_display = ("code", "value_label", "applies_to", "valid_from", "valid_until", "times_redeemed", "max_redemptions", "assigned_member", "source", "is_active")
    list_filter = ("source", "applies_to", "discount_type", "is_active")
    search_fields = ("code", "description", "assigned_member__email")
    raw_id_fields = ("assigned_member",)
    filter_horizontal = ("courses", "tiers")
    readonly_fields = ("times_redeemed",)
    list_select_related = ("assigned_member",)
    actions = [generate_codes, export_coupons_csv]

    def save_model(self, request: HttpRequest, obj: Coupon, form: forms.ModelForm, change: bool) -> None:
        coupon_save(coupon=obj)  # courses/tiers (many-to-many) follow in save_related


@admin.register(PaymentMethod)
class PaymentMethodAdmin(admin.ModelAdmin):
    list_display = ("member", "label", "provider", "is_default", "created_at")
    raw_id_fields = ("member",)
    search_fields = ("member__email",)

    # Provider references are set by members.commerce.services.payment_method_set (the member's own checkout):
    # staff read them here, never type them in.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


# The domain packages' admin modules register their models on import.
# The domain packages' admin modules register their models (and the member data actions) on import.
# Rich lessons (issue 18.3): lesson media, attachments, drip days, quizzes; certificates read-only.
from members.learning import admin as learning_admin  # noqa: E402, F401
from members.privacy import admin as privacy_admin  # noqa: E402, F401
from members.referrals import admin as referrals_admin  # noqa: E402, F401
from members.reviews import admin as reviews_admin  # noqa: E402, F401
