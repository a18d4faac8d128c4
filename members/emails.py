"""Email for learners: order receipts (text + HTML, in the member's language) and signed unsubscribe links."""
from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from members.models import Order, User

UNSUBSCRIBE_SALT = "members.unsubscribe"


def unsubscribe_token(*, member: User) -> str:
    # Signed, not stored: the link works from any email without a login, and nobody can forge one for another member.
    return signing.dumps({"m": member.pk}, salt=UNSUBSCRIBE_SALT, compress=True)


def member_from_unsubscribe_token(token: str) -> User | None:
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    return User.objects.filter(pk=data.get("m")).first()


def unsubscribe_url(*, member: User) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("unsubscribe", kwargs={"token": unsubscribe_token(member=member)})


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
