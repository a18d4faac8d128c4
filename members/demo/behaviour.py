"""The demo's behaviour model: every probability the simulation draws from, as pure functions of what a member did.

The inputs are observable history (lessons completed and community actions in the two previous months, paid
orders so far) plus latent traits (engagement, price sensitivity). Because observable history enters the logits, a
model trained later on the rows finds real signal; because latent traits also enter, it cannot be perfect.
docs/DEMO_MODEL.md writes the model down; keep the two in step.
"""
from __future__ import annotations

import numpy as np

# A coupon in hand adds this many logits to the purchase / subscribe logit, scaled by (0.5 + price sensitivity):
# +0.7 on average, i.e. roughly +4 to +6 percentage points on a 6-9% monthly base rate.
COUPON_LOGIT_LIFT = 0.7

PURCHASE_BASE = -3.0
SUBSCRIBE_BASE = -3.6
RENEW_BASE = 1.6
TRIAL_CONVERT_BASE = 0.2
NEW_MEMBER_BONUS = 0.9
# Logits per star of the member's average rating above 3.5 (satisfied members come back for more).
SATISFACTION_WEIGHT = 0.35


def sigmoid(x: np.ndarray | float) -> np.ndarray | float:
    return 1.0 / (1.0 + np.exp(-x))


def saturate(count: np.ndarray | float, scale: float) -> np.ndarray | float:
    """0 for nothing, approaching 1 for a lot: the fifth lesson in a month matters less than the first."""
    return 1.0 - np.exp(-np.asarray(count, dtype=float) / scale)


def recent(history: np.ndarray, month: int) -> np.ndarray:
    """Activity in the two months before `month`, the older one at half weight (strictly the past: no leakage)."""
    last = history[:, month - 1] if month >= 1 else 0
    before = history[:, month - 2] if month >= 2 else 0
    return np.asarray(last + 0.5 * before, dtype=float)


def coupon_lift(price_sensitivity: np.ndarray, has_coupon: np.ndarray) -> np.ndarray:
    return has_coupon * COUPON_LOGIT_LIFT * (0.5 + price_sensitivity)


def purchase_logit(
    *, lessons: np.ndarray, community: np.ndarray, paid_orders: np.ndarray, engagement: np.ndarray,
    price_sensitivity: np.ndarray, has_coupon: np.ndarray, new_member: np.ndarray,
) -> np.ndarray:
    """Monthly probability (as a logit) of buying a course."""
    return (
        PURCHASE_BASE
        + 1.8 * saturate(lessons, 6.0)
        + 1.0 * saturate(community, 5.0)
        + 0.6 * np.log1p(paid_orders)
        + 0.8 * engagement
        - 1.0 * price_sensitivity
        + NEW_MEMBER_BONUS * new_member
        + coupon_lift(price_sensitivity, has_coupon)
    )


def subscribe_logit(
    *, lessons: np.ndarray, community: np.ndarray, paid_orders: np.ndarray, engagement: np.ndarray,
    price_sensitivity: np.ndarray, has_coupon: np.ndarray, new_member: np.ndarray,
) -> np.ndarray:
    """Monthly probability (as a logit) that a member without a membership starts one."""
    return (
        SUBSCRIBE_BASE
        + 1.6 * saturate(lessons, 6.0)
        + 0.9 * saturate(community, 5.0)
        + 0.5 * np.log1p(paid_orders)
        + 1.0 * engagement
        - 0.9 * price_sensitivity
        + 0.6 * new_member
        + coupon_lift(price_sensitivity, has_coupon)
    )


def renew_logit(
    *, lessons: float, community: float, paid_courses: int, price_sensitivity: float, yearly: bool, dormant: bool,
    trial: bool,
) -> float:
    """Probability (as a logit) that a member pays for the next period when the current one ends."""
    base = TRIAL_CONVERT_BASE if trial else RENEW_BASE
    return float(
        base
        + 1.8 * saturate(lessons, 4.0)
        + 0.9 * saturate(community, 4.0)
        + 0.4 * np.log1p(paid_courses)
        - 1.4 * price_sensitivity
        + (0.6 if yearly else 0.0)
        - (1.5 if dormant else 0.0)
    )


def dormancy_probability(engagement: np.ndarray, has_membership: np.ndarray) -> np.ndarray:
    """Monthly chance an active member drifts away; low engagement drifts fast, a membership slows it."""
    return np.clip((0.02 + 0.2 * (1.0 - engagement) ** 2) * np.where(has_membership, 0.6, 1.0), 0.0, 0.5)


def reactivation_probability(has_coupon: np.ndarray) -> np.ndarray:
    return np.where(has_coupon, 0.12, 0.04)


def monthly_purchase_probability(
    *, lessons: float, community: float, paid_orders: int, has_coupon: bool, engagement: float = 0.36,
    price_sensitivity: float = 0.5,
) -> float:
    """The demo's chance that one member buys a course within a month, for simulating responses to an offer
    (e.g. a holdout campaign on the demo platform). Defaults are the population means of the latent traits."""
    x = purchase_logit(
        lessons=np.array([lessons]), community=np.array([community]), paid_orders=np.array([float(paid_orders)]),
        engagement=np.array([engagement]), price_sensitivity=np.array([price_sensitivity]),
        has_coupon=np.array([1.0 if has_coupon else 0.0]), new_member=np.array([0.0]),
    )
    return float(sigmoid(x)[0])
