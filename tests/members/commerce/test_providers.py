"""Each real provider against a local fake that signs as the provider does: create, signed notification
(valid -> paid once; replayed -> no change; forged/unsigned -> 4xx), status-query reconciliation, refund."""
from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import override_settings
from django.utils import timezone

from members.commerce import provider_services
from members.commerce.providers import get_adapter
from members.models import Enrollment, Order, PaymentNotification
from tests.members.commerce import fakes
from tests.members.factories import OrderFactory

pytestmark = pytest.mark.django_db

ALIPAY_APP_KEY, ALIPAY_APP_PRIV, ALIPAY_APP_PUB = fakes.rsa_pair()
ALIPAY_KEY, ALIPAY_PRIV, ALIPAY_PUB = fakes.rsa_pair()  # "Alipay's" key pair: it signs, we hold the public half
WECHAT_PLATFORM_KEY, _WECHAT_PLATFORM_PRIV, WECHAT_PLATFORM_PUB = fakes.rsa_pair()
_MERCHANT_KEY, WECHAT_MERCHANT_PRIV, _ = fakes.rsa_pair()
FORGER_KEY, _, _ = fakes.rsa_pair()
APIV3_KEY = "0123456789abcdef0123456789abcdef"  # 32 bytes, as WeChat Pay issues
STRIPE_WHSEC = "whsec_test_secret"


def _config(**extra):
    return {
        "alipay": {"app_id": "2021000000000001", "app_private_key": ALIPAY_APP_PRIV, "alipay_public_key": ALIPAY_PUB,
                   "sandbox": True, "notify_url": "https://learning.example/payments/webhooks/alipay/"},
        "wechatpay": {"mchid": "1900000001", "appid": "wx0000000000000001", "private_key": WECHAT_MERCHANT_PRIV,
                      "cert_serial_no": "SERIAL", "apiv3_key": APIV3_KEY, "platform_public_key": WECHAT_PLATFORM_PUB,
                      "platform_public_key_id": "PUB_KEY_ID_TEST", "client": extra.get("wechat_client")},
        "stripe": {"secret_key": "sk_test_fake", "webhook_secret": STRIPE_WHSEC,
                   "http_client": extra.get("stripe_http")},
    }


@pytest.fixture
def order():
    return OrderFactory(status=Order.Status.PENDING, paid_at=None, amount_paid=Decimal("199.00"), currency="CNY")


def _paid_state(order):
    order.refresh_from_db()
    return order.status, Enrollment.objects.filter(member=order.member, course=order.course).count(), \
        PaymentNotification.objects.filter(order=order).count()


# ------------------------------------------------------------------------------------------------- Alipay
def _alipay_fields(order, **over):
    return {"app_id": "2021000000000001", "out_trade_no": str(order.pk), "trade_no": "2026120522001400000000000001",
            "trade_status": "TRADE_SUCCESS", "total_amount": "199.00", "notify_id": "n1", "charset": "utf-8",
            "notify_time": "2026-12-05 10:00:00", **over}


@override_settings(PAYMENT_PROVIDERS_CONFIG=_config())
def test_alipay_create_is_a_signed_redirect_alipay_can_verify(order):
    checkout = provider_services.order_payment_start(order=order, provider="alipay", return_url="https://x/return")
    params = {k: v[0] for k, v in parse_qs(urlparse(checkout.url).query).items()}
    assert checkout.kind == "redirect" and params["method"] == "alipay.trade.page.pay"
    assert json.loads(params["biz_content"])["total_amount"] == "199.00"
    # Alipay verifies a request with the app's public key over every parameter but sign (sign_type included).
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    sign = params.pop("sign")
    message = "&".join(f"{k}={params[k]}" for k in sorted(params)).encode()
    ALIPAY_APP_KEY.public_key().verify(base64.b64decode(sign), message, padding.PKCS1v15(), hashes.SHA256())


@override_settings(PAYMENT_PROVIDERS_CONFIG=_config())
def test_alipay_notification_pays_once_and_a_replay_changes_nothing(client, order):
    body = fakes.alipay_sign_notification(ALIPAY_KEY, _alipay_fields(order))
    first = client.post("/payments/webhooks/alipay/", body)
    assert first.status_code == 200 and first.content == b"success"
    assert _paid_state(order) == ("paid", 1, 1)
    paid_at = order.paid_at
    again = client.post("/payments/webhooks/alipay/", body)
    assert again.status_code == 200
    assert _paid_state(order) == ("paid", 1, 1) and order.paid_at == paid_at


