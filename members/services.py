"""Writes for the members app: purchases, subscriptions, coupons, learning progress.

Every money path is atomic and writes its Order and an Event (through analytics.tracking.record_event, on
commit). Payments follow one shape: reserve (order pending + coupon redemption, under a lock) → charge outside the
transaction → settle (paid + access) or release (failed, redemption returned). A failed charge therefore leaves a
failed Order for the record and nothing else: no paid order, no enrollment, no consumed coupon.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from analytics.tracking import record_event
from members import exceptions
from members.learning import services as learning_services
from members.models import (
    Benefit,
    BillingPeriod,
    Coupon,
    CouponRedemption,
    Course,
    Enrollment,
    Lesson,
    LessonProgress,
    MembershipTier,
    Order,
    PaymentMethod,
    Subscription,
    SubscriptionChange,
    User,
)
from members.payments import ChargeResult, get_provider
from members.pricing import ZERO, Quote, coupon_discount, money, percent_of
from members.selectors import active_tier, member_has_course_access

DEFAULT_TOKEN = "local:ok"


# --------------------------------------------------------------------------------------------------------------
# Accounts


def member_create(
    *, email: str, password: str | None, display_name: str = "", preferred_language: str = "en", **extra: object
) -> User:
    user = User.objects.create_user(
        email=email, password=password, display_name=display_name, preferred_language=preferred_language, **extra
    )
    record_event(member=user, kind="signed_up", obj=user)
    return user


def payment_method_set(*, member: User, token: str, label: str, provider: str = "local") -> PaymentMethod:
    """Replace the member's default payment method with a provider reference (never card data)."""
    with transaction.atomic():
        PaymentMethod.objects.filter(member=member, is_default=True).update(is_default=False)
        method = PaymentMethod.objects.create(member=member, token=token, label=label, provider=provider, is_default=True)
    record_event(member=member, kind="payment_method_updated", obj=method)
    return method


def _default_token(member: User) -> str:
    method = PaymentMethod.objects.filter(member=member, is_default=True).first()
    return method.token if method else DEFAULT_TOKEN


# --------------------------------------------------------------------------------------------------------------
# Coupons and pricing


def coupon_find(*, code: str) -> Coupon:
    code = (code or "").strip()
    try:
        return Coupon.objects.prefetch_related("courses", "tiers").get(code__iexact=code)
    except Coupon.DoesNotExist:
        raise exceptions.CouponNotFound() from None


def coupon_check(
    *, coupon: Coupon, member: User, course: Course | None = None, tier: MembershipTier | None = None,
    when: datetime | None = None,
) -> None:
    """Raise the specific CouponError that explains why this coupon can't be used here; return if it can."""
    when = when or timezone.now()
    if not coupon.is_active:
        raise exceptions.CouponExpired()
    if coupon.valid_from > when:
        raise exceptions.CouponNotYetValid()
    if coupon.valid_until is not None and coupon.valid_until <= when:
        raise exceptions.CouponExpired()
    if coupon.assigned_member_id is not None and coupon.assigned_member_id != member.pk:
        raise exceptions.CouponNotYours()
    if course is not None:
        if coupon.applies_to == Coupon.AppliesTo.TIERS:
            raise exceptions.CouponNotApplicable()
        if coupon.applies_to == Coupon.AppliesTo.COURSES and coupon.courses.exists() and not coupon.courses.filter(pk=course.pk).exists():
            raise exceptions.CouponNotApplicable()
    if tier is not None:
        if coupon.applies_to == Coupon.AppliesTo.COURSES:
            raise exceptions.CouponNotApplicable()
        if coupon.applies_to == Coupon.AppliesTo.TIERS and coupon.tiers.exists() and not coupon.tiers.filter(pk=tier.pk).exists():
            raise exceptions.CouponNotApplicable()
    if coupon.max_redemptions is not None and coupon.times_redeemed >= coupon.max_redemptions:
        raise exceptions.CouponUsedUp()
    if CouponRedemption.objects.filter(coupon=coupon, member=member).count() >= coupon.max_per_member:
        raise exceptions.CouponAlreadyUsed()


