"""Writes for provider payments: start a payment, apply a verified notice (once), reconcile, refund.

order_payment_confirm is the one door every confirmation goes through (webhook, return page, reconciliation task),
so they cannot disagree. It locks the order row (select_for_update) and inserts PaymentNotification under a unique
(provider, event_id): the same notification twice, or the notification and the return page racing, flip the order
to paid exactly once; the loser sees `applied=False` and changes nothing.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from analytics.tracking import record_event
from members import exceptions
from members.commerce.invoices import billing_document_issue, credit_note_issue
from members.commerce.providers import Checkout, Notice, ProviderNotConfigured, configured, get_adapter
from members.models import BillingDocument, Enrollment, Order, PaymentNotification
from members.webhooks import webhook_emit

logger = logging.getLogger(__name__)


def order_payment_start(*, order: Order, provider: str, return_url: str) -> Checkout:
    adapter = get_adapter(provider)
    if order.currency not in adapter.currencies:
        raise exceptions.MembersError(f"{provider} does not accept {order.currency}.")
    checkout = adapter.start(order=order, return_url=return_url)
    Order.objects.filter(pk=order.pk, status=Order.Status.PENDING).update(
        provider=provider, provider_reference=checkout.reference or "")
    return checkout


def order_payment_confirm(*, provider: str, notice: Notice) -> tuple[Order, bool]:
    """Apply a verified notice. Returns (order, applied); applied is False for replays, races and non-payments."""
    with transaction.atomic():
        order = Order.objects.select_for_update().select_related("member").get(pk=notice.order_id)
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
        now = timezone.now()
        order.status = Order.Status.PAID
        order.paid_at = now
        order.provider = provider
        order.provider_reference = notice.reference
        order.save(update_fields=["status", "paid_at", "provider", "provider_reference"])
        if order.kind == Order.Kind.COURSE:
            Enrollment.objects.get_or_create(
                member=order.member, course_id=order.course_id,
                defaults={"source": Enrollment.Source.PURCHASE, "enrolled_at": now},
            )
            record_event(member=order.member, kind="course_purchased", obj=order.course, occurred_at=now,
                         properties={"order_id": order.pk, "amount": str(order.amount_paid), "provider": provider})
        if order.kind == Order.Kind.SUBSCRIPTION and order.subscription_id:
            from members.models import Subscription
            from members.subscriptions.services import subscription_renewal_paid

            sub = Subscription.objects.select_for_update().select_related("tier").get(pk=order.subscription_id)
            subscription_renewal_paid(sub=sub, order=order, when=now)
        billing_document_issue(order=order, kind=BillingDocument.Kind.INVOICE)
        webhook_emit(event="order.paid", data=_order_data(order))
    return order, True


def _order_data(order: Order) -> dict[str, object]:
    return {"order_id": order.pk, "member_id": order.member_id, "kind": order.kind, "course_id": order.course_id,
            "tier_id": order.tier_id, "amount": str(order.amount_paid), "currency": order.currency,
            "provider": order.provider, "paid_at": order.paid_at}


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
