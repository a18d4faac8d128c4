"""Referral rewards (issue 8). Thin: the service is safe to run twice (conditional UPDATE qualified → rewarded)."""
from __future__ import annotations

import logging

from celery import shared_task

from members.services_levers import referral_grant_rewards

logger = logging.getLogger(__name__)


@shared_task(name="members.tasks_levers.grant_referral_rewards", acks_late=True)
def grant_referral_rewards() -> dict[str, int]:
    result = referral_grant_rewards()
    logger.info("grant_referral_rewards: %s", result)
    return {"rewarded": result.rewarded, "qualified": result.qualified, "rejected": result.rejected}