def price_quote(
    *, member: User, course: Course | None = None, tier: MembershipTier | None = None, period: str = BillingPeriod.MONTH,
    coupon_code: str = "", when: datetime | None = None,
) -> Quote:
    """Price an item for a member: list price, then the tier's course discount, then the coupon on what remains."""
    if (course is None) == (tier is None):
        raise ValueError("Quote exactly one of course or tier.")
    when = when or timezone.now()
    if course is not None:
        list_price, currency = money(course.price), course.currency
        member_tier = active_tier(member=member, when=when)
        pct = member_tier.benefit_value(Benefit.Kind.COURSE_DISCOUNT) if member_tier else None
        member_discount = percent_of(list_price, pct) if pct else ZERO
    else:
        assert tier is not None
        list_price, currency, member_discount = money(tier.price_for(period)), tier.currency, ZERO
    coupon = None
    off = ZERO
    if coupon_code:
        coupon = coupon_find(code=coupon_code)
        coupon_check(coupon=coupon, member=member, course=course, tier=tier, when=when)
        off = coupon_discount(coupon=coupon, amount=list_price - member_discount)
    return Quote(list_price=list_price, member_discount=member_discount, coupon_discount=off, coupon=coupon, currency=currency)


def _reserve_coupon(*, coupon: Coupon, member: User, order: Order, course: Course | None, tier: MembershipTier | None) -> None:
    """Take one use of the coupon for this order. Call inside a transaction.

    Lock before you check: the coupon row is locked (PostgreSQL: SELECT ... FOR UPDATE; SQLite serialises writers)
    so two concurrent checkouts cannot both see the last free use. The conditional UPDATE is the second guard: it
    only increments while uses remain, and the CHECK constraint refuses anything past max_redemptions.
    """
    locked = Coupon.objects.select_for_update().get(pk=coupon.pk)
    coupon_check(coupon=locked, member=member, course=course, tier=tier, when=order.created_at)
    updated = (
        Coupon.objects.filter(pk=coupon.pk)
        .filter(Q(max_redemptions__isnull=True) | Q(times_redeemed__lt=F("max_redemptions")))
        .update(times_redeemed=F("times_redeemed") + 1)
    )
    if not updated:
        raise exceptions.CouponUsedUp()
    CouponRedemption.objects.create(coupon=coupon, member=member, order=order, redeemed_at=order.created_at)


def _release_coupon(*, order: Order) -> None:
    redemption = CouponRedemption.objects.filter(order=order).first()
    if redemption is None:
        return
    redemption.delete()
    Coupon.objects.filter(pk=redemption.coupon_id, times_redeemed__gt=0).update(times_redeemed=F("times_redeemed") - 1)


def coupon_issue(
    *, member: User | None, code: str | None = None, percent_off: Decimal | None = None, amount_off: Decimal | None = None,
    applies_to: str = Coupon.AppliesTo.ALL, valid_days: int = 14, source: str = Coupon.Source.MANUAL,
    description: str = "", currency: str = "CNY", when: datetime | None = None, max_redemptions: int | None = 1,
) -> Coupon:
    """Create a personal (or, with member=None, general) coupon. Campaigns and save offers use this."""
    when = when or timezone.now()
    coupon = Coupon.objects.create(
        code=code or f"{source[:3].upper()}-{uuid.uuid4().hex[:10].upper()}",
        description=description,
        discount_type=Coupon.DiscountType.PERCENT if percent_off is not None else Coupon.DiscountType.FIXED,
        percent_off=percent_off,
        amount_off=amount_off,
        currency=currency,
        applies_to=applies_to,
        valid_from=when,
        valid_until=when + timedelta(days=valid_days),
        max_redemptions=max_redemptions,
        max_per_member=1,
        assigned_member=member,
        source=source,
        created_at=when,
    )
    if member is not None:
        record_event(member=member, kind="coupon_issued", obj=coupon, occurred_at=when, properties={"source": source})
    return coupon


