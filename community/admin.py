from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from community import services
from community.models import AuthoredMixin, Comment, Follow, Notification, Post, Reaction


@admin.display(description=_("author"), ordering="author__email")
def author_name(obj: AuthoredMixin) -> str:
    return obj.author_name


@admin.display(description=_("title"), ordering="title")
def post_title(obj: Post) -> str:
    return obj.display_title


class AuthoredAdmin(admin.ModelAdmin):
    """A deleted member's post or comment shows "Deleted member" and cannot be re-attributed or rewritten here
    (nobody edits an authorless post); staff can still hide, pin or delete it."""

    erased_readonly: tuple[str, ...] = ()

    def get_readonly_fields(self, request: HttpRequest, obj: AuthoredMixin | None = None) -> tuple[str, ...]:
        readonly = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and obj.author_id is None:
            return (*readonly, author_name, *self.erased_readonly)
        return readonly

    def get_exclude(self, request: HttpRequest, obj: AuthoredMixin | None = None) -> tuple[str, ...]:
        exclude = tuple(super().get_exclude(request, obj) or ())
        return (*exclude, "author") if obj is not None and obj.author_id is None else exclude


class CommentInline(admin.TabularInline):
    model = Comment
    fields = ("author", author_name, "parent", "body", "is_hidden", "created_at")
    readonly_fields = (author_name,)
    raw_id_fields = ("author", "parent")
    extra = 0


@admin.register(Post)
class PostAdmin(AuthoredAdmin):
    list_display = (post_title, author_name, "course", "is_pinned", "is_hidden", "created_at")
    erased_readonly = ("title", "body")
    list_filter = ("is_pinned", "is_hidden", "course")
    search_fields = ("title", "body", "author__email")
    raw_id_fields = ("author", "course")
    list_select_related = ("author", "course")
    inlines = [CommentInline]
    actions = ["pin", "unpin", "hide", "unhide"]

    @admin.action(description="Pin selected posts")
    def pin(self, request: HttpRequest, queryset: QuerySet[Post]) -> None:
        for post in queryset:  # through the service, like the site and the API: same checks, same events
            services.post_pin(post=post, member=request.user, pinned=True)

    @admin.action(description="Unpin selected posts")
    def unpin(self, request: HttpRequest, queryset: QuerySet[Post]) -> None:
        for post in queryset:  # through the service, like the site and the API: same checks, same events
            services.post_pin(post=post, member=request.user, pinned=False)

    @admin.action(description="Hide selected posts")
    def hide(self, request: HttpRequest, queryset: QuerySet[Post]) -> None:
        for post in queryset:  # through the service, like the site and the API: same checks, same events
            services.post_hide(post=post, member=request.user, hidden=True)

    @admin.action(description="Unhide selected posts")
    def unhide(self, request: HttpRequest, queryset: QuerySet[Post]) -> None:
        for post in queryset:  # through the service, like the site and the API: same checks, same events
            services.post_hide(post=post, member=request.user, hidden=False)


@admin.register(Comment)
class CommentAdmin(AuthoredAdmin):
    list_display = ("post", author_name, "parent", "is_hidden", "created_at")
    erased_readonly = ("body",)
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
