"""The per-row costs behind session 9's import changes (docs/PERFORMANCE.md, "Session 9"), each timed by timeit
against what it replaced, and optionally the foreign key check on an imported SQLite database.

    .venv/bin/python bench/bench_import_micro.py
    .venv/bin/python bench/bench_import_micro.py --sqlite /tmp/bench_pipeline_100k/var/db.sqlite3
    .venv/bin/python bench/bench_import_micro.py --postgres postgres://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/bench_import_micro.py --read-ahead /tmp/bench_pipeline_100k/events.csv
    .venv/bin/python bench/bench_import_micro.py --sqlite-sort /tmp/bench_pipeline_100k/var/db.sqlite3

Prints microseconds per call (best of 5 repeats of 200,000 calls):
- building an 8-field row: a frozen dataclass against a plain slotted one;
- a UTC datetime to SQLite's stored text: astimezone + replace + str (before), isoformat sliced (adapt_utc), and
  the text sliced straight from the CSV's timestamp (instant_text_adapter);
- the storable-text pre-check of a row: the regex alone against ASCII-without-NUL first.
With --sqlite DB: PRAGMA foreign_key_check(analytics_event) against the per-column check of config.bulk_load (the
distinct member ids from the event_member_time index, anti-joined with members_user), both read-only.
With --postgres URL (session 19): COPY of 200,000 event rows into a temporary table shaped like analytics_event,
their two instants as datetimes (psycopg formats each) against as the texts the importer now gives (occurred_at
from instant_text_adapter, received_at formatted once); the
client's CPU seconds and the wall seconds, best of 3 alternating rounds (a rolled-back transaction; nothing kept).
With --read-ahead EVENTS_CSV (session 20): the first 200,000 rows of an events file validated into the importer's
chunks, then what handing them from the reading process to the writing one costs per row (best of 3, with the
import's garbage collector settings): pickling the chunks' objects as they are, against the importer's wire form
(platform._encode_chunk before pickling, platform._decode_chunk after unpickling); the validation itself beside it.
With --sqlite-sort DB (session 20): the events' secondary indexes of an imported SQLite database dropped and
created again, as the import's rebuild does, with the import's page cache (256 MB) and no sorter threads against
config.bulk_load's sorting settings (a small cache, PRAGMA threads); in a transaction rolled back, alternating, best
of 2 rounds each (the database is left as it was).
"""
from __future__ import annotations

import argparse
import re
import sqlite3
import sys
import time
import timeit
from dataclasses import field, make_dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from config.bulk_load import missing_parent_sql  # noqa: E402  (the query the import's check runs)

CALLS = 200_000


# The same 8 fields (an ImportedEvent's shape), as a frozen and as a plain slotted dataclass.
FIELDS = [("a", int), ("b", str), ("c", str), ("d", str), ("e", Any), ("f", dict, field(default_factory=dict)),
          ("g", str | None, None), ("h", float | None, None)]
Frozen = make_dataclass("Frozen", FIELDS, frozen=True, slots=True)
Plain = make_dataclass("Plain", FIELDS, slots=True)


