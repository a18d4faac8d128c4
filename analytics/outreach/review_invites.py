"""Review invitations (issue 8): one email per member per finished course, exactly once.

The sender lives in analytics because the MessageLog is analytics' table; it reads the completions from the Event
log (kind "course_completed") and goes through analytics.messaging, whose unique dedupe_key
f"review_invite:{member}:{course}" makes a second run (or a second worker) insert nothing.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.urls import reverse
from django.utils import timezone

from analytics.models import Event, MessageLog
from analytics.outreach import messaging
from members.accounts import selectors as accounts_selectors
from members.reviews import selectors

# Only recent completions: turning the job on must not email everyone about courses finished years ago.
LOOKBACK_DAYS = 14
TEMPLATE = "emails/analytics/review_invite"


def review_invite_key(*, member_id: int, course_id: int | str) -> str:
    return f"review_invite:{member_id}:{course_id}"


def _review_invite_context(log: MessageLog, when: datetime) -> dict[str, Any]:
    course_id = int(log.context.get("course_id", 0))
    course = selectors.courses_by_id(ids=[course_id]).get(course_id)
    if course is None or not log.member.is_active:
        raise messaging.Suppress("course or member gone")
    if (log.member_id, course_id) in selectors.reviewed_pairs(member_ids=[log.member_id]):
        raise messaging.Suppress("already reviewed")
    path = reverse("members:course_reviews", kwargs={"slug": course.slug})
    return {"course": course, "course_title": course.display_title(log.member.preferred_language),
            "review_url": messaging.absolute_url(path)}


# Plug the kind into the shared claimed-send pipeline (templates, context, the "sent" event).
messaging.TEMPLATES.setdefault(MessageLog.Kind.REVIEW_INVITE, TEMPLATE)
messaging.CONTEXT_BUILDERS.setdefault(MessageLog.Kind.REVIEW_INVITE, _review_invite_context)
messaging.EVENT_KINDS.setdefault(MessageLog.Kind.REVIEW_INVITE, "review_invite_sent")


def review_invites_create(*, now: datetime | None = None) -> int:
    """Queue an invitation for every recent course completion that has none yet. Returns how many were queued."""
    now = now or timezone.now()
    completions = set(
        Event.objects.filter(kind="course_completed", occurred_at__gte=now - timedelta(days=LOOKBACK_DAYS),
                             occurred_at__lte=now, member__isnull=False, member__is_active=True)
        .exclude(object_id="").values_list("member_id", "object_id").distinct()
    )
    if not completions:
        return 0
    keys = {review_invite_key(member_id=m, course_id=c): (m, c) for m, c in completions}
    already = set(MessageLog.objects.filter(dedupe_key__in=list(keys)).values_list("dedupe_key", flat=True))
    todo = {k: v for k, v in keys.items() if k not in already}
    reviewed = selectors.reviewed_pairs(member_ids=[m for m, _c in todo.values()])
    members = accounts_selectors.members_by_id(m for m, _c in todo.values())
    queued = 0
    for key, (member_id, course_id) in sorted(todo.items()):
        if (member_id, int(course_id)) in reviewed:
            continue
        # message_create's INSERT is the exactly-once guard; a concurrent run's duplicate returns None.
        if messaging.message_create(member=members[member_id], kind=MessageLog.Kind.REVIEW_INVITE, dedupe_key=key,
                                    context={"course_id": int(course_id)}, when=now):
            queued += 1
    return queued
