"""Event ingestion validates each event on its own, including strings PostgreSQL refuses (issue 13.9): a lone
surrogate or a NUL anywhere in `properties` (value, key, nested) rejects that event with its index and reason; the
rest of the batch is stored. Before: one "\\ud800" in properties made the whole batch a 500 on PostgreSQL (and on
SQLite the row was stored, to fail later in any export or in a move to PostgreSQL)."""
from __future__ import annotations

import json

import pytest

from analytics.models import Event
from config.storable_text import find_unstorable, text_problem
from tests.api.test_events import URL, _event

pytestmark = pytest.mark.adversarial

BAD_PROPERTIES = [
    ({"note": "\ud800"}, "note", "lone surrogate (U+D800)"),
    ({"note": "a\x00b"}, "note", "NUL character"),
    ({"deep": {"list": [1, "ok", {"x": "\udfff"}]}}, "deep.list[2].x", "lone surrogate (U+DFFF)"),
    ({"k\x00ey": 1}, "k\x00ey", "key contains a NUL"),
]


@pytest.mark.parametrize(("properties", "path", "reason"), BAD_PROPERTIES)
def test_one_bad_event_is_rejected_with_its_index_and_the_rest_are_stored(alice_api, properties, path, reason):
    batch = {"events": [_event(), _event(properties=properties), _event()]}
    # json.dumps escapes the surrogate as "\ud800", as a real client's JSON encoder does.
    response = alice_api.post(URL, json.dumps(batch), content_type="application/json")
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert (body["received"], body["accepted"], body["rejected"]) == (3, 2, 1)
    [error] = body["errors"]
    assert error["index"] == 1 and error["field"] == "properties"
    assert error["message"].startswith(f"{path}: ") and reason in error["message"]
    assert Event.objects.filter(kind="lesson_viewed").count() == 2


def test_a_surrogate_in_object_id_is_rejected_too(alice_api):
    batch = {"events": [_event(object_id="\ud800"), _event()]}
    body = alice_api.post(URL, json.dumps(batch), content_type="application/json").json()
    assert (body["accepted"], body["rejected"]) == (1, 1) and body["errors"][0]["field"] == "object_id"


def test_find_unstorable_walks_a_deep_value_without_recursion():
    value: object = "\x00"
    for _ in range(5000):
        value = [value]
    where, reason = find_unstorable({"a": value})
    assert where == "a" + "[0]" * 5000 and "NUL" in reason
    assert find_unstorable({"fine": ["text", 1, None, {"ü": "中文"}]}) is None
    assert text_problem("plain") == ""