def per_call(statement: Any) -> float:
    return min(timeit.repeat(statement, number=CALLS, repeat=5)) / CALLS * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sqlite", help="an imported SQLite database (bench_import.py --keep DIR: DIR/var/db.sqlite3)")
    parser.add_argument("--postgres", help="a PostgreSQL URL to COPY into a temporary table of (nothing is kept)")
    parser.add_argument("--read-ahead", metavar="EVENTS_CSV", help="an events CSV (bench_import.py --keep DIR)")
    parser.add_argument("--sqlite-sort", metavar="DB", help="an imported SQLite database (its events' indexes are "
                                                            "rebuilt in a rolled-back transaction)")
    options = parser.parse_args()

    print(f"row, 8 fields: frozen dataclass {per_call(lambda: Frozen(1, 'k', 'o', 'i', None, {}, 'key')):.2f} µs, "
          f"slotted dataclass {per_call(lambda: Plain(1, 'k', 'o', 'i', None, {}, 'key')):.2f} µs")

    text = "2025-10-20T03:15:17+00:00"
    value = datetime.fromisoformat(text)
    assert value.tzinfo is UTC
    print(f"UTC datetime -> stored text: astimezone+replace+str "
          f"{per_call(lambda: str(value.astimezone(UTC).replace(tzinfo=None))):.2f} µs, "
          f"isoformat sliced {per_call(lambda: value.isoformat(' ')[:-6]):.2f} µs, "
          f"from the CSV text {per_call(lambda: text[:10] + ' ' + text[11:19]):.2f} µs")

    unstorable = re.compile("[\x00\ud800-\udfff]")
    row = ["e000000001", "m0071406", "email_opened", "course", "p0109", text, ""]
    print(f"storable-text pre-check of a row: regex {per_call(lambda: unstorable.search(chr(31).join(row)) is None):.2f}"
          f" µs, ASCII first {per_call(lambda: (lambda j: (j.isascii() and chr(0) not in j) or unstorable.search(j) is None)(chr(31).join(row))):.2f} µs")  # noqa: E501

    if options.sqlite:
        db = sqlite3.connect(f"file:{options.sqlite}?mode=ro", uri=True)
        db.execute("PRAGMA cache_size = -262144")  # the import's cache
        started = time.perf_counter()
        orphans = db.execute("PRAGMA foreign_key_check(analytics_event)").fetchall()
        pragma = time.perf_counter() - started
        started = time.perf_counter()
        missing = db.execute(missing_parent_sql('"analytics_event"', '"member_id"', '"members_user"', '"id"')).fetchall()
        per_column = time.perf_counter() - started
        events = db.execute("SELECT COUNT(*) FROM analytics_event").fetchone()[0]
        print(f"foreign key check of {events:,} events: PRAGMA foreign_key_check {pragma:.2f} s ({len(orphans)} "
              f"orphans), per column from the index {per_column:.2f} s ({len(missing)} missing)")

    if options.postgres:
        copy_instants(options.postgres)

    if options.read_ahead:
        read_ahead_wire(Path(options.read_ahead))

    if options.sqlite_sort:
        sqlite_index_sort(options.sqlite_sort)


def sqlite_index_sort(path: str) -> None:
    from config.bulk_load import SQLITE_SORT_CACHE_KB, sqlite_sort_threads

    db = sqlite3.connect(path, isolation_level=None)
    indexes = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'analytics_event' "
                         "AND sql IS NOT NULL ORDER BY name").fetchall()
    settings = {"the import's cache (256 MB), no sorter threads": (262144, 0),
                f"{SQLITE_SORT_CACHE_KB // 1024} MB cache, {sqlite_sort_threads()} sorter threads": (SQLITE_SORT_CACHE_KB,
                                                                                         sqlite_sort_threads())}
    best = dict.fromkeys(settings, float("inf"))
    for _ in range(2):
        for label, (cache_kb, threads) in settings.items():
            db.execute(f"PRAGMA cache_size = -{cache_kb}")
            db.execute(f"PRAGMA threads = {threads}")
            db.execute("BEGIN")
            try:
                seconds = 0.0
                for name, sql in indexes:
                    db.execute(f'DROP INDEX "{name}"')
                    started = time.perf_counter()
                    db.execute(sql)
                    seconds += time.perf_counter() - started
            finally:
                db.execute("ROLLBACK")
            best[label] = min(best[label], seconds)
    print(f"SQLite CREATE INDEX of {', '.join(name for name, _ in indexes)}: "
          + "; ".join(f"{label} {seconds:.1f} s" for label, seconds in best.items()))


