"""Money operations one request at a time (SQLite and PostgreSQL): idempotency keys, entitlements, the save offer
once per period and chosen by reason, renew-now once per period, tier change and period switch with proration on
fixed dates, through the service and both doors (HTML forms, API). Concurrency lives in test_money_adversarial.py.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from members import exceptions
from members.catalogue import selectors
from members.catalogue.entitlements import CourseEntitlement
from members.catalogue.selectors import member_course_entitlement as course_entitlement
from members.commerce import services as commerce_services
from members.models import (
    Benefit,
    Coupon,
    Enrollment,
    IdempotencyRecord,
    Order,
    RetentionOffer,
    RetentionOfferAcceptance,
    Subscription,
    SubscriptionChange,
)
from members.subscriptions import services
from members.subscriptions.proration import unused_fraction
from tests.api.conftest import assert_error
from tests.members.factories import (
    BenefitFactory,
    CouponFactory,
    CourseFactory,
    EnrollmentFactory,
    SubscriptionFactory,
    TierFactory,
)
from tests.members.money_support import COUNTING_PROVIDER, CountingProvider, hidden_inputs

pytestmark = pytest.mark.django_db

APR_1 = datetime(2026, 4, 1, tzinfo=UTC)
APR_16 = datetime(2026, 4, 16, tzinfo=UTC)  # 15 of April's 30 days left
APR_21 = datetime(2026, 4, 21, tzinfo=UTC)  # 10 of 30 days left
MAY_1 = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def counting_provider(settings):
    settings.PAYMENT_PROVIDER = COUNTING_PROVIDER
    CountingProvider.delay = 0
    CountingProvider.reset()
    yield CountingProvider
    CountingProvider.delay = 0.05
    CountingProvider.reset()


@pytest.fixture
def plus(db):
    return TierFactory(name="Plus", slug="plus", monthly_price=Decimal("49.00"), yearly_price=Decimal("490.00"), order=1)


@pytest.fixture
def pro(db):
    tier = TierFactory(name="Pro", slug="pro", monthly_price=Decimal("99.00"), yearly_price=Decimal("990.00"), order=2)
    BenefitFactory(tier=tier, kind=Benefit.Kind.ALL_COURSES)
    return tier


def _api(member) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=member)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def _april_plus(member, plus) -> Subscription:
    """Plus monthly, paid 49.00 on 1 April for April (1 April - 1 May, 30 days)."""
    return services.subscription_start(member=member, tier=plus, use_trial=False, when=APR_1)


# ---------------------------------------------------------------------------------------------------- entitlements


def test_entitlement_says_owned_included_for_sale_and_not_for_sale(alice, plus, pro):
    course = CourseFactory(price=Decimal("200.00"))
    assert course_entitlement(member=alice, course=course).status == CourseEntitlement.FOR_SALE
    BenefitFactory(tier=plus, kind=Benefit.Kind.COURSE_DISCOUNT, value=Decimal("10"))
    SubscriptionFactory(member=alice, tier=plus)
    for_sale = course_entitlement(member=alice, course=course)
    assert for_sale.can_buy and for_sale.price == Decimal("180.00")
    assert course_entitlement(member=alice, course=CourseFactory(is_published=False)).status == "not_for_sale"
    EnrollmentFactory(member=alice, course=course)
    assert course_entitlement(member=alice, course=course).status == CourseEntitlement.OWNED


def test_a_pro_member_may_open_an_included_course_at_no_price(bob, pro):
    course = CourseFactory(price=Decimal("200.00"))
    SubscriptionFactory(member=bob, tier=pro)
    entitlement = course_entitlement(member=bob, course=course)
    assert entitlement.status == CourseEntitlement.INCLUDED and entitlement.can_open and entitlement.price == 0
    assert selectors.member_has_course_access(member=bob, course=course)  # the lesson player asks the same function


def test_checkout_form_does_not_charge_a_pro_member_for_an_included_course(alice_client, alice, pro):
    course = CourseFactory(price=Decimal("200.00"))
    SubscriptionFactory(member=alice, tier=pro)
    url = reverse("members:checkout_course", args=[course.slug])
    assert alice_client.get(url)["Location"] == course.get_absolute_url()
    response = alice_client.post(url, {"payment_token": "local:ok", "idempotency_key": "k1"}, follow=True)
    assert "included in your membership" in response.content.decode()
    assert not Order.objects.filter(member=alice).exists() and not CountingProvider.charges


def test_api_refuses_to_charge_a_pro_member_for_an_included_course(alice, pro):
    course = CourseFactory(price=Decimal("200.00"))
    SubscriptionFactory(member=alice, tier=pro)
    response = _api(alice).post(reverse("members-api:course-purchase", args=[course.slug]), {}, format="json")
    assert_error(response, 409, "included_in_membership")
    assert not Order.objects.filter(member=alice).exists() and not CountingProvider.charges


# ---------------------------------------------------------------------------------------------------- idempotency


def test_a_retried_api_purchase_returns_the_first_order_and_charges_once(alice):
    course = CourseFactory(price=Decimal("80.00"))
    url = reverse("members-api:course-purchase", args=[course.slug])
    first = _api(alice).post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    again = _api(alice).post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert len(CountingProvider.charges) == 1


def test_the_same_key_with_a_different_request_is_a_409_with_a_message(alice):
    first, second = CourseFactory(), CourseFactory()
    api = _api(alice)
    api.post(reverse("members-api:course-purchase", args=[first.slug]), {}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    response = api.post(reverse("members-api:course-purchase", args=[second.slug]), {}, format="json",
                        HTTP_IDEMPOTENCY_KEY="k")
    error = assert_error(response, 409, "idempotency_conflict")
    assert "different request" in error["message"]
    assert Order.objects.filter(member=alice).count() == 1


def test_a_declined_purchase_retried_with_its_key_is_told_the_same_and_not_charged_again(alice):
    course = CourseFactory()
    url = reverse("members-api:course-purchase", args=[course.slug])
    body = {"payment_token": "local:decline"}
    first = _api(alice).post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="d1")
    again = _api(alice).post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="d1")
    assert_error(first, 400, "payment_failed")
    assert_error(again, 400, "payment_failed")
    assert len(CountingProvider.charges) == 1
    # A new attempt (new key, another card) goes through: the failed order holds nothing.
    ok = _api(alice).post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="d2")
    assert ok.status_code == 201


def test_a_refused_coupon_does_not_spend_the_key(alice):
    course = CourseFactory()
    url = reverse("members-api:course-purchase", args=[course.slug])
    assert _api(alice).post(url, {"coupon_code": "NOPE"}, format="json", HTTP_IDEMPOTENCY_KEY="c1").status_code == 400
    assert not IdempotencyRecord.objects.exists()


def test_an_idempotency_key_longer_than_255_characters_is_a_400(alice):
    course = CourseFactory()
    response = _api(alice).post(reverse("members-api:course-purchase", args=[course.slug]), {}, format="json",
                                HTTP_IDEMPOTENCY_KEY="x" * 256)
    assert response.status_code == 400


def test_the_checkout_form_carries_a_token_and_a_resubmission_returns_the_first_order(alice_client, alice):
    course = CourseFactory()
    url = reverse("members:checkout_course", args=[course.slug])
    form = {**hidden_inputs(alice_client.get(url).content.decode()), "payment_token": "local:ok"}
    assert len(form["idempotency_key"]) == 32
    first = alice_client.post(url, form)
    again = alice_client.post(url, form)
    order = Order.objects.get(member=alice)
    assert first["Location"] == order.get_absolute_url()
    assert again["Location"] in (order.get_absolute_url(), course.get_absolute_url())
    assert len(CountingProvider.charges) == 1


def test_a_declined_form_comes_back_with_a_new_token(alice_client):
    course = CourseFactory()
    url = reverse("members:checkout_course", args=[course.slug])
    form = {**hidden_inputs(alice_client.get(url).content.decode()), "payment_token": "local:decline"}
    response = alice_client.post(url, form)
    assert response.status_code == 402
    assert hidden_inputs(response.content.decode())["idempotency_key"] != form["idempotency_key"]


def test_the_database_refuses_a_second_open_order_for_one_course(alice):
    course = CourseFactory()
    Order.objects.create(member=alice, kind="course", course=course, list_price=1, amount_paid=1, status="pending")
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(member=alice, kind="course", course=course, list_price=1, amount_paid=1, status="pending")
    # Imported history keeps what the other platform recorded.
    Order.objects.create(member=alice, kind="course", course=course, list_price=1, amount_paid=1, status="paid",
                         paid_at=timezone.now(), external_id="legacy-1")


def test_the_database_refuses_a_second_idempotency_record_for_one_key(alice):
    IdempotencyRecord.objects.create(member=alice, operation="course_purchase", key="k", fingerprint="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        IdempotencyRecord.objects.create(member=alice, operation="course_purchase", key="k", fingerprint="a")


def test_order_settle_is_the_one_settle_step_and_is_safe_to_call_twice(alice):
    """What a provider webhook calls: a pending order becomes paid once; the second call changes nothing."""
    course = CourseFactory()
    order = Order.objects.create(member=alice, kind="course", course=course, list_price=10, amount_paid=10,
                                 status="pending")
    commerce_services.order_settle(order=order, provider_reference="ch_1")
    commerce_services.order_settle(order=order, provider_reference="ch_2")
    order.refresh_from_db()
    assert order.status == Order.Status.PAID and order.provider_reference == "ch_1"
    assert Enrollment.objects.filter(member=alice, course=course).count() == 1


# ---------------------------------------------------------------------------------------------------- renew now


def test_a_second_early_renewal_is_refused_once_the_next_period_is_paid(alice, plus):
    sub = SubscriptionFactory(member=alice, tier=plus)
    end = sub.current_period_end
    services.subscription_renew(subscription=sub, idempotency_key="r1")
    with pytest.raises(exceptions.AlreadyRenewed):
        services.subscription_renew(subscription=sub, idempotency_key="r2")
    sub.refresh_from_db()
    assert sub.current_period_start == end and len(CountingProvider.charges) == 1
    response = _api(alice).post(reverse("members-api:membership-renew"), {}, format="json")
    assert_error(response, 409, "already_renewed")


def test_the_renew_form_carries_a_token(alice_client, alice, plus):
    SubscriptionFactory(member=alice, tier=plus)
    page = alice_client.get(reverse("members:membership")).content.decode()
    assert hidden_inputs(page, form_action=reverse("members:membership_renew"))["idempotency_key"]


def test_the_database_refuses_two_open_orders_for_one_membership_period(alice, plus):
    sub = SubscriptionFactory(member=alice, tier=plus)
    fields = {"member": alice, "kind": "subscription", "tier": plus, "subscription": sub, "list_price": 49,
              "amount_paid": 49, "status": "pending", "period_start": sub.current_period_end}
    Order.objects.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(**fields)


# ---------------------------------------------------------------------------------------------------- save offers


@pytest.fixture
def two_offers(db):
    pause = RetentionOffer.objects.create(name="Pause", kind="pause", pause_days=30, headline="Take a break",
                                          reasons=["not_using", "finished"])
    discount = RetentionOffer.objects.create(name="Stay", kind="discount", percent_off=Decimal("30"),
                                             headline="Stay for less")
    return pause, discount


def test_the_offer_shown_answers_the_members_reason(alice_client, alice, plus, two_offers):
    SubscriptionFactory(member=alice, tier=plus)
    url = reverse("members:membership_cancel")
    busy = alice_client.post(url, {"reason": "not_using", "action": "survey"}).content.decode()
    pricey = alice_client.post(url, {"reason": "too_expensive", "action": "survey"}).content.decode()
    assert "Take a break" in busy and "Stay for less" not in busy
    assert "Stay for less" in pricey and "Take a break" not in pricey
    api = _api(alice)
    assert api.get(reverse("members-api:membership-offer") + "?reason=not_using").json()["offer"]["kind"] == "pause"
    assert api.get(reverse("members-api:membership-offer") + "?reason=too_expensive").json()["offer"]["kind"] == "discount"


def test_the_pause_offer_is_accepted_for_its_reason(alice_client, alice, plus, two_offers):
    sub = SubscriptionFactory(member=alice, tier=plus)
    alice_client.post(reverse("members:membership_cancel"), {"reason": "not_using", "action": "accept"})
    sub.refresh_from_db()
    assert sub.paused_until == sub.current_period_end + timedelta(days=30)
    assert not Coupon.objects.filter(assigned_member=alice).exists()


def test_the_save_offer_is_accepted_once_per_period(alice_client, alice, plus, two_offers):
    SubscriptionFactory(member=alice, tier=plus)
    url = reverse("members:membership_cancel")
    for _ in range(3):
        alice_client.post(url, {"reason": "too_expensive", "action": "accept"})
    assert Coupon.objects.filter(assigned_member=alice, source=Coupon.Source.RETENTION).count() == 1
    # A repeated accept is told so; it never falls through to cancelling the membership the member chose to keep.
    assert not Subscription.objects.get(member=alice).cancel_at_period_end
    assert_error(_api(alice).post(reverse("members-api:membership-offer"), {"reason": "too_expensive"},
                                  format="json"), 409, "offer_already_accepted")
    # Coming back to cancel later in the same period: no second offer, straight to the confirmation.
    response = alice_client.post(url, {"reason": "too_expensive", "action": "survey"}, follow=True)
    assert "Stay for less" not in response.content.decode()


def test_the_database_refuses_a_second_acceptance_in_one_period(alice, plus, two_offers):
    sub = SubscriptionFactory(member=alice, tier=plus)
    RetentionOfferAcceptance.objects.create(subscription=sub, member=alice, period_start=sub.current_period_start)
    with pytest.raises(IntegrityError), transaction.atomic():
        RetentionOfferAcceptance.objects.create(subscription=sub, member=alice, period_start=sub.current_period_start)


def test_a_new_period_may_accept_an_offer_again(alice, plus, two_offers):
    _pause, discount = two_offers
    sub = SubscriptionFactory(member=alice, tier=plus)
    services.retention_offer_accept(subscription=sub, offer=discount, reason="too_expensive")
    services.subscription_renew(subscription=sub, when=sub.current_period_end)
    sub.refresh_from_db()
    services.retention_offer_accept(subscription=sub, offer=discount, reason="too_expensive")
    assert RetentionOfferAcceptance.objects.filter(subscription=sub).count() == 2


# ---------------------------------------------------------------------------------------------------- proration


def test_unused_fraction_is_exact_on_fixed_dates():
    assert unused_fraction(start=APR_1, end=MAY_1, when=APR_16) == Decimal("0.5")
    assert unused_fraction(start=APR_1, end=MAY_1, when=MAY_1 + timedelta(days=3)) == 0
    assert unused_fraction(start=APR_1, end=MAY_1, when=APR_1 - timedelta(days=3)) == 1


def test_upgrade_mid_period_charges_the_difference_for_the_rest_of_the_period(alice, plus, pro):
    sub = _april_plus(alice, plus)
    quote = services.subscription_proration(subscription=sub, tier=pro, when=APR_16)
    assert (quote.credit, quote.charge, quote.due) == (Decimal("24.50"), Decimal("49.50"), Decimal("25.00"))
    change = services.subscription_change_tier(subscription=sub, tier=pro, idempotency_key="up", when=APR_16)
    assert change.order.amount_paid == Decimal("25.00") and change.order.discount == Decimal("24.50")
    assert change.order.list_price == Decimal("49.50") and change.order.status == Order.Status.PAID
    sub.refresh_from_db()
    assert sub.tier == pro and sub.current_period_end == MAY_1  # the period does not move
    assert sub.changes.last().kind == SubscriptionChange.Kind.TIER_CHANGED
    # The next renewal charges Pro's full price.
    renewal = services.subscription_renew(subscription=sub, when=MAY_1)
    assert renewal.amount_paid == Decimal("99.00") and renewal.tier == pro


def test_upgrade_with_ten_of_thirty_days_left(alice, plus, pro):
    sub = _april_plus(alice, plus)
    change = services.subscription_change_tier(subscription=sub, tier=pro, when=APR_21)
    # credit 49.00 x 1/3 = 16.33, charge 99.00 x 1/3 = 33.00, due 16.67
    assert (change.order.discount, change.order.list_price, change.order.amount_paid) == (
        Decimal("16.33"), Decimal("33.00"), Decimal("16.67"))


def test_upgrade_credits_what_was_paid_not_the_list_price(alice, plus, pro):
    coupon = CouponFactory(code="TWENTY", percent_off=Decimal("20"), valid_from=APR_1 - timedelta(days=1),
                           valid_until=APR_1 + timedelta(days=1))
    sub = services.subscription_start(member=alice, tier=plus, coupon_code=coupon.code, when=APR_1)
    assert sub.orders.get().amount_paid == Decimal("39.20")
    change = services.subscription_change_tier(subscription=sub, tier=pro, when=APR_16)
    assert change.order.discount == Decimal("19.60") and change.order.amount_paid == Decimal("29.90")


def test_downgrade_waits_for_the_period_end_and_that_renewal_charges_the_lower_price(alice, plus, pro):
    sub = services.subscription_start(member=alice, tier=pro, use_trial=False, when=APR_1)
    change = services.subscription_change_tier(subscription=sub, tier=plus, when=APR_16)
    assert change.order is None and change.scheduled
    sub.refresh_from_db()
    assert sub.tier == pro and sub.scheduled_tier == plus and len(CountingProvider.charges) == 1
    renewal = services.subscription_renew(subscription=sub, when=MAY_1)
    sub.refresh_from_db()
    assert renewal.amount_paid == Decimal("49.00") and renewal.tier == plus
    assert sub.tier == plus and sub.scheduled_tier is None


def test_choosing_the_current_tier_again_undoes_a_scheduled_downgrade(alice, plus, pro):
    sub = services.subscription_start(member=alice, tier=pro, use_trial=False, when=APR_1)
    services.subscription_change_tier(subscription=sub, tier=plus, when=APR_16)
    services.subscription_change_tier(subscription=sub, tier=pro, when=APR_21)
    sub.refresh_from_db()
    assert sub.scheduled_tier is None and sub.tier == pro


def test_monthly_to_yearly_starts_a_year_now_and_credits_the_unused_month(alice, plus):
    sub = _april_plus(alice, plus)
    change = services.subscription_switch_period(subscription=sub, period="year", when=APR_16)
    # yearly 490.00 - credit 49.00 x 15/30 = 465.50
    assert (change.order.list_price, change.order.discount, change.order.amount_paid) == (
        Decimal("490.00"), Decimal("24.50"), Decimal("465.50"))
    sub.refresh_from_db()
    assert sub.billing_period == "year" and sub.current_period_start == APR_16
    assert sub.current_period_end == datetime(2027, 4, 16, tzinfo=UTC)


def test_yearly_to_monthly_waits_for_the_paid_year_to_end(alice, plus):
    jan_1 = datetime(2026, 1, 1, tzinfo=UTC)
    sub = services.subscription_start(member=alice, tier=plus, period="year", use_trial=False, when=jan_1)
    change = services.subscription_switch_period(subscription=sub, period="month", when=datetime(2026, 7, 1, tzinfo=UTC))
    assert change.order is None and change.scheduled
    sub.refresh_from_db()
    assert sub.billing_period == "year" and sub.scheduled_billing_period == "month"
    renewal = services.subscription_renew(subscription=sub, when=datetime(2027, 1, 1, tzinfo=UTC))
    sub.refresh_from_db()
    assert renewal.amount_paid == Decimal("49.00") and renewal.billing_period == "month"
    assert sub.billing_period == "month" and sub.current_period_end == datetime(2027, 2, 1, tzinfo=UTC)


def test_a_retried_upgrade_charges_once(alice, plus, pro):
    sub = _april_plus(alice, plus)
    first = services.subscription_change_tier(subscription=sub, tier=pro, idempotency_key="u", when=APR_16)
    again = services.subscription_change_tier(subscription=sub, tier=pro, idempotency_key="u", when=APR_16)
    assert first.order.pk == again.order.pk and len(CountingProvider.charges) == 2  # the April charge + one upgrade


def test_a_declined_upgrade_changes_nothing(alice, plus, pro):
    sub = _april_plus(alice, plus)
    with pytest.raises(exceptions.PaymentFailed):
        services.subscription_change_tier(subscription=sub, tier=pro, payment_token="local:decline", when=APR_16)
    sub.refresh_from_db()
    assert sub.tier == plus and sub.orders.filter(status=Order.Status.FAILED).count() == 1


def test_a_trial_changes_plan_without_a_charge(alice, plus, pro):
    trial_plus = TierFactory(slug="plus-trial", monthly_price=Decimal("49.00"), trial_days=7)
    sub = services.subscription_start(member=alice, tier=trial_plus, when=APR_1)
    change = services.subscription_change_tier(subscription=sub, tier=pro, when=APR_1 + timedelta(days=2))
    sub.refresh_from_db()
    assert change.order is None and sub.tier == pro and sub.status == Subscription.Status.TRIALING
    assert not CountingProvider.charges


def test_a_past_due_membership_cannot_change_plan(alice, plus, pro):
    sub = SubscriptionFactory(member=alice, tier=plus, status=Subscription.Status.PAST_DUE)
    with pytest.raises(exceptions.SubscriptionError):
        services.subscription_change_tier(subscription=sub, tier=pro)


# ---------------------------------------------------------------------------------------------------- both doors


def _half_way(member, tier) -> Subscription:
    """A paid monthly period half gone: 15 days behind, 15 ahead (the seconds a test takes don't move a cent)."""
    now = timezone.now()
    sub = SubscriptionFactory(member=member, tier=tier, current_period_start=now - timedelta(days=15),
                              current_period_end=now + timedelta(days=15))
    Order.objects.create(member=member, kind="subscription", tier=tier, billing_period="month", subscription=sub,
                         period_start=sub.current_period_start, list_price=tier.monthly_price,
                         amount_paid=tier.monthly_price, status="paid", paid_at=sub.current_period_start)
    return sub


def test_upgrade_through_the_api(alice, plus, pro):
    _half_way(alice, plus)
    response = _api(alice).post(reverse("members-api:membership-change-tier"), {"tier": "pro"}, format="json",
                                HTTP_IDEMPOTENCY_KEY="api-up")
    body = response.json()
    assert response.status_code == 200 and body["scheduled"] is False
    assert body["subscription"]["tier"]["slug"] == "pro" and body["order"]["amount_paid"] == "25.00"


def test_downgrade_through_the_api_is_scheduled(alice, plus, pro):
    _half_way(alice, pro)
    body = _api(alice).post(reverse("members-api:membership-change-tier"), {"tier": "plus"}, format="json").json()
    assert body["scheduled"] is True and body["order"] is None and body["subscription"]["scheduled_tier"] == "plus"


def test_upgrade_and_switch_through_the_membership_page(alice_client, alice, plus, pro):
    sub = _half_way(alice, plus)
    page = alice_client.get(reverse("members:membership")).content.decode()
    assert "Upgrade to Pro" in page and "25.00" in page
    url = reverse("members:membership_change_tier")
    form = {**hidden_inputs(page, form_action=url), "tier": "pro"}
    response = alice_client.post(url, form, follow=True)
    assert "Charged today: 25.00" in response.content.decode()
    alice_client.post(url, form)  # the same form again: no second charge
    sub.refresh_from_db()
    assert sub.tier == pro and Order.objects.filter(member=alice, tier=pro).count() == 1
    page = alice_client.get(reverse("members:membership")).content.decode()
    switch = reverse("members:membership_switch")
    response = alice_client.post(switch, {**hidden_inputs(page, form_action=switch), "period": "year"}, follow=True)
    sub.refresh_from_db()
    assert sub.billing_period == "year" and "Charged today" in response.content.decode()


def test_admin_ticks_the_reasons_an_offer_answers(staff_client):
    response = staff_client.post(reverse("admin:members_retentionoffer_add"), {
        "name": "Pause", "kind": "pause", "pause_days": "30", "headline": "", "reasons": ["not_using", "finished"],
        "is_active": "on", "created_at_0": "2026-04-01", "created_at_1": "00:00:00",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    assert RetentionOffer.objects.get(name="Pause").reasons == ["not_using", "finished"]


def test_an_offer_with_an_unknown_reason_is_refused(db):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        RetentionOffer(name="x", kind="pause", pause_days=3, reasons=["bored"]).full_clean()


def test_the_quote_for_an_included_course_is_zero(alice, pro):
    course = CourseFactory(price=Decimal("200.00"))
    SubscriptionFactory(member=alice, tier=pro)
    body = _api(alice).post(reverse("members-api:quote"), {"course": course.slug}, format="json").json()
    assert body["total"] == "0.00" and body["member_discount"] == "200.00"


def test_order_fail_returns_the_coupon_use_and_is_safe_to_call_twice(alice):
    coupon = CouponFactory(max_redemptions=1)
    course = CourseFactory()
    order = Order.objects.create(member=alice, kind="course", course=course, list_price=10, amount_paid=8,
                                 status="pending", coupon=coupon)
    from members.models import CouponRedemption

    CouponRedemption.objects.create(coupon=coupon, member=alice, order=order)
    Coupon.objects.filter(pk=coupon.pk).update(times_redeemed=1)
    commerce_services.order_fail(order=order, reason="Declined by the bank")
    commerce_services.order_fail(order=order, reason="Declined again")
    order.refresh_from_db()
    coupon.refresh_from_db()
    assert order.status == Order.Status.FAILED and order.failure_reason == "Declined by the bank"
    assert coupon.times_redeemed == 0 and not CouponRedemption.objects.filter(order=order).exists()


def test_the_renew_form_submitted_twice_charges_once(alice_client, alice, plus):
    sub = SubscriptionFactory(member=alice, tier=plus)
    end = sub.current_period_end
    url = reverse("members:membership_renew")
    page = alice_client.get(reverse("members:membership")).content.decode()
    form = {**hidden_inputs(page, form_action=url), "payment_token": "local:ok"}
    first = alice_client.post(url, form)
    again = alice_client.post(url, form)
    sub.refresh_from_db()
    assert first["Location"] == again["Location"]  # the same order page: the first result
    assert len(CountingProvider.charges) == 1 and sub.current_period_start == end


def test_a_prorated_upgrade_gets_its_receipt_through_order_settle(alice, plus, pro, django_capture_on_commit_callbacks):
    from django.core import mail

    sub = _april_plus(alice, plus)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        change = services.subscription_change_tier(subscription=sub, tier=pro, when=APR_16)
    assert len(mail.outbox) == 1 and "25.00" in mail.outbox[0].body
    assert change.order.status == Order.Status.PAID
