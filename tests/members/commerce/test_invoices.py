"""Invoice numbering and credit notes: sequential per kind and year, one per order, a refund emails a credit note."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail

from members.commerce.invoices import billing_document_issue
from members.commerce.services import order_refund
from members.models import BillingDocument, Order
from tests.members.factories import OrderFactory

pytestmark = pytest.mark.django_db


def test_invoice_numbers_are_sequential_and_issued_once_per_order():
    a, b = OrderFactory(), OrderFactory()
    first = billing_document_issue(order=a, kind=BillingDocument.Kind.INVOICE)
    again = billing_document_issue(order=a, kind=BillingDocument.Kind.INVOICE)
    second = billing_document_issue(order=b, kind=BillingDocument.Kind.INVOICE)
    year = first.issued_at.year
    assert first.pk == again.pk
    assert (first.number, second.number) == (f"INV-{year}-000001", f"INV-{year}-000002")


def test_a_refund_issues_and_emails_a_credit_note(django_capture_on_commit_callbacks):
    order = OrderFactory(amount_paid=Decimal("199.00"), provider_reference="local_x")
    with django_capture_on_commit_callbacks(execute=True):
        order_refund(order=order)
    note = BillingDocument.objects.get(order=order, kind=BillingDocument.Kind.CREDIT_NOTE)
    assert note.number.startswith("CN-") and note.amount == Decimal("199.00")
    assert Order.objects.get(pk=order.pk).status == Order.Status.REFUNDED
    (email,) = [m for m in mail.outbox if note.number in m.subject]
    assert email.to == [order.member.email] and "199.00" in email.body
