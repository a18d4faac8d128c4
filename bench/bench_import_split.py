"""Where an import's time goes: the database calls against the Python around them, in one process.

    .venv/bin/python bench/bench_import.py --members 5000 --orders 50000 --events 250000 --keep /tmp/imp5k --no-postgres
    .venv/bin/python bench/bench_import_split.py /tmp/imp5k                      # SQLite, a fresh database
    .venv/bin/python bench/bench_import_split.py /tmp/imp5k --database-url postgres://postgres@127.0.0.1:5432/NAME
    .venv/bin/python bench/bench_import_split.py /tmp/imp5k --bulk-load never   # indexes maintained row by row

Migrates a fresh database (SQLite in a temporary VAR_DIR, or the given PostgreSQL database, which must exist and be
empty), then runs `import_platform_data` on the four CSVs of DIR in this process with a Django execute_wrapper
around every SQL call, and prints: the process's CPU before the import (Django start-up), the import's CPU and wall
time, and how much of it was spent inside SQL calls (CPU: on SQLite that is the database engine itself, in-process;
wall: on PostgreSQL mostly the server; psycopg's COPY data is not an SQL call there and counts with the Python), next to pandas' parse of the same files in the same run,
then the SQL statements (by their first words) that took the most wall time, and the bulk load's index rebuild.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path, help="holds products.csv, members.csv, orders.csv, events.csv")
    parser.add_argument("--database-url", help="PostgreSQL database to import into (default: a fresh SQLite)")
    parser.add_argument("--bulk-load", choices=("auto", "always", "never"), default="auto",
                        help="the import's --bulk-load (default auto)")
    parser.add_argument("--top", type=int, default=12, help="how many statement kinds to list by wall time")
    options = parser.parse_args()
    files = {kind: options.directory / f"{kind}.csv" for kind in ("products", "members", "orders", "events")}

    script = (
        "import json, sys, time; import pandas as pd; cpu = time.process_time()\n"
        "for path in sys.argv[1:]: pd.read_csv(path)\n"
        "print(time.process_time() - cpu)"
    )
    pandas_cpu = float(subprocess.run([sys.executable, "-c", script, *map(str, files.values())], capture_output=True,
                                      text=True, check=True).stdout)

    os.environ.pop("DATABASE_URL", None)
    if options.database_url:
        os.environ["DATABASE_URL"] = options.database_url
    os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix="bench_import_split_")
    os.environ.update({"DJANGO_DEBUG": "0", "SECRET_KEY": "bench-only-not-a-secret"})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    startup_cpu = time.process_time()
    from analytics.ingest.platform import import_platform_data

    spent = {"cpu": 0.0, "wall": 0.0, "calls": 0}
    by_statement: dict[str, list[float]] = {}  # the statement's first words -> [wall, cpu, calls]

    def measured(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            spent["cpu"] += cpu
            spent["wall"] += wall
            spent["calls"] += 1
            key = " ".join(str(sql).split()[:6])[:90]
            entry = by_statement.setdefault(key, [0.0, 0.0, 0])
            entry[0] += wall
            entry[1] += cpu
            entry[2] += 1

    cpu, wall = time.process_time(), time.perf_counter()
    with connection.execute_wrapper(measured):
        report = import_platform_data(**files, bulk_load=options.bulk_load)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert report.ok and report.written, report.first_errors
    rows = sum(file_report.rows for file_report in report.files.values())
    load = os.getloadavg()
    print(f"{connection.vendor}: {rows:,} rows; pandas.read_csv of the same files {pandas_cpu:.2f} s CPU (this run)")
    print(f"  Django start-up + migrate check before the import: {startup_cpu:.1f} s CPU")
    print(f"  import: {cpu:.2f} s CPU ({cpu / pandas_cpu:.1f}x pandas), {wall:.2f} s wall, {rows / wall:,.0f} rows/s")
    print(f"  inside {spent['calls']:,} SQL calls: {spent['cpu']:.2f} s CPU ({spent['cpu'] / pandas_cpu:.1f}x pandas), "
          f"{spent['wall']:.2f} s wall")
    print(f"  Python around them (reading, validating, building rows; COPY data on PostgreSQL): {cpu - spent['cpu']:.2f} s CPU "
          f"({(cpu - spent['cpu']) / pandas_cpu:.1f}x pandas)")
    if report.index_rebuild_seconds:
        print(f"  bulk load: secondary indexes rebuilt in {report.index_rebuild_seconds:.2f} s (of which PostgreSQL's "
              f"queued foreign key checks {report.foreign_key_check_seconds:.2f} s)")
    print(f"  SQL by statement (first words), top {options.top} by wall time: wall s, CPU s, calls")
    for key, (s_wall, s_cpu, calls) in sorted(by_statement.items(), key=lambda item: -item[1][0])[:options.top]:
        print(f"    {s_wall:8.2f} {s_cpu:8.2f} {calls:7,}  {key}")
    print(f"  load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    connection.close()
    shutil.rmtree(os.environ["VAR_DIR"], ignore_errors=True)


if __name__ == "__main__":
    main()
