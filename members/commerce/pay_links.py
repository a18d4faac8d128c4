"""Pay links for renewals a provider cannot charge off-session (Alipay, WeChat Pay without an agreement).

The renewal job leaves the order pending and emails the member a signed link; opening it starts the provider's
checkout for that order (a redirect for Alipay, a QR code page for WeChat Pay). The provider's notification then
confirms the order through order_payment_confirm, which moves the membership period on. Dunning keeps reminding
with the same link (one pending order per renewal, never a second).
"""
from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from members.models import Order

SALT = "members.commerce.pay_link"
MAX_AGE_SECONDS = 14 * 24 * 3600


def pay_link_url(*, order: Order) -> str:
    token = signing.dumps({"order": order.pk}, salt=SALT)
    return f"{settings.SITE_URL.rstrip('/')}{reverse('payments:pay_link', kwargs={'token': token})}"


def send_pay_link(*, order: Order) -> None:
    member = order.member
    with translation.override(getattr(member, "preferred_language", None) or settings.LANGUAGE_CODE):
        subject = _("Renew your membership: %(item)s") % {"item": order.item_title}
        body = _("Your membership renewal of %(amount)s %(currency)s is waiting for payment. Pay here: %(url)s") % {
            "amount": order.amount_paid, "currency": order.currency, "url": pay_link_url(order=order)}
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [member.email])


def pay_link(request: HttpRequest, token: str) -> HttpResponse:
    from members.commerce.provider_services import order_payment_start

    try:
        order_id = signing.loads(token, salt=SALT, max_age=MAX_AGE_SECONDS)["order"]
    except (signing.BadSignature, KeyError, TypeError):
        raise Http404 from None
    order = Order.objects.select_related("member", "tier", "course").filter(pk=order_id).first()
    if order is None or order.status != Order.Status.PENDING:
        raise Http404
    checkout = order_payment_start(order=order, provider=order.provider,
                                   return_url=request.build_absolute_uri(reverse("payments:return", kwargs={"pk": order.pk})))
    if checkout.kind == "qr":
        return render(request, "members/pay_qr.html", {"order": order, "code_url": checkout.url})
    return redirect(checkout.url)
