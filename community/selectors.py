"""Reads for the community app. Querysets come back with their joins and counts already applied."""
from __future__ import annotations

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet

from community.models import Comment, Follow, Notification, Post, Reaction


def unread_notification_count(*, member: object) -> int:
    return Notification.objects.filter(recipient=member, read_at__isnull=True).count()


def post_list(*, include_hidden: bool = False) -> QuerySet[Post]:
    qs = Post.objects.select_related("author", "course")
    return qs if include_hidden else qs.filter(is_hidden=False)


def feed(
    *, member: object | None = None, scope: str = "all", course_id: int | None = None, include_hidden: bool = False
) -> QuerySet[Post]:
    """The feed: all posts, one course's posts, or posts by people the member follows. Counts are annotated so a
    page of posts costs one query, whatever its length."""
    qs = post_list(include_hidden=include_hidden).annotate(
        comment_count=Count("comments", filter=Q(comments__is_hidden=False), distinct=True),
        reaction_count=Count("reactions", distinct=True),
    )
    if course_id:
        qs = qs.filter(course_id=course_id)
    if scope == "following" and member is not None and getattr(member, "is_authenticated", False):
        qs = qs.filter(author__in=Follow.objects.filter(follower=member).values("followed"))
    if member is not None and getattr(member, "is_authenticated", False):
        qs = qs.annotate(
            liked=Exists(Reaction.objects.filter(post=OuterRef("pk"), member=member, kind=Reaction.Kind.LIKE))
        )
    return qs.order_by("-is_pinned", "-created_at")


def post_detail(*, pk: int, member: object | None = None, include_hidden: bool = False) -> Post:
    comments = Comment.objects.select_related("author").filter(parent__isnull=True)
    replies = Comment.objects.select_related("author")
    if not include_hidden:
        comments = comments.filter(is_hidden=False)
        replies = replies.filter(is_hidden=False)
    qs = feed(member=member, include_hidden=include_hidden).prefetch_related(
        Prefetch("comments", queryset=comments.prefetch_related(Prefetch("replies", queryset=replies)),
                 to_attr="top_comments"),
    )
    return qs.get(pk=pk)


def reaction_counts(*, post: Post) -> dict[str, int]:
    rows = Reaction.objects.filter(post=post).values("kind").annotate(n=Count("id"))
    return {row["kind"]: row["n"] for row in rows}


def member_reactions(*, post: Post, member: object) -> set[str]:
    if not getattr(member, "is_authenticated", False):
        return set()
    return set(Reaction.objects.filter(post=post, member=member).values_list("kind", flat=True))


def notification_list(*, member: object) -> QuerySet[Notification]:
    return Notification.objects.filter(recipient=member).select_related("actor").order_by("-created_at")


def is_following(*, follower: object, followed: object | None) -> bool:
    # followed is None for a deleted member's post: nobody to follow, and no query spent finding that out.
    if followed is None or not getattr(follower, "is_authenticated", False):
        return False
    return Follow.objects.filter(follower=follower, followed=followed).exists()
