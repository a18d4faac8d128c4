"""The adversarial tier for money (issue 13, findings 1-3): N identical requests at once, through the doors a client
uses (API with an Idempotency-Key, the HTML forms as rendered), on PostgreSQL with real threads, each its own
database connection. The provider counts charges and pauses like a network call, so a race has room to show.

Each test states the figure it guards; the failure message prints what actually happened.
"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from members.models import Coupon, CouponRedemption, Order, RetentionOffer
from tests.members.factories import CouponFactory, CourseFactory, SubscriptionFactory, TierFactory, UserFactory
from tests.members.money_support import COUNTING_PROVIDER, CountingProvider, fire, hidden_inputs

# SQLite serialises every writer, so a race cannot happen there: these run in the PostgreSQL tier only.
pytestmark = [pytest.mark.adversarial, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def counting_provider(settings):
    settings.PAYMENT_PROVIDER = COUNTING_PROVIDER
    CountingProvider.reset()
    yield CountingProvider
    CountingProvider.reset()


def _api(member) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=member)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def _browsers(member, n: int) -> list[Client]:
    """n browser tabs sharing one login session (what a double-click or a resubmitting proxy produces)."""
    first = Client()
    first.force_login(member)
    tabs = [first]
    for _ in range(n - 1):
        tab = Client()
        tab.cookies = first.cookies
        tabs.append(tab)
    return tabs


def _summary(member, course=None) -> str:
    orders = Order.objects.filter(member=member)
    return (f"{len(CountingProvider.successful())} successful charges, "
            f"{orders.filter(status=Order.Status.PAID).count()} paid orders, {orders.count()} orders in all, "
            f"{CouponRedemption.objects.filter(member=member).count()} coupon uses")


# ---------------------------------------------------------------------------------------------------- purchases


def test_20_identical_api_purchases_with_one_idempotency_key_charge_once():
    member = UserFactory()
    course = CourseFactory(price=Decimal("200.00"))
    coupon = CouponFactory(code="MANY", max_redemptions=None, max_per_member=50)
    api = _api(member)
    url = reverse("members-api:course-purchase", args=[course.slug])

    responses = fire(20, lambda i: api.post(url, {"coupon_code": coupon.code}, format="json",
                                            HTTP_IDEMPOTENCY_KEY="buy-course-once"))

    statuses = sorted(getattr(r, "status_code", repr(r)) for r in responses)
    assert len(CountingProvider.successful()) == 1, _summary(member)
    assert Order.objects.filter(member=member, status=Order.Status.PAID).count() == 1, _summary(member)
    assert CouponRedemption.objects.filter(member=member).count() == 1, _summary(member)
    coupon.refresh_from_db()
    assert coupon.times_redeemed == 1
    # Every answer is the first result (201, same order) or "the first is still running" (409); never a 500.
    assert set(statuses) <= {201, 409}, statuses
    paid_ids = {r.json()["id"] for r in responses if getattr(r, "status_code", None) == 201}
    assert len(paid_ids) == 1, paid_ids


def test_20_identical_api_purchases_without_a_key_still_charge_once():
    member = UserFactory()
    course = CourseFactory(price=Decimal("120.00"))
    api = _api(member)
    url = reverse("members-api:course-purchase", args=[course.slug])

    responses = fire(20, lambda i: api.post(url, {}, format="json"))

    assert len(CountingProvider.successful()) == 1, _summary(member)
    assert Order.objects.filter(member=member, status=Order.Status.PAID).count() == 1, _summary(member)
    assert all(getattr(r, "status_code", 500) in (201, 409) for r in responses), [getattr(r, "status_code", r) for r in responses]


def test_one_checkout_form_submitted_10_times_at_once_charges_once():
    member = UserFactory()
    course = CourseFactory(price=Decimal("200.00"))
    coupon = CouponFactory(code="FORM", max_redemptions=None, max_per_member=50)
    tabs = _browsers(member, 10)
    url = reverse("members:checkout_course", args=[course.slug])
    page = tabs[0].get(url)
    form = {**hidden_inputs(page.content.decode()), "coupon": coupon.code, "payment_token": "local:ok"}

    responses = fire(10, lambda i: tabs[i].post(url, form))

    assert len(CountingProvider.successful()) == 1, _summary(member)
    assert Order.objects.filter(member=member, status=Order.Status.PAID).count() == 1, _summary(member)
    assert CouponRedemption.objects.filter(member=member).count() == 1, _summary(member)
    assert all(getattr(r, "status_code", 500) < 500 for r in responses)


# ---------------------------------------------------------------------------------------------------- renew now


def test_renew_now_clicked_10_times_at_once_charges_once_and_moves_the_period_once():
    member = UserFactory()
    tier = TierFactory(monthly_price=Decimal("49.00"))
    start = timezone.now() - timedelta(days=10)
    sub = SubscriptionFactory(member=member, tier=tier, current_period_start=start,
                              current_period_end=start + relativedelta(months=1))
    first_end = sub.current_period_end
    tabs = _browsers(member, 10)
    page = tabs[0].get(reverse("members:membership"))
    url = reverse("members:membership_renew")
    form = {**hidden_inputs(page.content.decode(), form_action=url), "payment_token": "local:ok"}

    responses = fire(10, lambda i: tabs[i].post(url, form))

    sub.refresh_from_db()
    moved = (sub.current_period_end - first_end).days
    assert len(CountingProvider.successful()) == 1, f"{_summary(member)}; period end moved {moved} days"
    assert sub.current_period_end == first_end + relativedelta(months=1), f"period end moved {moved} days"
    assert Order.objects.filter(member=member, is_renewal=True, status=Order.Status.PAID).count() == 1
    assert all(getattr(r, "status_code", 500) < 500 for r in responses)


def test_renew_now_through_the_api_10_times_at_once_charges_once():
    member = UserFactory()
    sub = SubscriptionFactory(member=member, tier=TierFactory())
    first_end = sub.current_period_end
    api = _api(member)
    url = reverse("members-api:membership-renew")

    responses = fire(10, lambda i: api.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="renew-once"))

    sub.refresh_from_db()
    assert len(CountingProvider.successful()) == 1, _summary(member)
    assert sub.current_period_end == first_end + relativedelta(months=1)
    assert {getattr(r, "status_code", 500) for r in responses} <= {201, 409}


# ---------------------------------------------------------------------------------------------------- save offer


def test_13_save_offer_accepts_at_once_issue_one_coupon():
    member = UserFactory()
    sub = SubscriptionFactory(member=member, tier=TierFactory())
    RetentionOffer.objects.create(name="Stay", kind="discount", percent_off=Decimal("30"))
    api = _api(member)
    url = reverse("members-api:membership-offer")

    responses = fire(13, lambda i: api.post(url, {"reason": "too_expensive"}, format="json"))

    coupons = Coupon.objects.filter(assigned_member=member, source=Coupon.Source.RETENTION).count()
    assert coupons == 1, f"{coupons} save-offer coupons from 13 accepts"
    assert {getattr(r, "status_code", 500) for r in responses} <= {200, 409}
    sub.refresh_from_db()
    assert not sub.cancel_at_period_end


def test_13_save_offer_accepts_through_the_form_at_once_issue_one_coupon():
    member = UserFactory()
    sub = SubscriptionFactory(member=member, tier=TierFactory())
    RetentionOffer.objects.create(name="Stay", kind="discount", percent_off=Decimal("30"))
    tabs = _browsers(member, 13)
    url = reverse("members:membership_cancel")
    page = tabs[0].post(url, {"reason": "too_expensive", "action": "survey"})
    form = {**hidden_inputs(page.content.decode()), "reason": "too_expensive", "action": "accept"}

    responses = fire(13, lambda i: tabs[i].post(url, form))

    coupons = Coupon.objects.filter(assigned_member=member, source=Coupon.Source.RETENTION).count()
    assert coupons == 1, f"{coupons} save-offer coupons from 13 accepts"
    assert all(getattr(r, "status_code", 500) < 500 for r in responses)
    sub.refresh_from_db()
    assert not sub.cancel_at_period_end  # a losing accept never turns into a cancellation


# ---------------------------------------------------------------------------------------------------- subscribe, plan


def test_10_identical_api_subscribes_at_once_charge_once():
    member = UserFactory()
    TierFactory(slug="plus-now", monthly_price=Decimal("49.00"))
    api = _api(member)
    url = reverse("members-api:membership")

    responses = fire(10, lambda i: api.post(url, {"tier": "plus-now", "period": "month"}, format="json",
                                            HTTP_IDEMPOTENCY_KEY="join"))

    assert len(CountingProvider.successful()) == 1, _summary(member)
    assert Order.objects.filter(member=member, status=Order.Status.PAID).count() == 1
    assert {getattr(r, "status_code", 500) for r in responses} <= {201, 409}


def test_10_concurrent_upgrades_charge_one_proration():
    member = UserFactory()
    plus = TierFactory(slug="plus-up", monthly_price=Decimal("49.00"))
    TierFactory(slug="pro-up", monthly_price=Decimal("99.00"))
    sub = SubscriptionFactory(member=member, tier=plus)
    api = _api(member)
    url = reverse("members-api:membership-change-tier")

    # Different keys on purpose (ten tabs): the member lock and the one-order-per-period-and-tier index still hold.
    responses = fire(10, lambda i: api.post(url, {"tier": "pro-up"}, format="json", HTTP_IDEMPOTENCY_KEY=f"tab-{i}"))

    sub.refresh_from_db()
    assert len(CountingProvider.successful()) == 1, _summary(member)
    assert sub.tier.slug == "pro-up", [(getattr(r, "status_code", r), getattr(r, "content", b"")[:300]) for r in responses]
    assert all(getattr(r, "status_code", 500) < 500 for r in responses), [getattr(r, "status_code", r) for r in responses]


def test_10_concurrent_switches_to_yearly_charge_once():
    member = UserFactory()
    sub = SubscriptionFactory(member=member, tier=TierFactory(slug="plus-year"))
    api = _api(member)
    url = reverse("members-api:membership-switch")

    responses = fire(10, lambda i: api.post(url, {"period": "year"}, format="json", HTTP_IDEMPOTENCY_KEY="yearly"))

    sub.refresh_from_db()
    assert len(CountingProvider.successful()) == 1, _summary(member)
    assert sub.billing_period == "year"
    assert {getattr(r, "status_code", 500) for r in responses} <= {200, 409}
