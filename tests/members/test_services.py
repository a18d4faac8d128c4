from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from analytics.models import Event
from members import exceptions
from members.commerce import services as commerce_services
from members.commerce.pricing import coupon_discount, money, percent_of
from members.learning import progress as learning_progress
from members.models import Coupon, CouponRedemption, Enrollment, Order, Subscription
from members.subscriptions import services as subscriptions_services
from tests.members.factories import (
    BenefitFactory,
    CouponFactory,
    CourseFactory,
    LessonFactory,
    SubscriptionFactory,
    TierFactory,
    UserFactory,
)

DECLINE = "local:decline-test"


# ---------------------------------------------------------------------------------------------------- constraints

def test_it_rejects_a_second_live_subscription(db):
    member = UserFactory()
    SubscriptionFactory(member=member)
    with pytest.raises(IntegrityError), transaction.atomic():
        SubscriptionFactory(member=member, status=Subscription.Status.PAST_DUE)


def test_it_allows_a_new_subscription_after_the_old_one_ended(db):
    member = UserFactory()
    SubscriptionFactory(member=member, status=Subscription.Status.EXPIRED)
    SubscriptionFactory(member=member)
    assert Subscription.objects.filter(member=member).count() == 2


def test_subscribe_service_refuses_a_second_live_subscription(db):
    member, tier = UserFactory(), TierFactory()
    subscriptions_services.subscription_start(member=member, tier=tier)
    with pytest.raises(exceptions.AlreadySubscribed):
        subscriptions_services.subscription_start(member=member, tier=TierFactory())


# ---------------------------------------------------------------------------------------------------- purchases

def test_buying_a_course_writes_a_paid_order_an_enrollment_and_an_event(db, django_capture_on_commit_callbacks):
    member, course = UserFactory(), CourseFactory(price=Decimal("100.00"))
    with django_capture_on_commit_callbacks(execute=True):
        order = commerce_services.course_purchase(member=member, course=course)
    assert order.status == Order.Status.PAID and order.amount_paid == Decimal("100.00")
    assert Enrollment.objects.filter(member=member, course=course, source="purchase").exists()
    assert Event.objects.filter(member=member, kind="course_purchased", object_id=str(course.pk)).count() == 1


def test_a_failed_payment_leaves_no_paid_order_no_enrollment_and_returns_the_coupon(db, django_capture_on_commit_callbacks):
    member, course = UserFactory(), CourseFactory(price=Decimal("100.00"))
    coupon = CouponFactory(max_redemptions=1)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(exceptions.PaymentFailed):
        commerce_services.course_purchase(member=member, course=course, coupon_code=coupon.code, payment_token=DECLINE)
    assert not Order.objects.filter(status=Order.Status.PAID).exists()
    assert Order.objects.get().status == Order.Status.FAILED
    assert not Enrollment.objects.exists()
    coupon.refresh_from_db()
    assert coupon.times_redeemed == 0 and not CouponRedemption.objects.exists()
    assert not Event.objects.filter(kind="course_purchased").exists()
    assert Event.objects.filter(kind="payment_failed").exists()


def test_a_failed_first_payment_leaves_no_subscription(db):
    member, tier = UserFactory(), TierFactory()
    with pytest.raises(exceptions.PaymentFailed):
        subscriptions_services.subscription_start(member=member, tier=tier, payment_token=DECLINE)
    assert not Subscription.objects.exists()
    assert Order.objects.get().status == Order.Status.FAILED


def test_it_refuses_to_sell_an_owned_course(db):
    member, course = UserFactory(), CourseFactory()
    commerce_services.course_purchase(member=member, course=course)
    with pytest.raises(exceptions.AlreadyOwned):
        commerce_services.course_purchase(member=member, course=course)


# ---------------------------------------------------------------------------------------------------- coupons

@pytest.mark.parametrize(
    ("setup", "error"),
    [
        ({"valid_until_delta": -1}, exceptions.CouponExpired),
        ({"valid_from_delta": 2}, exceptions.CouponNotYetValid),
        ({"applies_to": Coupon.AppliesTo.TIERS}, exceptions.CouponNotApplicable),
        ({"other_member": True}, exceptions.CouponNotYours),
        ({"used_up": True}, exceptions.CouponUsedUp),
    ],
)
def test_it_explains_why_a_coupon_cannot_be_used(db, setup, error):
    member, course = UserFactory(), CourseFactory()
    now = timezone.now()
    coupon = CouponFactory(
        applies_to=setup.get("applies_to", Coupon.AppliesTo.ALL),
        valid_from=now + timedelta(days=setup.get("valid_from_delta", -5)),
        valid_until=now + timedelta(days=setup.get("valid_until_delta", 5)),
        assigned_member=UserFactory() if setup.get("other_member") else None,
        max_redemptions=1,
    )
    if setup.get("used_up"):
        commerce_services.course_purchase(member=UserFactory(), course=course, coupon_code=coupon.code)
    with pytest.raises(error):
        commerce_services.price_quote(member=member, course=course, coupon_code=coupon.code)


def test_it_rejects_an_unknown_code(db):
    with pytest.raises(exceptions.CouponNotFound):
        commerce_services.price_quote(member=UserFactory(), course=CourseFactory(), coupon_code="NOPE")


def test_per_member_limit_holds(db):
    coupon = CouponFactory(max_per_member=1, max_redemptions=None)
    member = UserFactory()
    commerce_services.course_purchase(member=member, course=CourseFactory(), coupon_code=coupon.code)
    with pytest.raises(exceptions.CouponAlreadyUsed):
        commerce_services.course_purchase(member=member, course=CourseFactory(), coupon_code=coupon.code)


