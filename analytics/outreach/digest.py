"""The weekly community digest for members who opted in (User.digest_opt_in): the week's most discussed posts.

Beat runs community_digest_send once a week (config/celery.py); the dedupe key digest:<member>:<ISO year-week>
makes a second run in the same week queue nothing.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from analytics.models import EmailSuppression, MessageLog
from analytics.outreach.messaging import CONTEXT_BUILDERS
from members.accounts import selectors as accounts_selectors

DIGEST_POSTS = 5


def _top_posts(since: datetime, until: datetime) -> list[dict[str, Any]]:
    from community.selectors import post_list

    posts = (post_list().filter(created_at__gte=since, created_at__lt=until)
             .annotate(n_comments=Count("comments", filter=Q(comments__is_hidden=False)))
             .order_by("-n_comments", "-created_at")[:DIGEST_POSTS])
    site = settings.SITE_URL.rstrip("/")
    return [{"title": p.title, "url": site + p.get_absolute_url(), "comments": p.n_comments} for p in posts]


def community_digest_send(*, when: datetime | None = None) -> int:
    """Queue this week's digest for every opted-in member; 0 when the week had no posts."""
    from analytics.outreach.messaging import message_create

    when = when or timezone.now()
    week_start = when - timedelta(days=7)
    if not _top_posts(week_start, when):
        return 0
    year, week, _ = when.isocalendar()
    members = (accounts_selectors.digest_recipients()
               .exclude(email__in=EmailSuppression.objects.values("email")))
    queued = 0
    for member in members.iterator(chunk_size=2000):
        log = message_create(member=member, kind=MessageLog.Kind.COMMUNITY_DIGEST,
                             dedupe_key=f"digest:{member.pk}:{year}-W{week:02d}",
                             context={"since": week_start.isoformat(), "until": when.isoformat()}, when=when)
        queued += log is not None
    return queued


def digest_context(log: MessageLog, when: datetime) -> dict[str, Any]:
    from django.utils.dateparse import parse_datetime

    from analytics.outreach.messaging import Suppress

    since, until = parse_datetime(log.context["since"]), parse_datetime(log.context["until"])
    posts = _top_posts(since, until)
    if not posts:
        raise Suppress("no posts that week")
    return {"posts": posts, "week_start": since.date()}


CONTEXT_BUILDERS[MessageLog.Kind.COMMUNITY_DIGEST] = digest_context
