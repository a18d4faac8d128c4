"""Writes for the members app: purchases, subscriptions, coupons, learning progress.

Every money path is atomic and writes its Order and an Event (through analytics.tracking.record_event, on
commit). Payments follow one shape: reserve (order pending + coupon redemption, under a lock) → charge outside the
transaction → settle (paid + access) or release (failed, redemption returned). A failed charge therefore leaves a
failed Order for the record and nothing else: no paid order, no enrollment, no consumed coupon.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from analytics.tracking import record_event
from members import exceptions
from members.commerce.idempotency import (
    Replay,
    clean_key,
    fingerprint,
    idempotency_attach,
    idempotency_claim,
    idempotency_fail,
    idempotency_succeed,
    lock_member,
)
from members.commerce.pricing import money
from members.commerce.services import (
    _charge,
    _create_order,
    _fail_order,
    _reserve_coupon,
    coupon_check,
    coupon_issue,
    order_settle,
    price_quote,
    register_settler,
)
from members.models import (
    BillingPeriod,
    Coupon,
    IdempotencyRecord,
    MembershipTier,
    Order,
    RetentionOffer,
    RetentionOfferAcceptance,
    Subscription,
    SubscriptionChange,
    User,
)
from members.subscriptions.proration import Proration, prorate_switch_to_yearly, prorate_upgrade
from members.webhooks import webhook_emit


def period_end(start: datetime, period: str) -> datetime:
    return start + (relativedelta(years=1) if period == BillingPeriod.YEAR else relativedelta(months=1))


def subscription_record(sub: Subscription, kind: str, at: datetime) -> SubscriptionChange:
    """Append `sub`'s state after a change to its ledger. Call it inside the transaction that saved the change, so
    the ledger and the row never disagree (a rolled-back change leaves no ledger row); one INSERT."""
    change = SubscriptionChange.of(sub, kind, at)
    change.save(force_insert=True)
    return change


@transaction.atomic
def subscription_staff_edit(*, subscription: Subscription, when: datetime | None = None) -> Subscription:
    """A staff edit (the admin form's instance, already validated) changes the state like any service does, so it
    goes into the ledger too, as of now: a back-dated edit still only became true when it was made."""
    subscription.save()
    subscription_record(subscription, SubscriptionChange.Kind.EDITED, when or timezone.now())
    return subscription


def subscription_start(
    *, member: User, tier: MembershipTier, period: str = BillingPeriod.MONTH, coupon_code: str = "",
    payment_token: str | None = None, use_trial: bool = True, idempotency_key: str = "", when: datetime | None = None,
) -> Subscription:
    """Subscribe. With a trial the member gets access now and the first charge happens at trial end (renewal job);
    without one, the first period is charged now and a paid Order written. A retried request (same key) returns
    the first subscription."""
    when = when or timezone.now()
    key = clean_key(idempotency_key)
    request_fp = fingerprint(tier=tier.pk, period=period, coupon=(coupon_code or "").strip().upper(),
                             token=payment_token or "", trial=bool(use_trial))
    if not tier.is_active:
        raise exceptions.SubscriptionError("This tier is not available.")
    with transaction.atomic():
        lock_member(member)
        claim = idempotency_claim(member=member, operation="subscription_start", key=key, fingerprint=request_fp)
        if isinstance(claim, Replay):
            assert claim.subscription is not None
            return claim.subscription
        if Subscription.objects.filter(member=member, status__in=Subscription.LIVE_STATUSES).exists():
            raise exceptions.AlreadySubscribed()
        had_trial = Subscription.objects.filter(member=member, trial_end__isnull=False).exists()
        if use_trial and tier.trial_days and not had_trial and not coupon_code:
            try:
                with transaction.atomic():
                    sub = Subscription.objects.create(
                        member=member, tier=tier, billing_period=period, status=Subscription.Status.TRIALING,
                        started_at=when, current_period_start=when,
                        current_period_end=when + timedelta(days=tier.trial_days),
                        trial_end=when + timedelta(days=tier.trial_days), created_at=when,
                    )
            except IntegrityError:
                raise exceptions.AlreadySubscribed() from None
            subscription_record(sub, SubscriptionChange.Kind.STARTED, when)
            record_event(member=member, kind="trial_started", obj=sub, occurred_at=when,
                         properties={"tier": tier.slug, "period": period})
            idempotency_succeed(claim, subscription=sub)
            return sub
        quote = price_quote(member=member, tier=tier, period=period, coupon_code=coupon_code, when=when)
        try:
            with transaction.atomic():
                sub = Subscription.objects.create(
                    member=member, tier=tier, billing_period=period, status=Subscription.Status.ACTIVE,
                    started_at=when, current_period_start=when, current_period_end=period_end(when, period),
                    created_at=when,
                )
        except IntegrityError:
            raise exceptions.AlreadySubscribed() from None
        # Live from here; a declined charge deletes the subscription and its ledger row with it.
        subscription_record(sub, SubscriptionChange.Kind.STARTED, when)
        order = _create_order(
            member=member, kind=Order.Kind.SUBSCRIPTION, tier=tier, billing_period=period, subscription=sub,
            period_start=when, list_price=quote.list_price, discount=quote.discount, amount_paid=quote.total,
            currency=quote.currency, coupon=quote.coupon, created_at=when,
        )
        if quote.coupon is not None:
            _reserve_coupon(coupon=quote.coupon, member=member, order=order, course=None, tier=tier)
        idempotency_attach(claim, order=order, subscription=sub)
    result = _charge(member=member, order=order, token=payment_token)
    if not result.ok:
        with transaction.atomic():
            _fail_order(order=order, reason=result.failure_reason)
            # The membership never started: remove it rather than leave a live subscription without payment.
            Order.objects.filter(pk=order.pk).update(subscription=None)
            sub.delete()
            error = exceptions.PaymentFailed(result.failure_reason)
            idempotency_fail(claim, error=error)
        raise error
    order_settle(order=order, provider_reference=result.reference, when=when)
    return sub


@register_settler("subscription_start")
def _settle_subscription_start(*, order: Order, when: datetime) -> None:
    record_event(member=order.member_id, kind="subscription_started", obj=order.subscription, occurred_at=when,
                 properties={"tier": order.tier.slug, "period": order.billing_period, "order_id": order.pk,
                             "amount": str(order.amount_paid)})


def subscription_renew(
    *, subscription: Subscription, when: datetime | None = None, payment_token: str | None = None, coupon_code: str = "",
    idempotency_key: str = "",
) -> Order:
    """Charge the next period: the one entry point for "Renew now" (form, API), the renewal job and dunning.

    Success: a paid renewal Order, the period moves on (to a scheduled downgrade or period switch, if any).
    Failure: a failed Order and PaymentFailed; at or after the period end the subscription goes past_due with a
    grace period (dunning takes over), while a member's own early renewal that is declined changes nothing else.
    A retried request (same key) returns the first order; an early renewal when the next period is already paid
    is refused (AlreadyRenewed), so two tabs cannot prepay two periods by accident.
    """
    when = when or timezone.now()
    key = clean_key(idempotency_key)
    request_fp = fingerprint(subscription=subscription.pk, token=payment_token or "",
                             coupon=(coupon_code or "").strip().upper())
    with transaction.atomic():
        member = lock_member(subscription.member_id)
        claim = idempotency_claim(member=member, operation="subscription_renew", key=key, fingerprint=request_fp)
        if isinstance(claim, Replay):
            assert claim.order is not None
            return claim.order
        sub = Subscription.objects.select_for_update().select_related("tier", "member").get(pk=subscription.pk)
        if sub.status not in Subscription.LIVE_STATUSES:
            raise exceptions.SubscriptionError("Only a live membership can be renewed.")
        if sub.status != Subscription.Status.PAST_DUE and sub.current_period_start > when:
            raise exceptions.AlreadyRenewed()
        tier, period = sub.next_tier, sub.next_billing_period
        # An accepted save offer is a personal coupon for the next renewal: every renewal path (the hourly job,
        # dunning retries, the member's own "renew now") applies it, so it is never forgotten.
        waiting = Order.objects.filter(subscription=sub, kind=Order.Kind.SUBSCRIPTION,
                                       status=Order.Status.PENDING, provider__in=PAY_LINK_PROVIDERS).first()
        if waiting is not None:
            # A pay-link renewal is already open (a dunning retry): remind, never open a second order. The attempt
            # is counted (this transaction commits); the reminder goes out and the caller hears "awaiting" below.
            sub.renewal_attempts += 1
            sub.last_renewal_attempt_at = when
            sub.save(update_fields=["renewal_attempts", "last_renewal_attempt_at"])
            transaction.on_commit(lambda: pay_link_send(order=waiting))
        else:
            coupon_code = coupon_code or renewal_coupon_code(subscription=sub, when=when)
            quote = price_quote(member=sub.member, tier=tier, period=period, coupon_code=coupon_code, when=when)
            order = _create_order(
                member=sub.member, kind=Order.Kind.SUBSCRIPTION, tier=tier, billing_period=period, subscription=sub,
                period_start=sub.current_period_end, is_renewal=sub.status != Subscription.Status.TRIALING,
                list_price=quote.list_price, discount=quote.discount, amount_paid=quote.total, currency=quote.currency,
                coupon=quote.coupon, created_at=when,
            )
            if quote.coupon is not None:
                _reserve_coupon(coupon=quote.coupon, member=sub.member, order=order, course=None, tier=tier)
            idempotency_attach(claim, order=order, subscription=sub)
    if waiting is not None:
        raise exceptions.PaymentFailed("Awaiting payment through the emailed link")
    result = _charge(member=sub.member, order=order, token=payment_token)
    if result.ok:
        return order_settle(order=order, provider_reference=result.reference, when=when)
    with transaction.atomic():
        lock_member(sub.member_id)
        sub = Subscription.objects.select_for_update().get(pk=sub.pk)
        error = exceptions.PaymentFailed(result.failure_reason)
        idempotency_fail(claim, error=error)
        # Declined before anything was due (the member's own early renewal): the failed order is all that changes.
        early = sub.status != Subscription.Status.PAST_DUE and when < sub.current_period_end
        if result.pending:
            # No off-session charge at this provider: the order stays pending and the member pays through the
            # emailed link; the dunning schedule below treats it like a declined charge until the provider says paid.
            transaction.on_commit(lambda: pay_link_send(order=order))
        else:
            _fail_order(order=order, reason=result.failure_reason)
        if not early:
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
    raise error


@register_settler("subscription_renew")
def _settle_renewal(*, order: Order, when: datetime) -> None:
    sub = Subscription.objects.select_for_update().select_related("tier").get(pk=order.subscription_id)
    sub.last_renewal_attempt_at = when
    was_trial = sub.status == Subscription.Status.TRIALING
    change = (SubscriptionChange.Kind.TRIAL_CONVERTED if was_trial else SubscriptionChange.Kind.RECOVERED
              if sub.status == Subscription.Status.PAST_DUE else SubscriptionChange.Kind.RENEWED)
    # A renewal recovered during dunning starts from the payment, not from the lapsed period end.
    start = max(sub.current_period_end, when) if sub.status == Subscription.Status.PAST_DUE else sub.current_period_end
    # The order says what was paid for: a scheduled downgrade or yearly -> monthly switch takes effect now.
    sub.tier_id = order.tier_id
    sub.billing_period = order.billing_period or sub.billing_period
    sub.scheduled_tier = None
    sub.scheduled_billing_period = ""
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
    webhook_emit(event="subscription.renewed", data={
        "member_id": sub.member_id, "subscription_id": sub.pk, "order_id": order.pk,
        "amount": str(order.amount_paid), "currency": order.currency,
        "current_period_end": sub.current_period_end})


PAY_LINK_PROVIDERS = ("alipay", "wechatpay")


def pay_link_send(*, order: Order) -> None:
    """Email the member a link that starts the provider's checkout for this pending renewal order."""
    from members.commerce.pay_links import send_pay_link

    send_pay_link(order=order)


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
        webhook_emit(event="subscription.cancelled", data={
            "member_id": sub.member_id, "subscription_id": sub.pk, "reason": reason,
            "ends_at": sub.current_period_end})
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


@dataclass(frozen=True)
class PlanChange:
    """What a tier change or period switch did: charged now (order set) or scheduled for the period end."""

    subscription: Subscription
    order: Order | None
    scheduled: bool


def _period_value(*, sub: Subscription) -> Decimal:
    """What the current period is worth for a credit: what was paid for it when the period's own order is for the
    current tier and period, else the list price (an earlier upgrade this period, imported history, a gift)."""
    paid = (
        Order.objects.filter(subscription=sub, status=Order.Status.PAID, period_start=sub.current_period_start)
        .order_by("created_at", "pk").first()
    )
    if paid is not None and paid.tier_id == sub.tier_id and paid.billing_period == sub.billing_period:
        return money(paid.amount_paid)
    return money(sub.tier.price_for(sub.billing_period))


def subscription_proration(
    *, subscription: Subscription, tier: MembershipTier | None = None, period: str | None = None,
    when: datetime | None = None,
) -> Proration:
    """The quote for an upgrade (tier) or a monthly -> yearly switch (period) applied at `when`."""
    when = when or timezone.now()
    sub = subscription
    if period == BillingPeriod.YEAR:
        return prorate_switch_to_yearly(start=sub.current_period_start, end=sub.current_period_end, when=when,
                                        period_value=_period_value(sub=sub), yearly_price=sub.tier.yearly_price)
    assert tier is not None
    return prorate_upgrade(start=sub.current_period_start, end=sub.current_period_end, when=when,
                           period_value=_period_value(sub=sub), new_price=money(tier.price_for(sub.billing_period)))


def _plan_change(
    *, subscription: Subscription, operation: str, tier: MembershipTier | None, period: str | None,
    payment_token: str | None, idempotency_key: str, when: datetime,
) -> PlanChange:
    """Tier change and period switch share one money path: lock, claim the key, decide now-or-at-period-end,
    reserve a prorated order, charge outside the transaction, settle (members.commerce.services.order_settle)."""
    key = clean_key(idempotency_key)
    request_fp = fingerprint(subscription=subscription.pk, tier=tier.pk if tier else None, period=period,
                             token=payment_token or "")
    with transaction.atomic():
        member = lock_member(subscription.member_id)
        claim = idempotency_claim(member=member, operation=operation, key=key, fingerprint=request_fp)
        if isinstance(claim, Replay):
            assert claim.subscription is not None
            return PlanChange(subscription=claim.subscription, order=claim.order, scheduled=claim.order is None)
        sub = Subscription.objects.select_for_update().select_related("tier").get(pk=subscription.pk)
        if sub.status not in (Subscription.Status.TRIALING, Subscription.Status.ACTIVE):
            raise exceptions.SubscriptionError("Only an active membership can change plan; settle a failed payment first.")
        if sub.cancel_at_period_end:
            raise exceptions.SubscriptionError("Undo the pending cancellation before changing plan.")
        new_tier = tier or sub.tier
        new_period = period or sub.billing_period
        if tier is not None and (not tier.is_active or tier.currency != sub.tier.currency):
            raise exceptions.SubscriptionError("This tier is not available.")
        if new_tier.pk == sub.tier_id and new_period == sub.billing_period:
            if not (sub.scheduled_tier_id or sub.scheduled_billing_period):
                raise exceptions.SubscriptionError("This is already your plan.")
            # Asking for the current plan again undoes a scheduled downgrade or switch.
            sub.scheduled_tier = None
            sub.scheduled_billing_period = ""
            return _plan_change_done(claim=claim, sub=sub, when=when, kind=SubscriptionChange.Kind.CHANGE_SCHEDULED)
        if sub.status == Subscription.Status.TRIALING:
            # Nothing has been paid yet: the trial carries on with the new plan, charged at trial end.
            sub.tier, sub.billing_period = new_tier, new_period
            sub.scheduled_tier, sub.scheduled_billing_period = None, ""
            return _plan_change_done(claim=claim, sub=sub, when=when, kind=SubscriptionChange.Kind.TIER_CHANGED
                                     if tier is not None else SubscriptionChange.Kind.PERIOD_CHANGED)
        upgrade = (
            new_period == BillingPeriod.YEAR and sub.billing_period == BillingPeriod.MONTH
            if period is not None else new_tier.price_for(sub.billing_period) > sub.tier.price_for(sub.billing_period)
        )
        if not upgrade:
            # Downgrade, or yearly -> monthly: the member keeps what they paid for until the period ends.
            if tier is not None:
                sub.scheduled_tier = new_tier
            else:
                sub.scheduled_billing_period = new_period
            return _plan_change_done(claim=claim, sub=sub, when=when, kind=SubscriptionChange.Kind.CHANGE_SCHEDULED)
        proration = subscription_proration(subscription=sub, tier=new_tier if tier is not None else None,
                                           period=period, when=when)
        order = _create_order(
            member=member, kind=Order.Kind.SUBSCRIPTION, tier=new_tier, billing_period=new_period, subscription=sub,
            period_start=when if period is not None else sub.current_period_start, is_renewal=False,
            list_price=proration.charge, discount=min(proration.credit, proration.charge), amount_paid=proration.due,
            currency=new_tier.currency, created_at=when,
        )
        idempotency_attach(claim, order=order, subscription=sub)
    result = _charge(member=member, order=order, token=payment_token)
    if not result.ok:
        _fail_order(order=order, reason=result.failure_reason)
        error = exceptions.PaymentFailed(result.failure_reason)
        idempotency_fail(claim, error=error)
        raise error
    order = order_settle(order=order, provider_reference=result.reference, when=when)
    return PlanChange(subscription=Subscription.objects.select_related("tier").get(pk=sub.pk), order=order,
                      scheduled=False)


def _plan_change_done(*, claim: IdempotencyRecord, sub: Subscription, when: datetime, kind: str) -> PlanChange:
    sub.save(update_fields=["tier", "billing_period", "scheduled_tier", "scheduled_billing_period"])
    subscription_record(sub, kind, when)
    record_event(member=sub.member_id, kind="subscription_plan_scheduled" if kind == SubscriptionChange.Kind.CHANGE_SCHEDULED
                 else "subscription_plan_changed", obj=sub, occurred_at=when,
                 properties={"tier": sub.next_tier.slug, "period": sub.next_billing_period})
    idempotency_succeed(claim, subscription=sub)
    return PlanChange(subscription=sub, order=None, scheduled=kind == SubscriptionChange.Kind.CHANGE_SCHEDULED)


def subscription_change_tier(
    *, subscription: Subscription, tier: MembershipTier, payment_token: str | None = None, idempotency_key: str = "",
    when: datetime | None = None,
) -> PlanChange:
    """Change tier. Upgrade (dearer for the same period): now, charging the prorated difference (the unused part of
    the current period is credited). Downgrade: at the period end, charged by that renewal. Choosing the current
    tier again undoes a scheduled downgrade."""
    return _plan_change(subscription=subscription, operation="subscription_change_tier", tier=tier, period=None,
                        payment_token=payment_token, idempotency_key=idempotency_key, when=when or timezone.now())


def subscription_switch_period(
    *, subscription: Subscription, period: str, payment_token: str | None = None, idempotency_key: str = "",
    when: datetime | None = None,
) -> PlanChange:
    """Switch monthly <-> yearly. Monthly -> yearly: now, a yearly period starts today and the unused part of the
    month is credited. Yearly -> monthly: at the end of the paid year. Choosing the current period again undoes a
    scheduled switch."""
    if period not in BillingPeriod.values:
        raise exceptions.SubscriptionError("Unknown billing period.")
    return _plan_change(subscription=subscription, operation="subscription_switch_period", tier=None, period=period,
                        payment_token=payment_token, idempotency_key=idempotency_key, when=when or timezone.now())


@register_settler("subscription_change_tier")
@register_settler("subscription_switch_period")
def _settle_plan_change(*, order: Order, when: datetime) -> None:
    sub = Subscription.objects.select_for_update().select_related("tier").get(pk=order.subscription_id)
    previous = {"tier": sub.tier.slug, "period": sub.billing_period}
    if order.billing_period != sub.billing_period:
        # Monthly -> yearly: the yearly period starts at the switch.
        sub.billing_period = order.billing_period
        sub.current_period_start = order.period_start or when
        sub.current_period_end = period_end(sub.current_period_start, sub.billing_period)
        sub.scheduled_billing_period = ""
        kind = SubscriptionChange.Kind.PERIOD_CHANGED
    else:
        kind = SubscriptionChange.Kind.TIER_CHANGED
    sub.tier_id = order.tier_id
    sub.scheduled_tier = None
    sub.save()
    subscription_record(sub, kind, when)
    record_event(member=sub.member_id, kind="subscription_plan_changed", obj=sub, occurred_at=when, properties={
        "from_tier": previous["tier"], "from_period": previous["period"], "tier": sub.tier.slug,
        "period": sub.billing_period, "order_id": order.pk, "amount": str(order.amount_paid),
    })


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
    *, subscription: Subscription, offer: RetentionOffer, reason: str = "", idempotency_key: str = "",
    when: datetime | None = None,
) -> Coupon | Subscription:
    """Accept a save offer instead of cancelling: once per subscription and billing period (a unique constraint on
    RetentionOfferAcceptance). Discount: a personal membership coupon that the next renewal uses (see
    renewal_coupon_code). Pause: subscription_pause. Either way the cancellation never happens."""
    when = when or timezone.now()
    key = clean_key(idempotency_key)
    request_fp = fingerprint(subscription=subscription.pk, offer=offer.pk, reason=reason)
    with transaction.atomic():
        member = lock_member(subscription.member_id)
        claim = idempotency_claim(member=member, operation="retention_offer_accept", key=key, fingerprint=request_fp)
        if isinstance(claim, Replay):
            result = claim.coupon or claim.subscription
            assert result is not None
            return result
        sub = Subscription.objects.select_for_update().select_related("tier", "member").get(pk=subscription.pk)
        if not offer.is_active:
            raise exceptions.SubscriptionError("This offer is no longer available.")
        if sub.status not in Subscription.LIVE_STATUSES:
            raise exceptions.SubscriptionError("This membership is not live.")
        try:
            with transaction.atomic():
                acceptance = RetentionOfferAcceptance.objects.create(
                    subscription=sub, member=member, offer=offer, period_start=sub.current_period_start,
                    reason=reason, accepted_at=when,
                )
        except IntegrityError:
            raise exceptions.OfferAlreadyAccepted() from None
        record_event(member=sub.member_id, kind="retention_offer_accepted", obj=sub, occurred_at=when,
                     properties={"offer_id": offer.pk, "kind": offer.kind, "reason": reason})
        if offer.kind == RetentionOffer.Kind.PAUSE:
            paused = subscription_pause(subscription=sub, days=offer.pause_days or 30, when=when)
            idempotency_succeed(claim, subscription=paused)
            return paused
        valid_days = max(1, (sub.current_period_end - when).days) + settings.RENEWAL_GRACE_DAYS + 30
        coupon = coupon_issue(
            member=sub.member, percent_off=offer.percent_off or Decimal("20"), applies_to=Coupon.AppliesTo.TIERS,
            valid_days=valid_days, source=Coupon.Source.RETENTION, description=offer.name,
            currency=sub.tier.currency, when=when,
        )
        acceptance.coupon = coupon
        acceptance.save(update_fields=["coupon"])
        idempotency_succeed(claim, coupon=coupon, subscription=sub)
    return coupon


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
