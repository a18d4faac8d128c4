"""Billing pages the member uses to fix a failed renewal: update the payment method, which retries at once."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from members import exceptions
from members.catalogue import selectors as catalogue_selectors
from members.catalogue.views import _membership_card, benefit_table
from members.forms import CancelForm, ChangeTierForm, RenewForm, SwitchPeriodForm
from members.models import (
    BillingPeriod,
    Coupon,
    PaymentMethod,
    Subscription,
)
from members.subscriptions import selectors as subscriptions_selectors
from members.subscriptions import services
from members.subscriptions.billing import payment_method_update_and_retry

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


def tiers(request: HttpRequest) -> HttpResponse:
    tier_rows = list(catalogue_selectors.tier_list())
    current = catalogue_selectors.active_tier(member=request.user)
    return render(request, "members/tiers.html", {
        "tiers": tier_rows, "benefit_rows": benefit_table(tier_rows), "current_tier": current,
    })


@login_required
def membership(request: HttpRequest) -> HttpResponse:
    sub = _membership_card(member=request.user)
    context: dict[str, object] = {"subscription": sub, "switch_form": None, "renewal_coupon": ""}
    if sub is not None and sub.is_live:
        other = BillingPeriod.YEAR if sub.billing_period == BillingPeriod.MONTH else BillingPeriod.MONTH
        context["switch_form"] = SwitchPeriodForm(initial={"period": other})
        context["other_period"] = other
        context["renew_form"] = RenewForm()
        context["renewal_coupon"] = services.renewal_coupon_code(subscription=sub)
        context["tier_choices"] = _tier_choices(sub)
        if other == BillingPeriod.YEAR and sub.status == Subscription.Status.ACTIVE:
            context["switch_quote"] = services.subscription_proration(subscription=sub, period=BillingPeriod.YEAR)
    return render(request, "members/membership.html", context)


def _tier_choices(sub: Subscription) -> list[dict[str, object]]:
    """The other tiers with what choosing each costs today (an upgrade's prorated charge) or when (a downgrade)."""
    rows: list[dict[str, object]] = []
    for tier in catalogue_selectors.tier_list():
        if tier.pk == sub.tier_id or tier.currency != sub.tier.currency:
            continue
        upgrade = tier.price_for(sub.billing_period) > sub.tier.price_for(sub.billing_period)
        due = None
        if upgrade and sub.status == Subscription.Status.ACTIVE:
            due = services.subscription_proration(subscription=sub, tier=tier).due
        rows.append({"tier": tier, "upgrade": upgrade, "due": due, "form": ChangeTierForm(initial={"tier": tier.slug}),
                     "scheduled": sub.scheduled_tier_id == tier.pk})
    return rows


def _live_subscription_or_redirect(request: HttpRequest) -> Subscription | None:
    sub = catalogue_selectors.live_subscription(member=request.user)
    if sub is None:
        messages.error(request, _("You have no live membership."))
    return sub


def _plan_change_message(request: HttpRequest, change: services.PlanChange) -> None:
    sub = change.subscription
    if change.order is not None:
        messages.success(request, _("Your plan is now %(tier)s, %(period)s. Charged today: %(amount)s %(currency)s.") % {
            "tier": sub.tier.name, "period": sub.get_billing_period_display(), "amount": change.order.amount_paid,
            "currency": change.order.currency})
    elif change.scheduled and (sub.scheduled_tier_id or sub.scheduled_billing_period):
        messages.success(request, _("Your plan changes to %(tier)s, %(period)s on %(date)s. Nothing is charged today.") % {
            "tier": sub.next_tier.name, "period": BillingPeriod(sub.next_billing_period).label,
            "date": date_format(timezone.localtime(sub.current_period_end))})
    else:
        messages.success(request, _("Your plan stays %(tier)s, %(period)s.") % {
            "tier": sub.tier.name, "period": sub.get_billing_period_display()})


@login_required
@require_POST
def membership_switch(request: HttpRequest) -> HttpResponse:
    sub = _live_subscription_or_redirect(request)
    form = SwitchPeriodForm(request.POST)
    if sub is not None and form.is_valid():
        try:
            change = services.subscription_switch_period(
                subscription=sub, period=form.cleaned_data["period"], payment_token=request.POST.get("payment_token"),
                idempotency_key=form.cleaned_data["idempotency_key"])
        except exceptions.MembersError as error:
            messages.error(request, error.message)
        else:
            _plan_change_message(request, change)
    return redirect("members:membership")


@login_required
@require_POST
def membership_change_tier(request: HttpRequest) -> HttpResponse:
    sub = _live_subscription_or_redirect(request)
    form = ChangeTierForm(request.POST)
    if sub is not None and form.is_valid():
        tier = catalogue_selectors.tier_list().filter(slug=form.cleaned_data["tier"]).first()
        if tier is None:
            messages.error(request, _("This tier is not available."))
            return redirect("members:membership")
        try:
            change = services.subscription_change_tier(
                subscription=sub, tier=tier, payment_token=request.POST.get("payment_token"),
                idempotency_key=form.cleaned_data["idempotency_key"])
        except exceptions.MembersError as error:
            messages.error(request, error.message)
        else:
            _plan_change_message(request, change)
    return redirect("members:membership")


@login_required
@require_POST
def membership_renew(request: HttpRequest) -> HttpResponse:
    sub = _live_subscription_or_redirect(request)
    form = RenewForm(request.POST)
    if sub is not None and form.is_valid():
        try:
            order = services.subscription_renew(subscription=sub, payment_token=form.cleaned_data["payment_token"],
                                                idempotency_key=form.cleaned_data["idempotency_key"])
        except (exceptions.RequestInProgress, exceptions.AlreadyRenewed) as error:
            messages.info(request, error.message)
        except exceptions.MembersError as error:
            messages.error(request, error.message)
            sub.refresh_from_db()
            if isinstance(error, exceptions.PaymentFailed) and sub.status == sub.Status.ACTIVE:
                messages.info(request, _("Nothing was charged and your membership is unchanged: it stays active until "
                                         "%(date)s.") % {"date": date_format(timezone.localtime(sub.current_period_end))})
        else:
            messages.success(request, _("Renewed. Thank you for staying with us!"))
            return redirect(order)
    elif sub is not None:
        messages.error(request, _("Choose a payment method."))
    return redirect("members:membership")


@login_required
def membership_cancel(request: HttpRequest) -> HttpResponse:
    """Cancel at period end in up to three steps: the reason survey, the save offer (when an admin configured one
    for this tier), then the confirmation. Nothing is cancelled until the member confirms."""
    sub = catalogue_selectors.live_subscription(member=request.user)
    if sub is None or sub.cancel_at_period_end:
        messages.info(request, _("There is nothing to cancel."))
        return redirect("members:membership")
    form = CancelForm(request.POST or None)
    action = request.POST.get("action", "survey")
    offer = None
    if request.method == "POST" and form.is_valid():
        reason, note = form.cleaned_data["reason"], form.cleaned_data["note"]
        # The offer answers the reason the member gave (a pause for "not using it", a discount for "too expensive").
        # An accept always reaches the service, which refuses a second acceptance this period: a double-submitted
        # accept must never fall through to "no offer, so cancel".
        offer = subscriptions_selectors.retention_offer_for(subscription=sub, reason=reason, hide_after_accept=action != "accept")
        if action == "accept" and offer is None:
            messages.info(request, _("This offer is no longer available. Nothing was changed."))
            return redirect("members:membership")
        if action == "accept" and offer is not None:
            try:
                result = services.retention_offer_accept(subscription=sub, offer=offer, reason=reason,
                                                         idempotency_key=form.cleaned_data["idempotency_key"])
            except exceptions.MembersError as error:
                messages.info(request, error.message)
                return redirect("members:membership")
            if isinstance(result, Coupon):
                messages.success(request, _("Thank you for staying! Your next renewal is %(pct)s%% off.")
                                 % {"pct": f"{result.percent_off.normalize():f}"})
            else:
                messages.success(request, _("Your membership is paused until %(date)s.")
                                 % {"date": result.paused_until.date().isoformat()})
            return redirect("members:membership")
        if action == "confirm" or offer is None:
            services.subscription_cancel(subscription=sub, reason=reason, note=note)
            messages.success(request, _("Your membership is cancelled. You keep access until the period ends."))
            return redirect("members:membership")
        return render(request, "members/cancel.html", {"subscription": sub, "form": form, "offer": offer,
                                                       "step": "offer"})
    return render(request, "members/cancel.html", {"subscription": sub, "form": form, "offer": offer,
                                                   "step": "survey"})


@login_required
@require_POST
def membership_reactivate(request: HttpRequest) -> HttpResponse:
    sub = catalogue_selectors.live_subscription(member=request.user)
    if sub is None:
        messages.error(request, _("You have no live membership."))
        return redirect("members:membership")
    try:
        services.subscription_reactivate(subscription=sub)
        messages.success(request, _("Welcome back! Your membership will renew as usual."))
    except exceptions.MembersError as error:
        messages.error(request, error.message)
    return redirect("members:membership")
