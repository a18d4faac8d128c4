"""The rest of what a learner does on the site, through the API: lesson views, payment method, save offer, reviews,
referrals, follows."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from community.models import Follow
from members.models import (
    LessonProgress,
    Order,
    PaymentMethod,
    RetentionOffer,
    Review,
    Subscription,
)
from tests.api.conftest import assert_error
from tests.members.factories import (
    CourseFactory,
    EnrollmentFactory,
    LessonFactory,
    SubscriptionFactory,
    TierFactory,
)

MEMBER_ONLY = [
    ("post", "/api/v1/me/lessons/1/view/"),
    ("put", "/api/v1/me/payment-method/"),
    ("get", "/api/v1/me/membership/offer/"),
    ("post", "/api/v1/me/membership/offer/"),
    ("get", "/api/v1/me/referral/"),
    ("post", "/api/v1/courses/any/reviews/"),
    ("post", "/api/v1/reviews/1/helpful/"),
    ("post", "/api/v1/members/1/follow/"),
]


@pytest.mark.parametrize(("method", "url"), MEMBER_ONLY)
def test_anonymous_is_401(anon_api, db, method, url):
    assert_error(getattr(anon_api, method)(url, {}, format="json"), 401, "not_authenticated")


def test_lesson_view_needs_access(alice_api, bob_api, alice):
    course = CourseFactory()
    lesson = LessonFactory(course=course, position=1)
    preview = LessonFactory(course=course, position=2, is_preview=True)
    EnrollmentFactory(member=alice, course=course)
    assert alice_api.post(f"/api/v1/me/lessons/{lesson.pk}/view/").status_code == 204
    assert LessonProgress.objects.filter(member=alice, lesson=lesson, completed_at__isnull=True).exists()
    assert_error(bob_api.post(f"/api/v1/me/lessons/{lesson.pk}/view/"), 400, "lesson_locked")
    assert bob_api.post(f"/api/v1/me/lessons/{preview.pk}/view/").status_code == 204


def test_payment_method_replaces_default_and_recovers_past_due(alice_api, alice):
    tier = TierFactory()
    now = timezone.now()
    SubscriptionFactory(member=alice, tier=tier, status=Subscription.Status.PAST_DUE,
                        current_period_start=now - timedelta(days=32), current_period_end=now - timedelta(days=2),
                        grace_until=now + timedelta(days=5))
    response = alice_api.put("/api/v1/me/payment-method/", {"token": "local:ok-4242", "label": "Card 4242"},
                             format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["label"] == "Card 4242" and body["retried"] is True and body["recovered"] is True
    assert PaymentMethod.objects.get(member=alice, is_default=True).token == "local:ok-4242"
    assert Subscription.objects.get(member=alice).status == Subscription.Status.ACTIVE
    assert Order.objects.filter(member=alice, status="paid").count() == 1


def test_payment_method_validation(alice_api):
    error = assert_error(alice_api.put("/api/v1/me/payment-method/", {"label": "x"}, format="json"), 400)
    assert "token" in error["fields"]


def test_save_offer_shown_and_accepted_instead_of_cancelling(alice_api, bob_api, alice):
    tier = TierFactory()
    SubscriptionFactory(member=alice, tier=tier)
    assert alice_api.get("/api/v1/me/membership/offer/").json() == {"offer": None}
    RetentionOffer.objects.create(name="Pause", kind="pause", pause_days=30, headline="Take a break")
    offer = alice_api.get("/api/v1/me/membership/offer/").json()["offer"]
    assert offer["kind"] == "pause" and offer["pause_days"] == 30
    accepted = alice_api.post("/api/v1/me/membership/offer/", {"reason": "not_using"}, format="json").json()
    assert accepted["kind"] == "pause" and accepted["paused_until"]
    sub = Subscription.objects.get(member=alice)
    assert sub.paused_until is not None and not sub.cancel_at_period_end
    assert_error(bob_api.get("/api/v1/me/membership/offer/"), 404)  # bob has no membership


def test_discount_offer_returns_a_coupon(alice_api, alice):
    SubscriptionFactory(member=alice, tier=TierFactory())
    RetentionOffer.objects.create(name="30% off", kind="discount", percent_off=Decimal(30))
    body = alice_api.post("/api/v1/me/membership/offer/", {}, format="json").json()
    assert body["kind"] == "discount" and body["coupon_code"]


def test_reviews_enrolled_only_edit_and_helpful(alice_api, bob_api, anon_api, alice, bob):
    course = CourseFactory(slug="sql")
    EnrollmentFactory(member=alice, course=course)
    assert_error(bob_api.post("/api/v1/courses/sql/reviews/", {"rating": 4}, format="json"), 400,
                 "review_not_allowed")
    assert_error(alice_api.post("/api/v1/courses/sql/reviews/", {"rating": 6}, format="json"), 400, "invalid")
    first = alice_api.post("/api/v1/courses/sql/reviews/", {"rating": 4, "body": "Good"}, format="json").json()
    again = alice_api.post("/api/v1/courses/sql/reviews/", {"rating": 5, "body": "Great"}, format="json").json()
    assert first["id"] == again["id"] and Review.objects.get().rating == 5
    assert [r["body"] for r in anon_api.get("/api/v1/courses/sql/reviews/").json()] == ["Great"]
    assert bob_api.post(f"/api/v1/reviews/{first['id']}/helpful/").json() == {"marked": True, "helpful_count": 1}
    assert bob_api.post(f"/api/v1/reviews/{first['id']}/helpful/").json() == {"marked": False, "helpful_count": 1}
    assert_error(alice_api.post(f"/api/v1/reviews/{first['id']}/helpful/"), 400)  # not one's own


def test_referral_code_is_stable(alice_api, bob_api):
    first = alice_api.get("/api/v1/me/referral/").json()
    assert first["code"] and first["invite_url"].endswith(f"/r/{first['code']}/") and first["referrals"] == []
    assert alice_api.get("/api/v1/me/referral/").json()["code"] == first["code"]
    assert bob_api.get("/api/v1/me/referral/").json()["code"] != first["code"]


def test_follow_toggle(alice_api, alice, bob):
    assert alice_api.post(f"/api/v1/members/{bob.pk}/follow/").json() == {"following": True}
    assert Follow.objects.filter(follower=alice, followed=bob).exists()
    assert alice_api.post(f"/api/v1/members/{bob.pk}/follow/").json() == {"following": False}
    assert_error(alice_api.post(f"/api/v1/members/{alice.pk}/follow/"), 400, "cannot_follow_self")
    assert_error(alice_api.post("/api/v1/members/999999/follow/"), 404)


def test_my_data_export_is_mine_only(alice_api, anon_api, alice, bob):
    from tests.members.factories import OrderFactory

    mine = OrderFactory(member=alice)
    OrderFactory(member=bob)
    body = alice_api.get("/api/v1/me/export/").json()
    assert body["member"]["email"] == "alice@example.com"
    assert [row["id"] for row in body["models"]["members.Order"]] == [mine.pk]
    assert "password" not in body["member"]
    assert_error(anon_api.get("/api/v1/me/export/"), 401)
