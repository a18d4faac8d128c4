"""The API throttles in Redis (config.api_throttles, issue 19): DRF's sliding log, checked and written by one atomic
script — the same answers as DRF's own code, no request lost when workers answer one client at once, and the front
of the page cache counting its hits in the same round trip. Needs Redis on 127.0.0.1:6379 (skipped without it)."""
from __future__ import annotations

import socket
import threading
import uuid

import pytest
from django.core.cache import caches
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from config.api_throttles import CountedUserRateThrottle, IPRateThrottle
from members.api.auth import api_token_issue

REDIS = "redis://127.0.0.1:6379/11"
ORDERS = "/api/v1/me/orders/"


def _redis_answers() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), 1).close()
    except OSError:
        return False
    return True


pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif(not _redis_answers(), reason="needs Redis on 127.0.0.1:6379 (not answering)")]


@pytest.fixture(params=["throttles", "throttles and page state"])
def redis_throttles(request, settings, monkeypatch):
    """The throttle cache in Redis under a prefix of this test's own (parallel test workers share the server); and,
    as in production, the page cache's shared state there too, so the front checks both in one script."""
    prefix = f"test-{uuid.uuid4().hex}"
    redis = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS, "KEY_PREFIX": prefix}
    settings.CACHES = {**settings.CACHES, "throttle": redis}
    if request.param == "throttles and page state":
        settings.CACHES = {**settings.CACHES, "page_state": {**redis, "KEY_PREFIX": prefix + "-state"}}

    def rates(**given: str) -> None:
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, **given})

    yield rates
    client = caches["throttle"]._cache.get_client(write=True)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def _logged(throttle_class: type, ident: object) -> int:
    throttle = throttle_class()
    key = caches["throttle"].make_and_validate_key(f"zlog:throttle_{throttle.scope}_{ident}")
    return caches["throttle"]._cache.get_client(write=True).zcard(key)


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=user).key}")
    return client


def test_a_rate_is_enforced_with_drfs_answer_and_retry_after(alice, redis_throttles):
    redis_throttles(user="4/minute")
    client = _client(alice)
    responses = [client.get(ORDERS) for _ in range(6)]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 429, 429]
    assert responses[4].json()["error"]["code"] == "throttled"
    assert 0 < int(responses[4]["Retry-After"]) <= 60
    assert _logged(CountedUserRateThrottle, alice.pk) == 4


@pytest.mark.parametrize("limited", ["user", "ip"])
def test_front_hits_count_in_the_same_logs_and_a_refusal_counts_once(limited, alice, redis_throttles):
    """Requests 3 and 4 are answered by the front of the page cache; a refused request is counted, as DRF counts
    it, only by the throttles that let it through."""
    other = "ip" if limited == "user" else "user"
    redis_throttles(**{limited: "4/minute", other: "100/minute"})
    client = _client(alice)
    responses = [client.get(ORDERS) for _ in range(6)]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 429, 429]
    assert [hasattr(r.wsgi_request, "user") for r in responses[:4]] == [True, True, False, False]
    logs = {"user": _logged(CountedUserRateThrottle, alice.pk), "ip": _logged(IPRateThrottle, "127.0.0.1")}
    assert logs[limited] == 4 and logs[other] == 6


class _Request:
    def __init__(self, user) -> None:
        self.user = user
        self.META = {"REMOTE_ADDR": "127.0.0.1"}


def test_concurrent_requests_never_get_more_than_the_rate(alice, redis_throttles):
    """Eight threads asking at once, 25 times each, against 60 a minute: exactly 60 allowed. DRF's read-modify-write
    of one pickled list lets two workers read the same list and both add to it, so the last write loses requests."""
    redis_throttles(user="60/minute")
    allowed = []
    start = threading.Barrier(8)

    def ask() -> None:
        start.wait()
        for _ in range(25):
            allowed.append(CountedUserRateThrottle().allow_request(_Request(alice), None))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 60 and len(allowed) == 200
    assert _logged(CountedUserRateThrottle, alice.pk) == 60


def test_a_stale_front_entry_counts_nothing_and_a_revoked_token_is_refused(alice, redis_throttles):
    """After a write the front's entry is stale: the state check comes first (in the same script when the state is
    in Redis), so nothing is counted for it; the stack refuses the revoked token before any throttle runs."""
    from members.api.auth import api_token_revoke

    redis_throttles(user="100/minute")
    client = _client(alice)
    responses = [client.get(ORDERS) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200] and not hasattr(responses[2].wsgi_request, "user")
    api_token_revoke(user=alice)
    assert client.get(ORDERS).status_code == 401
    assert _logged(CountedUserRateThrottle, alice.pk) == 3
