"""The API lists at the front of the page cache (members.pagecache.front, issue 19): a page-cached list answered for
the same token (or a visitor) before the session, the user, URL resolution and DRF run — yet a revoked token or a
deactivated account is refused at once, members never see each other's data, and every throttle counts exactly as
DRF counts, refusals included."""
from __future__ import annotations

import pytest
from django.core.cache import caches
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

from members.api.auth import api_token_issue, api_token_revoke
from members.api.views import OrderListView
from tests.members.factories import CourseFactory

pytestmark = pytest.mark.django_db
LISTS = ("/api/v1/me/orders/", "/api/v1/me/recommendations/", "/api/v1/posts/")
ORDERS = "/api/v1/me/orders/"


def _from_front(response) -> bool:
    """Answered by the front: the authentication middleware never ran."""
    return not hasattr(response.wsgi_request, "user")


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=user).key}")
    return client


def _warm(client: APIClient, path: str = ORDERS):
    """The key's first sight (DRF's query), then the trusted entry (kept at the front), then a front hit."""
    first, second, hit = (client.get(path) for _ in range(3))
    assert first.status_code == second.status_code == hit.status_code == 200
    assert not _from_front(first) and not _from_front(second) and _from_front(hit)
    return second, hit


@pytest.fixture
def rates(monkeypatch):
    def set_rates(**rates: str) -> None:
        # The class attribute DRF's throttles read their rates from; monkeypatch puts it back after the test.
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, **rates})

    return set_rates


def _history(scope: str, ident: object) -> list[float]:
    return caches["throttle"].get(f"throttle_{scope}_{ident}", [])


@pytest.mark.parametrize("path", LISTS)
def test_a_hit_makes_no_query_and_answers_what_the_stack_answered(path, alice, django_assert_num_queries):
    client = _client(alice)
    client.get(path)
    second = client.get(path)
    with django_assert_num_queries(0):
        hit = client.get(path)
    assert _from_front(hit) and not _from_front(second)
    assert hit.content == second.content
    assert _headers(hit) == _headers(second)


def _headers(response) -> dict[str, str]:
    """Every header but the request id, which each request gets its own of."""
    return {name: value for name, value in response.headers.items() if name != "X-Request-ID"}


def test_the_throttles_count_every_hit(alice, rates):
    rates(user="4/minute")
    client = _client(alice)
    responses = [client.get(ORDERS) for _ in range(6)]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 429, 429]
    assert [_from_front(r) for r in responses[:4]] == [False, False, True, True]
    assert responses[4].json()["error"]["code"] == "throttled" and "Retry-After" in responses[4].headers


@pytest.mark.parametrize("limited", ["user", "ip"])
def test_a_refused_request_is_counted_once_as_drf_counts_it(limited, alice, rates):
    """DRF records a request in every throttle that lets it through, even when another (before or after it) refuses
    it. The front records nothing when one refuses and hands the request to the stack, so nothing is counted
    twice."""
    other = "ip" if limited == "user" else "user"
    rates(**{limited: "4/minute", other: "100/minute"})
    client = _client(alice)
    codes = [client.get(ORDERS).status_code for _ in range(6)]
    assert codes == [200, 200, 200, 200, 429, 429]
    idents = {"user": alice.pk, "ip": "127.0.0.1"}
    assert len(_history(limited, idents[limited])) == 4
    assert len(_history(other, idents[other])) == 6


def test_the_anonymous_course_list_is_served_from_the_front_and_throttled(rates, django_assert_num_queries):
    rates(anon="3/minute")
    CourseFactory(title="Front course")
    client = APIClient()
    first = client.get("/api/v1/courses/")
    with django_assert_num_queries(0):
        hit = client.get("/api/v1/courses/")
    assert not _from_front(first) and _from_front(hit) and hit.content == first.content
    assert [client.get("/api/v1/courses/").status_code for _ in range(2)] == [200, 429]


def test_a_revoked_token_is_refused_at_once(alice):
    client = _client(alice)
    _warm(client)
    api_token_revoke(user=alice)
    assert client.get(ORDERS).status_code == 401


def test_a_deactivated_account_is_refused_at_once(alice):
    client = _client(alice)
    _warm(client)
    alice.is_active = False
    alice.save()
    assert client.get(ORDERS).status_code == 401


def test_members_never_share_an_entry_and_see_their_own_purchase_at_once(alice, bob):
    alice_api, bob_api = _client(alice), _client(bob)
    _warm(alice_api)
    _warm(bob_api)
    course = CourseFactory(price=49)
    bought = alice_api.post(f"/api/v1/courses/{course.slug}/purchase/", {"payment_token": "local:ok"}, format="json")
    assert bought.status_code == 201
    assert alice_api.get(ORDERS).json()["count"] == 1
    assert bob_api.get(ORDERS).json()["count"] == 0
    assert _from_front(bob_api.get(ORDERS))


def test_each_renderer_has_its_own_entry_and_the_browsable_api_is_never_kept(alice):
    client = _client(alice)
    _warm(client)
    html = [client.get(ORDERS, HTTP_ACCEPT="text/html") for _ in range(3)]
    assert all(r.status_code == 200 and r["Content-Type"].startswith("text/html") for r in html)
    assert not any(_from_front(r) for r in html)
    assert _from_front(client.get(ORDERS))


def test_a_request_with_a_session_is_never_served_from_the_front(alice):
    client = APIClient()
    client.force_login(alice)
    responses = [client.get(ORDERS) for _ in range(3)]
    assert all(r.status_code == 200 for r in responses) and not any(_from_front(r) for r in responses)


def test_a_view_whose_throttle_has_its_own_logic_is_never_kept(alice, monkeypatch):
    monkeypatch.setattr(OrderListView, "throttle_classes", [ScopedRateThrottle])
    client = _client(alice)
    responses = [client.get(ORDERS) for _ in range(4)]
    assert all(r.status_code == 200 for r in responses) and not any(_from_front(r) for r in responses)
