"""Renewals and dunning: the scheduled side of subscriptions.

The charge itself is members.services.subscription_renew; this module decides *when* to call it and makes sure two
job runs (two beat ticks, two workers, a retried task) never charge the same period twice. The guard is a claim by
conditional UPDATE on `last_renewal_attempt_at` before the charge: only the run whose UPDATE matched a row goes on
to charge, every other run sees zero rows updated and skips.

State machine (every arrow records an Event through the services):

    trialing/active --period end, charge ok------------> active (next period)
    trialing/active --period end, charge fails---------> past_due (grace_until = period end + RENEWAL_GRACE_DAYS)
    trialing/active --period end, cancel_at_period_end-> canceled
    active --period end while paused_until is later----> active (period extended to paused_until, no charge)
    past_due --retry on day 1/3/5 ok, or member fixes--> active
    past_due --grace_until passed----------------------> expired
    expired/canceled --member subscribes again---------> new subscription (subscription_start)
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from analytics.tracking import record_event
from members import exceptions
from members.commerce.services import payment_method_set
from members.models import PaymentMethod, Subscription, SubscriptionChange, User
from members.subscriptions.services import subscription_end, subscription_record, subscription_renew

# Retries after the period end, in days. With RENEWAL_GRACE_DAYS=7 all three fall inside the grace period.
DUNNING_RETRY_DAYS: tuple[int, ...] = (1, 3, 5)
# "At most one attempt per day": a retry needs this much time since the previous attempt. 20h rather than 24h so an
# hourly job that ran a few minutes late yesterday is not pushed a whole extra day.
MIN_HOURS_BETWEEN_ATTEMPTS = 20


@dataclass(frozen=True)
class RenewalRunSummary:
    renewed: int = 0
    failed: int = 0
    ended: int = 0
    extended: int = 0
    skipped: int = 0

    @property
    def rows(self) -> int:
        return self.renewed + self.failed + self.ended + self.extended


@dataclass(frozen=True)
class DunningRunSummary:
    recovered: int = 0
    failed: int = 0
    expired: int = 0
    skipped: int = 0

    @property
    def rows(self) -> int:
        return self.recovered + self.failed + self.expired


@dataclass(frozen=True)
class PaymentFixResult:
    method: PaymentMethod
    retried: bool
    recovered: bool
    error: str = ""


# ---------------------------------------------------------------------------------------------------- selectors


def subscriptions_due_for_renewal(*, when: datetime) -> QuerySet[Subscription]:
    return (
        Subscription.objects.filter(
            status__in=[Subscription.Status.TRIALING, Subscription.Status.ACTIVE], current_period_end__lte=when
        )
        .select_related("member", "tier")
        .order_by("current_period_end", "pk")
    )


def subscriptions_past_due(*, when: datetime | None = None) -> QuerySet[Subscription]:
    return (
        Subscription.objects.filter(status=Subscription.Status.PAST_DUE)
        .select_related("member", "tier")
        .order_by("current_period_end", "pk")
    )


def dunning_retry_due(*, subscription: Subscription, when: datetime) -> bool:
    """Whether the schedule calls for a charge retry now (pure: reads only the row)."""
    # renewal_attempts counts the failed period-end charge too, so attempt 1 done → retry #1 (day 1) is next.
    retry_index = subscription.renewal_attempts - 1
    if retry_index < 0 or retry_index >= len(DUNNING_RETRY_DAYS):
        return False
    if when < subscription.current_period_end + timedelta(days=DUNNING_RETRY_DAYS[retry_index]):
        return False
    last = subscription.last_renewal_attempt_at
    return last is None or when - last >= timedelta(hours=MIN_HOURS_BETWEEN_ATTEMPTS)


# ---------------------------------------------------------------------------------------------------- services


def _claim_period_end_attempt(*, subscription: Subscription, when: datetime) -> bool:
    """Reserve the one period-end attempt for this period. The second concurrent run matches zero rows: either the
    period already moved on (renewed) or last_renewal_attempt_at is already at/after the period end (claimed)."""
    return bool(
        Subscription.objects.filter(
            pk=subscription.pk,
            status__in=[Subscription.Status.TRIALING, Subscription.Status.ACTIVE],
            current_period_end=subscription.current_period_end,
            current_period_end__lte=when,
        )
        .filter(Q(last_renewal_attempt_at__isnull=True) | Q(last_renewal_attempt_at__lt=F("current_period_end")))
        .update(last_renewal_attempt_at=when)
    )


def _claim_dunning_attempt(*, subscription: Subscription, when: datetime) -> bool:
    """Reserve retry #n: matches only while attempts and the last attempt time are what this run read."""
    qs = Subscription.objects.filter(
        pk=subscription.pk, status=Subscription.Status.PAST_DUE, renewal_attempts=subscription.renewal_attempts
    )
    if subscription.last_renewal_attempt_at is None:
        qs = qs.filter(last_renewal_attempt_at__isnull=True)
    else:
        qs = qs.filter(last_renewal_attempt_at=subscription.last_renewal_attempt_at)
    return bool(qs.update(last_renewal_attempt_at=when))


