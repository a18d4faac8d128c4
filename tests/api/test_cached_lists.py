"""The API lists served from the page cache (members.pagecache, issue 19): per member, and fresh after a write."""
from __future__ import annotations

import pytest

from community.models import Post
from tests.members.factories import CourseFactory

pytestmark = pytest.mark.django_db


def test_my_orders_show_a_purchase_at_once_and_only_mine(alice_api, bob_api, django_assert_num_queries):
    course = CourseFactory(price=49)
    assert alice_api.get("/api/v1/me/orders/").json()["count"] == 0
    with django_assert_num_queries(1):  # from the cache: the token lookup only
        assert alice_api.get("/api/v1/me/orders/").json()["count"] == 0
    assert bob_api.get("/api/v1/me/orders/").json()["count"] == 0
    response = alice_api.post(f"/api/v1/courses/{course.slug}/purchase/", {"payment_token": "local:ok"},
                              format="json")
    assert response.status_code == 201
    assert alice_api.get("/api/v1/me/orders/").json()["count"] == 1
    assert bob_api.get("/api/v1/me/orders/").json()["count"] == 0


def test_the_posts_list_shows_a_new_post_at_once(alice_api, bob_api, alice):
    assert bob_api.get("/api/v1/posts/").json()["count"] == 0
    assert bob_api.get("/api/v1/posts/").json()["count"] == 0
    created = alice_api.post("/api/v1/posts/", {"title": "Hello", "body": "First"}, format="json")
    assert created.status_code == 201
    assert bob_api.get("/api/v1/posts/").json()["count"] == 1
    Post.objects.filter(author=alice).update(title="Renamed")  # no signal, no request: a bump or the TTL
    from members import pagecache

    pagecache.bump()
    assert bob_api.get("/api/v1/posts/").json()["results"][0]["title"] == "Renamed"


def test_my_recommendations_are_mine(alice_api, bob_api, alice, bob):
    from django.utils import timezone

    from analytics.models import RecommendationRun
    from tests.analytics.factories import recommendation_set

    run = RecommendationRun.objects.create(as_of=timezone.now(), is_current=True)
    mine, theirs = CourseFactory(title="For Alice"), CourseFactory(title="For Bob")
    recommendation_set(run=run, member=alice, items=[(mine, 1, "popular")])
    recommendation_set(run=run, member=bob, items=[(theirs, 1, "popular")])
    for _ in range(2):
        assert [r["course"]["title"] for r in alice_api.get("/api/v1/me/recommendations/").json()] == ["For Alice"]
        assert [r["course"]["title"] for r in bob_api.get("/api/v1/me/recommendations/").json()] == ["For Bob"]
