"""Recovery from crashed workers: rows a killed process left half-way are moved on by a beat task (issue 13.11).

A worker killed with SIGKILL (OOM killer, a deploy, a lost host) runs no `except` and no `finally`, so two kinds of
row can stay mid-state forever:

* a MessageLog in `sending` — claimed by an email task that died before marking it sent or failed;
* a JobRun in `running` — the job's process died before writing succeeded/failed.

`stuck_work_recover` (beat, every 10 minutes: analytics.tasks.recover_stuck_work) moves them on once they are past
a stated timeout, chosen well above the longest healthy run, so a slow but live worker is never overtaken:

| row | stuck after | becomes |
|---|---|---|
| MessageLog `sending` | SENDING_TIMEOUT (15 min; one send takes seconds, SMTP timeouts are 1–2 min) | `queued` again and re-sent for AT_LEAST_ONCE_KINDS (up to MAX_SEND_ATTEMPTS claims), otherwise `failed` |
| JobRun `running` | JOB_RUN_TIMEOUT (6 h; the 100k-member nightly pipeline takes about 3 min, docs/PERFORMANCE.md) | `failed`, error "Interrupted: …"; the job's next scheduled run does the work (every job is safe to run twice) |

Whether a message interrupted mid-send reached the member is unknowable (the SMTP server may have accepted it just
before the crash), so each kind picks its risk: dunning emails and receipts are re-sent (at least once — a lost one
costs a failed payment or a missing record), reminders, campaign offers and review invitations are not (at most
once — a second copy costs more than a missing one). docs/SECURITY.md states the same table.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from analytics.models import JobRun, MessageLog
from analytics.outreach.messaging import enqueue_send

SENDING_TIMEOUT = timedelta(minutes=15)
JOB_RUN_TIMEOUT = timedelta(hours=6)
MAX_SEND_ATTEMPTS = 3
AT_LEAST_ONCE_KINDS = frozenset({MessageLog.Kind.DUNNING, MessageLog.Kind.RECEIPT})


@dataclass(frozen=True)
class RecoverySummary:
    messages_requeued: int = 0
    messages_failed: int = 0
    job_runs_failed: int = 0

    @property
    def rows(self) -> int:
        return self.messages_requeued + self.messages_failed + self.job_runs_failed


def stuck_messages_recover(*, when: datetime | None = None) -> tuple[int, int]:
    """(requeued, failed). Conditional UPDATEs on status='sending', so a send that finishes meanwhile keeps its
    own outcome, and two sweeps cannot both requeue a row."""
    when = when or timezone.now()
    cutoff = when - SENDING_TIMEOUT
    stuck = MessageLog.objects.filter(status=MessageLog.Status.SENDING).filter(
        Q(claimed_at__lt=cutoff) | Q(claimed_at__isnull=True, created_at__lt=cutoff)
    )
    retry = stuck.filter(kind__in=AT_LEAST_ONCE_KINDS, attempts__lt=MAX_SEND_ATTEMPTS)
    retry_ids = list(retry.values_list("pk", flat=True))
    requeued = MessageLog.objects.filter(pk__in=retry_ids, status=MessageLog.Status.SENDING).update(
        status=MessageLog.Status.QUEUED,
        error=f"Interrupted while sending (worker lost for over {SENDING_TIMEOUT}); sent again.",
    )
    for message_id in retry_ids:
        transaction.on_commit(lambda message_id=message_id: enqueue_send(message_id=message_id))
    failed = stuck.exclude(pk__in=retry_ids).update(
        status=MessageLog.Status.FAILED,
        error=f"Interrupted while sending (worker lost for over {SENDING_TIMEOUT}); not sent again: it may have "
              "reached the member, and this kind is sent at most once.",
    )
    return requeued, failed


def stuck_job_runs_fail(*, when: datetime | None = None) -> int:
    when = when or timezone.now()
    return JobRun.objects.filter(
        status=JobRun.Status.RUNNING, started_at__lt=when - JOB_RUN_TIMEOUT, finished_at__isnull=True
    ).update(
        status=JobRun.Status.FAILED, finished_at=when,
        error=f"Interrupted: still 'running' {JOB_RUN_TIMEOUT} after it started, so its worker was lost. The next "
              "scheduled run does the work again.",
    )


def stuck_work_recover(*, when: datetime | None = None) -> RecoverySummary:
    when = when or timezone.now()
    requeued, failed = stuck_messages_recover(when=when)
    return RecoverySummary(messages_requeued=requeued, messages_failed=failed,
                           job_runs_failed=stuck_job_runs_fail(when=when))
