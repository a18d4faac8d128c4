"""The one-pass importer (issue 19): all-or-nothing and --dry-run read each file once, validating and writing each
chunk as it is read; duplicate ids are found through temporary tables, not Python sets of every id; members created
from activity get their first order/event as date_joined, set once at the end. Chunks shrunk to 3 rows."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from analytics.ingest import platform
from analytics.models import Event
from members.models import Order, User
from tests.analytics.ingest.test_platform import run, write
from tests.members.factories import UserFactory

pytestmark = pytest.mark.django_db

ORDERS_HEADER = "order_id,member_id,product_id,amount,currency,ordered_at,status\n"
EVENTS_HEADER = "event_id,member_id,kind,object_type,object_id,occurred_at,properties\n"


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(platform, "BATCH_SIZE", 3)
    monkeypatch.setattr(platform, "EVENT_BATCH_SIZE", 3)


@pytest.fixture
def reads(monkeypatch):
    """How many times each file is opened for reading."""
    counts: dict[str, int] = {}
    real = platform.read_records

    def counting(path, **kwargs):
        counts[path.name] = counts.get(path.name, 0) + 1
        return real(path, **kwargs)

    monkeypatch.setattr(platform, "read_records", counting)
    return counts


def orders_file(tmp_path, rows: list[str]):
    return write(tmp_path, "orders.csv", ORDERS_HEADER + "".join(row + "\n" for row in rows))


def good_orders(n: int = 9) -> list[str]:
    return [f"o{i},m{i % 4},,10.00,CNY,2024-01-0{i}T10:00:00Z,paid" for i in range(1, n + 1)]


def temporary_tables() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_temp_master WHERE type = 'table'")
        else:
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname LIKE 'pg_temp%%'")
        return {name for (name,) in cursor.fetchall() if name.startswith("import_")}


def test_all_or_nothing_reads_each_file_once_and_writes(tmp_path, reads):
    events = write(tmp_path, "events.csv", EVENTS_HEADER + "e1,m1,login,,,2024-02-01T09:00:00Z,\n")
    status, _, _ = run(orders=orders_file(tmp_path, good_orders()), events=events)

    assert status == 0
    assert reads == {"orders.csv": 1, "events.csv": 1}
    assert Order.objects.count() == 9 and Event.objects.count() == 1


def test_a_dry_run_reads_each_file_once(tmp_path, reads):
    assert run(orders=orders_file(tmp_path, good_orders()), dry_run=True)[0] == 0
    assert reads == {"orders.csv": 1}
    assert not Order.objects.exists()


def test_partial_validates_first_then_writes(tmp_path, reads):
    # A file-level problem may sit at the end of a file and must stop --partial too: two reads.
    assert run(orders=orders_file(tmp_path, good_orders()), partial=True)[0] == 0
    assert reads == {"orders.csv": 2}
    assert Order.objects.count() == 9


def test_every_bad_row_is_reported_after_the_first_and_nothing_is_written(tmp_path, reads):
    rows = good_orders()
    rows[1] = "o2,m2,,abc,CNY,2024-01-02T10:00:00Z,paid"  # line 3: chunk 1, before any write of chunk 1
    rows[4] = "o5,m1,,10.00,CNY,yesterday,paid"  # line 6: chunk 2
    rows[8] = "o9,m1,,-1,CNY,2024-01-09T10:00:00Z,paid"  # line 10: chunk 3
    events = write(tmp_path, "events.csv", EVENTS_HEADER + "e1,m1,,,,2024-02-01T09:00:00Z,\n")
    status, _, err = run(orders=orders_file(tmp_path, rows), events=events)

    assert status == 1
    assert "orders.csv:3: column 'amount': not a decimal number ('abc')" in err
    assert "orders.csv:6: column 'ordered_at': not an ISO 8601 date or timestamp ('yesterday')" in err
    assert "orders.csv:10: column 'amount': negative amount ('-1')" in err
    assert "events.csv:2: column 'kind': required value is empty" in err
    assert "4 problem(s) found; nothing was imported" in err
    assert reads == {"orders.csv": 1, "events.csv": 1}
    assert not Order.objects.exists() and not Event.objects.exists()
    assert not User.objects.filter(external_id__isnull=False).exists()


@pytest.mark.usefixtures("reading")
def test_an_error_after_rows_were_written_rolls_them_back(tmp_path):
    # Chunks 1-2 of the orders are written before line 9 (chunk 3) is read.
    rows = good_orders()
    rows[7] = "o8,m0,,12.345,CNY,2024-01-08T10:00:00Z,paid"
    status, _, err = run(orders=orders_file(tmp_path, rows))

    assert status == 1
    assert "orders.csv:9: column 'amount': more than 2 decimal places ('12.345')" in err
    assert not Order.objects.exists()
    assert not User.objects.filter(external_id__isnull=False).exists()
    assert temporary_tables() == set()


@pytest.mark.usefixtures("reading")
def test_a_file_problem_after_written_chunks_rolls_everything_back(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_bytes((ORDERS_HEADER + "".join(row + "\n" for row in good_orders(7))).encode() + b"o8,m\xe9,,1,CNY,2024-01-08,paid\n")
    status, _, err = run(orders=path)

    assert status == 1
    assert "orders.csv:9: not valid UTF-8" in err
    assert not Order.objects.exists()


@pytest.mark.usefixtures("reading")
def test_duplicates_across_chunks_are_reported_with_their_line(tmp_path):
    rows = good_orders()
    rows[6] = "o1,m3,,10.00,CNY,2024-01-07T10:00:00Z,paid"  # line 8, chunk 3: o1 is on line 2, chunk 1
    rows[7] = "o2,m3,,10.00,CNY,2024-01-08T10:00:00Z,paid"  # line 9: o2 (line 3) too
    status, _, err = run(orders=orders_file(tmp_path, rows))

    assert status == 1
    assert "orders.csv:8: column 'order_id': duplicate order_id 'o1' (appears earlier in the file)" in err
    assert "orders.csv:9: column 'order_id': duplicate order_id 'o2' (appears earlier in the file)" in err
    assert "2 problem(s) found" in err


@pytest.mark.usefixtures("reading")
def test_a_rejected_row_does_not_claim_its_id(tmp_path):
    rows = ["o1,m1,,abc,CNY,2024-01-01,paid", "x,m1,,1,CNY,2024-01-01,paid", "y,m1,,1,CNY,2024-01-01,paid",
            "o1,m1,,10.00,CNY,2024-01-02,paid"]  # the valid o1 is in the second chunk
    status, _, err = run(orders=orders_file(tmp_path, rows), partial=True)

    assert status == 1
    assert "duplicate" not in err
    assert Order.objects.get(external_id="o1").amount_paid == 10


@pytest.mark.usefixtures("reading")
def test_duplicate_event_ids_across_chunks_and_the_partial_mode_agree(tmp_path):
    lines = [f"e{i},m1,login,,,2024-02-0{i}T09:00:00Z," for i in range(1, 8)] + ["e2,m1,login,,,2024-02-09T09:00:00Z,"]
    path = write(tmp_path, "events.csv", EVENTS_HEADER + "".join(line + "\n" for line in lines))
    for mode in ({}, {"dry_run": True}, {"partial": True}):
        status, _, err = run(events=path, **mode)
        assert status == 1
        assert "events.csv:9: column 'event_id': duplicate event_id 'e2'" in err
    assert Event.objects.count() == 7  # the --partial run


def test_no_ledger_is_left_behind(tmp_path):
    assert run(orders=orders_file(tmp_path, good_orders()))[0] == 0
    assert run(orders=orders_file(tmp_path, good_orders()), partial=True)[0] == 0
    assert temporary_tables() == set()


@pytest.mark.usefixtures("reading")
def test_members_from_activity_join_at_their_first_order_or_event_across_chunks_and_files(tmp_path):
    # u1's earliest order is in the last chunk; its earliest activity of all is an event.
    rows = [f"o{i},u1,,1,CNY,2024-05-0{i},paid" for i in range(2, 9)] + ["o9,u1,,1,CNY,2024-04-15,paid"]
    events = write(tmp_path, "events.csv", EVENTS_HEADER + "e1,u2,login,,,2024-03-01,\ne2,u1,login,,,2024-04-10,\n"
                   + "e3,u1,login,,,2024-06-01,\ne4,u2,login,,,2024-02-01T12:00:00Z,\n")
    status, out, _ = run(orders=orders_file(tmp_path, rows), events=events)

    assert status == 0, out
    assert User.objects.get(external_id="u1").date_joined == datetime(2024, 4, 10, tzinfo=UTC)
    assert User.objects.get(external_id="u2").date_joined == datetime(2024, 2, 1, 12, tzinfo=UTC)
    assert "members created from orders/events: 2" in out


def test_first_activity_follows_the_members_file_only_without_joined_at(tmp_path):
    members = write(tmp_path, "members.csv", "member_id,joined_at\nm1,2020-01-01\nm2,\n")
    rows = ["o1,m1,,1,CNY,2024-05-01,paid", "o2,m2,,1,CNY,2024-05-02,paid", "o3,m2,,1,CNY,2024-05-03,paid",
            "o4,m2,,1,CNY,2024-04-30,paid"]
    assert run(members=members, orders=orders_file(tmp_path, rows))[0] == 0

    assert User.objects.get(external_id="m1").date_joined == datetime(2020, 1, 1, tzinfo=UTC)
    assert User.objects.get(external_id="m2").date_joined == datetime(2024, 4, 30, tzinfo=UTC)


def test_a_member_created_by_an_earlier_import_is_not_changed_by_later_activity(tmp_path):
    UserFactory(external_id="u1", date_joined=datetime(2024, 6, 1, tzinfo=UTC))
    assert run(orders=orders_file(tmp_path, ["o1,u1,,1,CNY,2024-01-01,paid"]))[0] == 0
    assert User.objects.get(external_id="u1").date_joined == datetime(2024, 6, 1, tzinfo=UTC)
