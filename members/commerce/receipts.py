"""Order receipts: the one path for every paid order (HTML and API checkout, membership start, renewal, recovery).

The service that marks an order paid calls `receipt_queue` inside its transaction; the task below is enqueued only
when that transaction commits (a rolled-back payment sends nothing), loads the order by id and renders the email in
the member's language. The task lives here, beside the one function it calls, so queue and task cannot drift apart.
The platform importer writes historical orders directly and sends nothing.
"""
from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from members.accounts.emails import unsubscribe_url
from members.models import Order

TRANSIENT_EMAIL_ERRORS: tuple[type[BaseException], ...] = (SMTPException, ConnectionError, TimeoutError)


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


@shared_task(queue="email", autoretry_for=TRANSIENT_EMAIL_ERRORS, retry_backoff=True, retry_jitter=True, max_retries=5,
             acks_late=True)
def send_order_receipt_task(order_id: int) -> None:
    order = Order.objects.select_related("member", "course", "tier").filter(pk=order_id).first()
    if order is not None:  # gone (the account was deleted before a worker got to it): nothing to send
        send_order_receipt(order=order)
