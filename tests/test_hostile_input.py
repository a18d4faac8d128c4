"""Hostile input found by the fuzz (issue 13.10): each answers 4xx (or a clamped 200), never 500. One mechanism per
class, not per view: config.parsers (JSON depth limit), config.renderers (an error that echoes a lone surrogate
still renders), config.middleware (NUL, lone surrogates and oversized values in query strings and form fields),
and the report filter's bounded date field. Run on SQLite and PostgreSQL (where NUL in text is refused)."""
from __future__ import annotations

import json

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.members.factories import CourseFactory, TierFactory, UserFactory

pytestmark = [pytest.mark.adversarial, pytest.mark.django_db]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.fixture
def staff_api(charlie) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=charlie).key}")
    return client


@pytest.mark.parametrize(("method", "url"), [
    ("post", "/api/v1/posts/"), ("patch", "/api/v1/me/profile/"), ("put", "/api/v1/me/payment-method/"),
    ("post", "/api/v1/events/batch/"), ("post", "/api/v1/me/quote/"), ("post", "/api/v1/staff/jobs/trigger/"),
])
@pytest.mark.parametrize("depth", [100, 5000, 100_000])
def test_deeply_nested_json_is_a_400(staff_api, method, url, depth):
    body = f'{{"title": "x", "body": {nested(depth)}, "events": {nested(depth)}}}'
    response = getattr(staff_api, method)(url, body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "nested" in response.json()["error"]["message"]


def test_json_nested_within_the_limit_still_parses(staff_api):
    response = staff_api.post("/api/v1/posts/", json.dumps({"title": [[["x"]]], "body": "y"}),
                              content_type="application/json")
    assert response.status_code == 400 and "title" in response.json()["error"]["fields"]


@pytest.mark.parametrize("query", ["end=9999-12-31", "start=0001-01-01", "start=0001-01-01&end=9999-12-31",
                                   "end=0001-01-01", "start=9999-12-31"])
@pytest.mark.parametrize("page", ["", "cohorts/", "repurchase/", "churn/", "segments/", "campaigns/", "models/"])
def test_extreme_report_dates_are_refused_not_a_500(staff_client, page, query):
    response = staff_client.get(f"/staff/{page}?{query}")
    assert response.status_code in (200, 400)
    form = response.context["form"] if response.status_code == 200 else None
    for name in (part.split("=")[0] for part in query.split("&")):
        if form is not None and name in form.fields:
            assert name in form.errors, "an out-of-range date must be reported, not silently used"


def test_a_lone_surrogate_in_preferred_language_is_a_400(alice):
    client = APIClient()
    client.force_authenticate(alice)
    response = client.patch("/api/v1/me/profile/", json.dumps({"preferred_language": "\ud800"}),
                            content_type="application/json")
    assert response.status_code == 400
    assert "preferred_language" in response.json()["error"]["fields"]


@pytest.mark.parametrize("next_url", [
    "//evil.example/", "https://evil.example/", "/\r\nSet-Cookie: x=1", "http://[::1", "/\x00", "javascript:alert(1)",
    "\\\\evil.example", "/community/%ED%A0%80", "x" * 100_000, "9999-12-31", "community:feed",
])
def test_odd_next_after_follow_redirects_home_or_to_a_local_page(alice_client, next_url):
    other = UserFactory()
    response = alice_client.post(reverse("community:follow", args=[other.pk]), {"next": next_url})
    assert response.status_code in (302, 400)
    if response.status_code == 302:
        location = response["Location"]
        assert location.startswith("/") and not location.startswith("//") and "\n" not in location


ONE_MB = "A" * 1_000_000


def test_a_1mb_coupon_code_is_a_clean_answer(alice_client):
    course = CourseFactory(slug="sql")
    tier = TierFactory(slug="plus")
    for url in (reverse("members:checkout_course", args=[course.slug]), reverse("members:checkout_tier", args=[tier.slug])):
        assert alice_client.post(url, {"coupon": ONE_MB, "action": "apply"}).status_code in (200, 400)
        assert alice_client.get(url, {"coupon": ONE_MB}).status_code in (200, 400)


def test_a_1mb_coupon_code_in_the_api_is_a_400(alice):
    client = APIClient()
    client.force_authenticate(alice)
    course = CourseFactory(slug="sql")
    response = client.post("/api/v1/me/quote/", {"course": course.slug, "coupon_code": ONE_MB}, format="json")
    assert response.status_code == 400


@pytest.mark.parametrize("url", [
    "/staff/?segment=%00", "/staff/cohorts/?tier=%00", "/community/?scope=%00", "/courses/?q=%00", "/courses/?topic=%00",
    "/community/notifications/?page=%00", "/courses/?q=%ED%A0%80", "/r/%00/", "/act/renew/%00/", "/staff/?%00=1",
])
def test_nul_in_a_query_string_or_path_is_a_400_on_any_page(staff_client, url):
    response = staff_client.get(url)
    assert response.status_code in (400, 404) if "%00" in url else response.status_code in (200, 404)


def test_nul_in_a_form_field_is_a_400(alice_client):
    response = alice_client.post(reverse("community:post_create"), {"title": "a\x00b", "body": "b\x00"})
    assert response.status_code == 400 and b"could not be read" in response.content
    from community.models import Post

    assert not Post.objects.exists()
