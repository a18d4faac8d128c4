"""Writes for the members app: purchases, subscriptions, coupons, learning progress.

Every money path is atomic and writes its Order and an Event (through analytics.tracking.record_event, on
commit). Payments follow one shape: reserve (order pending + coupon redemption, under a lock) → charge outside the
transaction → settle (paid + access) or release (failed, redemption returned). A failed charge therefore leaves a
failed Order for the record and nothing else: no paid order, no enrollment, no consumed coupon.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from analytics.tracking import record_event
from members import exceptions
from members.commerce.payments import get_provider
from members.commerce.services import _charge, _fail_order, _reserve_coupon, coupon_check, coupon_issue, price_quote
from members.models import (
    BillingPeriod,
    Coupon,
    MembershipTier,
    Order,
    RetentionOffer,
    Subscription,
    SubscriptionChange,
    User,
)

# --------------------------------------------------------------------------------------------------------------
# Memberships


def period_end(start: datetime, period: str) -> datetime:
    return start + (relativedelta(years=1) if period == BillingPeriod.YEAR else relativedelta(months=1))


def subscription_record(sub: Subscription, kind: str, at: datetime) -> SubscriptionChange:
    """Append `sub`'s state after a change to its ledger. Call it inside the transaction that saved the change, so
    the ledger and the row never disagree (a rolled-back change leaves no ledger row); one INSERT."""
    change = SubscriptionChange.of(sub, kind, at)
    change.save(force_insert=True)
    return change


def subscription_start(
    *, member: User, tier: MembershipTier, period: str = BillingPeriod.MONTH, coupon_code: str = "",
    payment_token: str | None = None, use_trial: bool = True, when: datetime | None = None,
) -> Subscription:
    """Subscribe. With a trial the member gets access now and the first charge happens at trial end (renewal job);
    without one, the first period is charged now and a paid Order written."""
    when = when or timezone.now()
    if not tier.is_active:
        raise exceptions.SubscriptionError("This tier is not available.")
    if Subscription.objects.filter(member=member, status__in=Subscription.LIVE_STATUSES).exists():
        raise exceptions.AlreadySubscribed()
    had_trial = Subscription.objects.filter(member=member, trial_end__isnull=False).exists()
    if use_trial and tier.trial_days and not had_trial and not coupon_code:
        try:
            with transaction.atomic():
                sub = Subscription.objects.create(
                    member=member, tier=tier, billing_period=period, status=Subscription.Status.TRIALING,
                    started_at=when, current_period_start=when, current_period_end=when + timedelta(days=tier.trial_days),
                    trial_end=when + timedelta(days=tier.trial_days), created_at=when,
                )
                subscription_record(sub, SubscriptionChange.Kind.STARTED, when)
                record_event(member=member, kind="trial_started", obj=sub, occurred_at=when,
                             properties={"tier": tier.slug, "period": period})
        except IntegrityError:
            raise exceptions.AlreadySubscribed() from None
        return sub

    quote = price_quote(member=member, tier=tier, period=period, coupon_code=coupon_code, when=when)
    try:
        with transaction.atomic():
            sub = Subscription.objects.create(
                member=member, tier=tier, billing_period=period, status=Subscription.Status.ACTIVE, started_at=when,
                current_period_start=when, current_period_end=period_end(when, period), created_at=when,
            )
            # Live from here; a declined charge deletes the subscription and its ledger row with it.
            subscription_record(sub, SubscriptionChange.Kind.STARTED, when)
            order = Order.objects.create(
                member=member, kind=Order.Kind.SUBSCRIPTION, tier=tier, billing_period=period, subscription=sub,
                list_price=quote.list_price, discount=quote.discount, amount_paid=quote.total, currency=quote.currency,
                coupon=quote.coupon, status=Order.Status.PENDING, created_at=when, provider=get_provider().name,
            )
            if quote.coupon is not None:
                _reserve_coupon(coupon=quote.coupon, member=member, order=order, course=None, tier=tier)
    except IntegrityError:
        raise exceptions.AlreadySubscribed() from None
    result = _charge(member=member, order=order, token=payment_token)
    if not result.ok:
        with transaction.atomic():
            _fail_order(order=order, reason=result.failure_reason)
            # The membership never started: remove it rather than leave a live subscription without payment.
            Order.objects.filter(pk=order.pk).update(subscription=None)
            sub.delete()
        raise exceptions.PaymentFailed(result.failure_reason)
    with transaction.atomic():
        order.status = Order.Status.PAID
        order.paid_at = when
        order.provider_reference = result.reference
        order.save(update_fields=["status", "paid_at", "provider_reference"])
        record_event(member=member, kind="subscription_started", obj=sub, occurred_at=when, properties={
            "tier": tier.slug, "period": period, "order_id": order.pk, "amount": str(order.amount_paid),
        })
        if quote.coupon is not None:
            record_event(member=member, kind="coupon_redeemed", obj=quote.coupon, occurred_at=when,
                         properties={"order_id": order.pk})
    return sub


def subscription_renew(
    *, subscription: Subscription, when: datetime | None = None, payment_token: str | None = None, coupon_code: str = ""
) -> Order:
    """Charge the next period. Success: a paid renewal Order, the period moves on. Failure: a failed Order and
    PaymentFailed; at or after the period end the subscription goes past_due with a grace period (dunning takes
    over), while a member's own early renewal that is declined changes nothing else: the paid period still runs."""
    when = when or timezone.now()
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().select_related("tier", "member").get(pk=subscription.pk)
        if sub.status not in Subscription.LIVE_STATUSES:
            raise exceptions.SubscriptionError("Only a live membership can be renewed.")
        # An accepted save offer is a personal coupon for the next renewal: every renewal path (the hourly job,
        # dunning retries, the member's own "renew now") applies it, so it is never forgotten.
        coupon_code = coupon_code or renewal_coupon_code(subscription=sub, when=when)
        quote = price_quote(member=sub.member, tier=sub.tier, period=sub.billing_period, coupon_code=coupon_code, when=when)
        order = Order.objects.create(
            member=sub.member, kind=Order.Kind.SUBSCRIPTION, tier=sub.tier, billing_period=sub.billing_period,
            subscription=sub, is_renewal=sub.status != Subscription.Status.TRIALING, list_price=quote.list_price,
            discount=quote.discount, amount_paid=quote.total, currency=quote.currency, coupon=quote.coupon,
            status=Order.Status.PENDING, created_at=when, provider=get_provider().name,
        )
        if quote.coupon is not None:
            _reserve_coupon(coupon=quote.coupon, member=sub.member, order=order, course=None, tier=sub.tier)
    result = _charge(member=sub.member, order=order, token=payment_token)
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=sub.pk)
        # Declined before anything was due (the member's own early renewal): the failed order is all that changes.
        early = sub.status != Subscription.Status.PAST_DUE and when < sub.current_period_end
        if not result.ok:
            _fail_order(order=order, reason=result.failure_reason)
        if not result.ok and not early:
            sub.renewal_attempts += 1
            sub.last_renewal_attempt_at = when
            change = SubscriptionChange.Kind.RETRY_FAILED
            if sub.status != Subscription.Status.PAST_DUE:
                previous = sub.status
                sub.status = Subscription.Status.PAST_DUE
                sub.grace_until = max(when, sub.current_period_end) + timedelta(days=settings.RENEWAL_GRACE_DAYS)
                change = SubscriptionChange.Kind.PAST_DUE
                record_event(member=sub.member_id, kind="subscription_past_due", obj=sub, occurred_at=when,
                             properties={"from": previous, "grace_until": sub.grace_until.isoformat()})
            sub.save()
            subscription_record(sub, change, when)
        elif result.ok:
            sub.last_renewal_attempt_at = when
            order.status = Order.Status.PAID
            order.paid_at = when
            order.provider_reference = result.reference
            order.save(update_fields=["status", "paid_at", "provider_reference"])
            was_trial = sub.status == Subscription.Status.TRIALING
            change = (SubscriptionChange.Kind.TRIAL_CONVERTED if was_trial else SubscriptionChange.Kind.RECOVERED
                      if sub.status == Subscription.Status.PAST_DUE else SubscriptionChange.Kind.RENEWED)
            # A renewal recovered during dunning starts from the payment, not from the lapsed period end.
            start = max(sub.current_period_end, when) if sub.status == Subscription.Status.PAST_DUE else sub.current_period_end
            sub.current_period_start = start
            sub.current_period_end = period_end(start, sub.billing_period)
            sub.status = Subscription.Status.ACTIVE
            sub.grace_until = None
            sub.renewal_attempts = 0
            if not was_trial:
                sub.renewal_count += 1
            sub.save()
            subscription_record(sub, change, when)
            record_event(member=sub.member_id, kind="trial_converted" if was_trial else "subscription_renewed", obj=sub,
                         occurred_at=when, properties={"order_id": order.pk, "amount": str(order.amount_paid),
                                                       "tier": sub.tier.slug, "period": sub.billing_period})
    if not result.ok:
        raise exceptions.PaymentFailed(result.failure_reason)
    return order


