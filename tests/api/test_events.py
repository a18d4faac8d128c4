from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from analytics.models import Event
from tests.api.conftest import assert_error

URL = "/api/v1/events/batch/"


def _event(**overrides):
    event = {
        "event_id": str(uuid.uuid4()), "kind": "lesson_viewed", "object_type": "lesson", "object_id": "31",
        "occurred_at": (timezone.now() - timedelta(minutes=1)).isoformat(), "properties": {"seconds": 42},
    }
    event.update(overrides)
    return event


def test_anonymous_cannot_ingest(anon_api, db):
    assert_error(anon_api.post(URL, {"events": [_event()]}, format="json"), 401)


@pytest.mark.parametrize("role", ["alice", "bob", "charlie"])
def test_members_ingest_events_as_themselves(api_for, role, alice, bob, charlie):
    response = api_for(role).post(URL, {"source": "mobile", "events": [_event(), _event()]}, format="json")
    assert response.status_code == 200
    assert response.json() == {"received": 2, "accepted": 2, "duplicates": 0, "rejected": 0, "errors": []}
    user = {"alice": alice, "bob": bob, "charlie": charlie}[role]
    events = Event.objects.filter(kind="lesson_viewed")
    assert events.count() == 2 and {e.member_id for e in events} == {user.pk}
    assert {e.source for e in events} == {"mobile"}
    assert all(e.idempotency_key.startswith(f"mobile:client:{user.pk}:") for e in events)


def test_same_batch_twice_records_each_event_once(alice_api):
    batch = {"events": [_event() for _ in range(5)]}
    first = alice_api.post(URL, batch, format="json").json()
    second = alice_api.post(URL, batch, format="json").json()
    assert (first["accepted"], first["duplicates"]) == (5, 0)
    assert (second["accepted"], second["duplicates"]) == (0, 5)
    assert Event.objects.filter(kind="lesson_viewed").count() == 5


def test_duplicate_ids_inside_one_batch_count_once(alice_api):
    event = _event()
    body = alice_api.post(URL, {"events": [event, event]}, format="json").json()
    assert (body["accepted"], body["duplicates"]) == (1, 1)


def test_same_event_id_from_two_members_is_two_events(alice_api, bob_api):
    event = _event()
    alice_api.post(URL, {"events": [event]}, format="json")
    assert bob_api.post(URL, {"events": [event]}, format="json").json()["accepted"] == 1
    assert Event.objects.filter(kind="lesson_viewed").count() == 2


def test_bad_events_are_reported_and_good_ones_stored(alice_api, settings):
    settings.EVENT_MAX_CLOCK_SKEW_SECONDS = 300
    now = timezone.now()
    events = [
        _event(),                                                               # 0 ok
        _event(occurred_at=(now + timedelta(minutes=10)).isoformat()),          # 1 future beyond skew
        _event(occurred_at=(now + timedelta(minutes=2)).isoformat()),           # 2 future within skew: ok
        _event(occurred_at=(now - timedelta(days=31)).isoformat()),             # 3 too old
        _event(kind="course_purchased"),                                        # 4 server-only kind
        _event(event_id="has spaces"),                                          # 5 bad id
        {"kind": "lesson_viewed"},                                              # 6 missing id and time
        _event(occurred_at="yesterday"),                                        # 7 unparseable
        _event(properties={"blob": "x" * 5000}),                                # 8 too big
    ]
    response = alice_api.post(URL, {"events": events}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["received"], body["accepted"], body["rejected"]) == (9, 2, 7)
    by_index = {(e["index"], e["field"]) for e in body["errors"]}
    assert {(1, "occurred_at"), (3, "occurred_at"), (4, "kind"), (5, "event_id"), (6, "event_id"),
            (6, "occurred_at"), (7, "occurred_at"), (8, "properties")} == by_index
    assert body["errors"][0]["event_id"] == events[1]["event_id"]
    assert Event.objects.filter(kind="lesson_viewed").count() == 2


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"events": []}, "events"), ({"events": "nope"}, "events"), ({}, "events"),
     ({"events": [_event()], "source": "server"}, "source")],
)
def test_malformed_envelope_is_400_with_field_errors(alice_api, payload, field):
    error = assert_error(alice_api.post(URL, payload, format="json"), 400, "invalid")
    assert field in error["fields"]


def test_more_than_500_events_is_rejected_whole(alice_api):
    error = assert_error(alice_api.post(URL, {"events": [_event() for _ in range(501)]}, format="json"), 400)
    assert "events" in error["fields"]
    assert not Event.objects.exists()


def test_query_count_does_not_grow_with_batch_size(alice_api):
    """A per-event query pattern would cost 500+ queries; ingestion's cost is fixed per request (the exact number
    depends on the backend: SQLite splits a bulk INSERT by its bound-variable limit, PostgreSQL stages with COPY)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for size in (10, 500):
        with CaptureQueriesContext(connection) as ctx:
            body = alice_api.post(URL, {"events": [_event() for _ in range(size)]}, format="json").json()
        assert body["accepted"] == size
        counts[size] = len(ctx.captured_queries)
    assert counts[500] <= counts[10] + 4 and counts[500] <= 12, counts


def test_ingestion_is_throttled_per_user_with_error_body(alice_api, bob_api, monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    cache.clear()
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES",
                        {"anon": "1000/minute", "user": "1000/minute", "events": "2/minute"})
    for _ in range(2):
        assert alice_api.post(URL, {"events": [_event()]}, format="json").status_code == 200
    error = assert_error(alice_api.post(URL, {"events": [_event()]}, format="json"), 429, "throttled")
    assert "retry_after_seconds" in error["fields"]
    assert bob_api.post(URL, {"events": [_event()]}, format="json").status_code == 200  # per user, not global
    cache.clear()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_batches_store_each_event_once(alice):
    token, _ = Token.objects.get_or_create(user=alice)
    batch = {"source": "mobile", "events": [_event() for _ in range(50)]}
    results: list[dict] = []
    barrier = threading.Barrier(6)

    def post() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        try:
            barrier.wait()
            response = client.post(URL, batch, format="json")
            results.append({"status": response.status_code, **response.json()})
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r["status"] for r in results] == [200] * 6
    assert Event.objects.filter(member=alice, kind="lesson_viewed").count() == 50
    assert sum(r["accepted"] + r["duplicates"] for r in results) == 300
