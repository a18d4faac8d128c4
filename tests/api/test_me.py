from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.authtoken.models import Token

from members.models import Enrollment, LessonProgress, Order, Subscription
from tests.api.conftest import assert_error
from tests.members.factories import (
    BenefitFactory,
    CouponFactory,
    CourseFactory,
    EnrollmentFactory,
    LessonFactory,
    OrderFactory,
    SubscriptionFactory,
    TierFactory,
)

ME_ENDPOINTS = [
    ("get", "/api/v1/me/profile/"),
    ("patch", "/api/v1/me/profile/"),
    ("get", "/api/v1/me/membership/"),
    ("post", "/api/v1/me/membership/"),
    ("post", "/api/v1/me/membership/switch-period/"),
    ("post", "/api/v1/me/membership/cancel/"),
    ("post", "/api/v1/me/membership/reactivate/"),
    ("get", "/api/v1/me/orders/"),
    ("get", "/api/v1/me/orders/1/"),
    ("get", "/api/v1/me/coupons/"),
    ("post", "/api/v1/me/quote/"),
    ("get", "/api/v1/me/enrollments/"),
    ("post", "/api/v1/me/lessons/1/complete/"),
    ("post", "/api/v1/courses/any/purchase/"),
    ("delete", "/api/v1/me/tokens/"),
]


@pytest.mark.parametrize(("method", "url"), ME_ENDPOINTS)
def test_anonymous_gets_401_with_error_body(anon_api, db, method, url):
    response = getattr(anon_api, method)(url, {}, format="json")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Token")


# --------------------------------------------------------------------------------------------------------------
# Profile and tokens


def test_profile_get_and_patch(alice_api, alice):
    assert alice_api.get("/api/v1/me/profile/").json()["email"] == "alice@example.com"
    response = alice_api.patch("/api/v1/me/profile/", {"display_name": "Al", "preferred_language": "zh-hans"},
                               format="json")
    assert response.status_code == 200 and response.json()["display_name"] == "Al"
    alice.refresh_from_db()
    assert alice.preferred_language == "zh-hans"


def test_profile_patch_rejects_unknown_time_zone(alice_api):
    error = assert_error(alice_api.patch("/api/v1/me/profile/", {"time_zone": "Mars/Base"}, format="json"), 400)
    assert "time_zone" in error["fields"]


def test_profile_cannot_change_email_or_staff_flag(alice_api, alice):
    alice_api.patch("/api/v1/me/profile/", {"email": "x@example.com", "is_staff": True}, format="json")
    alice.refresh_from_db()
    assert alice.email == "alice@example.com" and not alice.is_staff


def test_token_created_with_password_and_revoked(anon_api, alice):
    response = anon_api.post("/api/v1/me/tokens/", {"email": "alice@example.com", "password": "pw-for-tests-123"},
                             format="json")
    assert response.status_code == 201
    key = response.json()["token"]
    anon_api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert anon_api.get("/api/v1/me/profile/").json()["email"] == "alice@example.com"
    assert anon_api.delete("/api/v1/me/tokens/").status_code == 204
    assert not Token.objects.filter(key=key).exists()
    assert_error(anon_api.get("/api/v1/me/profile/"), 401, "authentication_failed")


def test_token_rejects_wrong_password(anon_api, alice):
    response = anon_api.post("/api/v1/me/tokens/", {"email": "alice@example.com", "password": "nope"}, format="json")
    assert_error(response, 401, "authentication_failed")
    assert not Token.objects.filter(user=alice).exists()


def test_logged_in_session_gets_a_token_and_password_is_rechecked(client, alice):
    client.force_login(alice)
    assert client.post("/api/v1/me/tokens/", {}, content_type="application/json").status_code == 201
    bad = client.post("/api/v1/me/tokens/", {"password": "wrong"}, content_type="application/json")
    assert bad.status_code == 401


def test_anonymous_without_credentials_cannot_get_a_token(anon_api, db):
    assert_error(anon_api.post("/api/v1/me/tokens/", {}, format="json"), 401, "not_authenticated")


# --------------------------------------------------------------------------------------------------------------
# Membership


@pytest.fixture
def plus(db):
    tier = TierFactory(slug="plus", monthly_price=Decimal("49.00"), yearly_price=Decimal("490.00"))
    BenefitFactory(tier=tier, kind="all_courses")
    return tier


