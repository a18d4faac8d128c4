"""Token authentication without a query per request (config.api_auth, issue 19): a token's user is kept per process
while the pages versions hold, so a signed-in list served from the page cache makes no query — yet a revoked or
rotated token, a deactivated account or a changed password is refused at once, members never see each other's data,
and the throttles still count every request."""
from __future__ import annotations

import pytest
from django.core.cache import caches
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from members import pagecache
from members.api.auth import api_token_issue, api_token_revoke
from tests.members.factories import CourseFactory

pytestmark = pytest.mark.django_db
LISTS = ("/api/v1/me/orders/", "/api/v1/me/recommendations/", "/api/v1/posts/")


def _client(token: Token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.mark.parametrize("path", LISTS)
def test_a_signed_in_list_makes_one_query_per_request_at_most_and_none_once_cached(
    path, alice, django_assert_num_queries
):
    client = _client(api_token_issue(user=alice))
    assert client.get(path).status_code == 200  # the key first seen here: DRF's query (and the list's)
    with django_assert_num_queries(1):  # the versions read first, then the token row: the entry is trusted
        assert client.get(path).status_code == 200
    for _ in range(3):
        with django_assert_num_queries(0):
            assert client.get(path).status_code == 200


def _warm(client: APIClient, path: str = "/api/v1/me/orders/") -> None:
    for _ in range(3):
        assert client.get(path).status_code == 200


def test_a_revoked_token_is_refused_at_once(alice):
    client = _client(api_token_issue(user=alice))
    _warm(client)
    api_token_revoke(user=alice)
    assert client.get("/api/v1/me/orders/").status_code == 401


def test_a_token_revoked_through_the_api_is_refused_at_once_and_its_successor_works(alice):
    old = _client(api_token_issue(user=alice))
    _warm(old)
    assert old.delete("/api/v1/me/tokens/").status_code in (200, 204)
    assert old.get("/api/v1/me/orders/").status_code == 401
    new = _client(api_token_issue(user=alice))
    _warm(new)
    assert old.get("/api/v1/me/orders/").status_code == 401


def test_a_token_deleted_in_bulk_is_refused_at_once(alice, bob):
    alice_api, bob_api = _client(api_token_issue(user=alice)), _client(api_token_issue(user=bob))
    _warm(alice_api)
    _warm(bob_api)
    Token.objects.all().delete()  # a queryset delete still sends post_delete per row (a receiver listens)
    assert alice_api.get("/api/v1/me/orders/").status_code == 401
    assert bob_api.get("/api/v1/me/orders/").status_code == 401


@pytest.mark.parametrize("change", ["deactivate", "password", "staff"])
def test_a_saved_user_is_read_again_and_a_deactivated_one_refused(change, alice, django_assert_num_queries):
    client = _client(api_token_issue(user=alice))
    _warm(client, "/api/v1/me/profile/")
    if change == "deactivate":
        alice.is_active = False
    elif change == "password":
        alice.set_password("a new password 123!")  # DRF keeps the token valid across it; the user is read again
    else:
        alice.is_staff = True
    alice.save()
    if change == "deactivate":
        assert client.get("/api/v1/me/profile/").status_code == 401
        return
    with django_assert_num_queries(1, exact=False) as queries:
        assert client.get("/api/v1/me/profile/").status_code == 200
    assert any("authtoken_token" in q["sql"] for q in queries.captured_queries)


def test_members_never_share_an_entry_and_see_their_own_write_at_once(alice, bob):
    alice_api, bob_api = _client(api_token_issue(user=alice)), _client(api_token_issue(user=bob))
    for _ in range(3):
        assert alice_api.get("/api/v1/me/orders/").json()["count"] == 0
        assert bob_api.get("/api/v1/me/orders/").json()["count"] == 0
    course = CourseFactory(price=49)
    bought = alice_api.post(f"/api/v1/courses/{course.slug}/purchase/", {"payment_token": "local:ok"}, format="json")
    assert bought.status_code == 201
    assert alice_api.get("/api/v1/me/orders/").json()["count"] == 1
    assert bob_api.get("/api/v1/me/orders/").json()["count"] == 0
    assert alice_api.get("/api/v1/me/profile/").json()["email"] == alice.email
    assert bob_api.get("/api/v1/me/profile/").json()["email"] == bob.email


def test_the_cached_user_is_a_copy_per_request(alice):
    """The process keeps the user pickled (LocMem): each request unpickles its own, so what one request does to
    request.user never reaches the next."""
    import hashlib

    token = api_token_issue(user=alice)
    _warm(_client(token))
    key = "apitoken:" + hashlib.sha256(token.key.encode()).hexdigest()
    first, second = caches["pages"].get(key), caches["pages"].get(key)
    assert first["user"].pk == alice.pk and first["user"] is not second["user"]


def test_throttles_count_every_request_served_with_a_cached_token(alice, monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    # monkeypatch puts the class's rates back after the test (the rates DRF read at import, not a later override).
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "user": "4/minute"})
    client = _client(api_token_issue(user=alice))
    codes = [client.get("/api/v1/me/orders/").status_code for _ in range(6)]
    assert codes == [200, 200, 200, 200, 429, 429]


def test_with_the_page_cache_off_every_request_queries_as_before(alice, django_assert_num_queries):
    from unittest import mock

    client = _client(api_token_issue(user=alice))
    with mock.patch.object(pagecache.store(), "default_timeout", 0):
        _warm(client, "/api/v1/me/profile/")
        with django_assert_num_queries(1):
            assert client.get("/api/v1/me/profile/").status_code == 200
