"""Off-session renewals through Alipay's agreement debit (alipay.trade.pay, GENERAL_WITHHOLDING) where it is
configured, against a fake gateway that checks the app's request signature and signs its answers as Alipay does.
The dunning flow treats a declined debit like a declined card and a still-processing one like a pay-link order."""
from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import alipay
import pytest
from django.core import mail
from django.test import override_settings

from members import exceptions
from members.commerce.services import payment_method_set
from members.models import Order, Subscription
from members.subscriptions.services import subscription_renew
from tests.members.commerce import fakes
from tests.members.commerce.test_providers import ALIPAY_APP_KEY, ALIPAY_KEY, _alipay_fields, _config
from tests.members.factories import SubscriptionFactory, TierFactory

pytestmark = pytest.mark.django_db


def _agreement_config(enabled: bool = True):
    config = _config()
    config["alipay"] = {**config["alipay"], "agreement_debit": enabled}
    return config


@pytest.fixture
def gateway(monkeypatch):
    fake = fakes.FakeAlipayGateway(ALIPAY_KEY, {}, app_public_key=ALIPAY_APP_KEY.public_key(),
                                   agreements={"20265905000000000001": "ok"})
    monkeypatch.setattr(alipay, "urlopen", fake)
    return fake


@pytest.fixture
def sub():
    tier = TierFactory(monthly_price=Decimal("49.00"), currency="CNY")
    sub = SubscriptionFactory(tier=tier, status=Subscription.Status.ACTIVE)
    payment_method_set(member=sub.member, token="alipay:20265905000000000001", label="Alipay agreement",
                       provider="alipay")
    return sub


def test_agreement_debit_renews_off_session_without_a_pay_link(sub, gateway, django_capture_on_commit_callbacks):
    old_end = sub.current_period_end
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_agreement_config()), \
            django_capture_on_commit_callbacks(execute=True):
        order = subscription_renew(subscription=sub, when=old_end + timedelta(minutes=1))
    sub.refresh_from_db()
    assert order.status == Order.Status.PAID and order.provider == "alipay"
    assert order.provider_reference == f"20261205220014{order.pk:014d}"
    assert sub.status == Subscription.Status.ACTIVE and sub.current_period_end > old_end
    assert gateway.calls == ["alipay.trade.pay"]
    assert not [m for m in mail.outbox if "/payments/pay/" in m.body]


def test_without_the_agreement_product_the_renewal_falls_back_to_a_pay_link(sub, gateway):
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_agreement_config(enabled=False)), \
            pytest.raises(exceptions.PaymentFailed):
        subscription_renew(subscription=sub, when=sub.current_period_end + timedelta(minutes=1))
    assert gateway.calls == [] and Order.objects.get(subscription=sub).status == Order.Status.PENDING


def test_a_declined_debit_goes_to_dunning_and_the_retry_recovers(sub, gateway):
    gateway.agreements["20265905000000000001"] = "no_balance"
    due = sub.current_period_end + timedelta(minutes=1)
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_agreement_config()):
        with pytest.raises(exceptions.PaymentFailed):
            subscription_renew(subscription=sub, when=due)
        sub.refresh_from_db()
        assert sub.status == Subscription.Status.PAST_DUE
        assert Order.objects.get(subscription=sub).status == Order.Status.FAILED
        gateway.agreements["20265905000000000001"] = "ok"  # the member topped up their balance
        retry = subscription_renew(subscription=sub, when=due + timedelta(days=1))
    sub.refresh_from_db()
    assert retry.status == Order.Status.PAID and sub.status == Subscription.Status.ACTIVE
    assert gateway.calls == ["alipay.trade.pay", "alipay.trade.pay"]


def test_a_debit_still_processing_is_settled_once_by_the_notification(client, sub, gateway):
    gateway.agreements["20265905000000000001"] = "processing"
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_agreement_config()):
        with pytest.raises(exceptions.PaymentFailed):
            subscription_renew(subscription=sub, when=sub.current_period_end + timedelta(minutes=1))
        order = Order.objects.get(subscription=sub)
        assert order.status == Order.Status.PENDING
        body = fakes.alipay_sign_notification(ALIPAY_KEY, _alipay_fields(
            order, total_amount="49.00", trade_no=f"20261205220014{order.pk:014d}"))
        for _ in range(2):
            assert client.post("/payments/webhooks/alipay/", body).status_code == 200
    order.refresh_from_db()
    sub.refresh_from_db()
    assert order.status == Order.Status.PAID and sub.status == Subscription.Status.ACTIVE


def test_the_debit_request_is_the_documented_shape_and_signed_by_the_app(sub, gateway, monkeypatch):
    seen = []
    real = gateway.__call__

    def spy(url, timeout=15):
        from urllib.parse import parse_qs, urlparse

        seen.append({k: v[0] for k, v in parse_qs(urlparse(url).query).items()})
        return real(url, timeout)

    monkeypatch.setattr(alipay, "urlopen", spy)
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_agreement_config()):
        subscription_renew(subscription=sub, when=sub.current_period_end + timedelta(minutes=1))
    params = seen[0]
    biz = json.loads(params["biz_content"])
    assert params["method"] == "alipay.trade.pay" and params["sign_type"] == "RSA2"
    assert biz["product_code"] == "GENERAL_WITHHOLDING" and biz["total_amount"] == "49.00"
    assert biz["agreement_params"] == {"agreement_no": "20265905000000000001"}
    assert params["notify_url"] == "https://learning.example/payments/webhooks/alipay/"


def test_a_forged_signature_on_the_request_is_refused_by_the_gateway(sub, gateway):
    gateway.app_public_key = fakes.rsa_pair()[0].public_key()  # Alipay holds another key than the app signs with
    with override_settings(PAYMENT_PROVIDERS_CONFIG=_agreement_config()), pytest.raises(exceptions.PaymentFailed):
        subscription_renew(subscription=sub, when=sub.current_period_end + timedelta(minutes=1))
    assert Order.objects.get(subscription=sub).status == Order.Status.FAILED
