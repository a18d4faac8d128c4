"""Reading an import file ahead in a forked process (analytics.ingest.read_ahead): items arrive in order from
another process, failures in the child reach the parent, the child never outlives the reading, and an import
read ahead stores exactly what an import read in process stores."""
from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import transaction

from analytics.ingest import platform, read_ahead
from analytics.ingest.files import FileProblem
from analytics.ingest.platform import ImportedEvent, MemberRow, OrderRow, RowError, _Cells
from tests.analytics.ingest.test_platform import all_files, run, snapshot

pytestmark = pytest.mark.skipif(not read_ahead.available(), reason="no os.fork on this platform")


def same(value):
    return value


class Bar:
    """The progress bar as read_ahead uses it."""

    total = 0

    def update(self, count):
        self.total += count


def test_items_arrive_in_order_from_another_process():
    items = list(read_ahead.read_ahead(lambda tally: ((os.getpid(), n) for n in range(500)), encode=same,
                                       decode=same))

    assert [n for _, n in items] == list(range(500))
    assert {pid for pid, _ in items} != {os.getpid()}


def test_the_bytes_the_child_reads_advance_the_parents_bar():
    def produce(tally):
        for n in range(3):
            tally.update(1000 + n)
            yield n

    bar = Bar()
    assert list(read_ahead.read_ahead(produce, encode=same, decode=same, bar=bar)) == [0, 1, 2]
    assert bar.total == 3003


def test_encode_and_decode_run_on_each_side():
    items = read_ahead.read_ahead(lambda tally: iter([1, 2]), encode=lambda n: (os.getpid(), n * 10),
                                  decode=lambda pair: (pair, os.getpid()))
    for (child, value), parent in items:
        assert child != parent == os.getpid()
        assert value in (10, 20)


def test_an_exception_in_the_child_is_raised_in_the_parent_after_the_items_before_it():
    def produce(tally):
        yield 1
        yield 2
        raise ValueError("line 7 is broken")

    received = []
    with pytest.raises(ValueError, match="line 7 is broken"):
        for item in read_ahead.read_ahead(produce, encode=same, decode=same):
            received.append(item)
    assert received == [1, 2]


class NeedsTwoArguments(Exception):
    def __init__(self, first, second):
        super().__init__(f"{first}/{second}")


def test_an_exception_pickle_cannot_rebuild_arrives_as_its_traceback():
    def produce(tally):
        yield 1
        raise NeedsTwoArguments("a", "b")

    with pytest.raises(read_ahead.ReadAheadFailed, match="NeedsTwoArguments: a/b"):
        list(read_ahead.read_ahead(produce, encode=same, decode=same))


def test_a_child_that_dies_is_an_error_not_a_short_file():
    def produce(tally):
        yield 1
        os._exit(3)

    received = []
    with pytest.raises(read_ahead.ReadAheadFailed, match="ended before the end of the file"):
        for item in read_ahead.read_ahead(produce, encode=same, decode=same):
            received.append(item)
    assert received == [1]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_parent_that_stops_early_kills_and_reaps_the_child():
    def produce(tally):
        yield os.getpid()
        while True:  # a file that never ends
            yield 0

    items = read_ahead.read_ahead(produce, encode=same, decode=same)
    child = next(items)
    assert not _gone(child)
    items.close()  # what a for loop does when its body raises
    assert _gone(child)  # killed and reaped: not even a zombie is left


def test_a_finished_child_is_reaped():
    items = read_ahead.read_ahead(lambda tally: iter([os.getpid()]), encode=same, decode=same)
    (child,) = list(items)
    assert _gone(child)  # reaped when the last item was taken: no zombie left behind


# The importer's chunks --------------------------------------------------------------------------------------------


def _cells(line: int, row: list[str], key: str = "", email: str = "", error: str = "") -> _Cells:
    cells = _Cells("orders.csv", line, {"order_id": 0}, row)
    cells.key, cells.email = key, email
    if error:
        cells.error("amount", error)
    return cells


