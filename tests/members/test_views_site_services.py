"""The site services appended to members/subscriptions_services.py for issue 3 (profile, unsubscribe, pause, save offers)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.models import Event
from members import exceptions
from members.accounts import services as accounts_services
from members.models import Coupon, RetentionOffer, Subscription
from members.subscriptions import services as subscriptions_services
from tests.members.factories import CouponFactory, SubscriptionFactory, TierFactory

pytestmark = pytest.mark.django_db


def test_unsubscribe_is_idempotent(alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert accounts_services.member_unsubscribe(member=alice) is True
        assert accounts_services.member_unsubscribe(member=alice) is False
    assert Event.objects.filter(member=alice, kind="marketing_unsubscribed").count() == 1


def test_profile_update_records_opt_out(alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        accounts_services.member_update_profile(member=alice, display_name=" Al ", preferred_language="zh-hans",
                                       time_zone="Asia/Shanghai", marketing_opt_in=False)
    alice.refresh_from_db()
    assert alice.display_name == "Al"
    assert Event.objects.filter(member=alice, kind="marketing_unsubscribed").exists()


def test_pause_extends_from_period_end_and_undoes_pending_cancel(alice):
    sub = SubscriptionFactory(member=alice, cancel_at_period_end=True, canceled_at=timezone.now())
    paused = subscriptions_services.subscription_pause(subscription=sub, days=30)
    assert paused.paused_until == sub.current_period_end + timedelta(days=30)
    assert not paused.cancel_at_period_end
    with pytest.raises(exceptions.SubscriptionError):
        subscriptions_services.subscription_pause(subscription=sub, days=30)  # already paused
    with pytest.raises(exceptions.SubscriptionError):
        subscriptions_services.subscription_pause(subscription=sub, days=0)


def test_pause_refused_for_ended_membership(alice):
    sub = SubscriptionFactory(member=alice, status=Subscription.Status.EXPIRED)
    with pytest.raises(exceptions.SubscriptionError):
        subscriptions_services.subscription_pause(subscription=sub, days=10)


def test_discount_offer_issues_a_personal_tier_coupon_used_at_renewal(alice, bob):
    tier = TierFactory(monthly_price=Decimal("100.00"))
    sub = SubscriptionFactory(member=alice, tier=tier)
    offer = RetentionOffer.objects.create(name="Stay", kind="discount", percent_off=Decimal("25"))
    coupon = subscriptions_services.retention_offer_accept(subscription=sub, offer=offer, reason="too_expensive")
    assert isinstance(coupon, Coupon)
    assert coupon.assigned_member == alice and coupon.applies_to == Coupon.AppliesTo.TIERS
    assert coupon.valid_until > sub.current_period_end
    # Another member's retention coupon is never picked up.
    CouponFactory(code="BOBS", assigned_member=bob, source=Coupon.Source.RETENTION, applies_to="tiers")
    assert subscriptions_services.renewal_coupon_code(subscription=sub) == coupon.code
    order = subscriptions_services.subscription_renew(subscription=sub, coupon_code=subscriptions_services.renewal_coupon_code(subscription=sub))
    assert order.amount_paid == Decimal("75.00")
    assert subscriptions_services.renewal_coupon_code(subscription=sub) == ""  # used once


def test_inactive_offer_is_refused(alice):
    sub = SubscriptionFactory(member=alice)
    offer = RetentionOffer.objects.create(name="Old", kind="pause", pause_days=10, is_active=False)
    with pytest.raises(exceptions.SubscriptionError):
        subscriptions_services.retention_offer_accept(subscription=sub, offer=offer)


def test_the_renewal_job_applies_an_accepted_save_offer(alice):
    from members.subscriptions.billing import subscription_renew_due

    tier = TierFactory(monthly_price=Decimal("100.00"))
    sub = SubscriptionFactory(member=alice, tier=tier)
    offer = RetentionOffer.objects.create(name="Stay", kind="discount", percent_off=Decimal("25"))
    subscriptions_services.retention_offer_accept(subscription=sub, offer=offer, reason="too_expensive")
    sub.refresh_from_db()
    assert subscription_renew_due(subscription=sub, when=sub.current_period_end) == "renewed"
    assert sub.orders.get(is_renewal=True).amount_paid == Decimal("75.00")