@override_settings(PAYMENT_PROVIDERS_CONFIG=_config())
@pytest.mark.parametrize("tamper", ["forged", "unsigned", "amount_changed"])
def test_alipay_forged_or_unsigned_notification_is_4xx_and_changes_nothing(client, order, tamper):
    if tamper == "forged":
        body = fakes.alipay_sign_notification(FORGER_KEY, _alipay_fields(order))
    elif tamper == "unsigned":
        body = _alipay_fields(order)
    else:
        body = fakes.alipay_sign_notification(ALIPAY_KEY, _alipay_fields(order))
        body["total_amount"] = "0.01"
    assert client.post("/payments/webhooks/alipay/", body).status_code == 400
    assert _paid_state(order) == ("pending", 0, 0)


def test_alipay_reconciliation_and_refund_through_the_signed_gateway(order, monkeypatch):
    order.created_at = timezone.now() - timedelta(minutes=30)
    order.provider = "alipay"
    order.save()
    gateway = fakes.FakeAlipayGateway(ALIPAY_KEY, {str(order.pk): {
        "trade_no": "2026120522001400000000000009", "trade_status": "TRADE_SUCCESS", "total_amount": "199.00"}})
    import alipay

    monkeypatch.setattr(alipay, "urlopen", gateway)
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_config()):
        assert provider_services.payments_reconcile() == 1
        assert provider_services.payments_reconcile() == 0  # already applied
        assert _paid_state(order) == ("paid", 1, 1)
        provider_services.order_provider_refund(order=order)
    order.refresh_from_db()
    assert order.status == "refunded" and gateway.calls == ["alipay.trade.query", "alipay.trade.refund"]


# ------------------------------------------------------------------------------------------------- WeChat Pay v3
def _wechat_tx(order, **over):
    return {"mchid": "1900000001", "appid": "wx0000000000000001", "out_trade_no": str(order.pk),
            "transaction_id": "4200000000202612050000000001", "trade_state": "SUCCESS", "trade_type": "NATIVE",
            "amount": {"total": 19900, "payer_total": 19900, "currency": "CNY"}, **over}


@override_settings(PAYMENT_PROVIDERS_CONFIG=_config(wechat_client=fakes.FakeWeChatClient({})))
def test_wechat_create_returns_a_qr_code_url(order):
    checkout = provider_services.order_payment_start(order=order, provider="wechatpay", return_url="https://x/")
    assert checkout.kind == "qr" and checkout.url.startswith("weixin://wxpay/bizpayurl")


@override_settings(PAYMENT_PROVIDERS_CONFIG=_config())
def test_wechat_callback_pays_once_and_a_replay_changes_nothing(client, order):
    body, headers = fakes.wechat_callback(WECHAT_PLATFORM_KEY, APIV3_KEY, _wechat_tx(order))
    first = client.post("/payments/webhooks/wechatpay/", body, content_type="application/json", **headers)
    assert first.status_code == 200 and first.json()["code"] == "SUCCESS"
    again = client.post("/payments/webhooks/wechatpay/", body, content_type="application/json", **headers)
    assert again.status_code == 200
    assert _paid_state(order) == ("paid", 1, 1)


@override_settings(PAYMENT_PROVIDERS_CONFIG=_config())
@pytest.mark.parametrize("tamper", ["forged", "unsigned", "wrong_apiv3_key", "stale", "body_changed"])
def test_wechat_forged_callback_is_4xx_and_changes_nothing(client, order, tamper):
    key, apiv3, ts = WECHAT_PLATFORM_KEY, APIV3_KEY, None
    if tamper == "forged":
        key = FORGER_KEY
    if tamper == "wrong_apiv3_key":
        apiv3 = "ffffffffffffffffffffffffffffffff"
    if tamper == "stale":
        ts = int(timezone.now().timestamp()) - 3600
    body, headers = fakes.wechat_callback(key, apiv3, _wechat_tx(order), timestamp=ts)
    if tamper == "unsigned":
        headers = {}
    if tamper == "body_changed":
        body = body.replace(b"TRANSACTION.SUCCESS", b"TRANSACTION.SUCCESX")
    response = client.post("/payments/webhooks/wechatpay/", body, content_type="application/json", **headers)
    assert response.status_code == 400
    assert _paid_state(order) == ("pending", 0, 0)


def test_wechat_reconciliation_and_refund(order):
    order.created_at = timezone.now() - timedelta(minutes=30)
    order.provider = "wechatpay"
    order.save()
    fake = fakes.FakeWeChatClient({str(order.pk): _wechat_tx(order)})
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_config(wechat_client=fake)):
        assert provider_services.payments_reconcile() == 1
        provider_services.order_provider_refund(order=order)
    order.refresh_from_db()
    assert order.status == "refunded"
    assert fake.refunds == [(f"refund-{order.pk}", {"refund": 19900, "total": 19900, "currency": "CNY"})]


# ------------------------------------------------------------------------------------------------- Stripe
def _stripe_completed(order, **over):
    return fakes.stripe_event("checkout.session.completed", {
        "id": "cs_test_1", "object": "checkout.session", "client_reference_id": str(order.pk),
        "amount_total": 19900, "currency": "cny", "payment_status": "paid", "payment_intent": "pi_123", **over})


