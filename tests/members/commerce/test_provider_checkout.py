"""Checkout through a real provider (HTML and API): the member picks a configured provider, is sent to it (redirect or
QR code), and the return page shows the order's state. The order is paid once whether the return page or the
provider's notification comes first. With no provider configured, the local test cards stay the only choice."""
from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from members.models import Enrollment, Order, PaymentNotification
from tests.members.commerce import fakes
from tests.members.commerce.test_providers import (
    ALIPAY_KEY,
    APIV3_KEY,
    STRIPE_WHSEC,
    WECHAT_PLATFORM_KEY,
    _alipay_fields,
    _config,
    _stripe_completed,
    _wechat_tx,
)
from tests.members.factories import CourseFactory

pytestmark = pytest.mark.django_db
NONE_CONFIGURED = {"alipay": None, "wechatpay": None, "stripe": None}


@pytest.fixture
def course(db):
    return CourseFactory(title="Pricing 101", slug="pricing-101", price=Decimal("199.00"), currency="CNY")


def _checkout(client, course, token):
    return client.post(reverse("members:checkout_course", args=[course.slug]), {"payment_token": token,
                                                                                 "action": "pay"})


def _state(order):
    order.refresh_from_db()
    return (order.status, Enrollment.objects.filter(member=order.member, course=order.course).count(),
            PaymentNotification.objects.filter(order=order).count())


@override_settings(PAYMENT_PROVIDERS_CONFIG=NONE_CONFIGURED)
def test_without_providers_the_local_cards_are_the_only_choice_and_pay_at_once(alice_client, alice, course):
    page = alice_client.get(reverse("members:checkout_course", args=[course.slug])).content.decode()
    assert "provider:" not in page and 'value="local:ok"' in page
    response = _checkout(alice_client, course, "local:ok")
    order = Order.objects.get(member=alice)
    assert response.status_code == 302 and order.status == Order.Status.PAID and order.provider == "local"
    assert _checkout(alice_client, CourseFactory(), "provider:stripe").status_code == 200  # not offered: form error


def test_the_page_offers_only_providers_that_accept_the_courses_currency(alice_client, course):
    usd = CourseFactory(currency="USD", price=Decimal("30.00"))
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_config()):
        cny_page = alice_client.get(reverse("members:checkout_course", args=[course.slug])).content.decode()
        usd_page = alice_client.get(reverse("members:checkout_course", args=[usd.slug])).content.decode()
    assert all(f'value="provider:{p}"' in cny_page for p in ("alipay", "wechatpay", "stripe"))
    assert 'value="provider:stripe"' in usd_page and "provider:alipay" not in usd_page


def test_stripe_checkout_then_notification_then_return_page_pays_once(client, alice_client, alice, course):
    http = fakes.FakeStripeHTTP()
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_config(stripe_http=http.as_client())):
        response = _checkout(alice_client, course, "provider:stripe")
        order = Order.objects.get(member=alice)
        assert response.status_code == 302 and response["Location"].startswith("https://checkout.stripe.com/")
        assert _state(order) == ("pending", 0, 0) and order.provider == "stripe"
        assert order.provider_reference == "cs_test_1"
        payload = _stripe_completed(order, id="cs_test_1")
        signature = {"HTTP_STRIPE_SIGNATURE": fakes.stripe_signature(STRIPE_WHSEC, payload)}
        assert client.post("/payments/webhooks/stripe/", payload, content_type="application/json",
                           **signature).status_code == 200
        http.sessions["cs_test_1"].update(payment_status="paid", payment_intent="pi_123")
        back = alice_client.get(reverse("payments:return", args=[order.pk]), follow=True)
    assert back.redirect_chain[0][0] == order.get_absolute_url()
    assert "Paid" in back.content.decode() or "paid" in back.content.decode()
    assert _state(order) == ("paid", 1, 1)


def test_return_page_first_then_the_notification_pays_once(client, alice_client, alice, course):
    http = fakes.FakeStripeHTTP(session_paid=True)
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_config(stripe_http=http.as_client())):
        _checkout(alice_client, course, "provider:stripe")
        order = Order.objects.get(member=alice)
        alice_client.get(reverse("payments:return", args=[order.pk]))
        assert _state(order) == ("paid", 1, 1)
        payload = _stripe_completed(order, id="cs_test_1", payment_intent="pi_cs_test_1")
        signature = {"HTTP_STRIPE_SIGNATURE": fakes.stripe_signature(STRIPE_WHSEC, payload)}
        assert client.post("/payments/webhooks/stripe/", payload, content_type="application/json",
                           **signature).status_code == 200
    assert _state(order) == ("paid", 1, 1)


def test_a_return_before_anyone_paid_shows_the_order_pending(alice_client, alice, course):
    http = fakes.FakeStripeHTTP()
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_config(stripe_http=http.as_client())):
        _checkout(alice_client, course, "provider:stripe")
        order = Order.objects.get(member=alice)
        page = alice_client.get(reverse("payments:return", args=[order.pk]), follow=True).content.decode()
    assert "waiting for the payment provider" in page and _state(order) == ("pending", 0, 0)


def test_another_members_return_page_is_404(client, bob, alice_client, alice, course):
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_config(stripe_http=fakes.FakeStripeHTTP().as_client())):
        _checkout(alice_client, course, "provider:stripe")
        order = Order.objects.get(member=alice)
        client.force_login(bob)
        assert client.get(reverse("payments:return", args=[order.pk])).status_code == 404


