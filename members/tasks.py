"""Scheduled membership work. Thin: each task calls one function in members.billing, which is safe to run twice
(the charge is claimed by a conditional UPDATE before it happens)."""
from __future__ import annotations

import logging

from celery import shared_task

from members import billing

logger = logging.getLogger(__name__)


@shared_task(name="members.tasks.renew_due_subscriptions", acks_late=True)
def renew_due_subscriptions() -> dict[str, int]:
    summary = billing.renew_due_subscriptions()
    logger.info("renew_due_subscriptions: %s", summary)
    return {"renewed": summary.renewed, "failed": summary.failed, "ended": summary.ended,
            "extended": summary.extended, "skipped": summary.skipped}


@shared_task(name="members.tasks.run_dunning", acks_late=True)
def run_dunning() -> dict[str, int]:
    summary = billing.run_dunning()
    logger.info("run_dunning: %s", summary)
    return {"recovered": summary.recovered, "failed": summary.failed, "expired": summary.expired,
            "skipped": summary.skipped}
