"""Order receipts: the one path for every paid order (HTML and API checkout, membership start, renewal, recovery).

The service that marks an order paid calls `receipt_queue` inside its transaction; the task below is enqueued only
when that transaction commits (a rolled-back payment sends nothing), loads the order by id and renders the email in
the member's language. The task lives here, beside the one function it calls, so queue and task cannot drift apart.
The platform importer writes historical orders directly and sends nothing.

Exactly once, like analytics/outreach/messaging.py: the task first *claims* the order with a conditional UPDATE
(receipt_sent_at is null and nobody holds a fresh claim → receipt_claimed_at = now). Only the task that wins the claim
sends; it stamps receipt_sent_at afterwards. A redelivered task (acks_late), a retry after the send succeeded, or a
second enqueue finds the order claimed or sent and returns without sending. A transient SMTP error releases the claim
and re-raises, so Celery's autoretry can claim it again. A claim older than RECEIPT_CLAIM_TIMEOUT (the worker died
mid-send) may be taken over; if that worker had already handed the mail to SMTP, the member gets it twice — the one
case not covered, as in messaging.
"""
from __future__ import annotations

from datetime import timedelta
from smtplib import SMTPException

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from members.accounts.emails import unsubscribe_url
from members.models import Order

TRANSIENT_EMAIL_ERRORS: tuple[type[BaseException], ...] = (SMTPException, ConnectionError, TimeoutError)
RECEIPT_CLAIM_TIMEOUT = timedelta(minutes=15)


def receipt_queue(*, order: Order) -> None:
    """Send the receipt for a paid order once the caller's transaction commits."""
    if order.status != Order.Status.PAID:
        return
    order_id = order.pk
    transaction.on_commit(lambda: send_order_receipt_task.delay(order_id))


def send_order_receipt(*, order: Order) -> None:
    member = order.member
    with translation.override(member.preferred_language or settings.LANGUAGE_CODE):
        context = {
            "order": order, "member": member, "site_url": settings.SITE_URL.rstrip("/"),
            "order_url": settings.SITE_URL.rstrip("/") + order.get_absolute_url(),
            "unsubscribe_url": unsubscribe_url(member=member),
        }
        subject = _("Your receipt for %(item)s") % {"item": order.item_title}
        text = render_to_string("emails/receipt.txt", context)
        html = render_to_string("emails/receipt.html", context)
    message = EmailMultiAlternatives(subject=subject, body=text, to=[member.email])
    message.attach_alternative(html, "text/html")
    message.send(fail_silently=False)


def receipt_claim(*, order_id: int) -> bool:
    """Claim the order's receipt for this worker; False when it was sent or another worker holds a fresh claim."""
    now = timezone.now()
    claimed = Order.objects.filter(
        Q(receipt_claimed_at__isnull=True) | Q(receipt_claimed_at__lt=now - RECEIPT_CLAIM_TIMEOUT),
        pk=order_id, status=Order.Status.PAID, receipt_sent_at__isnull=True,
    ).update(receipt_claimed_at=now)
    return claimed == 1


def receipt_send(*, order_id: int) -> bool:
    """Send the receipt for one paid order at most once; True when this call sent it."""
    if not receipt_claim(order_id=order_id):
        return False  # already sent, being sent by another worker, gone, or no longer paid
    order = Order.objects.select_related("member", "course", "tier").get(pk=order_id)
    try:
        send_order_receipt(order=order)
    except BaseException:
        Order.objects.filter(pk=order_id, receipt_sent_at__isnull=True).update(receipt_claimed_at=None)
        raise
    Order.objects.filter(pk=order_id).update(receipt_sent_at=timezone.now())
    return True


@shared_task(queue="email", autoretry_for=TRANSIENT_EMAIL_ERRORS, retry_backoff=True, retry_jitter=True, max_retries=5,
             acks_late=True)
def send_order_receipt_task(order_id: int) -> None:
    receipt_send(order_id=order_id)