@pytest.mark.parametrize("typed", [
    # With the timestamp's stored text (a UTC timestamp to the second in the CSV): the datetime is rebuilt from it.
    OrderRow("o1", "m1", "c1", "course", Decimal("99.00"), "CNY", datetime(2024, 2, 1, 2, tzinfo=UTC), "paid", 1,
             "WELCOME", "", datetime(2024, 3, 1, 8, 30, tzinfo=timezone(timedelta(hours=8))), "2024-02-01 02:00:00"),
    ImportedEvent("e1", "m1", "lesson_completed", "lesson", "5", datetime(2024, 2, 2, 9, 5, 7, tzinfo=UTC),
                  {"lesson": 5, "tags": ["a"]}, "2024-02-02 09:05:07+00"),
    # Without (another offset, fractions of a second): the datetime itself crosses.
    OrderRow("o1", "m1", None, "tier", Decimal("9"), "CNY",
             datetime(2024, 2, 1, 10, 0, 0, 250, tzinfo=timezone(timedelta(hours=8))), "paid", 1, "", "year"),
    ImportedEvent(None, "m1", "login", "", "", datetime(2024, 2, 2, 9, tzinfo=timezone(timedelta(hours=-5))), {}),
    MemberRow("m1", "mia@example.com", "Mia", None, "CN", "zh-hans"),
], ids=["order-text", "event-text", "order", "event", "member"])
def test_a_chunk_crosses_the_pipe_unchanged(typed):
    chunk = [
        (_cells(2, ["o1", "x"], key="o1", email="mia@example.com"), typed),
        (_cells(3, ["o2", "12.345"], key="o2", error="more than 2 decimal places ('12.345')"), None),
    ]
    problem = FileProblem(9, "not valid UTF-8")
    wire = read_ahead.pickle.loads(read_ahead.pickle.dumps(platform._encode_chunk((chunk, problem))))
    decoded, decoded_problem = platform._decode_chunk("orders.csv", type(typed), wire)

    assert decoded[0][1] == typed and type(decoded[0][1]) is type(typed)
    for name in typed.__match_args__:  # the same instant in the same zone: an id-less event's key hashes isoformat()
        before, after = getattr(typed, name), getattr(decoded[0][1], name)
        if isinstance(before, datetime):
            assert (after.isoformat(), after.tzinfo) == (before.isoformat(), before.tzinfo)
    assert decoded[1][1] is None
    for (before, _), (after, _) in zip(chunk, decoded, strict=True):
        assert (after.file, after.line, after.row, after.key, after.email, after.errors) == (
            before.file, before.line, before.row, before.key, before.email, before.errors)
    assert decoded[1][0].errors == [RowError("orders.csv", 3, "amount", "more than 2 decimal places ('12.345')",
                                             "o2,12.345")]
    # A duplicate found later, in the parent, names the row's line and raw text like any other error.
    decoded[0][0].error("order_id", "duplicate")
    assert decoded[0][0].errors[-1] == RowError("orders.csv", 2, "order_id", "duplicate", "o1,x")
    assert (decoded_problem.line, decoded_problem.reason, decoded_problem.column) == (9, "not valid UTF-8", "")
    assert platform._decode_chunk("orders.csv", type(typed), platform._encode_chunk((chunk, None)))[1] is None


@pytest.mark.django_db
def test_an_import_read_ahead_stores_what_an_import_read_in_process_stores(tmp_path, monkeypatch, settings):
    monkeypatch.setattr(platform, "BATCH_SIZE", 2)
    monkeypatch.setattr(platform, "EVENT_BATCH_SIZE", 2)
    files = all_files(tmp_path)
    settings.IMPORT_READ_AHEAD = False
    with transaction.atomic():
        assert run(**files)[0] == 0
        in_process = snapshot()
        transaction.set_rollback(True)

    forked = []
    original = read_ahead.read_ahead

    def spy(produce, **options):
        forked.append(options["decode"])
        return original(produce, **options)

    monkeypatch.setattr(read_ahead, "read_ahead", spy)
    monkeypatch.setattr(read_ahead, "MIN_BYTES", 0)
    settings.IMPORT_READ_AHEAD = True
    status, out, err = run(**files)

    assert status == 0, err
    assert len(forked) == 3  # members, orders and events; never products (their validation records each one)
    assert snapshot() == in_process
    assert in_process["events"] and in_process["orders"] and in_process["users"]


@pytest.mark.django_db
def test_a_dry_run_reads_in_process(tmp_path, monkeypatch):
    # Nothing is written, so there is nothing for reading ahead to overlap with.
    monkeypatch.setattr(read_ahead, "MIN_BYTES", 0)
    monkeypatch.setattr(read_ahead, "read_ahead", lambda *args, **kwargs: pytest.fail("read ahead in a dry run"))
    assert run(dry_run=True, **all_files(tmp_path))[0] == 0


def _read_ahead_in_this_process(count: int) -> tuple[list[int], bool]:
    import multiprocessing

    items = list(read_ahead.read_ahead(lambda tally: iter(range(count)), encode=same, decode=same))
    return items, bool(multiprocessing.current_process().daemon)


def test_a_celery_pool_process_can_read_ahead():
    # Celery's prefork pool (billiard) runs tasks in daemonic processes, which multiprocessing refuses to give
    # children; a fork does not ask.
    from billiard.pool import Pool

    with Pool(1) as pool:
        items, daemonic = pool.apply(_read_ahead_in_this_process, (300,))
    assert items == list(range(300))
    assert daemonic


def test_when_the_fork_fails_the_items_are_read_here(monkeypatch):
    def no_fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    def produce(tally):
        for n in range(3):
            tally.update(10)
            yield os.getpid(), n

    monkeypatch.setattr(read_ahead.os, "fork", no_fork)
    bar = Bar()
    items = list(read_ahead.read_ahead(produce, encode=lambda item: pytest.fail("encoded"), decode=same, bar=bar))
    assert items == [(os.getpid(), 0), (os.getpid(), 1), (os.getpid(), 2)]
    assert bar.total == 30