def coupons_generate_bulk(*, count: int, prefix: str, percent_off: Decimal | None = None, amount_off: Decimal | None = None,
                          applies_to: str = Coupon.AppliesTo.ALL, valid_days: int = 30) -> list[Coupon]:
    """N unique single-use codes. Codes collide with negligible probability; the unique index catches it if so."""
    now = timezone.now()
    coupons = [
        Coupon(
            code=f"{prefix.upper()}-{uuid.uuid4().hex[:8].upper()}",
            discount_type=Coupon.DiscountType.PERCENT if percent_off is not None else Coupon.DiscountType.FIXED,
            percent_off=percent_off, amount_off=amount_off, applies_to=applies_to, valid_from=now,
            valid_until=now + timedelta(days=valid_days), max_redemptions=1, max_per_member=1,
            source=Coupon.Source.BULK,
        )
        for _ in range(count)
    ]
    with transaction.atomic():
        return Coupon.objects.bulk_create(coupons)


# --------------------------------------------------------------------------------------------------------------
# Buying a course


def _charge(*, member: User, order: Order, token: str | None) -> ChargeResult:
    if order.amount_paid == ZERO:
        return ChargeResult(ok=True, reference="free")
    provider = get_provider()
    try:
        return provider.charge(
            token=token or _default_token(member), amount=order.amount_paid, currency=order.currency,
            description=order.item_title, idempotency_key=f"order-{order.pk}",
        )
    except Exception as exc:  # noqa: BLE001 - any provider crash is a failed charge, never a half-paid order
        return ChargeResult(ok=False, failure_reason=f"Provider error: {exc}")


def _fail_order(*, order: Order, reason: str) -> None:
    with transaction.atomic():
        Order.objects.filter(pk=order.pk).update(status=Order.Status.FAILED, failure_reason=reason[:200])
        _release_coupon(order=order)
        record_event(member=order.member_id, kind="payment_failed", obj=order,
                     properties={"amount": str(order.amount_paid), "reason": reason[:200]})
    order.status = Order.Status.FAILED
    order.failure_reason = reason[:200]


def course_purchase(
    *, member: User, course: Course, coupon_code: str = "", payment_token: str | None = None, when: datetime | None = None
) -> Order:
    """Buy a course. Returns the paid Order; raises PaymentFailed (with the failed Order recorded) or a CouponError."""
    when = when or timezone.now()
    if not course.is_published:
        raise exceptions.MembersError("This course is not for sale.")
    if Enrollment.objects.filter(member=member, course=course).exists():
        raise exceptions.AlreadyOwned()
    quote = price_quote(member=member, course=course, coupon_code=coupon_code, when=when)
    with transaction.atomic():
        order = Order.objects.create(
            member=member, kind=Order.Kind.COURSE, course=course, list_price=quote.list_price, discount=quote.discount,
            amount_paid=quote.total, currency=quote.currency, coupon=quote.coupon, status=Order.Status.PENDING,
            created_at=when, provider=get_provider().name,
        )
        if quote.coupon is not None:
            _reserve_coupon(coupon=quote.coupon, member=member, order=order, course=course, tier=None)
    result = _charge(member=member, order=order, token=payment_token)
    if not result.ok:
        _fail_order(order=order, reason=result.failure_reason)
        raise exceptions.PaymentFailed(result.failure_reason)
    with transaction.atomic():
        order.status = Order.Status.PAID
        order.paid_at = when
        order.provider_reference = result.reference
        order.save(update_fields=["status", "paid_at", "provider_reference"])
        Enrollment.objects.get_or_create(
            member=member, course=course, defaults={"source": Enrollment.Source.PURCHASE, "enrolled_at": when}
        )
        record_event(member=member, kind="course_purchased", obj=course, occurred_at=when, properties={
            "order_id": order.pk, "amount": str(order.amount_paid), "coupon": quote.coupon.code if quote.coupon else "",
        })
        if quote.coupon is not None:
            record_event(member=member, kind="coupon_redeemed", obj=quote.coupon, occurred_at=when,
                         properties={"order_id": order.pk})
    return order


