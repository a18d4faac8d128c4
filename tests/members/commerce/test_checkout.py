"""Checkout: live coupon re-pricing (htmx), every coupon refusal reason, payment failure, receipts, memberships."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone, translation

from members import exceptions
from members.models import Coupon, CouponRedemption, Enrollment, Order, Subscription
from members.subscriptions import services
from tests.members.factories import (
    CouponFactory,
    CourseFactory,
    EnrollmentFactory,
    SubscriptionFactory,
    TierFactory,
)

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def course(db):
    return CourseFactory(title="Pricing 101", slug="pricing-101", price=Decimal("200.00"))


def test_checkout_requires_login(client, course):
    response = client.get(reverse("members:checkout_course", args=[course.slug]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_coupon_reprices_live_as_fragment(alice_client, course):
    CouponFactory(code="TAKE25", percent_off=Decimal(25))
    url = reverse("members:checkout_course", args=[course.slug])
    full = alice_client.get(url)
    assert b"<html" in full.content and "¥200.00" in full.content.decode()
    fragment = alice_client.get(url, {"coupon": "take25"}, **HX)
    body = fragment.content.decode()
    assert "<html" not in body and 'id="quote"' in body
    assert "¥150.00" in body and "Coupon TAKE25 applied" in body


@pytest.mark.parametrize(
    ("coupon_kwargs", "message"),
    [
        ({"valid_until": timezone.now() - timedelta(days=1)}, "This coupon has expired."),
        ({"max_redemptions": 1, "times_redeemed": 1}, "This coupon has been used up."),
        ({"applies_to": Coupon.AppliesTo.TIERS}, "This coupon does not apply to this item."),
        ({"assigned_member": "bob"}, "This coupon belongs to another member."),
        (None, "There is no coupon with this code."),
    ],
)
def test_coupon_refusals_explain_why(alice_client, bob, course, coupon_kwargs, message):
    if coupon_kwargs is not None:
        kwargs = dict(coupon_kwargs)
        if kwargs.get("assigned_member") == "bob":
            kwargs["assigned_member"] = bob
        CouponFactory(code="NOPE", **kwargs)
    body = alice_client.get(reverse("members:checkout_course", args=[course.slug]), {"coupon": "NOPE"}, **HX)
    text = body.content.decode()
    assert message in text
    assert "¥200.00" in text  # the price stays the undiscounted one


def test_buy_course_with_coupon_writes_paid_order_enrollment_and_receipt(alice_client, alice, course,
                                                                          django_capture_on_commit_callbacks):
    alice.preferred_language = "zh-hans"
    alice.save()
    CouponFactory(code="HALF", percent_off=Decimal(50))
    with django_capture_on_commit_callbacks(execute=True):  # the receipt is queued when the payment commits
        response = alice_client.post(reverse("members:checkout_course", args=[course.slug]),
                                     {"coupon": "HALF", "payment_token": "local:ok", "action": "pay"})
    order = Order.objects.get(member=alice)
    assert response.status_code == 302 and response["Location"] == order.get_absolute_url()
    assert order.status == Order.Status.PAID and order.amount_paid == Decimal("100.00")
    assert Enrollment.objects.filter(member=alice, course=course).exists()
    assert len(mail.outbox) == 1
    receipt = mail.outbox[0]
    assert receipt.to == ["alice@example.com"]
    assert "¥100.00" in receipt.body and f"#{order.pk}" in receipt.body
    assert receipt.alternatives[0][1] == "text/html"
    page = alice_client.get(order.get_absolute_url()).content.decode()
    assert "HALF" in page


def test_apply_button_without_js_reprices_and_buys_nothing(alice_client, alice, course):
    CouponFactory(code="TEN", percent_off=Decimal(10))
    response = alice_client.post(reverse("members:checkout_course", args=[course.slug]),
                                 {"coupon": "TEN", "payment_token": "local:ok", "action": "apply"})
    assert response.status_code == 200 and "¥180.00" in response.content.decode()
    assert not Order.objects.exists()


def test_declined_card_shows_error_and_buys_nothing(alice_client, alice, course):
    coupon = CouponFactory(code="ONCE", max_redemptions=1)
    response = alice_client.post(reverse("members:checkout_course", args=[course.slug]),
                                 {"coupon": "ONCE", "payment_token": "local:decline", "action": "pay"})
    assert response.status_code == 402
    assert "Payment failed." in response.content.decode()
    assert not Enrollment.objects.filter(member=alice).exists()
    assert not Order.objects.filter(status=Order.Status.PAID).exists()
    coupon.refresh_from_db()
    assert coupon.times_redeemed == 0 and not CouponRedemption.objects.exists()
    assert len(mail.outbox) == 0


def test_invalid_coupon_on_pay_buys_nothing(alice_client, course):
    response = alice_client.post(reverse("members:checkout_course", args=[course.slug]),
                                 {"coupon": "GHOST", "payment_token": "local:ok", "action": "pay"})
    assert response.status_code == 200 and "There is no coupon with this code." in response.content.decode()
    assert not Order.objects.exists()


def test_owned_course_redirects_to_course(alice_client, alice, course):
    EnrollmentFactory(member=alice, course=course)
    response = alice_client.get(reverse("members:checkout_course", args=[course.slug]))
    assert response.status_code == 302 and response["Location"] == course.get_absolute_url()


def test_subscribe_with_trial_starts_trial_without_order(alice_client, alice):
    tier = TierFactory(slug="gold", trial_days=14)
    alice_client.post(reverse("members:checkout_tier", args=["gold"]),
                      {"period": "month", "use_trial": "on", "payment_token": "local:ok", "action": "pay"})
    sub = Subscription.objects.get(member=alice)
    assert sub.status == Subscription.Status.TRIALING and sub.tier == tier
    assert not Order.objects.exists()


def test_subscribe_yearly_with_coupon_charges_now(alice_client, alice, django_capture_on_commit_callbacks):
    TierFactory(slug="gold", yearly_price=Decimal("490.00"))
    CouponFactory(code="YEAR10", percent_off=Decimal(10), applies_to=Coupon.AppliesTo.TIERS)
    quote = alice_client.get(reverse("members:checkout_tier", args=["gold"]), {"coupon": "YEAR10", "period": "year"}, **HX)
    assert "¥441.00" in quote.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("members:checkout_tier", args=["gold"]),
                                     {"period": "year", "coupon": "YEAR10", "payment_token": "local:ok", "action": "pay"})
    order = Order.objects.get(member=alice)
    assert response["Location"] == order.get_absolute_url()
    assert order.amount_paid == Decimal("441.00") and order.billing_period == "year"
    assert len(mail.outbox) == 1


def test_subscribe_declined_leaves_no_membership(alice_client, alice):
    TierFactory(slug="gold")
    response = alice_client.post(reverse("members:checkout_tier", args=["gold"]),
                                 {"period": "month", "payment_token": "local:decline", "action": "pay"})
    assert response.status_code == 402
    assert not Subscription.objects.filter(member=alice).exists()


def test_live_member_is_sent_to_membership_page(alice_client, alice):
    tier = TierFactory(slug="gold")
    SubscriptionFactory(member=alice, tier=tier)
    response = alice_client.get(reverse("members:checkout_tier", args=["gold"]))
    assert response.status_code == 302 and response["Location"] == reverse("members:membership")


def test_renew_declined_shows_error(alice_client, alice):
    sub = SubscriptionFactory(member=alice, tier=TierFactory())
    period_end = sub.current_period_end
    response = alice_client.post(reverse("members:membership_renew"), {"payment_token": "local:decline"}, follow=True)
    body = response.content.decode()
    assert "declined" in body.lower() and "your membership is unchanged" in body
    # An early, optional renewal that is declined leaves the paid period alone: no past_due, no dunning.
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.ACTIVE and sub.current_period_end == period_end
    assert sub.renewal_attempts == 0 and sub.grace_until is None
    assert Order.objects.get(member=alice, status=Order.Status.FAILED).subscription_id == sub.pk


def test_a_declined_renewal_at_period_end_goes_past_due(alice):
    sub = SubscriptionFactory(member=alice, tier=TierFactory())
    with pytest.raises(exceptions.PaymentFailed):
        services.subscription_renew(subscription=sub, payment_token="local:decline", when=sub.current_period_end)
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.PAST_DUE and sub.renewal_attempts == 1 and sub.grace_until is not None


def test_the_decline_reason_reads_in_the_members_language(alice):
    sub = SubscriptionFactory(member=alice, tier=TierFactory())
    with translation.override("zh-hans"), pytest.raises(exceptions.PaymentFailed) as caught:
        services.subscription_renew(subscription=sub, payment_token="local:decline")
    assert caught.value.message != "Card declined by the local test provider"
    assert Order.objects.get(member=alice).failure_reason == "Card declined by the local test provider"
