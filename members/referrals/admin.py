"""Referral programme, referrals and codes in the admin."""
from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from members.models import (
    Referral,
    ReferralCode,
    ReferralProgram,
)


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
