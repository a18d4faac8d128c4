"""Writes for provider payments: start a payment, apply a verified notice (once), reconcile, refund.

order_payment_confirm is the one door every confirmation goes through (webhook, return page, reconciliation task),
so they cannot disagree. It locks the order row (select_for_update) and inserts PaymentNotification under a unique
(provider, event_id): the same notification twice, or the notification and the return page racing, flip the order
to paid exactly once; the loser sees `applied=False` and changes nothing.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from analytics.tracking import record_event
from members import exceptions
from members.commerce.idempotency import lock_member
from members.commerce.invoices import credit_note_issue
from members.commerce.providers import Checkout, Notice, ProviderNotConfigured, configured, get_adapter
from members.commerce.services import course_purchase, order_settle, payment_method_set
from members.models import Course, Enrollment, Order, PaymentMethod, PaymentNotification, User

logger = logging.getLogger(__name__)


def course_checkout_start(*, member: User, course: Course, provider: str, return_url: Callable[[int], str],
                          coupon_code: str = "",
                          idempotency_key: str = "") -> tuple[Order, Checkout | None]:
    """Checkout through a real provider (HTML checkout and API): reserve the course order pending for `provider`
    and start the provider's payment (redirect, QR code or Checkout Session). Returns (order, checkout); checkout is
    None when nothing is due (a free order is settled at once). The order is paid later, once, by
    order_payment_confirm (webhook, return page or reconciliation, whichever comes first)."""
    if provider not in configured():
        raise exceptions.MembersError(f"Payment provider {provider} is not available.")
    quote_currency = course.currency
    if quote_currency not in get_adapter(provider).currencies:
        raise exceptions.MembersError(f"{provider} does not accept {quote_currency}.")
    order = course_purchase(member=member, course=course, coupon_code=coupon_code, provider=provider,
                            idempotency_key=idempotency_key)
    if order.status != Order.Status.PENDING:
        return order, None
    try:
        checkout = order_payment_start(order=order, provider=provider, return_url=return_url(order.pk))
    except exceptions.MembersError:
        raise
    except Exception as exc:  # noqa: BLE001 - a provider outage is a refused attempt, never a 500; order stays open
        logger.exception("starting a %s payment for order %s failed", provider, order.pk)
        raise exceptions.PaymentFailed("The payment provider is unavailable right now; please try again.") from exc
    return order, checkout


def order_payment_return(*, order: Order) -> Order:
    """The member is back from the provider: ask the provider about a still-pending order and apply what it says
    through order_payment_confirm (so a notification that arrives first, or later, changes nothing twice)."""
    if order.status != Order.Status.PENDING or order.provider not in configured():
        return order
    try:
        notice = get_adapter(order.provider).query(order=order)
    except Exception:  # noqa: BLE001 - the provider being slow must not break the page; the webhook still comes
        logger.exception("status query on return failed for order %s (%s)", order.pk, order.provider)
        return order
    if notice is not None:
        order, _applied = order_payment_confirm(provider=order.provider, notice=notice)
    return order


def order_payment_start(*, order: Order, provider: str, return_url: str) -> Checkout:
    adapter = get_adapter(provider)
    if order.currency not in adapter.currencies:
        raise exceptions.MembersError(f"{provider} does not accept {order.currency}.")
    checkout = adapter.start(order=order, return_url=return_url)
    Order.objects.filter(pk=order.pk, status=Order.Status.PENDING).update(
        provider=provider, provider_reference=checkout.reference or "")
    return checkout


def order_payment_confirm(*, provider: str, notice: Notice) -> tuple[Order, bool]:
    """Apply a verified notice. Returns (order, applied); applied is False for replays, races and non-payments.

    Granting what was bought, the receipt, the invoice and the outgoing webhook are order_settle's, the one settle
    step every money operation uses; this function adds what is the provider's: the amount check and the
    notification's once-only row."""
    member_id = Order.objects.values_list("member_id", flat=True).get(pk=notice.order_id)
    with transaction.atomic():
        lock_member(member_id)  # the reserve and settle steps' lock order: member, then order
        order = Order.objects.select_for_update(of=("self",)).select_related("member").get(pk=notice.order_id)
        if not notice.paid:
            return order, False
        if notice.amount != order.amount_paid or notice.currency.upper() != order.currency:
            logger.error("payment %s:%s amount %s %s does not match order %s (%s %s)", provider, notice.reference,
                         notice.amount, notice.currency, order.pk, order.amount_paid, order.currency)
            raise exceptions.PaymentFailed("The paid amount does not match the order.")
        try:
            with transaction.atomic():
                PaymentNotification.objects.create(provider=provider, event_id=notice.event_id, order=order)
        except IntegrityError:
            return order, False  # this transaction was applied before
        if order.status != Order.Status.PENDING:
            # Paid by another transaction id, or failed/refunded meanwhile: recorded, never applied twice.
            logger.warning("payment %s:%s for order %s in status %s", provider, notice.reference, order.pk,
                           order.status)
            return order, False
        order = order_settle(order=order, provider_reference=notice.reference, provider=provider)
        if notice.payment_method and not PaymentMethod.objects.filter(member_id=order.member_id,
                                                                      token=notice.payment_method).exists():
            # The first Stripe payment saved the card (setup_future_usage=off_session): renewals charge it.
            payment_method_set(member=order.member, token=notice.payment_method, label="Card (Stripe)",
                               provider=provider)
    return order, True


def order_provider_refund(*, order: Order) -> Order:
    """Refund a provider-paid order through its provider; the ledger changes only after the provider agrees."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status != Order.Status.PAID:
            raise exceptions.MembersError("Only a paid order can be refunded.")
        get_adapter(locked.provider).refund(order=locked)  # idempotency key / out_request_no per order
        locked.status = Order.Status.REFUNDED
        locked.refunded_at = timezone.now()
        locked.save(update_fields=["status", "refunded_at"])
        if locked.kind == Order.Kind.COURSE:
            Enrollment.objects.filter(member_id=locked.member_id, course_id=locked.course_id,
                                      source=Enrollment.Source.PURCHASE).delete()
        record_event(member=locked.member_id, kind="order_refunded", obj=locked,
                     properties={"amount": str(locked.amount_paid)})
        credit_note_issue(order=locked)
    return locked


def payments_reconcile(*, older_than: timedelta = timedelta(minutes=10), within: timedelta = timedelta(days=2)) -> int:
    """Ask each provider about its pending orders whose notification never came; apply what was paid."""
    now = timezone.now()
    applied = 0
    pending = Order.objects.filter(status=Order.Status.PENDING, provider__in=configured(),
                                   created_at__lte=now - older_than, created_at__gte=now - within)
    for order in pending.select_related("member").iterator():
        try:
            notice = get_adapter(order.provider).query(order=order)
        except ProviderNotConfigured:
            continue
        except Exception:  # noqa: BLE001 - one provider outage must not stop the others
            logger.exception("status query failed for order %s (%s)", order.pk, order.provider)
            continue
        if notice is not None:
            _order, did = order_payment_confirm(provider=order.provider, notice=notice)
            applied += did
    return applied