def test_wechat_checkout_shows_a_qr_code_and_the_callback_pays(client, alice_client, alice, course):
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_config(wechat_client=fakes.FakeWeChatClient({}))):
        response = _checkout(alice_client, course, "provider:wechatpay")
        order = Order.objects.get(member=alice)
        assert response.status_code == 200 and f"weixin://wxpay/bizpayurl?pr=fake{order.pk}" in response.content.decode()
        assert reverse("payments:return", args=[order.pk]) in response.content.decode()
        body, headers = fakes.wechat_callback(WECHAT_PLATFORM_KEY, APIV3_KEY, _wechat_tx(order))
        assert client.post("/payments/webhooks/wechatpay/", body, content_type="application/json",
                           **headers).status_code == 200
    assert _state(order) == ("paid", 1, 1)


def test_coming_back_to_checkout_resumes_the_open_provider_order(alice_client, alice, course):
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_config(stripe_http=fakes.FakeStripeHTTP().as_client())):
        _checkout(alice_client, course, "provider:stripe")
        again = _checkout(alice_client, course, "provider:alipay")
    order = Order.objects.get(member=alice)  # still one order
    assert again.status_code == 302 and "alipay" in again["Location"] and order.provider == "alipay"


def test_api_purchase_with_a_provider_answers_202_with_the_checkout(client, alice, course):
    api = APIClient()
    api.force_authenticate(alice)
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_config()):
        response = api.post(f"/api/v1/courses/{course.slug}/purchase/", {"provider": "alipay"}, format="json")
        assert response.status_code == 202, response.content
        body = response.json()
        order = Order.objects.get(pk=body["order"]["id"])
        params = {k: v[0] for k, v in parse_qs(urlparse(body["checkout"]["url"]).query).items()}
        assert body["order"]["status"] == "pending" and body["checkout"]["kind"] == "redirect"
        assert params["method"] == "alipay.trade.page.pay"
        assert json.loads(params["biz_content"])["out_trade_no"] == str(order.pk)
        assert body["checkout"]["return_url"].endswith(reverse("payments:return", args=[order.pk]))
        signed = fakes.alipay_sign_notification(ALIPAY_KEY, _alipay_fields(order))
        assert client.post("/payments/webhooks/alipay/", signed).status_code == 200
    assert _state(order) == ("paid", 1, 1)


@override_settings(PAYMENT_PROVIDERS_CONFIG={**NONE_CONFIGURED})
def test_api_refuses_a_provider_that_is_not_configured(alice, course):
    api = APIClient()
    api.force_authenticate(alice)
    response = api.post(f"/api/v1/courses/{course.slug}/purchase/", {"provider": "stripe"}, format="json")
    assert response.status_code == 400 and not Order.objects.filter(member=alice).exists()


def test_the_card_a_first_stripe_payment_saved_renews_off_session(client, alice):
    from datetime import timedelta

    from members.models import PaymentMethod, Subscription
    from members.subscriptions.services import subscription_renew
    from tests.members.factories import OrderFactory, SubscriptionFactory, TierFactory

    first = OrderFactory(member=alice, status=Order.Status.PENDING, paid_at=None, amount_paid=Decimal("199.00"),
                         currency="CNY")
    payload = fakes.stripe_event("payment_intent.succeeded", {
        "id": "pi_first", "object": "payment_intent", "status": "succeeded", "amount": 19900,
        "amount_received": 19900, "currency": "cny", "customer": "cus_alice", "payment_method": "pm_card",
        "setup_future_usage": "off_session", "metadata": {"order_id": str(first.pk)}})
    signature = {"HTTP_STRIPE_SIGNATURE": fakes.stripe_signature(STRIPE_WHSEC, payload)}
    http = fakes.FakeStripeHTTP()
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_config(stripe_http=http.as_client())):
        for _ in range(2):  # delivered twice: one saved method
            assert client.post("/payments/webhooks/stripe/", payload, content_type="application/json",
                               **signature).status_code == 200
        assert list(PaymentMethod.objects.filter(member=alice).values_list("token", "is_default")) == [
            ("stripe:cus_alice:pm_card", True)]
        sub = SubscriptionFactory(member=alice, tier=TierFactory(monthly_price=Decimal("49.00"), currency="CNY"),
                                  status=Subscription.Status.ACTIVE)
        renewal = subscription_renew(subscription=sub, when=sub.current_period_end + timedelta(minutes=1))
    assert renewal.status == Order.Status.PAID and renewal.provider == "stripe"
    assert ("post", "/v1/payment_intents") in http.calls


def test_a_provider_outage_is_a_refused_attempt_not_a_500_and_the_order_can_be_resumed(alice_client, alice, course):
    class Down(fakes.FakeWeChatClient):
        def pay(self, **kwargs):
            return 500, '{"code":"SYSTEM_ERROR","message":"系统错误"}'

    with override_settings(PAYMENT_PROVIDERS_CONFIG=_config(wechat_client=Down({}))):
        response = _checkout(alice_client, course, "provider:wechatpay")
    assert response.status_code == 402 and "unavailable" in response.content.decode()
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_config(wechat_client=fakes.FakeWeChatClient({}))):
        assert _checkout(alice_client, course, "provider:wechatpay").status_code == 200
    assert Order.objects.filter(member=alice).count() == 1
