"""Checkout (courses and membership periods), orders and the membership page with its cancellation flow."""
from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.vary import vary_on_headers

from members import exceptions
from members.catalogue import selectors as catalogue_selectors
from members.commerce import provider_services
from members.commerce import selectors as commerce_selectors
from members.commerce import services as commerce_services
from members.commerce.pricing import Quote
from members.commerce.providers import Checkout
from members.commerce.providers import configured as configured_providers
from members.commerce.providers import currencies as provider_currencies
from members.forms import CourseCheckoutForm, TierCheckoutForm, new_idempotency_key
from members.models import (
    BillingPeriod,
    Course,
    MembershipTier,
    Order,
    Subscription,
    User,
)
from members.subscriptions import services as subscriptions_services

ORDERS_PAGE_SIZE = 20


def _quote(
    *, member: User, course: Course | None = None, tier: MembershipTier | None = None, period: str = BillingPeriod.MONTH,
    code: str = "",
) -> tuple[Quote, str]:
    """The price with the coupon if it applies; otherwise the price without it and the reason it does not."""
    try:
        return commerce_services.price_quote(member=member, course=course, tier=tier, period=period, coupon_code=code), ""
    except exceptions.CouponError as error:
        return commerce_services.price_quote(member=member, course=course, tier=tier, period=period), error.message


def _fresh_key(form: Form) -> None:
    """After a refused or declined attempt the next submission is a new request: give the form a new token."""
    if form.is_bound:
        form.data = form.data.copy()
        form.data["idempotency_key"] = new_idempotency_key()


# --------------------------------------------------------------------------------------------------------------
# Checkout


@login_required
@vary_on_headers("HX-Request")
def checkout_course(request: HttpRequest, slug: str) -> HttpResponse:
    course = get_object_or_404(catalogue_selectors.course_list(), slug=slug)
    entitlement = catalogue_selectors.member_course_entitlement(member=request.user, course=course)
    if entitlement.status == entitlement.OWNED and request.method == "GET":
        messages.info(request, _("You already own this course."))
        return redirect(course)
    if entitlement.status == entitlement.INCLUDED:
        messages.info(request, _("This course is included in your membership: nothing to pay."))
        return redirect(course)
    data = request.POST if request.method == "POST" else (request.GET if "coupon" in request.GET else None)
    providers = [name for name in configured_providers() if course.currency in provider_currencies(name)]
    form = CourseCheckoutForm(data, initial={"coupon": request.GET.get("coupon", "")}, providers=providers)
    code = form.data.get("coupon", "").strip() if data else ""
    quote, coupon_error = _quote(member=request.user, course=course, code=code)
    payment_error = ""
    http_status = 200
    if request.method == "POST" and request.POST.get("action") != "apply" and form.is_valid() and not coupon_error:
        try:
            if provider := form.chosen_provider():
                order, checkout = provider_services.course_checkout_start(
                    member=request.user, course=course, provider=provider, coupon_code=code,
                    idempotency_key=form.cleaned_data["idempotency_key"],
                    return_url=lambda pk: request.build_absolute_uri(reverse("payments:return", kwargs={"pk": pk})))
                if checkout is not None:
                    return _to_provider(request, order=order, checkout=checkout)
            else:
                order = commerce_services.course_purchase(member=request.user, course=course, coupon_code=code,
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
            messages.success(request, _("Payment received. Enjoy the course!"))
            return redirect(order)
    context = {"form": form, "course": course, "item_title": course, "quote": quote, "coupon_error": coupon_error,
               "payment_error": payment_error, "code": code}
    template = "members/checkout.html#quote" if request.htmx and request.method == "GET" else "members/checkout.html"
    return render(request, template, context, status=http_status)


@login_required
@vary_on_headers("HX-Request")
def checkout_tier(request: HttpRequest, slug: str) -> HttpResponse:
    tier = get_object_or_404(catalogue_selectors.tier_list(public_only=False), slug=slug)
    live = catalogue_selectors.live_subscription(member=request.user)
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
    # What the summary promises must be what happens: with the trial (ticked by default, skipped by a coupon)
    # nothing is charged today and the period price is charged when the trial ends.
    params = data if data is not None else request.GET
    ticked = ("use_trial" in params) if "trial_choice" in params else True
    trial_selected = trial_available and ticked and not code
    first_charge_at = timezone.now() + timedelta(days=tier.trial_days) if trial_selected else None
    payment_error = ""
    http_status = 200
    if request.method == "POST" and request.POST.get("action") != "apply" and form.is_valid() and not coupon_error:
        try:
            sub = subscriptions_services.subscription_start(
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
            messages.success(request, _("Welcome to %(tier)s!") % {"tier": tier.name})
            return redirect(order)
    context = {"form": form, "tier": tier, "item_title": tier.name, "quote": quote, "coupon_error": coupon_error,
               "payment_error": payment_error, "code": code, "period": period, "trial_available": trial_available,
               "trial_selected": trial_selected, "trial_ticked": ticked, "first_charge_at": first_charge_at}
    template = "members/checkout.html#quote" if request.htmx and request.method == "GET" else "members/checkout.html"
    return render(request, template, context, status=http_status)


def _to_provider(request: HttpRequest, *, order: Order, checkout: Checkout) -> HttpResponse:
    """Send the member to the provider: a redirect (Alipay, Stripe), or the QR code page (WeChat Pay Native)."""
    if checkout.kind == "qr":
        return render(request, "members/pay_qr.html", {"order": order, "code_url": checkout.url})
    return redirect(checkout.url)


@login_required
def payment_return(request: HttpRequest, pk: int) -> HttpResponse:
    """Where the provider sends the member back: the order's state, confirmed with the provider if the
    notification has not come yet (both go through order_payment_confirm, so the order is paid once)."""
    order = get_object_or_404(commerce_selectors.member_orders(member=request.user), pk=pk)
    order = provider_services.order_payment_return(order=order)
    if order.status == Order.Status.PAID:
        messages.success(request, _("Payment received. Thank you!"))
    elif order.status == Order.Status.PENDING:
        messages.info(request, _("We are waiting for the payment provider to confirm your payment. This page shows "
                                 "the order's state; reload it in a moment."))
    return redirect(order)


# --------------------------------------------------------------------------------------------------------------
# Orders


@login_required
@vary_on_headers("HX-Request")
def order_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(commerce_selectors.member_orders(member=request.user), ORDERS_PAGE_SIZE).get_page(request.GET.get("page"))
    template = "members/order_list.html#orders" if request.htmx and not request.htmx.history_restore_request else "members/order_list.html"
    return render(request, template, {"page": page})


@login_required
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    # Scoped to the member's own orders: another member's order id is a 404, not a 403 that confirms it exists.
    order = get_object_or_404(commerce_selectors.member_orders(member=request.user), pk=pk)
    return render(request, "members/order_detail.html", {"order": order})
