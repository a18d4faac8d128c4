"""Celery task for staff-started platform imports (analytics/ingest/jobs.py)."""
from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def import_job_run_task(job_id: int) -> str:
    """A staff upload; claimed by a conditional UPDATE, so a redelivery does nothing."""
    from analytics.ingest.jobs import import_job_execute

    return import_job_execute(job_id=job_id).status