def test_a_fixed_coupon_never_makes_the_price_negative(db):
    member, course = UserFactory(), CourseFactory(price=Decimal("30.00"))
    coupon = CouponFactory(discount_type=Coupon.DiscountType.FIXED, percent_off=None, amount_off=Decimal("50.00"))
    order = commerce_services.course_purchase(member=member, course=course, coupon_code=coupon.code)
    assert order.amount_paid == Decimal("0.00")
    assert order.discount == Decimal("30.00")


def test_tier_course_discount_then_coupon_stack_in_order(db):
    member = UserFactory()
    tier = TierFactory()
    BenefitFactory(tier=tier, kind="course_discount", value=Decimal("10"))
    SubscriptionFactory(member=member, tier=tier)
    coupon = CouponFactory(percent_off=Decimal("15"))
    quote = commerce_services.price_quote(member=member, course=CourseFactory(price=Decimal("199.99")), coupon_code=coupon.code)
    # 10% of 199.99 = 20.00 (half-up); 15% of 179.99 = 27.00 (26.9985 → 27.00); total 152.99
    assert (quote.member_discount, quote.coupon_discount, quote.total) == (Decimal("20.00"), Decimal("27.00"), Decimal("152.99"))


def test_money_arithmetic_rounds_half_up_to_cents():
    assert money(Decimal("0.005")) == Decimal("0.01")
    assert percent_of(Decimal("33.33"), Decimal("33.3")) == Decimal("11.10")
    coupon = Coupon(discount_type="fixed", amount_off=Decimal("5.555"))
    assert coupon_discount(coupon=coupon, amount=Decimal("3.00")) == Decimal("3.00")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_coupon_limit_holds_under_concurrent_redemptions():
    allowed, attempts = 3, 10
    coupon = CouponFactory(max_redemptions=allowed, max_per_member=1)
    course = CourseFactory(price=Decimal("50.00"))
    members = [UserFactory() for _ in range(attempts)]
    barrier = threading.Barrier(attempts)
    outcomes: list[str] = []
    lock = threading.Lock()

    def buy(member):
        try:
            barrier.wait()
            commerce_services.course_purchase(member=member, course=course, coupon_code=coupon.code)
            result = "ok"
        except exceptions.CouponError:
            result = "refused"
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=buy, args=(m,)) for m in members]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    coupon.refresh_from_db()
    assert outcomes.count("ok") == allowed
    assert coupon.times_redeemed == allowed
    assert CouponRedemption.objects.filter(coupon=coupon).count() == allowed


# ---------------------------------------------------------------------------------------------------- memberships

def test_subscribe_with_trial_then_convert(db):
    member, tier = UserFactory(), TierFactory(trial_days=7)
    sub = subscriptions_services.subscription_start(member=member, tier=tier)
    assert sub.status == Subscription.Status.TRIALING and not Order.objects.exists()
    order = subscriptions_services.subscription_renew(subscription=sub, when=sub.current_period_end)
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.ACTIVE and order.status == Order.Status.PAID and not order.is_renewal


def test_renewal_success_moves_the_period_and_failure_goes_past_due(db):
    member, tier = UserFactory(), TierFactory()
    sub = subscriptions_services.subscription_start(member=member, tier=tier)
    first_end = sub.current_period_end
    order = subscriptions_services.subscription_renew(subscription=sub, when=first_end)
    sub.refresh_from_db()
    assert order.is_renewal and sub.current_period_start == first_end and sub.renewal_count == 1
    with pytest.raises(exceptions.PaymentFailed):
        subscriptions_services.subscription_renew(subscription=sub, when=sub.current_period_end, payment_token=DECLINE)
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.PAST_DUE and sub.grace_until is not None
    assert sub.is_active_at(sub.current_period_end + timedelta(days=1))


def test_cancel_at_period_end_and_reactivate(db):
    sub = subscriptions_services.subscription_start(member=UserFactory(), tier=TierFactory())
    subscriptions_services.subscription_cancel(subscription=sub, reason="too_expensive", note="pricey")
    sub.refresh_from_db()
    assert sub.cancel_at_period_end and sub.cancellation_reason == "too_expensive" and sub.is_active
    subscriptions_services.subscription_reactivate(subscription=sub)
    sub.refresh_from_db()
    assert not sub.cancel_at_period_end
    subscriptions_services.subscription_cancel(subscription=sub, reason="not_using")
    subscriptions_services.subscription_end(subscription=sub, when=sub.current_period_end)
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.CANCELED


# ---------------------------------------------------------------------------------------------------- learning

def test_completing_every_lesson_completes_the_course(db, django_capture_on_commit_callbacks):
    member = UserFactory()
    course = CourseFactory()
    lessons = [LessonFactory(course=course, position=i) for i in (1, 2)]
    commerce_services.course_purchase(member=member, course=course)
    with django_capture_on_commit_callbacks(execute=True):
        for lesson in lessons:
            learning_progress.lesson_complete(member=member, lesson=lesson)
        learning_progress.lesson_complete(member=member, lesson=lessons[0])  # idempotent
    assert Enrollment.objects.get(member=member, course=course).completed_at is not None
    assert Event.objects.filter(kind="lesson_completed").count() == 2
    assert Event.objects.filter(kind="course_completed").count() == 1


def test_a_locked_lesson_cannot_be_completed(db):
    with pytest.raises(exceptions.LessonLocked):
        learning_progress.lesson_complete(member=UserFactory(), lesson=LessonFactory())


def test_all_course_tier_members_learn_without_buying(db):
    member, tier = UserFactory(), TierFactory()
    BenefitFactory(tier=tier, kind="all_courses")
    SubscriptionFactory(member=member, tier=tier)
    learning_progress.lesson_complete(member=member, lesson=LessonFactory())
    assert Enrollment.objects.get(member=member).source == "membership"