def read_ahead_wire(path: Path, rows: int = 200_000) -> None:
    import gc
    import os
    import pickle

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from analytics.ingest import platform
    from analytics.ingest.events import instant_text_adapter

    state = platform._State(db_products={}, db_emails={}, zone=timezone.get_current_timezone(),
                            instant_text=instant_text_adapter(connection))
    gc.freeze()
    gc.set_threshold(50_000, *gc.get_threshold()[1:])  # as the import sets it (platform._fewer_collections)
    started = time.perf_counter()
    chunks, count = [], 0
    for chunk, _ in platform._read_chunks("events", path, state, None):
        chunks.append(chunk)
        count += len(chunk)
        if count >= rows:
            break
    validate = (time.perf_counter() - started) / count * 1e6

    def timed(work: Any) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            work()
            best = min(best, time.perf_counter() - started)
        return best / count * 1e6

    dump = lambda chunk: pickle.dumps((chunk, None), protocol=pickle.HIGHEST_PROTOCOL)  # noqa: E731
    wire = lambda chunk: pickle.dumps(platform._encode_chunk((chunk, None)),  # noqa: E731
                                      protocol=pickle.HIGHEST_PROTOCOL)
    def each(messages: list[bytes], receive: Any) -> None:
        for message in messages:  # one chunk received at a time and dropped, as the importing process does
            receive(message)

    as_is = [dump(chunk) for chunk in chunks]
    encoded = [wire(chunk) for chunk in chunks]
    print(f"read ahead, {count:,} events: validation {validate:.2f} µs/row; handing a chunk over, in the reading "
          f"process: objects pickled {timed(lambda: [dump(chunk) for chunk in chunks]):.2f} µs/row, wire form "
          f"{timed(lambda: [wire(chunk) for chunk in chunks]):.2f} µs/row; in the writing process: objects "
          f"unpickled {timed(lambda: each(as_is, pickle.loads)):.2f} µs/row, wire form "
          f"{timed(lambda: each(encoded, lambda data: platform._decode_chunk(path.name, platform.ImportedEvent, pickle.loads(data)))):.2f}"
          f" µs/row ({sum(map(len, as_is)) / count:.0f} against {sum(map(len, encoded)) / count:.0f} bytes/row)")


def copy_instants(url: str) -> None:
    import psycopg

    start = datetime(2025, 1, 1, tzinfo=UTC)
    received = datetime(2026, 12, 7, 6, 16, 2, tzinfo=UTC)
    dated = [(1 + i % 100_000, "lesson_completed", "course", f"p{i % 200:04d}", start + timedelta(seconds=37 * i),
              received, "{}", "import", f"import:e{i:09d}", None) for i in range(200_000)]
    # What the importer now writes: the CSV's text as instant_text_adapter returns it ('YYYY-MM-DD HH:MM:SS+00').
    # and received_at, the same for every row of an import, formatted once (events_bulk_ingest).
    received_text = received.isoformat()
    texts = [(*row[:4], row[4].isoformat(" ")[:19] + "+00", received_text, *row[6:]) for row in dated]
    best: dict[str, tuple[float, float]] = {}
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE event_copy (member_id bigint, kind varchar(40), object_type varchar(40),"
                       " object_id varchar(64), occurred_at timestamptz, received_at timestamptz, properties jsonb,"
                       " source varchar(20), idempotency_key varchar(120), quantity double precision)")
        for _ in range(3):
            for label, rows in (("datetimes", dated), ("texts", texts)):
                cursor.execute("TRUNCATE event_copy")
                wall, cpu = time.perf_counter(), time.process_time()
                with cursor.copy("COPY event_copy FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                best[label] = min(best.get(label, (wall, cpu)), (wall, cpu), key=lambda pair: pair[1])
        cursor.execute("SELECT count(*) FROM event_copy WHERE occurred_at >= %s", [start])
        assert cursor.fetchone()[0] == len(texts)
        connection.rollback()
    print("COPY of 200,000 event rows, their instants as " + ", as ".join(
        f"{label}: {cpu:.2f} s client CPU, {wall:.2f} s wall" for label, (wall, cpu) in best.items()))


if __name__ == "__main__":
    main()