def subscription_cancel(
    *, subscription: Subscription, reason: str, note: str = "", when: datetime | None = None
) -> Subscription:
    """Cancel at period end: access continues until current_period_end, then the renewal job ends it."""
    when = when or timezone.now()
    if reason not in Subscription.CancellationReason.values:
        raise exceptions.SubscriptionError("Choose a reason for cancelling.")
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if sub.status not in Subscription.LIVE_STATUSES:
            raise exceptions.SubscriptionError("This membership is not live.")
        sub.cancel_at_period_end = True
        sub.canceled_at = when
        sub.cancellation_reason = reason
        sub.cancellation_note = note
        sub.save(update_fields=["cancel_at_period_end", "canceled_at", "cancellation_reason", "cancellation_note"])
        subscription_record(sub, SubscriptionChange.Kind.CANCEL_SCHEDULED, when)
        record_event(member=sub.member_id, kind="subscription_cancel_requested", obj=sub, occurred_at=when,
                     properties={"reason": reason})
    return sub


def subscription_reactivate(*, subscription: Subscription, when: datetime | None = None) -> Subscription:
    """Undo a cancel-at-period-end before the period ends."""
    when = when or timezone.now()
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if sub.status not in Subscription.LIVE_STATUSES or not sub.cancel_at_period_end:
            raise exceptions.SubscriptionError("There is no pending cancellation to undo.")
        sub.cancel_at_period_end = False
        sub.canceled_at = None
        sub.cancellation_reason = ""
        sub.cancellation_note = ""
        sub.save(update_fields=["cancel_at_period_end", "canceled_at", "cancellation_reason", "cancellation_note"])
        subscription_record(sub, SubscriptionChange.Kind.CANCEL_UNDONE, when)
        record_event(member=sub.member_id, kind="subscription_reactivated", obj=sub, occurred_at=when)
    return sub


