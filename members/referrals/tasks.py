"""Referral rewards (issue 8). Thin: the service is safe to run twice (conditional UPDATE qualified → rewarded).
The run is recorded as a JobRun through `analytics.tracking.job_run` (members imports no analytics model)."""
from __future__ import annotations

import logging

from celery import shared_task

from analytics.tracking import job_run
from members.referrals.services import referral_grant_rewards

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def grant_referral_rewards() -> dict[str, int]:
    with job_run("grant_referral_rewards") as job:
        result = referral_grant_rewards()
        # Rows changed this run: rewards granted plus referrals moved to qualified or rejected.
        job.rows = result.rewarded + result.qualified + result.rejected
        job.message = f"rewarded {result.rewarded}, qualified {result.qualified}, rejected {result.rejected}"
    logger.info("grant_referral_rewards: %s", result)
    return {"rewarded": result.rewarded, "qualified": result.qualified, "rejected": result.rejected}
