"""Scheduled membership work. Thin: each task calls one function in members.billing, which is safe to run twice
(the charge is claimed by a conditional UPDATE before it happens). Each run is recorded as a JobRun through
`analytics.tracking.job_run`, the entry members uses instead of importing analytics models."""
from __future__ import annotations

import logging

from celery import shared_task

from analytics.tracking import job_run
from members.subscriptions import billing

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def renew_due_subscriptions() -> dict[str, int]:
    with job_run("renew_due_subscriptions") as job:
        summary = billing.renew_due_subscriptions()
        job.rows = summary.rows
        job.message = (f"renewed {summary.renewed}, failed {summary.failed}, ended {summary.ended}, "
                       f"extended {summary.extended}, skipped {summary.skipped}")
    logger.info("renew_due_subscriptions: %s", summary)
    return {"renewed": summary.renewed, "failed": summary.failed, "ended": summary.ended,
            "extended": summary.extended, "skipped": summary.skipped}


@shared_task(acks_late=True)
def run_dunning() -> dict[str, int]:
    with job_run("run_dunning") as job:
        summary = billing.run_dunning()
        job.rows = summary.rows
        job.message = (f"recovered {summary.recovered}, failed {summary.failed}, expired {summary.expired}, "
                       f"skipped {summary.skipped}")
    logger.info("run_dunning: %s", summary)
    return {"recovered": summary.recovered, "failed": summary.failed, "expired": summary.expired,
            "skipped": summary.skipped}
