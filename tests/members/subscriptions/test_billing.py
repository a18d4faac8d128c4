"""The member-facing billing page (fix a failed renewal) and the admin's view of the subscription history."""
from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from analytics.models import Event
from members.commerce import services
from members.models import PaymentMethod, Subscription
from members.subscriptions import billing
from tests.members.factories import SubscriptionFactory

URL = reverse("members:billing_payment_method")


def _past_due(member):
    services.payment_method_set(member=member, token="local:decline-card", label="Old card")
    sub = SubscriptionFactory(member=member, current_period_start=timezone.now() - timedelta(days=31),
                              current_period_end=timezone.now() - timedelta(minutes=1))
    billing.renew_due_subscriptions()
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.PAST_DUE
    return sub


def test_anonymous_is_sent_to_log_in(client, db):
    response = client.get(URL)
    assert response.status_code == 302 and "login" in response["Location"]


def test_owner_sees_the_past_due_notice(alice_client, alice):
    _past_due(alice)
    response = alice_client.get(URL)
    assert response.status_code == 200
    assert b"Save and retry payment" in response.content and b"Old card" in response.content


def test_saving_a_working_card_recovers_the_membership_at_once(alice_client, alice):
    sub = _past_due(alice)
    response = alice_client.post(URL, {"token": "local:ok"}, follow=True)
    assert response.status_code == 200
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.ACTIVE
    assert PaymentMethod.objects.get(member=alice, is_default=True).token == "local:ok"


def test_saving_a_declining_card_keeps_it_past_due_and_says_why(alice_client, alice):
    sub = _past_due(alice)
    response = alice_client.post(URL, {"token": "local:decline"}, follow=True)
    assert b"declined" in response.content
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.PAST_DUE


def test_a_member_without_dues_just_saves_the_method(alice_client, alice):
    alice_client.post(URL, {"token": "local:ok"})
    assert PaymentMethod.objects.filter(member=alice, is_default=True).count() == 1


def test_the_member_admin_page_lists_subscription_events(staff_client, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _past_due(alice)
    assert Event.objects.filter(member=alice, kind="subscription_past_due").exists()
    response = staff_client.get(reverse("admin:members_user_change", args=[alice.pk]))
    assert response.status_code == 200
    assert b"subscription_past_due" in response.content
