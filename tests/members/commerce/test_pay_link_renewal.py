"""Renewal through a provider that cannot charge off-session (Alipay): a pending renewal order and an emailed pay
link; dunning retries remind with the same order; the signed notification moves the period on once."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.test import override_settings

from members import exceptions
from members.commerce.services import payment_method_set
from members.models import Order, Subscription
from members.subscriptions.services import subscription_renew
from tests.members.commerce import fakes
from tests.members.commerce.test_providers import ALIPAY_KEY, _alipay_fields, _config
from tests.members.factories import SubscriptionFactory, TierFactory

pytestmark = pytest.mark.django_db


@override_settings(PAYMENT_PROVIDERS_CONFIG=_config(), SITE_URL="https://learning.example")
def test_alipay_renewal_goes_through_a_pay_link_and_dunning_then_the_notification(
    client, django_capture_on_commit_callbacks
):
    tier = TierFactory(monthly_price=Decimal("49.00"))
    sub = SubscriptionFactory(tier=tier, status=Subscription.Status.ACTIVE)
    payment_method_set(member=sub.member, token="alipay:2088000000000001", label="Alipay", provider="alipay")
    due = sub.current_period_end + timedelta(minutes=1)
    old_end = sub.current_period_end

    # The link is emailed once the renewal's transaction commits.
    with pytest.raises(exceptions.PaymentFailed), override_settings(CELERY_TASK_ALWAYS_EAGER=True), \
            django_capture_on_commit_callbacks(execute=True):
        subscription_renew(subscription=sub, when=due)
    order = Order.objects.get(subscription=sub)
    sub.refresh_from_db()
    assert order.status == Order.Status.PENDING and order.provider == "alipay"
    assert sub.status == Subscription.Status.PAST_DUE  # dunning takes over
    # Dunning retry: the same order, another reminder, no second order.
    with pytest.raises(exceptions.PaymentFailed), django_capture_on_commit_callbacks(execute=True):
        subscription_renew(subscription=sub, when=due + timedelta(days=1))
    assert Order.objects.filter(subscription=sub).count() == 1
    links = [m for m in mail.outbox if "/payments/pay/" in m.body]
    assert len(links) == 2 and links[0].to == [sub.member.email]

    # The link starts Alipay's checkout for that order.
    path = links[0].body.split("https://learning.example", 1)[1].split()[0]
    response = client.get(path)
    assert response.status_code == 302 and "alipay" in response["Location"]

    body = fakes.alipay_sign_notification(ALIPAY_KEY, _alipay_fields(order, total_amount="49.00"))
    for _ in range(2):  # delivered twice
        assert client.post("/payments/webhooks/alipay/", body).status_code == 200
    order.refresh_from_db()
    sub.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert sub.status == Subscription.Status.ACTIVE and sub.current_period_end > old_end
    # One period on from the lapsed end (the notification came before it), exactly once despite the replay.
    assert old_end + timedelta(days=27) <= sub.current_period_end <= old_end + timedelta(days=32)


def test_a_forged_pay_link_is_404(client):
    assert client.get("/payments/pay/not-a-signed-token/").status_code == 404
