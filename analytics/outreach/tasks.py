"""Celery tasks that act on the scores: renewal reminders, dunning emails, campaigns, and the one email sender.

Thin by design: each loads ids and calls one function in analytics.reminders / campaigns / messaging. They are safe
to run twice because the database refuses duplicates (MessageLog.dedupe_key, CampaignAssignment(campaign, member)),
not because we hope they won't be. The beat schedule names them "analytics.tasks.*" (config/celery.py); the explicit
name= keeps those names while the code lives here (analytics/tasks.py star-imports this module).

Queues: the scheduled jobs run on "default" (explicit queue= wins over the "analytics.tasks.*" → ml route, which is
meant for long ML jobs); the sender runs on "email".
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from celery import shared_task
from django.utils import timezone

from analytics.models import JobRun
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


@contextmanager
def _job_run(job: str, **params: Any) -> Iterator[JobRun]:
    """A JobRun row staff can see in the admin: started, finished, status, rows, error."""
    run = JobRun.objects.create(job=job, as_of=timezone.now(), params=params)
    try:
        yield run
    except Exception as exc:
        JobRun.objects.filter(pk=run.pk).update(status=JobRun.Status.FAILED, finished_at=timezone.now(),
                                                error=f"{type(exc).__name__}: {exc}"[:4000])
        raise
    JobRun.objects.filter(pk=run.pk).update(status=JobRun.Status.SUCCEEDED, finished_at=timezone.now(),
                                            rows=run.rows, message=run.message)


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
    with _job_run(job) as run:
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

    with _job_run("run_campaigns") as run:
        summary = campaigns_run_all()
        run.rows = summary.assigned
        run.message = (f"campaigns {summary.campaigns}, assigned {summary.assigned} "
                       f"(treatment {summary.treatment}), conversions tracked {summary.conversions}")
    return {"campaigns": summary.campaigns, "assigned": summary.assigned, "treatment": summary.treatment,
            "conversions": summary.conversions}


@shared_task(queue="default", acks_late=True)
def track_campaign_conversions() -> int:
    from analytics.outreach.campaigns import campaigns_track_conversions

    with _job_run("track_campaign_conversions") as run:
        run.rows = campaigns_track_conversions()
    return run.rows


@shared_task(acks_late=True)
def send_review_invites() -> int:
    with _job_run("send_review_invites") as run:
        run.rows = review_invites_create()
    return run.rows
