"""Account housekeeping: expired sessions (Django leaves them to `clearsessions`, which nothing else schedules)."""
from __future__ import annotations

from celery import shared_task

from analytics.tracking import job_run
from members.accounts.services import sessions_clear_expired


@shared_task(acks_late=True)
def clear_expired_sessions() -> int:
    with job_run("clear_expired_sessions") as job:
        job.rows = sessions_clear_expired()
        job.message = f"{job.rows} expired sessions deleted"
    return job.rows
