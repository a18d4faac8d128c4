"""Many rows per INSERT statement against executemany, on SQLite: the event rows an import writes, into the
analytics_event table migrations make (its unique idempotency key and its AUTOINCREMENT key; the secondary indexes
dropped, as the importer's bulk load drops them), with `INSERT ... ON CONFLICT (idempotency_key) DO NOTHING` as
analytics.ingest.events writes them. executemany as that module did before session 18, through Django's cursor;
then config.bulk_load.sqlite_insert. In 5,000-row batches inside one transaction (rolled back after each variant),
each variant twice, alternating; wall and CPU seconds and the ratio.

    .venv/bin/python bench/bench_sqlite_insert.py [--rows 1000000]

A fresh SQLite database in a temporary VAR_DIR is migrated first (not timed).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rows(n: int) -> list[tuple]:
    kinds = ["lesson_started", "lesson_completed", "comment_created", "email_opened", "course_viewed"]
    return [
        (1 + i % 100_000, kinds[i % 5], "course", f"p{i % 200:04d}",
         f"2025-{1 + i % 12:02d}-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:{i % 59:02d}", "2026-12-07 06:16:02.909220",
         "{}", "import", f"import:e{i:09d}", None)
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    options = parser.parse_args()

    os.environ.update({"VAR_DIR": tempfile.mkdtemp(prefix="bench_sqlite_insert_"), "DJANGO_DEBUG": "0",
                       "SECRET_KEY": "bench-only-not-a-secret"})
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from analytics.ingest.events import _COLUMNS
    from analytics.models import Event
    from config.bulk_load import SQLITE_ROWS_PER_INSERT, SecondaryIndexes, sqlite_insert

    call_command("migrate", verbosity=0)
    data = rows(options.rows)
    table = connection.ops.quote_name(Event._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(column) for column in _COLUMNS)
    conflict = ' ON CONFLICT ("idempotency_key") DO NOTHING'

    def executemany(batch: list[tuple]) -> int:
        with connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(_COLUMNS))})"
                               + conflict, batch)
            return cursor.rowcount

    def many_per_statement(batch: list[tuple]) -> int:
        return sqlite_insert(f"INSERT INTO {table} ({columns})", len(_COLUMNS), batch, conflict)

    class Rollback(Exception):
        pass

    def timed(write) -> tuple[float, float, int]:
        written = 0
        try:
            with transaction.atomic():
                SecondaryIndexes().drop(Event)
                wall, cpu = time.perf_counter(), time.process_time()
                for start in range(0, len(data), 5000):
                    written += write(data[start:start + 5000])
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                raise Rollback
        except Rollback:
            pass
        return wall, cpu, written

    print(f"{len(data):,} event rows into {Event._meta.db_table}, {SQLITE_ROWS_PER_INSERT} rows per statement")
    results: dict[str, list[tuple[float, float]]] = {"executemany": [], "sqlite_insert": []}
    for _ in range(2):
        for name, write in (("executemany", executemany), ("sqlite_insert", many_per_statement)):
            wall, cpu, written = timed(write)
            assert written == len(data), (name, written)
            results[name].append((wall, cpu))
            print(f"  {name:14s} {wall:6.2f} s wall  {cpu:6.2f} s CPU  ({len(data) / wall:,.0f} rows/s)", flush=True)
    before, after = (min(wall for wall, _ in results[name]) for name in ("executemany", "sqlite_insert"))
    print(f"RATIO executemany / sqlite_insert (fastest of 2 each): {before:.2f} s / {after:.2f} s = {before / after:.2f}x")


if __name__ == "__main__":
    main()
