"""Reads for memberships: the live subscription, the latest one, the tier a member has."""
from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from members.models import MembershipTier, RetentionOffer, Subscription, User


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


def retention_offer_for(
    *, subscription: Subscription, reason: str = "", hide_after_accept: bool = True
) -> RetentionOffer | None:
    """The save offer to show a member leaving for `reason`: an offer written for that reason before an offer for
    any reason, newest first among equals; none once one was accepted this billing period (unless
    hide_after_accept=False: the accept door then gets the offer and the service refuses the second acceptance)."""
    if hide_after_accept and subscription.offer_acceptances.filter(period_start=subscription.current_period_start).exists():
        return None
    offers = list(
        RetentionOffer.objects.filter(is_active=True)
        .filter(Q(tiers=subscription.tier) | Q(tiers__isnull=True))
        .distinct().order_by("-created_at", "-pk")
    )
    if reason:
        offers = [offer for offer in offers if offer.answers(reason)]
        offers.sort(key=lambda offer: not offer.reasons)  # stable: keeps newest-first within each group
    return offers[0] if offers else None
