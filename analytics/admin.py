from __future__ import annotations

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from analytics.models import (
    Campaign,
    CampaignAssignment,
    EngagementScore,
    Event,
    JobRun,
    MessageLog,
    ModelVersion,
    PropensityScore,
    Recommendation,
    RecommendationRun,
    ReminderRule,
    SegmentAssignment,
    SegmentRun,
)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("kind", "member", "object_type", "object_id", "occurred_at", "source")
    list_filter = ("kind", "source")
    search_fields = ("member__email", "kind", "idempotency_key")
    raw_id_fields = ("member",)
    date_hierarchy = "occurred_at"
    list_select_related = ("member",)
    show_full_result_count = False


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ("job", "status", "as_of", "started_at", "finished_at", "rows")
    list_filter = ("job", "status")
    readonly_fields = [f.name for f in JobRun._meta.fields]


@admin.register(EngagementScore)
class EngagementScoreAdmin(admin.ModelAdmin):
    list_display = ("member", "as_of", "score", "weights_source")
    raw_id_fields = ("member",)
    list_select_related = ("member",)
    search_fields = ("member__email",)
    show_full_result_count = False


@admin.register(SegmentRun)
class SegmentRunAdmin(admin.ModelAdmin):
    list_display = ("as_of", "k", "criterion", "created_at")


@admin.register(SegmentAssignment)
class SegmentAssignmentAdmin(admin.ModelAdmin):
    list_display = ("member", "as_of", "label", "cluster")
    list_filter = ("label",)
    raw_id_fields = ("member", "run")
    list_select_related = ("member",)
    search_fields = ("member__email",)
    show_full_result_count = False


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "algorithm", "as_of", "horizon_days", "is_serving", "created_at")
    list_filter = ("kind", "is_serving", "algorithm")


@admin.register(PropensityScore)
class PropensityScoreAdmin(admin.ModelAdmin):
    list_display = ("member", "as_of", "probability", "model_version")
    raw_id_fields = ("member", "model_version")
    list_select_related = ("member", "model_version")
    search_fields = ("member__email",)
    show_full_result_count = False


@admin.register(RecommendationRun)
class RecommendationRunAdmin(admin.ModelAdmin):
    list_display = ("id", "as_of", "k", "is_current", "created_at")


@admin.register(Recommendation)
class RecommendationAdmin(admin.ModelAdmin):
    list_display = ("member", "rank", "course", "score", "reason")
    raw_id_fields = ("member", "course", "run", "reason_course")
    list_select_related = ("member", "course")
    search_fields = ("member__email",)
    show_full_result_count = False


@admin.register(ReminderRule)
class ReminderRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "days_before", "billing_period", "min_churn_risk", "segment", "is_active")
    list_filter = ("billing_period", "is_active")
    list_editable = ("is_active",)


class CampaignAssignmentInline(admin.TabularInline):
    model = CampaignAssignment
    fields = ("member", "group", "assigned_at", "coupon", "converted_at", "revenue")
    readonly_fields = fields
    raw_id_fields = ("member",)
    extra = 0
    can_delete = False
    max_num = 0


@admin.action(description=_("Pause selected campaigns (stops sends at once)"))
def pause_campaigns(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
    from analytics.outreach.campaigns import campaign_set_status

    for campaign in queryset:
        campaign_set_status(campaign=campaign, status=Campaign.Status.PAUSED)


@admin.action(description=_("Activate selected campaigns"))
def activate_campaigns(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
    from analytics.outreach.campaigns import campaign_set_status

    for campaign in queryset:
        campaign_set_status(campaign=campaign, status=Campaign.Status.ACTIVE)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "audience", "holdout_share", "starts_at", "ends_at", "daily_cap")
    list_filter = ("status", "audience")
    search_fields = ("name",)
    actions = (pause_campaigns, activate_campaigns)
    readonly_fields = ("measured_results",)

    @admin.display(description=_("Measured results"))
    def measured_results(self, obj: Campaign) -> str:
        """Treatment vs holdout with the 95% CI (docs/CAMPAIGNS.md). Conversions are refreshed first."""
        if obj.pk is None:
            return "—"
        from analytics.outreach.campaigns import campaign_results, campaign_track_conversions

        campaign_track_conversions(campaign=obj)
        r = campaign_results(obj)
        rows = [
            (_("Members"), r.treatment.n, r.control.n),
            (_("Conversions"), r.treatment.conversions, r.control.conversions),
            (_("Conversion rate"), _pct(r.treatment.rate), _pct(r.control.rate)),
            (_("Revenue"), r.treatment.revenue, r.control.revenue),
            (_("Revenue per member"), r.treatment.revenue_per_member, r.control.revenue_per_member),
        ]
        body = format_html_join("", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>", rows)
        uplift = "—" if r.uplift is None else format_html(
            "{} pp (95% CI {} to {} pp, {}){}", f"{r.uplift * 100:+.1f}", f"{r.ci_low * 100:+.1f}",
            f"{r.ci_high * 100:+.1f}", r.ci_method, " ✔ significant" if r.significant else "",
        )
        summary = [
            (_("Absolute uplift"), uplift),
            (_("Incremental revenue (net of discounts)"), r.incremental_revenue),
            (_("Discounts given"), r.discount_given),
            (_("Coupons issued / redeemed"), f"{r.coupons_issued} / {r.coupons_redeemed}"),
        ]
        extra = format_html_join("", "<tr><th>{}</th><td colspan='2'>{}</td></tr>", summary)
        return format_html(
            "<table class='campaign-results'><thead><tr><th></th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}{}</tbody></table>", _("Treatment"), _("Control (holdout)"), body, extra,
        )


@admin.register(MessageLog)
class MessageLogAdmin(admin.ModelAdmin):
    list_display = ("member", "kind", "subject", "status", "created_at", "sent_at")
    list_filter = ("kind", "status")
    search_fields = ("member__email", "subject", "dedupe_key")
    raw_id_fields = ("member",)
    list_select_related = ("member",)


# The member's admin page shows the subscription history (every state change is an Event). Added from here because
# members never imports analytics models; analytics may depend on members.
SUBSCRIPTION_EVENT_PREFIXES = ("subscription_", "trial_", "payment_", "reminder_sent", "dunning_email_sent")


class MemberSubscriptionEventInline(admin.TabularInline):
    model = Event
    fk_name = "member"
    verbose_name = _("subscription event")
    verbose_name_plural = _("subscription events (renewals, dunning, cancellations)")
    fields = ("occurred_at", "kind", "object_type", "object_id", "properties")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("-occurred_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        match = Q()
        for prefix in SUBSCRIPTION_EVENT_PREFIXES:
            match |= Q(kind__startswith=prefix)
        return super().get_queryset(request).filter(match)


def _add_member_inline() -> None:
    from members.admin import UserAdmin

    if MemberSubscriptionEventInline not in UserAdmin.inlines:
        UserAdmin.inlines = [*UserAdmin.inlines, MemberSubscriptionEventInline]


_add_member_inline()
