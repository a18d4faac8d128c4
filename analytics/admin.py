from __future__ import annotations

from django.contrib import admin

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


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "audience", "holdout_share", "starts_at", "ends_at", "daily_cap")
    list_filter = ("status", "audience")
    search_fields = ("name",)


@admin.register(MessageLog)
class MessageLogAdmin(admin.ModelAdmin):
    list_display = ("member", "kind", "subject", "status", "created_at", "sent_at")
    list_filter = ("kind", "status")
    search_fields = ("member__email", "subject", "dedupe_key")
    raw_id_fields = ("member",)
    list_select_related = ("member",)