def subscription_switch_period(*, subscription: Subscription, period: str, when: datetime | None = None) -> Subscription:
    """Switch monthly/yearly; the new price applies from the next renewal."""
    when = when or timezone.now()
    if period not in BillingPeriod.values:
        raise exceptions.SubscriptionError("Unknown billing period.")
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if sub.status not in Subscription.LIVE_STATUSES:
            raise exceptions.SubscriptionError("This membership is not live.")
        previous = sub.billing_period
        sub.billing_period = period
        sub.save(update_fields=["billing_period"])
        subscription_record(sub, SubscriptionChange.Kind.PERIOD_CHANGED, when)
        record_event(member=sub.member_id, kind="subscription_period_switched", obj=sub, occurred_at=when,
                     properties={"from": previous, "to": period})
    return sub


def subscription_end(*, subscription: Subscription, when: datetime | None = None) -> Subscription:
    """End a subscription whose period ran out: canceled when the member asked, expired when dunning gave up."""
    when = when or timezone.now()
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if sub.status not in Subscription.LIVE_STATUSES:
            return sub
        sub.status = Subscription.Status.CANCELED if sub.cancel_at_period_end else Subscription.Status.EXPIRED
        sub.ended_at = when
        if sub.status == Subscription.Status.EXPIRED and not sub.cancellation_reason:
            sub.cancellation_reason = Subscription.CancellationReason.PAYMENT
        sub.save()
        subscription_record(sub, SubscriptionChange.Kind.CANCELED if sub.status == Subscription.Status.CANCELED
                            else SubscriptionChange.Kind.EXPIRED, when)
        record_event(member=sub.member_id, kind=f"subscription_{sub.status}", obj=sub, occurred_at=when,
                     properties={"reason": sub.cancellation_reason})
    return sub


