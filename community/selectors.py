from __future__ import annotations

from django.db.models import QuerySet

from community.models import Notification, Post


def unread_notification_count(*, member: object) -> int:
    return Notification.objects.filter(recipient=member, read_at__isnull=True).count()


def post_list(*, include_hidden: bool = False) -> QuerySet[Post]:
    qs = Post.objects.select_related("author", "course")
    return qs if include_hidden else qs.filter(is_hidden=False)