def test_membership_is_null_without_subscription(alice_api):
    assert alice_api.get("/api/v1/me/membership/").json() == {"subscription": None}


def test_subscribe_switch_cancel_reactivate(alice_api, alice, plus):
    response = alice_api.post("/api/v1/me/membership/", {"tier": "plus", "period": "month"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "active" and response.json()["tier"]["slug"] == "plus"
    assert Order.objects.filter(member=alice, kind="subscription", status="paid").count() == 1

    # Monthly -> yearly right after paying for the month: a yearly period starts now, the month is credited.
    switched = alice_api.post("/api/v1/me/membership/switch-period/", {"period": "year"}, format="json")
    assert switched.json()["subscription"]["billing_period"] == "year" and switched.json()["scheduled"] is False
    assert Decimal(switched.json()["order"]["amount_paid"]) == plus.yearly_price - plus.monthly_price

    canceled = alice_api.post("/api/v1/me/membership/cancel/", {"reason": "too_expensive"}, format="json")
    assert canceled.json()["cancel_at_period_end"] is True
    assert Subscription.objects.get(member=alice).cancellation_reason == "too_expensive"

    reactivated = alice_api.post("/api/v1/me/membership/reactivate/", format="json")
    assert reactivated.json()["cancel_at_period_end"] is False
    assert alice_api.get("/api/v1/me/membership/").json()["subscription"]["billing_period"] == "year"


def test_second_subscribe_is_409(alice_api, alice, plus):
    SubscriptionFactory(member=alice, tier=plus)
    assert_error(alice_api.post("/api/v1/me/membership/", {"tier": "plus"}, format="json"), 409, "already_subscribed")


def test_declined_payment_is_400_payment_failed_and_no_subscription(alice_api, alice, plus):
    response = alice_api.post("/api/v1/me/membership/", {"tier": "plus", "payment_token": "local:decline"},
                              format="json")
    assert_error(response, 400, "payment_failed")
    assert not Subscription.objects.filter(member=alice).exists()


def test_cancel_requires_a_valid_reason(alice_api, alice, plus):
    SubscriptionFactory(member=alice, tier=plus)
    error = assert_error(alice_api.post("/api/v1/me/membership/cancel/", {"reason": "meh"}, format="json"), 400)
    assert "reason" in error["fields"]


def test_membership_actions_without_live_membership_are_404(alice_api, plus):
    assert_error(alice_api.post("/api/v1/me/membership/cancel/", {"reason": "other"}, format="json"), 404)


def test_reactivate_without_pending_cancellation_is_400(alice_api, alice, plus):
    SubscriptionFactory(member=alice, tier=plus)
    assert_error(alice_api.post("/api/v1/me/membership/reactivate/"), 400, "subscription_invalid")


def test_bob_cannot_touch_alices_membership(bob_api, alice, plus):
    SubscriptionFactory(member=alice, tier=plus)
    assert_error(bob_api.post("/api/v1/me/membership/cancel/", {"reason": "other"}, format="json"), 404)
    assert not Subscription.objects.get(member=alice).cancel_at_period_end


# --------------------------------------------------------------------------------------------------------------
# Orders, coupons, purchases, quotes


def test_orders_are_mine_only(alice_api, bob_api, alice, bob):
    mine = OrderFactory(member=alice)
    OrderFactory(member=bob)
    assert [o["id"] for o in alice_api.get("/api/v1/me/orders/").json()["results"]] == [mine.pk]
    assert alice_api.get(f"/api/v1/me/orders/{mine.pk}/").status_code == 200
    assert_error(bob_api.get(f"/api/v1/me/orders/{mine.pk}/"), 404, "not_found")


def test_order_list_query_count_is_flat(alice_api, alice, django_assert_num_queries):
    for _ in range(8):
        OrderFactory(member=alice, coupon=CouponFactory())
    with django_assert_num_queries(3):  # token + count + page (course, tier, coupon joined)
        assert len(alice_api.get("/api/v1/me/orders/").json()["results"]) == 8


def test_coupons_mine_only_and_usable(alice_api, alice, bob):
    CouponFactory(code="ALICE1", assigned_member=alice)
    CouponFactory(code="BOB1", assigned_member=bob)
    CouponFactory(code="OFF", assigned_member=alice, is_active=False)
    assert [c["code"] for c in alice_api.get("/api/v1/me/coupons/").json()["results"]] == ["ALICE1"]


def test_purchase_with_coupon_then_second_purchase_is_409(alice_api, alice):
    course = CourseFactory(slug="sql", price=Decimal("100.00"))
    CouponFactory(code="SAVE20", percent_off=Decimal(20))
    quote = alice_api.post("/api/v1/me/quote/", {"course": "sql", "coupon_code": "SAVE20"}, format="json")
    assert quote.json()["total"] == "80.00"
    response = alice_api.post("/api/v1/courses/sql/purchase/", {"coupon_code": "SAVE20"}, format="json")
    assert response.status_code == 201 and response.json()["amount_paid"] == "80.00"
    assert Enrollment.objects.filter(member=alice, course=course).exists()
    assert_error(alice_api.post("/api/v1/courses/sql/purchase/", {}, format="json"), 409, "already_owned")


def test_purchase_with_unknown_coupon_is_400(alice_api):
    CourseFactory(slug="sql")
    assert_error(alice_api.post("/api/v1/courses/sql/purchase/", {"coupon_code": "NOPE"}, format="json"),
                 400, "coupon_not_found")


def test_purchase_of_unpublished_course_is_404(alice_api):
    CourseFactory(slug="draft", is_published=False)
    assert_error(alice_api.post("/api/v1/courses/draft/purchase/", {}, format="json"), 404)


def test_quote_needs_exactly_one_item(alice_api, plus):
    CourseFactory(slug="sql")
    error = assert_error(alice_api.post("/api/v1/me/quote/", {"course": "sql", "tier": "plus"}, format="json"), 400)
    assert "non_field_errors" in error["fields"]
    tier_quote = alice_api.post("/api/v1/me/quote/", {"tier": "plus", "period": "year"}, format="json").json()
    assert tier_quote["total"] == "490.00"


# --------------------------------------------------------------------------------------------------------------
# Learning


def test_enrollments_with_progress_and_complete_lesson(alice_api, alice, django_assert_num_queries):
    course = CourseFactory(slug="sql")
    lessons = [LessonFactory(course=course, position=n) for n in (1, 2, 3, 4)]
    EnrollmentFactory(member=alice, course=course)
    for _extra in range(5):
        other = CourseFactory()
        LessonFactory(course=other, position=1)
        EnrollmentFactory(member=alice, course=other)
    response = alice_api.post(f"/api/v1/me/lessons/{lessons[0].pk}/complete/")
    assert response.status_code == 200 and response.json()["completed_at"]
    alice_api.post(f"/api/v1/me/lessons/{lessons[0].pk}/complete/")  # idempotent
    assert LessonProgress.objects.filter(member=alice, completed_at__isnull=False).count() == 1
    with django_assert_num_queries(3):
        body = alice_api.get("/api/v1/me/enrollments/").json()
    row = next(e for e in body["results"] if e["course"]["slug"] == "sql")
    assert (row["lessons_total"], row["lessons_done"], row["progress_percent"]) == (4, 1, 25)


def test_complete_locked_lesson_is_400_and_bob_progress_is_separate(alice_api, bob_api, alice):
    course = CourseFactory(slug="sql")
    lesson = LessonFactory(course=course, position=1)
    EnrollmentFactory(member=alice, course=course)
    assert_error(bob_api.post(f"/api/v1/me/lessons/{lesson.pk}/complete/"), 400, "lesson_locked")
    assert alice_api.post(f"/api/v1/me/lessons/{lesson.pk}/complete/").status_code == 200


def test_complete_missing_lesson_is_404(alice_api):
    assert_error(alice_api.post("/api/v1/me/lessons/999999/complete/"), 404)


ME_READS = ["/api/v1/me/profile/", "/api/v1/me/membership/", "/api/v1/me/orders/", "/api/v1/me/coupons/",
            "/api/v1/me/enrollments/", "/api/v1/me/notifications/", "/api/v1/me/recommendations/"]


@pytest.mark.parametrize("url", ME_READS)
@pytest.mark.parametrize("role", ["alice", "bob", "charlie"])
def test_every_signed_in_role_reads_their_own_me_endpoints(api_for, url, role):
    assert api_for(role).get(url).status_code == 200


def test_coupon_list_query_count_is_flat(alice_api, alice, django_assert_num_queries):
    for n in range(6):
        CouponFactory(code=f"MINE{n}", assigned_member=alice)
    with django_assert_num_queries(3):  # token, count, page
        assert alice_api.get("/api/v1/me/coupons/").json()["count"] == 6