def test_stripe_create_is_a_checkout_session(order):
    http = fakes.FakeStripeHTTP()
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_config(stripe_http=http.as_client())):
        checkout = provider_services.order_payment_start(order=order, provider="stripe", return_url="https://x/")
    order.refresh_from_db()
    assert checkout.url.startswith("https://checkout.stripe.com/") and order.provider_reference == "cs_test_1"


@override_settings(PAYMENT_PROVIDERS_CONFIG=_config())
def test_stripe_webhook_pays_once_and_a_replay_changes_nothing(client, order):
    payload = _stripe_completed(order)
    headers = {"HTTP_STRIPE_SIGNATURE": fakes.stripe_signature(STRIPE_WHSEC, payload)}
    for _ in range(2):
        response = client.post("/payments/webhooks/stripe/", payload, content_type="application/json", **headers)
        assert response.status_code == 200
    assert _paid_state(order) == ("paid", 1, 1)


@override_settings(PAYMENT_PROVIDERS_CONFIG=_config())
@pytest.mark.parametrize("tamper", ["forged", "unsigned", "stale"])
def test_stripe_forged_webhook_is_4xx_and_changes_nothing(client, order, tamper):
    payload = _stripe_completed(order)
    sig = {"forged": fakes.stripe_signature("whsec_someone_else", payload),
           "stale": fakes.stripe_signature(STRIPE_WHSEC, payload, timestamp=int(timezone.now().timestamp()) - 3600),
           "unsigned": ""}[tamper]
    headers = {"HTTP_STRIPE_SIGNATURE": sig} if sig else {}
    response = client.post("/payments/webhooks/stripe/", payload, content_type="application/json", **headers)
    assert response.status_code == 400
    assert _paid_state(order) == ("pending", 0, 0)


def test_webhook_and_return_page_racing_apply_once(client, order):
    """The return page confirms by querying; the webhook confirms by notification: both name pi_123."""
    http = fakes.FakeStripeHTTP(session_paid=True)
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_config(stripe_http=http.as_client())):
        provider_services.order_payment_start(order=order, provider="stripe", return_url="https://x/")
        order.refresh_from_db()
        notice = get_adapter("stripe").query(order=order)
        _o, applied_by_return = provider_services.order_payment_confirm(provider="stripe", notice=notice)
        payload = _stripe_completed(order, payment_intent=notice.reference)
        headers = {"HTTP_STRIPE_SIGNATURE": fakes.stripe_signature(STRIPE_WHSEC, payload)}
        assert client.post("/payments/webhooks/stripe/", payload, content_type="application/json",
                           **headers).status_code == 200
    assert applied_by_return is True
    assert _paid_state(order) == ("paid", 1, 1)


def test_stripe_reconciliation_refund_and_off_session(order):
    http = fakes.FakeStripeHTTP(session_paid=True)
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_config(stripe_http=http.as_client())):
        provider_services.order_payment_start(order=order, provider="stripe", return_url="https://x/")
        Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(minutes=30))
        assert provider_services.payments_reconcile() == 1
        provider_services.order_provider_refund(order=order)
        renewal = OrderFactory(status=Order.Status.PENDING, paid_at=None, amount_paid=Decimal("49.00"))
        notice = get_adapter("stripe").charge_off_session(order=renewal, method_token="stripe:cus_1:pm_1")
        assert notice.paid and notice.amount == Decimal("49.00")
        declined = get_adapter("stripe", http_client=fakes.FakeStripeHTTP(decline=True).as_client())
        assert declined.charge_off_session(order=renewal, method_token="stripe:cus_1:pm_1").paid is False
    order.refresh_from_db()
    assert order.status == "refunded" and ("post", "/v1/refunds") in http.calls


@override_settings(PAYMENT_PROVIDERS_CONFIG=_config())
def test_alipay_and_wechat_cannot_charge_off_session(order):
    assert get_adapter("alipay").charge_off_session(order=order, method_token="x") is None
    assert get_adapter("wechatpay").charge_off_session(order=order, method_token="x") is None


def test_unconfigured_provider_webhook_is_404(client):
    with override_settings(PAYMENT_PROVIDERS_CONFIG={"alipay": None, "wechatpay": None, "stripe": None}):
        assert client.post("/payments/webhooks/stripe/", b"{}", content_type="application/json").status_code == 404


def test_reconciliation_is_scheduled_and_runs_as_a_task():
    from config.celery import app
    from members.commerce.tasks import reconcile_provider_payments

    assert app.conf.beat_schedule["reconcile-provider-payments"]["task"] == reconcile_provider_payments.name
    with override_settings(PAYMENT_PROVIDERS_CONFIG={"alipay": None, "wechatpay": None, "stripe": None}):
        assert reconcile_provider_payments.apply().get() == 0
