"""Provider payment tasks (thin: one service each, safe to run twice)."""
from __future__ import annotations

from celery import shared_task

from analytics.tracking import job_run
from members.commerce import provider_services


@shared_task(acks_late=True)
def reconcile_provider_payments() -> int:
    with job_run("reconcile_provider_payments") as job:
        applied = provider_services.payments_reconcile()
        job.rows = applied
        job.message = f"applied {applied} payment(s) whose notification was missed"
    return applied
