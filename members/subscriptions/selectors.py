"""Reads for memberships: the live subscription, the latest one, the tier a member has."""
from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from members.models import MembershipTier, Subscription, User


def live_subscription(*, member: User) -> Subscription | None:
    if not getattr(member, "is_authenticated", False):
        return None
    return (
        Subscription.objects.filter(member=member, status__in=Subscription.LIVE_STATUSES)
        .select_related("tier")
        .prefetch_related("tier__benefits")
        .first()
    )


def latest_subscription(*, member: User) -> Subscription | None:
    return Subscription.objects.filter(member=member).select_related("tier").order_by("-started_at").first()


def active_tier(*, member: User, when: datetime | None = None) -> MembershipTier | None:
    """The tier whose benefits the member enjoys now, if any (trial, paid period, grace, or canceled-but-paid)."""
    if not getattr(member, "is_authenticated", False):
        return None
    when = when or timezone.now()
    for sub in (
        Subscription.objects.filter(member=member)
        .exclude(status=Subscription.Status.EXPIRED)
        .select_related("tier")
        .prefetch_related("tier__benefits")
        .order_by("-started_at")[:2]
    ):
        if sub.is_active_at(when):
            return sub.tier
    return None
