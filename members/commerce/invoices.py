"""Invoice numbers and credit notes.

billing_document_issue(order=, kind=) is idempotent (unique per order and kind) and takes the next number of its
kind and year under a row lock: INV-2026-000001, CN-2026-000001. A refund issues a credit note for the refunded
amount and emails it in the member's language after commit.
"""
from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from members.models import BillingDocument, BillingSequence, Order

PREFIX = {BillingDocument.Kind.INVOICE: "INV", BillingDocument.Kind.CREDIT_NOTE: "CN"}


@transaction.atomic
def billing_document_issue(*, order: Order, kind: str) -> BillingDocument:
    existing = BillingDocument.objects.filter(order=order, kind=kind).first()
    if existing is not None:
        return existing
    now = timezone.now()
    BillingSequence.objects.get_or_create(kind=kind, year=now.year)
    sequence = BillingSequence.objects.select_for_update().get(kind=kind, year=now.year)
    # Re-check under the lock: a concurrent call for the same order may have issued it meanwhile.
    existing = BillingDocument.objects.filter(order=order, kind=kind).first()
    if existing is not None:
        return existing
    sequence.last += 1
    sequence.save(update_fields=["last"])
    return BillingDocument.objects.create(
        kind=kind, number=f"{PREFIX[kind]}-{now.year}-{sequence.last:06d}", order=order,
        amount=order.amount_paid, currency=order.currency, issued_at=now,
    )


def credit_note_issue(*, order: Order) -> BillingDocument:
    """Called inside the refund transaction; the email leaves after commit."""
    note = billing_document_issue(order=order, kind=BillingDocument.Kind.CREDIT_NOTE)
    transaction.on_commit(lambda: send_credit_note(document=note))
    return note


def send_credit_note(*, document: BillingDocument) -> None:
    order = Order.objects.select_related("member", "course", "tier").get(pk=document.order_id)
    member = order.member
    with translation.override(member.preferred_language or settings.LANGUAGE_CODE):
        subject = _("Credit note %(number)s for %(item)s") % {"number": document.number, "item": order.item_title}
        body = _("We refunded %(amount)s %(currency)s for order #%(order)s (%(item)s). Credit note %(number)s.") % {
            "amount": document.amount, "currency": document.currency, "order": order.pk, "item": order.item_title,
            "number": document.number}
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [member.email])