def _charge_claimed(*, subscription: Subscription, when: datetime, success: str) -> str:
    """Charge an attempt this run has claimed. A failure needs no handling here: subscription_renew already moved
    the membership to past_due (with its grace period) and recorded the event."""
    try:
        subscription_renew(subscription=subscription, when=when)
    except exceptions.PaymentFailed:
        return "failed"
    except exceptions.SubscriptionError:
        return "skipped"
    return success


def subscription_extend_pause(*, subscription: Subscription, when: datetime | None = None) -> Subscription:
    """A paused membership reaches its period end: move the end to paused_until without charging."""
    when = when or timezone.now()
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if not (sub.paused_until and sub.paused_until > sub.current_period_end):
            return sub
        previous_end = sub.current_period_end
        sub.current_period_end = sub.paused_until
        sub.save(update_fields=["current_period_end"])
        subscription_record(sub, SubscriptionChange.Kind.PAUSE_EXTENDED, when)
        record_event(member=sub.member_id, kind="subscription_pause_extended", obj=sub, occurred_at=when,
                     properties={"from": previous_end.isoformat(), "to": sub.paused_until.isoformat()})
    return sub


def subscription_renew_due(*, subscription: Subscription, when: datetime | None = None) -> str:
    """Handle one subscription at its period end. Returns what happened: renewed/failed/ended/extended/skipped."""
    when = when or timezone.now()
    if subscription.cancel_at_period_end:
        ended = subscription_end(subscription=subscription, when=when)
        return "ended" if not ended.is_live else "skipped"
    if subscription.paused_until and subscription.paused_until > subscription.current_period_end:
        subscription_extend_pause(subscription=subscription, when=when)
        return "extended"
    if not _claim_period_end_attempt(subscription=subscription, when=when):
        return "skipped"
    return _charge_claimed(subscription=subscription, when=when, success="renewed")


def renew_due_subscriptions(*, when: datetime | None = None) -> RenewalRunSummary:
    when = when or timezone.now()
    counts = {"renewed": 0, "failed": 0, "ended": 0, "extended": 0, "skipped": 0}
    for sub in subscriptions_due_for_renewal(when=when).iterator(chunk_size=200):
        counts[subscription_renew_due(subscription=sub, when=when)] += 1
    return RenewalRunSummary(**counts)


def subscription_dunning_step(*, subscription: Subscription, when: datetime | None = None) -> str:
    """One past_due subscription: expire after grace, or retry the charge when the schedule says so."""
    when = when or timezone.now()
    if subscription.grace_until is not None and subscription.grace_until <= when:
        subscription_end(subscription=subscription, when=when)
        return "expired"
    if not dunning_retry_due(subscription=subscription, when=when):
        return "skipped"
    if not _claim_dunning_attempt(subscription=subscription, when=when):
        return "skipped"
    return _charge_claimed(subscription=subscription, when=when, success="recovered")


def run_dunning(*, when: datetime | None = None) -> DunningRunSummary:
    when = when or timezone.now()
    counts = {"recovered": 0, "failed": 0, "expired": 0, "skipped": 0}
    for sub in subscriptions_past_due(when=when).iterator(chunk_size=200):
        counts[subscription_dunning_step(subscription=sub, when=when)] += 1
    return DunningRunSummary(**counts)


def subscription_retry_now(
    *, subscription: Subscription, when: datetime | None = None, payment_token: str | None = None
) -> str:
    """A member-initiated retry of a past_due renewal (renew link, new card). Claimed like a scheduled retry, so a
    double click, or a click racing the dunning job, charges once: the loser sees 'busy'.
    Returns recovered / failed / busy / not_past_due."""
    when = when or timezone.now()
    current = Subscription.objects.get(pk=subscription.pk)
    if current.status != Subscription.Status.PAST_DUE:
        return "not_past_due"
    if not _claim_dunning_attempt(subscription=current, when=when):
        return "busy"
    try:
        subscription_renew(subscription=current, when=when, payment_token=payment_token)
    except exceptions.PaymentFailed:
        return "failed"
    except exceptions.SubscriptionError:
        return "busy"
    return "recovered"


def payment_method_update_and_retry(
    *, member: User, token: str, label: str, when: datetime | None = None
) -> PaymentFixResult:
    """The member's own fix: store the new method, then retry a past_due renewal at once with it."""
    when = when or timezone.now()
    method = payment_method_set(member=member, token=token, label=label)
    sub = Subscription.objects.filter(member=member, status=Subscription.Status.PAST_DUE).first()
    if sub is None:
        return PaymentFixResult(method=method, retried=False, recovered=False)
    outcome = subscription_retry_now(subscription=sub, when=when, payment_token=token)
    if outcome == "recovered":
        return PaymentFixResult(method=method, retried=True, recovered=True)
    if outcome == "failed":
        last = sub.orders.filter(status="failed").order_by("-created_at").values_list("failure_reason", flat=True).first()
        return PaymentFixResult(method=method, retried=True, recovered=False,
                                error=str(last or exceptions.PaymentFailed.default_message))
    return PaymentFixResult(method=method, retried=False, recovered=False)
