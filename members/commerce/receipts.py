"""Order receipts, in the member's language."""
from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from members.accounts.emails import unsubscribe_url
from members.models import Order


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
