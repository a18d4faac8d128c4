"""The platform importer names a value PostgreSQL refuses by its line and column (issue 13.9) instead of failing the
whole COPY ("invalid byte sequence"/"unsupported Unicode escape sequence") with no line to look at."""
from __future__ import annotations

import pytest

from analytics.models import Event
from tests.analytics.ingest.test_platform import run, write

pytestmark = [pytest.mark.adversarial, pytest.mark.django_db, pytest.mark.usefixtures("reading")]

EVENTS = (
    "event_id,member_id,kind,object_type,object_id,occurred_at,properties\n"
    'e1,m1,lesson_completed,lesson,5,2024-02-02T09:00:00Z,"{""lesson"": 5}"\n'
    'e2,m1,lesson_completed,lesson,6,2024-02-02T10:00:00Z,"{""note"": ""\\ud800""}"\n'
    'e3,m1,lesson_completed,lesson,7,2024-02-02T11:00:00Z,"{""deep"": [{""x"": ""a\\u0000b""}]}"\n'
    "e5,m1,lesson_completed,lesson,9,2024-02-02T13:00:00Z,\n"
)


def test_unstorable_values_are_reported_with_line_and_column(tmp_path):
    status, _, err = run(events=write(tmp_path, "events.csv", EVENTS))
    assert status == 1
    assert "events.csv:3: column 'properties': note: contains a lone surrogate (U+D800)" in err
    assert "events.csv:4: column 'properties': deep[0].x: contains a NUL character" in err
    assert "nothing was imported" in err
    assert not Event.objects.exists()


def test_a_raw_nul_byte_is_a_file_error_naming_its_line(tmp_path):
    status, _, err = run(events=write(tmp_path, "events.csv", EVENTS + "e6,m1,login,les\x00son,8,2024-02-02,\n"))
    assert status == 1 and "events.csv:6: contains NUL bytes" in err
    assert not Event.objects.exists()


def test_partial_import_stores_the_good_lines(tmp_path):
    status, _, err = run(events=write(tmp_path, "events.csv", EVENTS), partial=True)
    assert status == 1
    assert Event.objects.count() == 2
