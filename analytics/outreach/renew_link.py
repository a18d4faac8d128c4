"""The one-click renew link from reminder and dunning emails.

The link carries a TimestampSigner signature of the subscription id, so it can't be forged or reused forever
(max age settings.RENEW_LINK_MAX_AGE_DAYS). It never acts on GET: mail scanners and link previews fetch URLs, so
the renewal itself is a POST from the confirmation page, made by the logged-in owner only.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from analytics.outreach.messaging import renew_token_read
from members.subscriptions.billing import subscription_retry_now
from members.subscriptions.selectors import subscription_with_tier

TEMPLATE = "members/billing/renew_link.html"


def membership_url() -> str:
    return reverse("members:membership")


@require_http_methods(["GET", "POST"])
def renew_link(request: HttpRequest, token: str) -> HttpResponse:
    try:
        subscription_id = renew_token_read(token=token)
    except signing.SignatureExpired:
        return render(request, TEMPLATE, {"state": "expired", "membership_url": membership_url()}, status=410)
    except (signing.BadSignature, ValueError):
        return render(request, TEMPLATE, {"state": "invalid", "membership_url": membership_url()}, status=400)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    sub = subscription_with_tier(subscription_id=subscription_id)
    if sub is None or sub.member_id != request.user.pk:
        return render(request, TEMPLATE, {"state": "not_yours", "membership_url": membership_url()}, status=403)
    if sub.status != sub.Status.PAST_DUE:
        if sub.is_live:
            messages.info(request, _("Your membership is active and renews automatically on %(date)s.")
                          % {"date": sub.current_period_end.date().isoformat()})
        else:
            messages.info(request, _("This membership has ended. You can join again at any time."))
        return redirect(membership_url())
    if request.method == "POST":
        outcome = subscription_retry_now(subscription=sub)
        if outcome == "failed":
            messages.error(request, _("The payment was declined. Please update your payment method."))
            return redirect("members:billing_payment_method")
        if outcome == "recovered":
            messages.success(request, _("Thank you! Your membership is renewed."))
        return redirect(membership_url())
    return render(request, TEMPLATE, {"state": "confirm", "subscription": sub, "membership_url": membership_url()})


# Mounted at /act/ by config/urls.py (namespace "acting"; emails already sent carry these URLs).
app_name = "acting"

urlpatterns = [
    path("renew/<str:token>/", renew_link, name="renew"),
]
