"""Chunk boundaries of the streaming importer: the write pass goes in chunks (BATCH_SIZE / EVENT_BATCH_SIZE rows),
so an error on a row of a later chunk must still name its own line and column, and all-or-nothing must hold across
chunks (issue 19). The chunk sizes are shrunk to 3 rows so a ten-line file spans several chunks."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from analytics.ingest import platform
from analytics.models import Event
from members.models import Course, Enrollment, Order, User
from tests.analytics.ingest.test_platform import run, write
from tests.members.factories import CourseFactory, EnrollmentFactory, UserFactory

# Each test runs with the files read in the importing process and read ahead in a forked one (conftest.reading).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reading")]

ORDERS_HEADER = "order_id,member_id,product_id,amount,currency,ordered_at,status\n"
EVENTS_HEADER = "event_id,member_id,kind,object_type,object_id,occurred_at,properties\n"


def orders(bad_line: int | None = None) -> str:
    lines = [ORDERS_HEADER]
    for i in range(1, 10):  # data on lines 2..10
        amount = "12.345" if i + 1 == bad_line else "10.00"
        lines.append(f"o{i},m{i % 4},,{amount},CNY,2024-01-0{i}T10:00:00Z,paid\n")
    return "".join(lines)


def events(bad_line: int | None = None) -> str:
    lines = [EVENTS_HEADER]
    for i in range(1, 10):
        when = "yesterday" if i + 1 == bad_line else f"2024-02-0{i}T09:00:00Z"
        lines.append(f"e{i},m{i % 4},login,,,{when},\n")
    return "".join(lines)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(platform, "BATCH_SIZE", 3)
    monkeypatch.setattr(platform, "EVENT_BATCH_SIZE", 3)


def test_an_error_in_the_second_chunk_names_its_line_and_writes_nothing(tmp_path):
    # Line 6 is the 5th data row: the second chunk of 3.
    status, _, err = run(orders=write(tmp_path, "orders.csv", orders(bad_line=6)),
                         events=write(tmp_path, "events.csv", events(bad_line=9)))
    assert status == 1
    assert "orders.csv:6: column 'amount': more than 2 decimal places ('12.345')" in err
    assert "events.csv:9: column 'occurred_at': not an ISO 8601 date or timestamp ('yesterday')" in err
    assert "2 problem(s) found; nothing was imported" in err
    assert not Order.objects.exists()
    assert not Event.objects.exists()
    assert not User.objects.filter(external_id__isnull=False).exists()


def test_the_error_line_is_the_same_in_a_dry_run_and_with_partial(tmp_path):
    path = write(tmp_path, "orders.csv", orders(bad_line=8))
    status, _, err = run(orders=path, dry_run=True)
    assert status == 1 and "orders.csv:8: column 'amount'" in err
    assert not Order.objects.exists()

    status, _, err = run(orders=path, partial=True)
    assert status == 1 and "orders.csv:8: column 'amount'" in err
    # Every chunk but the bad row is written: 9 rows, one rejected.
    assert sorted(Order.objects.values_list("external_id", flat=True)) == sorted(
        f"o{i}" for i in range(1, 10) if i != 7
    )


def test_a_database_failure_in_a_later_chunk_rolls_back_the_earlier_chunks(tmp_path, monkeypatch):
    real_write = platform._RawUpsert.write
    calls = {"orders": 0}

    def failing_write(self, rows):
        if self.table.strip('"`') == Order._meta.db_table:
            calls["orders"] += 1
            if calls["orders"] == 2:
                raise RuntimeError("disk full (simulated) in the second chunk")
        return real_write(self, rows)

    monkeypatch.setattr(platform._RawUpsert, "write", failing_write)
    with pytest.raises(RuntimeError, match="second chunk"):
        run(orders=write(tmp_path, "orders.csv", orders()), events=write(tmp_path, "events.csv", events()))
    assert calls["orders"] == 2
    assert not Order.objects.exists()
    assert not Event.objects.exists()
    assert not User.objects.filter(external_id__isnull=False).exists()


def test_chunked_reimport_is_idempotent(tmp_path):
    files = {"orders": write(tmp_path, "orders.csv", orders()), "events": write(tmp_path, "events.csv", events())}
    assert run(**files)[0] == 0
    before = (Order.objects.count(), Event.objects.count(), User.objects.count())
    assert before[:2] == (9, 9)
    status, out, _ = run(**files)
    assert status == 0
    assert "9 already imported" in out
    assert (Order.objects.count(), Event.objects.count(), User.objects.count()) == before


def test_a_course_bought_twice_across_chunks_is_one_enrolment_from_the_first_order(tmp_path):
    """PostgreSQL collects the enrolments of an all-or-nothing import and writes them once at the end (the first of
    each member and course); SQLite writes them per chunk. Both keep the first order's, and an existing enrolment."""
    for slug in ("c1", "c2"):
        CourseFactory(slug=slug, external_id=slug)
    member = UserFactory(external_id="m2")
    earlier = datetime(2023, 6, 15, tzinfo=UTC)
    EnrollmentFactory(member=member, course=Course.objects.get(external_id="c2"), enrolled_at=earlier)
    lines = [ORDERS_HEADER]
    for i, (member_id, course) in enumerate([("m1", "c1"), ("m3", "c1"), ("m1", "c2"), ("m1", "c1"), ("m2", "c2"),
                                             ("m3", "c1"), ("m1", "c1")], start=1):
        lines.append(f"o{i},{member_id},{course},10.00,CNY,2024-01-0{i}T10:00:00Z,paid\n")
    status, _, err = run(orders=write(tmp_path, "orders.csv", "".join(lines)))
    assert status == 0, err
    enrolments = {(e.member.external_id, e.course.external_id): e.enrolled_at
                  for e in Enrollment.objects.select_related("member", "course")}
    day = {i: datetime(2024, 1, i, 10, tzinfo=UTC) for i in range(1, 8)}
    assert enrolments == {("m1", "c1"): day[1], ("m3", "c1"): day[2], ("m1", "c2"): day[3], ("m2", "c2"): earlier}
    assert Order.objects.count() == 7
