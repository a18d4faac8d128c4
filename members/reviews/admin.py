"""Review moderation in the admin (hide/show through the review service)."""
from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from members.models import (
    Review,
)
from members.reviews import services


@admin.action(description=_("Hide selected reviews"))
def hide_reviews(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Review]) -> None:
    for review in queryset:
        services.review_hide(review=review, actor=request.user, hidden=True)


@admin.action(description=_("Show selected reviews again"))
def show_reviews(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Review]) -> None:
    for review in queryset:
        services.review_hide(review=review, actor=request.user, hidden=False)


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
