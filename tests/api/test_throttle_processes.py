"""The API throttles count in each worker's memory without Redis (issue 19): each of API_THROTTLE_PROCESSES workers
allows its share of the rate, so together they never allow more than the rate, and no request writes the database."""
from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

RATES = {"anon": "1000/minute", "user": "1000/minute", "events": "1000/minute"}


@pytest.fixture
def anon_rate(monkeypatch):
    cache.clear()
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**RATES, "anon": "7/minute"})
    yield
    cache.clear()


@pytest.mark.parametrize(("processes", "allowed"), [(1, 7), (3, 2), (10, 1)])
def test_each_process_allows_its_share_of_the_rate(db, anon_rate, processes, allowed):
    client = APIClient()
    with override_settings(API_THROTTLE_PROCESSES=processes):
        codes = [client.get("/api/v1/tiers/").status_code for _ in range(allowed + 1)]
    assert codes == [200] * allowed + [429]


def test_with_the_database_cache_a_throttled_request_reads_and_writes_no_cache_row(db, anon_rate):
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    embedded = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"},
                "throttle": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "t-throttle"},
                "pages": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "t-pages"}}
    client = APIClient()
    with override_settings(CACHES=embedded):
        call_command("createcachetable", verbosity=0)
        client.get("/api/v1/tiers/")
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/api/v1/tiers/").status_code == 200
    assert not [q["sql"] for q in queries.captured_queries if "django_cache" in q["sql"]]


class _Request:
    def __init__(self, user) -> None:
        self.user = user
        self.META = {"REMOTE_ADDR": "127.0.0.1"}


def test_without_redis_the_throttle_is_drfs_own_log(alice, monkeypatch):
    """Without Redis config.api_throttles runs DRF's code unchanged: a pickled list of timestamps per key (the Redis
    log is tests/api/test_throttle_redis.py)."""
    from config.api_throttles import CountedUserRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "user": "2/minute"})
    assert [CountedUserRateThrottle().allow_request(_Request(alice), None) for _ in range(3)] == [True, True, False]
    throttle = CountedUserRateThrottle()
    assert len(throttle.cache.get(throttle.cache_format % {"scope": "user", "ident": alice.pk})) == 2
