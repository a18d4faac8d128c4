"""Celery tasks for outreach: renewal reminders, dunning emails, campaigns, review invitations, and the one sender.

Thin by design: each calls one function in analytics.outreach.{reminders,campaigns,review_invites,messaging}, under a
JobRun row (analytics.jobs.tracked, the one JobRun helper). They are safe to run twice because the database refuses
duplicates (MessageLog.dedupe_key, CampaignAssignment(campaign, member)), not because we hope they won't be. Each
task's name is its module path (config/celery.py's beat schedule uses those names).

Queues: the scheduled jobs run on "default"; the sender runs on "email".
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from celery import shared_task
from django.utils import timezone

from analytics.jobs import tracked
from analytics.outreach.messaging import TRANSIENT_EMAIL_ERRORS
from analytics.outreach.review_invites import review_invites_create

if TYPE_CHECKING:
    from analytics.outreach.reminders import ReminderRunSummary

logger = logging.getLogger(__name__)

__all__ = [
    "run_campaigns",
    "send_dunning_emails",
    "send_message_email",
    "send_renewal_reminders",
    "track_campaign_conversions",
]


@shared_task(
    queue="email",
    autoretry_for=TRANSIENT_EMAIL_ERRORS,
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
    acks_late=True,
)
def send_message_email(message_id: int) -> str:
    from analytics.outreach.messaging import message_send

    return message_send(message_id=message_id).status


def _queue_job(job: str, queue: Callable[[], ReminderRunSummary]) -> dict[str, int]:
    """A message-queueing job (reminders, dunning) under its JobRun; the summary goes to the row and the result."""
    with tracked(job, as_of=timezone.now()) as run:
        summary = queue()
        run.rows = summary.queued
        run.message = f"queued {summary.queued}, already sent {summary.already_sent}, requeued {summary.requeued}"
    return {"queued": summary.queued, "already_sent": summary.already_sent, "requeued": summary.requeued}


@shared_task(queue="default", acks_late=True)
def send_renewal_reminders() -> dict[str, int]:
    from analytics.outreach.reminders import reminders_send

    return _queue_job("send_renewal_reminders", reminders_send)


@shared_task(queue="default", acks_late=True)
def send_dunning_emails() -> dict[str, int]:
    from analytics.outreach.reminders import dunning_emails_send

    return _queue_job("send_dunning_emails", dunning_emails_send)


@shared_task(queue="default", acks_late=True)
def run_campaigns() -> dict[str, int]:
    from analytics.outreach.campaigns import campaigns_run_all

    with tracked("run_campaigns", as_of=timezone.now()) as run:
        summary = campaigns_run_all()
        run.rows = summary.assigned
        run.message = (f"campaigns {summary.campaigns}, assigned {summary.assigned} "
                       f"(treatment {summary.treatment}), conversions tracked {summary.conversions}"
                       + (f"; failed and skipped: campaigns {', '.join(map(str, summary.failed))} (see their "
                          f"run_campaign job runs)" if summary.failed else ""))
    return {"campaigns": summary.campaigns, "assigned": summary.assigned, "treatment": summary.treatment,
            "conversions": summary.conversions, "failed": len(summary.failed)}


@shared_task(queue="default", acks_late=True)
def track_campaign_conversions() -> int:
    from analytics.outreach.campaigns import campaigns_track_conversions

    with tracked("track_campaign_conversions", as_of=timezone.now()) as run:
        run.rows = campaigns_track_conversions()
    return run.rows


@shared_task(acks_late=True)
def send_review_invites() -> int:
    with tracked("send_review_invites", as_of=timezone.now()) as run:
        run.rows = review_invites_create()
    return run.rows


@shared_task(queue="default", acks_late=True)
def send_community_digest() -> int:
    """The weekly digest (analytics/outreach/digest.py); the ISO-week dedupe key makes a rerun queue nothing."""
    from analytics.jobs import tracked
    from analytics.outreach.digest import community_digest_send

    with tracked("send_community_digest") as run:
        run.rows = community_digest_send()
    return run.rows
