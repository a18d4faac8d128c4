"""Billing pages the member uses to fix a failed renewal: update the payment method, which retries at once."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from members.billing import payment_method_update_and_retry
from members.models import PaymentMethod, Subscription

# The local provider's test instruments. A real provider tokenises the card in the browser and posts the token;
# card data never reaches this application either way.
TEST_CARDS = [
    ("local:ok", gettext_lazy("Test card ending 4242 (always works)")),
    ("local:decline", gettext_lazy("Test card ending 0002 (always declines)")),
]


class PaymentMethodForm(forms.Form):
    token = forms.ChoiceField(label=gettext_lazy("Payment method"), choices=TEST_CARDS, widget=forms.RadioSelect)


@login_required
def payment_method(request: HttpRequest) -> HttpResponse:
    member = request.user
    form = PaymentMethodForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token = form.cleaned_data["token"]
        label = str(dict(TEST_CARDS)[token])
        result = payment_method_update_and_retry(member=member, token=token, label=label)  # type: ignore[arg-type]
        if result.recovered:
            messages.success(request, _("Payment method updated and your membership is renewed. Thank you!"))
        elif result.retried:
            messages.error(request, _("Payment method saved, but the renewal charge was declined: %(reason)s")
                           % {"reason": result.error})
        else:
            messages.success(request, _("Payment method updated."))
        return redirect("members:billing_payment_method")
    context = {
        "form": form,
        "current": PaymentMethod.objects.filter(member=member, is_default=True).first(),
        "past_due": Subscription.objects.filter(member=member, status=Subscription.Status.PAST_DUE)
        .select_related("tier").first(),
        "lapsed": not Subscription.objects.filter(member=member, status__in=Subscription.LIVE_STATUSES).exists()
        and Subscription.objects.filter(member=member, status=Subscription.Status.EXPIRED).exists(),
    }
    return render(request, "members/billing/payment_method.html", context)