# --------------------------------------------------------------------------------------------------------------
# Save offers in the cancellation flow: pause, accept an offer, the renewal coupon


def subscription_pause(*, subscription: Subscription, days: int, when: datetime | None = None) -> Subscription:
    """The pause save offer: the membership keeps its access and is not charged until paused_until; the renewal job
    (members.billing) moves the period end to paused_until instead of charging. A pending cancellation is undone,
    because accepting the offer is the member choosing to stay."""
    when = when or timezone.now()
    if days <= 0:
        raise exceptions.SubscriptionError("A pause needs a positive number of days.")
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if sub.status not in Subscription.LIVE_STATUSES:
            raise exceptions.SubscriptionError("This membership is not live.")
        if sub.paused_until and sub.paused_until > when:
            raise exceptions.SubscriptionError("This membership is already paused.")
        sub.paused_until = sub.current_period_end + timedelta(days=days)
        sub.cancel_at_period_end = False
        sub.canceled_at = None
        sub.save(update_fields=["paused_until", "cancel_at_period_end", "canceled_at"])
        subscription_record(sub, SubscriptionChange.Kind.PAUSED, when)
        record_event(member=sub.member_id, kind="subscription_paused", obj=sub, occurred_at=when,
                     properties={"days": days, "paused_until": sub.paused_until.isoformat()})
    return sub


def retention_offer_accept(
    *, subscription: Subscription, offer: RetentionOffer, reason: str = "", when: datetime | None = None
) -> Coupon | Subscription:
    """Accept a save offer instead of cancelling. Discount: a personal membership coupon that the next renewal
    uses (see renewal_coupon_code). Pause: subscription_pause. Either way the cancellation never happens."""
    when = when or timezone.now()
    if not offer.is_active:
        raise exceptions.SubscriptionError("This offer is no longer available.")
    record_event(member=subscription.member_id, kind="retention_offer_accepted", obj=subscription, occurred_at=when,
                 properties={"offer_id": offer.pk, "kind": offer.kind, "reason": reason})
    if offer.kind == RetentionOffer.Kind.PAUSE:
        return subscription_pause(subscription=subscription, days=offer.pause_days or 30, when=when)
    valid_days = max(1, (subscription.current_period_end - when).days) + settings.RENEWAL_GRACE_DAYS + 30
    return coupon_issue(
        member=subscription.member, percent_off=offer.percent_off or Decimal("20"), applies_to=Coupon.AppliesTo.TIERS,
        valid_days=valid_days, source=Coupon.Source.RETENTION, description=offer.name, currency=subscription.tier.currency,
        when=when,
    )


def renewal_coupon_code(*, subscription: Subscription, when: datetime | None = None) -> str:
    """The member's unused save-offer coupon that fits this membership, if any (used when renewing)."""
    when = when or timezone.now()
    candidates = (
        Coupon.objects.filter(assigned_member_id=subscription.member_id, source=Coupon.Source.RETENTION, is_active=True)
        .exclude(valid_until__lte=when)
        .exclude(redemptions__member_id=subscription.member_id)
        .order_by("valid_until")
    )
    for coupon in candidates:
        try:
            coupon_check(coupon=coupon, member=subscription.member, tier=subscription.tier, when=when)
        except exceptions.CouponError:
            continue
        return coupon.code
    return ""
