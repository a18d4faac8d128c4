"""Newsletters to a segment, through the one exactly-once send path (analytics/outreach/messaging.py).

newsletter_send queues one MessageLog per recipient with dedupe key newsletter:<issue>:<member>; a second call (a
double click, a retried task) inserts nothing new. Recipients: active members in the segment of the latest
segmentation run (or everyone), who have not left the newsletter category and whose address is not suppressed;
the send path checks both again at send time, so an unsubscribe in between still wins.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from analytics.models import EmailSuppression, MessageLog, Newsletter, SegmentAssignment, SegmentRun
from analytics.outreach.messaging import CONTEXT_BUILDERS
from analytics.outreach.templates import template_problems
from members.accounts import selectors as accounts_selectors


class NewsletterError(Exception):
    pass


def newsletter_recipients(newsletter: Newsletter) -> Any:
    members = accounts_selectors.newsletter_recipients()
    if newsletter.segment:
        run = SegmentRun.objects.order_by("-as_of", "-pk").values("pk")[:1]
        members = members.filter(pk__in=SegmentAssignment.objects.filter(
            run_id__in=run, label=newsletter.segment).values("member_id"))
    suppressed = EmailSuppression.objects.values("email")
    return members.exclude(email__in=suppressed)


def newsletter_problems(newsletter: Newsletter) -> list[str]:
    kind = MessageLog.Kind.NEWSLETTER
    return [f"{part}: {problem}" for part in ("subject", "text_body", "html_body")
            for problem in template_problems(kind, getattr(newsletter, part))]


def newsletter_send(*, newsletter: Newsletter, when: datetime | None = None) -> int:
    """Queue the issue for every recipient; returns how many messages were newly queued."""
    from analytics.outreach.messaging import message_create

    when = when or timezone.now()
    problems = newsletter_problems(newsletter)
    if problems:
        raise NewsletterError("; ".join(problems))
    queued = 0
    with transaction.atomic():
        for member in newsletter_recipients(newsletter).iterator(chunk_size=2000):
            log = message_create(member=member, kind=MessageLog.Kind.NEWSLETTER,
                                 dedupe_key=f"newsletter:{newsletter.pk}:{member.pk}",
                                 context={"newsletter_id": newsletter.pk}, when=when)
            queued += log is not None
        Newsletter.objects.filter(pk=newsletter.pk).update(
            status=Newsletter.Status.SENT, sent_at=newsletter.sent_at or when,
            recipients=MessageLog.objects.filter(dedupe_key__startswith=f"newsletter:{newsletter.pk}:").count())
    return queued


def newsletter_context(log: MessageLog, when: datetime) -> dict[str, Any]:
    from analytics.outreach.messaging import Suppress

    newsletter = Newsletter.objects.filter(pk=log.context.get("newsletter_id")).first()
    if newsletter is None:
        raise Suppress("newsletter deleted")
    return {"newsletter": newsletter, "_copy": newsletter}


CONTEXT_BUILDERS[MessageLog.Kind.NEWSLETTER] = newsletter_context
