"""Checkout (courses and membership periods), orders and the membership page with its cancellation flow."""
from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from members import emails, exceptions, selectors, services
from members.commerce.entitlements import course_entitlement
from members.forms import (
    CancelForm,
    ChangeTierForm,
    CheckoutForm,
    RenewForm,
    SwitchPeriodForm,
    TierCheckoutForm,
    new_idempotency_key,
)
from members.models import (
    BillingPeriod,
    Coupon,
    Course,
    MembershipTier,
    Order,
    Subscription,
    User,
)
from members.pricing import Quote
from members.views import _membership_card, benefit_table

logger = logging.getLogger(__name__)
ORDERS_PAGE_SIZE = 20


def _quote(
    *, member: User, course: Course | None = None, tier: MembershipTier | None = None, period: str = BillingPeriod.MONTH,
    code: str = "",
) -> tuple[Quote, str]:
    """The price with the coupon if it applies; otherwise the price without it and the reason it does not."""
    try:
        return services.price_quote(member=member, course=course, tier=tier, period=period, coupon_code=code), ""
    except exceptions.CouponError as error:
        return services.price_quote(member=member, course=course, tier=tier, period=period), error.message


def _fresh_key(form: Form) -> None:
    """After a refused or declined attempt the next submission is a new request: give the form a new token."""
    if form.is_bound:
        form.data = form.data.copy()
        form.data["idempotency_key"] = new_idempotency_key()


def _key(request: HttpRequest) -> str:
    return request.POST.get("idempotency_key", "")


def _send_receipt(order: Order) -> None:
    try:
        emails.send_order_receipt(order=order)
    except Exception:
        logger.exception("Could not send the receipt for order %s", order.pk)


# --------------------------------------------------------------------------------------------------------------
# Checkout


@login_required
@vary_on_headers("HX-Request")
def checkout_course(request: HttpRequest, slug: str) -> HttpResponse:
    course = get_object_or_404(selectors.course_list(), slug=slug)
    entitlement = course_entitlement(member=request.user, course=course)
    if entitlement.status == entitlement.OWNED and request.method == "GET":
        messages.info(request, _("You already own this course."))
        return redirect(course)
    if entitlement.status == entitlement.INCLUDED:
        messages.info(request, _("This course is included in your membership: nothing to pay."))
        return redirect(course)
    data = request.POST if request.method == "POST" else (request.GET if "coupon" in request.GET else None)
    form = CheckoutForm(data, initial={"coupon": request.GET.get("coupon", "")})
    code = form.data.get("coupon", "").strip() if data else ""
    quote, coupon_error = _quote(member=request.user, course=course, code=code)
    payment_error = ""
    http_status = 200
    if request.method == "POST" and request.POST.get("action") != "apply" and form.is_valid() and not coupon_error:
        try:
            order = services.course_purchase(member=request.user, course=course, coupon_code=code,
                                             payment_token=form.cleaned_data["payment_token"],
                                             idempotency_key=form.cleaned_data["idempotency_key"])
        except exceptions.AlreadyOwned:
            messages.info(request, _("You already own this course."))
            return redirect(course)
        except (exceptions.RequestInProgress, exceptions.PaymentInProgress, exceptions.IdempotencyConflict) as error:
            # A second submission of the same page while the first is at the provider: nothing is charged twice.
            payment_error, http_status = error.message, 409
        except exceptions.CouponError as error:
            coupon_error = error.message
            _fresh_key(form)
        except exceptions.MembersError as error:
            payment_error, http_status = error.message, 402
            _fresh_key(form)
        else:
            _send_receipt(order)
            messages.success(request, _("Payment received. Enjoy the course!"))
            return redirect(order)
    context = {"form": form, "course": course, "item_title": course, "quote": quote, "coupon_error": coupon_error,
               "payment_error": payment_error, "code": code}
    template = "members/checkout.html#quote" if request.htmx and request.method == "GET" else "members/checkout.html"
    return render(request, template, context, status=http_status)


