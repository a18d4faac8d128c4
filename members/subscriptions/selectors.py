"""Reads for memberships that only the subscription flows need (the member's live membership and tier are in
members.catalogue.selectors, which every package reads)."""
from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet

from members.models import BillingPeriod as BillingPeriod
from members.models import RetentionOffer, Subscription, SubscriptionChange


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


def subscription_with_tier(*, subscription_id: int) -> Subscription | None:
    return Subscription.objects.select_related("tier").filter(pk=subscription_id).first()


def subscription_with_benefits(*, subscription_id: int) -> Subscription | None:
    return (Subscription.objects.select_related("tier").prefetch_related("tier__benefits")
            .filter(pk=subscription_id).first())


def subscriptions_renewing_between(*, after: datetime, until: datetime) -> QuerySet[Subscription]:
    """Trialing or active memberships set to renew with a period ending in (after, until], soonest first."""
    return (
        Subscription.objects.filter(
            status__in=[Subscription.Status.TRIALING, Subscription.Status.ACTIVE],
            cancel_at_period_end=False, current_period_end__gt=after, current_period_end__lte=until,
        ).select_related("member", "tier").order_by("current_period_end", "pk")
    )


# Choices other apps filter on (analytics reads these instead of importing members.models).
SubscriptionStatus = Subscription.Status
LIVE_STATUSES = Subscription.LIVE_STATUSES
CancellationReason = Subscription.CancellationReason
SubscriptionChangeKind = SubscriptionChange.Kind


def subscriptions() -> QuerySet[Subscription]:
    """Every subscription, for other apps to filter and aggregate."""
    return Subscription.objects.all()


def live_subscriptions() -> QuerySet[Subscription]:
    """Subscriptions in a live status (trialing, active, past due)."""
    return Subscription.objects.filter(status__in=Subscription.LIVE_STATUSES)


def subscription_changes() -> QuerySet[SubscriptionChange]:
    """Every subscription change ledger row, for other apps to filter and aggregate."""
    return SubscriptionChange.objects.all()
