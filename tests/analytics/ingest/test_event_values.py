"""The events file read as plain values (all-or-nothing): the reading side hands over each valid event's values, the
writing process makes what is stored straight from them (analytics.ingest.events.EventValues): COPY text lines on
PostgreSQL, COPYed a batch at a time (in the background into a table bulk-loaded from empty), the tuples
events_bulk_ingest inserts on SQLite. It must store exactly what the EventRow path (events_bulk_ingest) stores from
the same file: the same rows, members, first activity and counts, whatever the values hold (COPY's escapes,
unicode, numbers, instants in every form the importer reads)."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from django.db import DataError, connection

from analytics.ingest import platform
from analytics.ingest.events import EventValues, copy_text
from analytics.ingest.platform import import_platform_data
from analytics.models import Event
from config.bulk_load import copy_lines
from members.models import User
from tests.analytics.ingest.test_platform import write
from tests.analytics.ingest.test_platform_bulk_load import Abort, imported_rows

pytestmark = [pytest.mark.django_db]

MEMBERS = "member_id,email,name,joined_at\nm1,mia@example.com,Mia,2024-01-02\nm2,,Max,\n"

EVENT_ROWS = [
    ["e1", "m1", "lesson_completed", "lesson", "5", "2024-02-02T09:00:00+00:00", ""],
    # COPY's specials in the text columns: a tab, a backslash, a newline and a carriage return.
    ["e2", "m1", "note\tadded", "lesson", "a\\b\nc\rd", "2024-02-02T09:00:01Z", ""],
    ["e3", "m2", "comment_created", "post", "\\N", "2024-02-03 17:05:07+08:00",
     '{"text": "中文 \\"quoted\\" back\\\\slash\\ttab", "nested": {"a": [1, 2.5, null, true]}}'],
    # Numbers: a quantity from the column (kept in properties), an integer one, a large one, one that is a string.
    ["e4", "m2", "purchase", "course", "c1", "2024-02-04T10:00:00.123456+00:00", "", "1.5"],
    ["e5", "m3", "purchase", "course", "c1", "2024-02-04T10:00:00-05:00", '{"quantity": 2}'],
    ["e6", "m3", "purchase", "course", "c2", "2024-02-05", '{"quantity": 1e20}'],
    ["e7", "m3", "purchase", "course", "c2", "2024-02-05T00:00:00", '{"quantity": "3"}'],
    # Without an event_id: keyed by content. Two identical ones in one batch, a third in a later batch.
    ["", "m4", "login", "", "", "2024-01-15T08:00:00+00:00", ""],
    ["", "m4", "login", "", "", "2024-01-15T08:00:00+00:00", ""],
    ["e8", "m4", "login", "", "", "2024-01-10T08:00:00+02:00", ""],
    ["e9", "m5", "course_viewed", "course", "c1", "2024-01-20T08:00:00Z", ""],
    ["", "m4", "login", "", "", "2024-01-15T08:00:00+00:00", ""],
    ["e10", "m5", "course_viewed", "course", "c1", "2024-01-19T23:59:59.5+00:00", '{"emoji": "😀", "q": 7}'],
]


def events_csv() -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["event_id", "member_id", "kind", "object_type", "object_id", "occurred_at", "properties",
                     "quantity"])
    for row in EVENT_ROWS:
        writer.writerow(row + [""] * (8 - len(row)))
    return buffer.getvalue()


def import_and_read(files: dict[str, object], *, lines: bool, batch: int) -> tuple[object, dict]:
    """Import in a savepoint, read every imported row, roll back."""
    written: list[int] = []
    real = platform._Writer.event_values

    def spy(self, rows, firsts, report):
        written.append(len(rows))
        return real(self, rows, firsts, report)

    captured: dict = {"batches": written}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(platform, "EVENT_BATCH_SIZE", batch)
        patch.setattr(platform._Writer, "event_values", spy)
        if not lines:  # the writer then reads events as ImportedEvents and writes them through events_bulk_ingest
            patch.setattr(platform, "EventValues", lambda *args: None)
        with pytest.raises(Abort), platform.transaction.atomic():
            captured["report"] = import_platform_data(**files, bulk_load="always")
            captured["rows"] = imported_rows()
            captured["events"] = Event.objects.count()
            with connection.cursor() as cursor:  # as stored: SQLite keeps instants as text, compared as text
                cursor.execute("SELECT idempotency_key, occurred_at, properties, quantity FROM analytics_event")
                captured["stored"] = sorted(cursor.fetchall(), key=repr)
            raise Abort
    return captured["report"], captured


@pytest.mark.parametrize("batch", [3, 5000], ids=["batches of 3", "one batch"])
def test_event_values_store_what_event_rows_store(tmp_path, reading, batch):
    files = {"members": write(tmp_path, "members.csv", MEMBERS), "events": write(tmp_path, "events.csv", events_csv())}
    rows_report, rows = import_and_read(files, lines=False, batch=batch)
    lines_report, lines = import_and_read(files, lines=True, batch=batch)

    assert rows["batches"] == [] and lines["batches"]  # each path was the one taken
    assert rows_report.ok and rows_report.written and lines_report.ok and lines_report.written
    assert lines["rows"]["events"] == rows["rows"]["events"]
    assert lines["stored"] == rows["stored"]
    # date_joined of m2 (no joined_at) is the import's own time: compare it apart from the others.
    assert [row[:5] for row in lines["rows"]["users"]] == [row[:5] for row in rows["rows"]["users"]]
    implicit = {"m3", "m4", "m5"}  # created from their events, joined at their first one
    assert [row for row in lines["rows"]["users"] if row[0] in implicit] == [
        row for row in rows["rows"]["users"] if row[0] in implicit]
    # Both ways share platform._firsts: the earliest instant, not the first row met (m4's and m5's come later in the
    # file, in the same batch when the file is one batch).
    assert {row[0]: row[5] for row in lines["rows"]["users"] if row[0] in implicit} == {
        "m3": datetime(2024, 2, 4, 15, tzinfo=UTC), "m4": datetime(2024, 1, 10, 6, tzinfo=UTC),
        "m5": datetime(2024, 1, 19, 23, 59, 59, 500000, tzinfo=UTC)}
    for report in (rows_report, lines_report):
        events = report.files["events"]
        assert (events.valid, events.created, events.duplicates) == (13, 11, 2)
    assert lines["events"] == rows["events"] == 11
    stored = {row[7]: row for row in lines["rows"]["events"]}
    assert stored["import:e2"][1:4] == ("note\tadded", "lesson", "a\\b\nc\rd")
    assert stored["import:e3"][3] == "\\N" and stored["import:e3"][5]["text"] == '中文 "quoted" back\\slash\ttab'
    assert [stored[f"import:e{n}"][8] for n in (4, 5, 6, 7)] == [1.5, 2.0, 1e20, None]


def test_a_line_escapes_what_copy_would_read_as_a_separator():
    lines = EventValues("import", connection)
    plain = lines.tail("login", "", "", "2024-01-15 08:00:00+00", {}, "e1")
    assert plain == "login\t\t\t2024-01-15 08:00:00+00\t{}\timport\timport:e1\t\\N\n"
    tricky = lines.tail("a\tb", "x\\y", "1\n2\r3", "2024-01-15 08:00:00+00", {"quantity": 2, "s": "\\"}, "e\t1")
    assert tricky == ("a\\tb\tx\\\\y\t1\\n2\\r3\t2024-01-15 08:00:00+00\t"
                      '{"quantity": 2, "s": "\\\\\\\\"}\timport\timport:e\\t1\t2.0\n')
    assert copy_text("\\N") == "\\\\N"
    assert EventValues.line(7, "2026-01-01T00:00:00+00:00", plain).split("\t")[:3] == [
        "7", "2026-01-01T00:00:00+00:00", "login"]
    with pytest.raises(ValueError, match="Unknown event source"):
        EventValues("nowhere", connection)


@pytest.mark.postgres
def test_an_error_in_the_background_copy_is_raised_by_the_import_and_rolls_everything_back(tmp_path, monkeypatch):
    # A table bulk-loaded from empty: each batch's COPY runs in a thread (config.bulk_load.CopyInBackground). A value
    # the server refuses there must fail the import in the importing thread, as Django's own exception class.
    files = {"members": write(tmp_path, "members.csv", MEMBERS), "events": write(tmp_path, "events.csv", events_csv())}
    started = []
    real_start = platform.start_copy_of_event_lines

    def start(lines, direct):
        started.append(len(lines))
        return real_start(lines, direct)

    monkeypatch.setattr(platform, "start_copy_of_event_lines", start)
    monkeypatch.setattr(platform, "EVENT_BATCH_SIZE", 3)
    monkeypatch.setattr(EventValues, "line", staticmethod(lambda pk, received_at, tail: f"x{pk}\t{received_at}\t{tail}"))
    with pytest.raises(DataError, match="bigint"):
        import_platform_data(**files, bulk_load="always")
    assert started == [3]  # the first batch, in the background; its error stops the import before the next
    assert not Event.objects.exists() and not User.objects.filter(external_id__isnull=False).exists()


@pytest.mark.postgres
@pytest.mark.parametrize("values", [
    ["e1", "e2", "o-3"],  # nothing to escape: one join
    ["tab\there", "back\\slash", "new\nline", "carriage\rreturn", "\\N", "plain"],
], ids=["plain", "specials"])
def test_copy_lines_read_back_as_the_values_they_were_made_of(values):
    # The duplicate ledger's ids go into their temporary table as copy_lines' text.
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE copied (item TEXT, chunk INTEGER)")
        with cursor.copy("COPY copied (item, chunk) FROM STDIN") as copy:
            copy.write(copy_lines(values, "\t7"))
        cursor.execute("SELECT item, chunk FROM copied")
        assert cursor.fetchall() == [(value, 7) for value in values]
        cursor.execute("DROP TABLE copied")
