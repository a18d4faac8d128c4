"""Writes for commerce: coupons, quotes, course purchases, refunds, payment methods.

Every money path is atomic and writes its Order and an Event (through analytics.tracking.record_event, on
commit). Payments follow one shape: reserve (order pending + coupon redemption, under a lock) -> charge outside the
transaction -> settle (paid + access) or release (failed, redemption returned). A failed charge therefore leaves a
failed Order for the record and nothing else: no paid order, no enrollment, no consumed coupon.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from analytics.tracking import record_event
from members import exceptions
from members.catalogue.entitlements import CourseEntitlement
from members.catalogue.selectors import member_course_entitlement
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
from members.commerce.invoices import billing_document_issue
from members.commerce.payments import ChargeResult, get_provider
from members.commerce.pricing import ZERO, Quote, coupon_discount, money
from members.commerce.receipts import receipt_queue
from members.models import (
    BillingDocument,
    BillingPeriod,
    Coupon,
    CouponRedemption,
    Course,
    Enrollment,
    IdempotencyRecord,
    MembershipTier,
    Order,
    PaymentMethod,
    User,
)
from members.webhooks import webhook_emit

DEFAULT_TOKEN = "local:ok"


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
        # The member's price comes from the one function that decides entitlements (members.commerce).
        entitlement = member_course_entitlement(member=member, course=course, when=when)
        list_price, currency = money(course.price), course.currency
        # Included in the member's tier: the quote says 0.00 (checkout refuses to charge it anyway).
        member_discount = entitlement.member_discount if entitlement.status in (
            CourseEntitlement.FOR_SALE, CourseEntitlement.INCLUDED) else ZERO
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


def coupon_save(*, coupon: Coupon) -> Coupon:
    """Staff create or edit a coupon (the admin's form instance, already validated): the one write for a coupon
    whose terms a person typed in. A new coupon counts no redemptions, whatever the form carried."""
    if coupon.pk is None:
        coupon.times_redeemed = 0
        coupon.source = coupon.source or Coupon.Source.MANUAL
    coupon.save()
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




def _charge(*, member: User, order: Order, token: str | None) -> ChargeResult:
    if order.amount_paid == ZERO:
        return ChargeResult(ok=True, reference="free")
    token = token or _default_token(member)
    if token.split(":", 1)[0] in PROVIDER_TOKEN_PREFIXES:
        return _charge_with_adapter(order=order, token=token)
    provider = get_provider()
    try:
        return provider.charge(
            token=token, amount=order.amount_paid, currency=order.currency,
            description=order.item_title, idempotency_key=f"order-{order.pk}",
        )
    except Exception as exc:  # noqa: BLE001 - any provider crash is a failed charge, never a half-paid order
        return ChargeResult(ok=False, failure_reason=f"Provider error: {exc}")


PROVIDER_TOKEN_PREFIXES = {"alipay", "wechatpay", "stripe"}


def _charge_with_adapter(*, order: Order, token: str) -> ChargeResult:
    """A saved method of a real provider ("stripe:<customer>:<pm>", "alipay:<account>", "wechatpay:<openid>"):
    charge off-session where the provider can; otherwise the order stays pending for a pay link."""
    from members.commerce.providers import ProviderNotConfigured, get_adapter

    name = token.split(":", 1)[0]
    try:
        adapter = get_adapter(name)
        notice = adapter.charge_off_session(order=order, method_token=token)
    except ProviderNotConfigured:
        return ChargeResult(ok=False, failure_reason=f"Payment provider {name} is not configured")
    except Exception as exc:  # noqa: BLE001 - a provider crash is a failed charge, never a half-paid order
        return ChargeResult(ok=False, failure_reason=f"Provider error: {exc}")
    Order.objects.filter(pk=order.pk).update(provider=name)
    if notice is None:
        return ChargeResult(ok=False, pending=True, failure_reason="Awaiting payment through the emailed link")
    if notice.processing:
        # Accepted, not finished (Alipay 10003): the notification or reconciliation settles the order. The pay link
        # that goes out meanwhile cannot charge twice: the provider refuses a second payment of the same order.
        return ChargeResult(ok=False, pending=True, failure_reason="Awaiting the provider's confirmation")
    if not notice.paid:
        return ChargeResult(ok=False, failure_reason="Card declined")
    return ChargeResult(ok=True, reference=notice.reference)


def _fail_order(*, order: Order, reason: str) -> None:
    with transaction.atomic():
        lock_member(order.member_id)  # the reserve and settle steps' lock order: member first
        Order.objects.filter(pk=order.pk).update(status=Order.Status.FAILED, failure_reason=reason[:200])
        _release_coupon(order=order)
        record_event(member=order.member_id, kind="payment_failed", obj=order,
                     properties={"amount": str(order.amount_paid), "reason": reason[:200]})
    order.status = Order.Status.FAILED
    order.failure_reason = reason[:200]


def _create_order(**fields: object) -> Order:
    """INSERT the pending order in a savepoint: the open-order constraints refuse a second order for the same
    course or membership period, which only a request racing past the member lock (or another door) can reach."""
    try:
        with transaction.atomic():
            fields.setdefault("provider", get_provider().name)
            return Order.objects.create(status=Order.Status.PENDING, **fields)
    except IntegrityError:
        raise exceptions.PaymentInProgress() from None


def course_purchase(
    *, member: User, course: Course, coupon_code: str = "", payment_token: str | None = None,
    idempotency_key: str = "", when: datetime | None = None, provider: str = "",
) -> Order:
    """Buy a course: the one entry point for the checkout form, the API and staff tools.

    Returns the paid Order (the first one again when `idempotency_key` was already used for this request); raises
    PaymentFailed (with the failed Order recorded), a CouponError, AlreadyOwned, IncludedInMembership,
    PaymentInProgress, IdempotencyConflict or RequestInProgress.

    With `provider` (a configured real provider: alipay, wechatpay, stripe) nothing is charged here: the order is
    reserved pending for that provider and returned, the member pays at the provider, and the provider's
    notification (or the return page) settles it through provider_services.order_payment_confirm. A member who
    comes back to a course whose provider payment is still open gets that same pending order again.
    """
    when = when or timezone.now()
    key = clean_key(idempotency_key)
    request_fp = fingerprint(course=course.pk, coupon=(coupon_code or "").strip().upper(), token=payment_token or "")
    with transaction.atomic():
        lock_member(member)
        claim = idempotency_claim(member=member, operation="course_purchase", key=key, fingerprint=request_fp)
        if isinstance(claim, Replay):
            assert claim.order is not None
            return claim.order
        entitlement = member_course_entitlement(member=member, course=course, when=when)
        if entitlement.status == CourseEntitlement.OWNED:
            raise exceptions.AlreadyOwned()
        if entitlement.status == CourseEntitlement.INCLUDED:
            raise exceptions.IncludedInMembership()
        if not entitlement.can_buy:
            raise exceptions.MembersError("This course is not for sale.")
        open_order = Order.objects.filter(member=member, course=course, kind=Order.Kind.COURSE,
                                          status=Order.Status.PENDING, external_id__isnull=True).first()
        if open_order is not None:
            if provider and open_order.provider in PROVIDER_TOKEN_PREFIXES:
                idempotency_attach(claim, order=open_order)
                return open_order  # resume the payment the member left at the provider
            raise exceptions.PaymentInProgress()
        quote = price_quote(member=member, course=course, coupon_code=coupon_code, when=when)
        order = _create_order(
            member=member, kind=Order.Kind.COURSE, course=course, list_price=quote.list_price, discount=quote.discount,
            amount_paid=quote.total, currency=quote.currency, coupon=quote.coupon, created_at=when,
            **({"provider": provider} if provider and quote.total > ZERO else {}),
        )
        if quote.coupon is not None:
            _reserve_coupon(coupon=quote.coupon, member=member, order=order, course=course, tier=None)
        idempotency_attach(claim, order=order)
    if provider and order.amount_paid > ZERO:
        return order  # pending: the member pays at the provider (provider_services.course_checkout_start)
    result = _charge(member=member, order=order, token=payment_token)
    if not result.ok:
        _fail_order(order=order, reason=result.failure_reason)
        error = exceptions.PaymentFailed(result.failure_reason)
        idempotency_fail(claim, error=error)
        raise error
    return order_settle(order=order, provider_reference=result.reference, when=when)


def order_settle(*, order: Order, provider_reference: str, when: datetime | None = None, provider: str = "") -> Order:
    """The provider took the money: mark the order paid and grant what it bought. The one settle step for every
    money operation and for provider webhooks; safe to call twice (a paid order is returned as it is)."""
    when = when or timezone.now()
    with transaction.atomic():
        # Same lock order as the reserve step (member, then order, then subscription), so the two never deadlock.
        lock_member(order.member_id)
        locked = Order.objects.select_for_update(of=("self",)).select_related("coupon").get(pk=order.pk)
        if locked.status == Order.Status.PAID:
            return locked
        if locked.status != Order.Status.PENDING:
            raise exceptions.MembersError("Only a pending order can be settled.")
        record = IdempotencyRecord.objects.filter(order=locked).first()
        locked.status = Order.Status.PAID
        locked.paid_at = when
        locked.provider_reference = provider_reference
        locked.provider = provider or locked.provider
        locked.save(update_fields=["status", "paid_at", "provider_reference", "provider"])
        operation = record.operation if record is not None else (
            "course_purchase" if locked.kind == Order.Kind.COURSE else "subscription_renew")
        _settler(operation)(order=locked, when=when)
        receipt_queue(order=locked)  # every paid order gets its receipt, once, when this transaction commits
        billing_document_issue(order=locked, kind=BillingDocument.Kind.INVOICE)  # and a numbered invoice
        if locked.coupon is not None:
            record_event(member=locked.member_id, kind="coupon_redeemed", obj=locked.coupon, occurred_at=when,
                         properties={"order_id": locked.pk})
        if record is not None:
            idempotency_succeed(record)
        # Outgoing webhooks (members/webhooks.py) for the operator's other systems, on commit like the receipt.
        webhook_emit(event="order.paid", data={
            "order_id": locked.pk, "member_id": locked.member_id, "kind": locked.kind, "course_id": locked.course_id,
            "tier_id": locked.tier_id, "amount": str(locked.amount_paid), "currency": locked.currency, "paid_at": when,
        })
    order.status, order.paid_at, order.provider_reference = locked.status, locked.paid_at, locked.provider_reference
    return locked


def order_fail(*, order: Order, reason: str) -> Order:
    """The provider says the charge failed (a webhook for an asynchronous payment): fail a pending order and give
    back its coupon use; a retry of the request's key is told the same. Safe to call twice; a paid order is left
    alone (a refund is order_refund's job)."""
    with transaction.atomic():
        lock_member(order.member_id)
        locked = Order.objects.select_for_update(of=("self",)).get(pk=order.pk)
        if locked.status != Order.Status.PENDING:
            return locked
        _fail_order(order=locked, reason=reason)
        record = IdempotencyRecord.objects.filter(order=locked).first()
        if record is not None:
            idempotency_fail(record, error=exceptions.PaymentFailed(reason))
    return locked


# What settling grants, by the operation that reserved the order: the course purchase here; the membership
# operations register theirs from members.subscriptions.services (which imports this module, so this module cannot
# import it back; members.apps imports it at start-up so a webhook finds every settler).
SETTLERS: dict[str, Callable[..., None]] = {}


def register_settler(operation: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def register(settle: Callable[..., None]) -> Callable[..., None]:
        SETTLERS[operation] = settle
        return settle

    return register


def _settler(operation: str) -> Callable[..., None]:
    return SETTLERS[operation]


@register_settler("course_purchase")
def _settle_course(*, order: Order, when: datetime) -> None:
    Enrollment.objects.get_or_create(
        member_id=order.member_id, course_id=order.course_id,
        defaults={"source": Enrollment.Source.PURCHASE, "enrolled_at": when},
    )
    record_event(member=order.member_id, kind="course_purchased", obj=order.course, occurred_at=when, properties={
        "order_id": order.pk, "amount": str(order.amount_paid), "coupon": order.coupon.code if order.coupon else "",
    })


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
        from members.commerce.invoices import credit_note_issue

        credit_note_issue(order=locked)
    return locked
