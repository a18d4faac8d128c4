"""Admin for reviews, referrals and the audit log (issue 8), plus the member admin's data actions.

Imported at the end of members/admin.py. The two member actions are attached to the already-registered UserAdmin
here so members/admin.py only needs that one import line.
"""
from __future__ import annotations

import io
import json
import zipfile

from django.contrib import admin, messages
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from members import services_levers
from members.models import (
    AuditLog,
    Referral,
    ReferralCode,
    ReferralProgram,
    Review,
    User,
)


@admin.action(description=_("Export data (zip of JSON)"), permissions=["view"])
def export_member_data(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[User]) -> HttpResponse:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member in queryset:
            data = services_levers.member_export(member=member, actor=request.user)
            archive.writestr(f"member-{member.pk}.json", json.dumps(data, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder))
    response = HttpResponse(buffer.getvalue(), content_type="application/zip")
    response["Content-Disposition"] = 'attachment; filename="member-export.zip"'
    return response


@admin.action(description=_("Delete (anonymise) member"), permissions=["change"])
def delete_member(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[User]) -> HttpResponse | None:
    targets = list(queryset.filter(anonymized_at__isnull=True).exclude(pk=request.user.pk))
    if request.POST.get("confirm") != "yes":
        return TemplateResponse(request, "members/levers/admin_delete_confirm.html", {
            **modeladmin.admin_site.each_context(request), "title": _("Delete (anonymise) members"),
            "targets": targets, "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME, "opts": modeladmin.model._meta,
        })
    for member in targets:
        services_levers.member_delete(member=member, actor=request.user)
    modeladmin.message_user(request, _("%(n)d member(s) anonymised.") % {"n": len(targets)}, messages.SUCCESS)
    return None


_member_admin = admin.site._registry.get(User)
if _member_admin is not None:
    type(_member_admin).actions = [*(type(_member_admin).actions or []), export_member_data, delete_member]


@admin.action(description=_("Hide selected reviews"))
def hide_reviews(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Review]) -> None:
    for review in queryset:
        services_levers.review_hide(review=review, actor=request.user, hidden=True)


@admin.action(description=_("Show selected reviews again"))
def show_reviews(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Review]) -> None:
    for review in queryset:
        services_levers.review_hide(review=review, actor=request.user, hidden=False)


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ("course", "member", "rating", "is_hidden", "helpful_count", "updated_at")
    list_filter = ("is_hidden", "rating")
    search_fields = ("course__title", "member__email", "body")
    list_select_related = ("course", "member")
    raw_id_fields = ("member", "course")
    readonly_fields = ("member", "course", "rating", "body", "helpful_count", "created_at", "updated_at", "is_hidden")
    actions = (hide_reviews, show_reviews)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ReferralProgram)
class ReferralProgramAdmin(admin.ModelAdmin):
    list_display = ("name", "is_active", "friend_percent_off", "reward_kind", "reward_percent_off", "reward_amount",
                    "refund_window_days", "created_at")
    list_filter = ("is_active", "reward_kind")


@admin.register(Referral)
class ReferralAdmin(admin.ModelAdmin):
    list_display = ("referrer", "referred", "status", "rejection_reason", "created_at", "rewarded_at", "profile_link")
    list_filter = ("status",)
    search_fields = ("referrer__email", "referred__email", "code")
    list_select_related = ("referrer", "referred")
    readonly_fields = ("referrer", "referred", "code", "status", "rejection_reason", "welcome_coupon", "first_order",
                       "reward_coupon", "created_at", "qualified_at", "rewarded_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("Profile"))
    def profile_link(self, obj: Referral) -> str:
        if not obj.referred_id:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("profile:member", args=[obj.referred_id]), _("profile"))


@admin.register(ReferralCode)
class ReferralCodeAdmin(admin.ModelAdmin):
    list_display = ("code", "member", "created_at")
    search_fields = ("code", "member__email")
    raw_id_fields = ("member",)


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "action", "target_member_id", "actor")
    list_filter = ("action",)
    search_fields = ("=target_member_id", "action")
    list_select_related = ("actor",)
    readonly_fields = ("created_at", "action", "target_member_id", "actor", "details")

    # An audit log is append-only: nobody edits or deletes history, including superusers.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditLog | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditLog | None = None) -> bool:
        return False
