"""Receipts: every paid order gets one, whichever door sold it (HTML checkout, API, membership start, renewal),
through the one queue in members/commerce/receipts.py, in the member's language. A declined payment sends none."""
from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse
from rest_framework.test import APIClient

from members.models import Order
from members.subscriptions import services as subscription_services
from tests.members.factories import CourseFactory, SubscriptionFactory, TierFactory, UserFactory

ZH_SUBJECT = "收据"  # part of the zh-hans "Your receipt for %(item)s"


@pytest.fixture
def zh_member(db):
    return UserFactory(email="li@example.com", preferred_language="zh-hans")


def _api(member):
    api = APIClient()
    api.force_authenticate(member)
    return api


def _only_receipt_for(order: Order):
    assert len(mail.outbox) == 1
    receipt = mail.outbox[0]
    assert receipt.to == [order.member.email]
    assert f"#{order.pk}" in receipt.body
    return receipt


def test_html_and_api_course_checkout_send_the_same_receipt(db, client, django_capture_on_commit_callbacks):
    course = CourseFactory()
    html_buyer, api_buyer = UserFactory(), UserFactory()
    client.force_login(html_buyer)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("members:checkout_course", args=[course.slug]),
                    {"payment_token": "local:ok", "action": "pay"})
    html_receipt = _only_receipt_for(Order.objects.get(member=html_buyer))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = _api(api_buyer).post(f"/api/v1/courses/{course.slug}/purchase/", {"payment_token": "local:ok"},
                                        format="json")
    assert response.status_code == 201
    api_receipt = _only_receipt_for(Order.objects.get(member=api_buyer))
    assert api_receipt.subject == html_receipt.subject
    assert [a[1] for a in api_receipt.alternatives] == [a[1] for a in html_receipt.alternatives] == ["text/html"]


def test_a_renewal_sends_a_receipt_in_the_members_language(zh_member, django_capture_on_commit_callbacks):
    sub = SubscriptionFactory(member=zh_member)
    with django_capture_on_commit_callbacks(execute=True):
        order = subscription_services.subscription_renew(subscription=sub, when=sub.current_period_end)
    receipt = _only_receipt_for(order)
    assert ZH_SUBJECT in receipt.subject


def test_starting_a_membership_through_the_api_sends_a_receipt(zh_member, django_capture_on_commit_callbacks):
    tier = TierFactory()
    with django_capture_on_commit_callbacks(execute=True):
        response = _api(zh_member).post("/api/v1/me/membership/", {"tier": tier.slug, "period": "month",
                                                                    "payment_token": "local:ok"}, format="json")
    assert response.status_code in (200, 201), response.content
    assert ZH_SUBJECT in _only_receipt_for(Order.objects.get(member=zh_member)).subject


def test_a_declined_payment_sends_no_receipt(db, client, django_capture_on_commit_callbacks):
    course, buyer = CourseFactory(), UserFactory()
    client.force_login(buyer)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("members:checkout_course", args=[course.slug]),
                    {"payment_token": "local:decline", "action": "pay"})
    assert Order.objects.get(member=buyer).status == Order.Status.FAILED
    assert mail.outbox == []


def _paid_order(django_capture_on_commit_callbacks):
    course, buyer = CourseFactory(), UserFactory()
    from members.commerce.services import course_purchase
    with django_capture_on_commit_callbacks(execute=False):
        course_purchase(member=buyer, course=course, payment_token="local:ok")
    return Order.objects.get(member=buyer, status=Order.Status.PAID)


def test_a_redelivered_receipt_task_sends_no_second_receipt(db, django_capture_on_commit_callbacks):
    from members.commerce.receipts import send_order_receipt_task
    order = _paid_order(django_capture_on_commit_callbacks)
    send_order_receipt_task.apply(args=[order.pk])
    send_order_receipt_task.apply(args=[order.pk])  # the broker redelivers (acks_late) or the order is enqueued twice
    _only_receipt_for(order)
    order.refresh_from_db()
    assert order.receipt_sent_at is not None


def test_a_receipt_claimed_by_another_worker_is_not_sent_again(db, django_capture_on_commit_callbacks):
    from django.utils import timezone

    from members.commerce.receipts import receipt_send
    order = _paid_order(django_capture_on_commit_callbacks)
    Order.objects.filter(pk=order.pk).update(receipt_claimed_at=timezone.now())  # a worker is sending it right now
    assert receipt_send(order_id=order.pk) is False
    assert mail.outbox == []


def test_a_failed_send_releases_the_claim_so_the_retry_sends_once(db, django_capture_on_commit_callbacks,
                                                                   monkeypatch):
    from smtplib import SMTPServerDisconnected

    from members.commerce import receipts
    order = _paid_order(django_capture_on_commit_callbacks)
    real_send = receipts.send_order_receipt

    def flaky(*, order):
        monkeypatch.setattr(receipts, "send_order_receipt", real_send)
        raise SMTPServerDisconnected("lost")

    monkeypatch.setattr(receipts, "send_order_receipt", flaky)
    with pytest.raises(SMTPServerDisconnected):
        receipts.receipt_send(order_id=order.pk)
    assert Order.objects.get(pk=order.pk).receipt_claimed_at is None
    assert receipts.receipt_send(order_id=order.pk) is True
    assert receipts.receipt_send(order_id=order.pk) is False
    _only_receipt_for(order)
