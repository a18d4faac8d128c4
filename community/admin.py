from __future__ import annotations

from django.contrib import admin

from community.models import Comment, Follow, Notification, Post, Reaction


class CommentInline(admin.TabularInline):
    model = Comment
    fields = ("author", "parent", "body", "is_hidden", "created_at")
    raw_id_fields = ("author", "parent")
    extra = 0


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ("title", "author", "course", "is_pinned", "is_hidden", "created_at")
    list_filter = ("is_pinned", "is_hidden", "course")
    search_fields = ("title", "body", "author__email")
    raw_id_fields = ("author", "course")
    list_select_related = ("author", "course")
    inlines = [CommentInline]
    actions = ["pin", "unpin", "hide", "unhide"]

    @admin.action(description="Pin selected posts")
    def pin(self, request: object, queryset: object) -> None:
        queryset.update(is_pinned=True)  # type: ignore[attr-defined]

    @admin.action(description="Unpin selected posts")
    def unpin(self, request: object, queryset: object) -> None:
        queryset.update(is_pinned=False)  # type: ignore[attr-defined]

    @admin.action(description="Hide selected posts")
    def hide(self, request: object, queryset: object) -> None:
        queryset.update(is_hidden=True)  # type: ignore[attr-defined]

    @admin.action(description="Unhide selected posts")
    def unhide(self, request: object, queryset: object) -> None:
        queryset.update(is_hidden=False)  # type: ignore[attr-defined]


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ("post", "author", "parent", "is_hidden", "created_at")
    list_filter = ("is_hidden",)
    search_fields = ("body", "author__email")
    raw_id_fields = ("post", "author", "parent")
    list_select_related = ("post", "author")


@admin.register(Reaction)
class ReactionAdmin(admin.ModelAdmin):
    list_display = ("member", "kind", "post", "comment", "created_at")
    list_filter = ("kind",)
    raw_id_fields = ("member", "post", "comment")


@admin.register(Follow)
class FollowAdmin(admin.ModelAdmin):
    list_display = ("follower", "followed", "created_at")
    raw_id_fields = ("follower", "followed")


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("recipient", "actor", "verb", "text", "created_at", "read_at")
    list_filter = ("verb",)
    search_fields = ("recipient__email", "text")
    raw_id_fields = ("recipient", "actor")
    list_select_related = ("recipient", "actor")