def order_refund(*, order: Order, when: datetime | None = None) -> Order:
    when = when or timezone.now()
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status != Order.Status.PAID:
            raise exceptions.MembersError("Only a paid order can be refunded.")
        result = get_provider().refund(reference=locked.provider_reference, amount=locked.amount_paid, currency=locked.currency)
        if not result.ok:
            raise exceptions.PaymentFailed(result.failure_reason)
        locked.status = Order.Status.REFUNDED
        locked.refunded_at = when
        locked.save(update_fields=["status", "refunded_at"])
        if locked.kind == Order.Kind.COURSE:
            Enrollment.objects.filter(member_id=locked.member_id, course_id=locked.course_id,
                                      source=Enrollment.Source.PURCHASE).delete()
        record_event(member=locked.member_id, kind="order_refunded", obj=locked, occurred_at=when,
                     properties={"amount": str(locked.amount_paid)})
    return locked


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
# Learning


def lesson_complete(*, member: User, lesson: Lesson, when: datetime | None = None) -> LessonProgress:
    """Mark a lesson done (idempotent). Members with all-course access are enrolled on first use."""
    when = when or timezone.now()
    course = lesson.course
    if not lesson.is_preview and not member_has_course_access(member=member, course=course, when=when):
        raise exceptions.LessonLocked()
    learning_services.lesson_open_check(member=member, lesson=lesson, when=when)  # the drip schedule
    with transaction.atomic():
        enrollment, _created = Enrollment.objects.get_or_create(
            member=member, course=course, defaults={"source": Enrollment.Source.MEMBERSHIP, "enrolled_at": when}
        )
        progress, _ = LessonProgress.objects.get_or_create(member=member, lesson=lesson, defaults={"started_at": when})
        if progress.completed_at is None:
            progress.completed_at = when
            progress.save(update_fields=["completed_at"])
            record_event(member=member, kind="lesson_completed", obj=lesson, occurred_at=when,
                         properties={"course_id": course.pk})
        enrollment.last_activity_at = when
        total = course.lessons.count()
        done = LessonProgress.objects.filter(member=member, lesson__course=course, completed_at__isnull=False).count()
        if total and done >= total and enrollment.completed_at is None:
            enrollment.completed_at = when
            record_event(member=member, kind="course_completed", obj=course, occurred_at=when)
        enrollment.save(update_fields=["last_activity_at", "completed_at"])
    learning_services.certificate_issue_if_earned(member=member, course=course, when=when)
    return progress


def lesson_view(*, member: User, lesson: Lesson, when: datetime | None = None) -> None:
    """Record that a lesson was opened (drives 'continue where you stopped')."""
    when = when or timezone.now()
    with transaction.atomic():
        LessonProgress.objects.get_or_create(member=member, lesson=lesson, defaults={"started_at": when})
        Enrollment.objects.filter(member=member, course_id=lesson.course_id).update(last_activity_at=when)
        record_event(member=member, kind="lesson_viewed", obj=lesson, occurred_at=when,
                     properties={"course_id": lesson.course_id})


# --------------------------------------------------------------------------------------------------------------
# Site services (issue 3): profile, marketing email preference, save offers in the cancellation flow

from members.models import RetentionOffer  # noqa: E402 - kept inside this section so the shared import block stays untouched


def member_update_profile(
    *, member: User, display_name: str, preferred_language: str, time_zone: str, marketing_opt_in: bool
) -> User:
    previous_opt_in = member.marketing_opt_in
    member.display_name = display_name.strip()
    member.preferred_language = preferred_language
    member.time_zone = time_zone
    member.marketing_opt_in = marketing_opt_in
    member.save(update_fields=["display_name", "preferred_language", "time_zone", "marketing_opt_in"])
    record_event(member=member, kind="profile_updated", obj=member)
    if previous_opt_in != marketing_opt_in:
        record_event(member=member, kind="marketing_opt_in" if marketing_opt_in else "marketing_unsubscribed",
                     obj=member, properties={"via": "profile"})
    return member


def member_unsubscribe(*, member: User, via: str = "link") -> bool:
    """Turn marketing email off. Returns False when it already was, so a second click records nothing."""
    updated = User.objects.filter(pk=member.pk, marketing_opt_in=True).update(marketing_opt_in=False)
    member.marketing_opt_in = False
    if updated:
        record_event(member=member, kind="marketing_unsubscribed", obj=member, properties={"via": via})
    return bool(updated)


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