@login_required
@vary_on_headers("HX-Request")
def checkout_tier(request: HttpRequest, slug: str) -> HttpResponse:
    tier = get_object_or_404(selectors.tier_list(public_only=False), slug=slug)
    live = selectors.live_subscription(member=request.user)
    if live is not None:
        messages.info(request, _("You already have a membership. Manage it here."))
        return redirect("members:membership")
    data = request.POST if request.method == "POST" else (request.GET if "coupon" in request.GET else None)
    period = (data or request.GET).get("period", BillingPeriod.MONTH)
    if period not in BillingPeriod.values:
        period = BillingPeriod.MONTH
    form = TierCheckoutForm(data, initial={"coupon": request.GET.get("coupon", ""), "period": period})
    code = form.data.get("coupon", "").strip() if data else ""
    quote, coupon_error = _quote(member=request.user, tier=tier, period=period, code=code)
    had_trial = Subscription.objects.filter(member=request.user, trial_end__isnull=False).exists()
    trial_available = bool(tier.trial_days) and not had_trial
    payment_error = ""
    http_status = 200
    if request.method == "POST" and request.POST.get("action") != "apply" and form.is_valid() and not coupon_error:
        try:
            sub = services.subscription_start(
                member=request.user, tier=tier, period=form.cleaned_data["period"], coupon_code=code,
                payment_token=form.cleaned_data["payment_token"],
                use_trial=trial_available and form.cleaned_data["use_trial"],
                idempotency_key=form.cleaned_data["idempotency_key"],
            )
        except exceptions.AlreadySubscribed:
            messages.info(request, _("You already have a membership. Manage it here."))
            return redirect("members:membership")
        except (exceptions.RequestInProgress, exceptions.PaymentInProgress, exceptions.IdempotencyConflict) as error:
            payment_error, http_status = error.message, 409
        except exceptions.CouponError as error:
            coupon_error = error.message
            _fresh_key(form)
        except exceptions.MembersError as error:
            payment_error, http_status = error.message, 402
            _fresh_key(form)
        else:
            order = sub.orders.filter(status=Order.Status.PAID).first()
            if order is None:
                messages.success(request, _("Your free trial has started. Welcome!"))
                return redirect("members:membership")
            _send_receipt(order)
            messages.success(request, _("Welcome to %(tier)s!") % {"tier": tier.name})
            return redirect(order)
    context = {"form": form, "tier": tier, "item_title": tier.name, "quote": quote, "coupon_error": coupon_error,
               "payment_error": payment_error, "code": code, "period": period, "trial_available": trial_available}
    template = "members/checkout.html#quote" if request.htmx and request.method == "GET" else "members/checkout.html"
    return render(request, template, context, status=http_status)


# --------------------------------------------------------------------------------------------------------------
# Orders


@login_required
@vary_on_headers("HX-Request")
def order_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.member_orders(member=request.user), ORDERS_PAGE_SIZE).get_page(request.GET.get("page"))
    template = "members/order_list.html#orders" if request.htmx and not request.htmx.history_restore_request else "members/order_list.html"
    return render(request, template, {"page": page})


@login_required
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    # Scoped to the member's own orders: another member's order id is a 404, not a 403 that confirms it exists.
    order = get_object_or_404(selectors.member_orders(member=request.user), pk=pk)
    return render(request, "members/order_detail.html", {"order": order})


# --------------------------------------------------------------------------------------------------------------
# Membership


retention_offer_for = selectors.retention_offer_for


def tiers(request: HttpRequest) -> HttpResponse:
    tier_rows = list(selectors.tier_list())
    current = selectors.active_tier(member=request.user)
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
    for tier in selectors.tier_list():
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
    sub = selectors.live_subscription(member=request.user)
    if sub is None:
        messages.error(request, _("You have no live membership."))
    return sub


def _plan_change_message(request: HttpRequest, change: services.PlanChange) -> None:
    sub = change.subscription
    if change.order is not None:
        _send_receipt(change.order)
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
        tier = selectors.tier_list().filter(slug=form.cleaned_data["tier"]).first()
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
            _send_receipt(order)
            messages.success(request, _("Renewed. Thank you for staying with us!"))
            return redirect(order)
    elif sub is not None:
        messages.error(request, _("Choose a payment method."))
    return redirect("members:membership")


@login_required
def membership_cancel(request: HttpRequest) -> HttpResponse:
    """Cancel at period end in up to three steps: the reason survey, the save offer (when an admin configured one
    for this tier), then the confirmation. Nothing is cancelled until the member confirms."""
    sub = selectors.live_subscription(member=request.user)
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
        offer = selectors.retention_offer_for(subscription=sub, reason=reason, hide_after_accept=action != "accept")
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
    sub = selectors.live_subscription(member=request.user)
    if sub is None:
        messages.error(request, _("You have no live membership."))
        return redirect("members:membership")
    try:
        services.subscription_reactivate(subscription=sub)
        messages.success(request, _("Welcome back! Your membership will renew as usual."))
    except exceptions.MembersError as error:
        messages.error(request, error.message)
    return redirect("members:membership")
