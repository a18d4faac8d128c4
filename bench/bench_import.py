"""Benchmark `import_platform_data` on a synthetic platform history, on SQLite and (when it answers) PostgreSQL.

    .venv/bin/python bench/bench_import.py --scale 0.1            # 10,000 members / 100,000 orders / 500,000 events
    .venv/bin/python bench/bench_import.py --scale 1 --keep /tmp/import-100k   # the full 100k/1M/5M, kept for reuse
    .venv/bin/python bench/bench_import.py --members 5000 --orders 50000 --events 250000 --root /tmp/main-copy  # another checkout
    .venv/bin/python bench/bench_import.py --scale 0.2 --no-reimport --bulk-load never   # indexes maintained row by row
    .venv/bin/python bench/bench_import.py --scale 1 --no-reimport --no-read-ahead   # every file read in the importing process

Full scale is 100,000 members, 200 products, 1,000,000 orders and 5,000,000 events. The CSVs are written by streaming
generators (never a list of rows), then ONE `manage.py import_platform_data` process imports all four files into a
fresh database (as an operator runs it), timed against pandas' `read_csv` of the same four files in the same run:
wall and CPU seconds, their ratio to pandas', rows/s and the child's peak RSS (getrusage in the child), with the
per-file seconds and rows/s the command itself reports. Django's start-up alone is measured too. A second run of
the same four files measures the idempotent re-import.

SQLite goes to a fresh VAR_DIR in the work directory; PostgreSQL to a fresh database bench_import_<pid> on
127.0.0.1:5432, dropped afterwards. With --keep DIR the CSVs and the SQLite database stay in DIR, e.g. for the
nightly pipeline benchmark: VAR_DIR=DIR/var .venv/bin/python manage.py ... uses DIR/var/db.sqlite3. With
--keep-postgres the PostgreSQL database is left in place too (its DATABASE_URL is printed; drop it when done).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
FULL = {"members": 100_000, "products": 200, "orders": 1_000_000, "events": 5_000_000}
START = datetime(2023, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 3 * 365 * 86400
EVENT_KINDS = ["login", "lesson_viewed", "lesson_completed", "course_viewed", "post_created", "comment_created",
               "email_opened", "email_clicked", "reaction_added", "search"]


@dataclass(frozen=True)
class Counts:
    members: int
    products: int
    orders: int
    events: int

    @classmethod
    def at(cls, scale: float) -> Counts:
        return cls(**{name: max(1, int(count * scale)) if name != "products" else max(10, int(count * min(scale * 2, 1)))
                      for name, count in FULL.items()})


# --------------------------------------------------------------------------------------------------------------
# Synthetic CSVs (streamed)


def _when(rng: random.Random) -> str:
    return (START + timedelta(seconds=rng.randrange(SPAN_SECONDS))).isoformat()


def _write(path: Path, header: list[str], rows: Iterator[list[object]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def generate(directory: Path, counts: Counts, seed: int) -> dict[str, Path]:
    rng = random.Random(seed)
    tiers = max(2, counts.products // 60)
    product_ids = [f"p{i:04d}" for i in range(counts.products)]
    tier_ids = set(product_ids[:tiers])
    course_ids = product_ids[tiers:]
    topics = ["python", "data", "design", "marketing", "writing", "finance", "ai", "photography"]

    def members() -> Iterator[list[object]]:
        for i in range(counts.members):
            has_email = rng.random() < 0.9
            yield [f"m{i:07d}", f"user{i}@example.com" if has_email else "", f"Member {i}",
                   (START + timedelta(days=rng.randrange(365 * 2))).date().isoformat(),
                   rng.choice(["CN", "CN", "CN", "US", "SG", ""]), rng.choice(["zh-hans", "zh-hans", "en"])]

    def products() -> Iterator[list[object]]:
        for product_id in product_ids:
            if product_id in tier_ids:
                yield [product_id, "tier", f"Tier {product_id}", f"{rng.choice([29, 49, 99])}.00", "CNY", "", "", ""]
            else:
                tags = ";".join(rng.sample(topics, 2))
                yield [product_id, "course", f"Course {product_id} 课程", f"{rng.randrange(49, 599)}.00", "CNY", tags,
                       "A synthetic course for benchmarking.", _when(rng)[:10]]

    def orders() -> Iterator[list[object]]:
        for i in range(counts.orders):
            # A few members outside the members file: the importer must create them from their orders.
            member = rng.randrange(int(counts.members * 1.02))
            roll = rng.random()
            if roll < 0.02:
                product, period, amount = "", "", f"{rng.randrange(10, 300)}.00"
            elif roll < 0.25:
                product, period, amount = rng.choice(sorted(tier_ids)), rng.choice(["month", "month", "year"]), "49.00"
            else:
                product, period, amount = rng.choice(course_ids), "", f"{rng.randrange(49, 599)}.00"
            status = rng.choices(["paid", "refunded", "failed"], [90, 4, 6])[0]
            yield [f"o{i:08d}", f"m{member:07d}", product, amount, "CNY", _when(rng), status, 1, "", period]

    def events() -> Iterator[list[object]]:
        for i in range(counts.events):
            kind = rng.choice(EVENT_KINDS)
            props = json.dumps({"duration": rng.randrange(600)}) if kind == "lesson_viewed" else ""
            yield [f"e{i:09d}", f"m{rng.randrange(counts.members):07d}", kind, "course", rng.choice(course_ids),
                   _when(rng), props]

    files = {
        "products": directory / "products.csv",
        "members": directory / "members.csv",
        "orders": directory / "orders.csv",
        "events": directory / "events.csv",
    }
    headers = {
        "products": ["product_id", "kind", "title", "price", "currency", "tags", "description", "published_at"],
        "members": ["member_id", "email", "name", "joined_at", "country", "language"],
        "orders": ["order_id", "member_id", "product_id", "amount", "currency", "ordered_at", "status", "quantity",
                   "coupon_code", "billing_period"],
        "events": ["event_id", "member_id", "kind", "object_type", "object_id", "occurred_at", "properties"],
    }
    generators = {"products": products, "members": members, "orders": orders, "events": events}
    for kind, path in files.items():
        started = time.perf_counter()
        rows = _write(path, headers[kind], generators[kind]())
        print(f"generated {path.name}: {rows:,} rows, {path.stat().st_size / 1e6:,.1f} MB "
              f"in {time.perf_counter() - started:.1f}s", flush=True)
    return files


# --------------------------------------------------------------------------------------------------------------
# Running the command


@dataclass(frozen=True)
class Measure:
    label: str
    rows: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float

    def line(self) -> str:
        rate = self.rows / self.seconds if self.seconds else 0.0
        return (f"  {self.label:<20} {self.rows:>10,} rows {self.seconds:>8.1f} s wall {rate:>9,.0f} rows/s "
                f"{self.cpu_seconds:>8.1f} s CPU {self.peak_rss_mb:>7,.0f} MB peak RSS")


# The CPU is the command's own plus its reaped children's: the processes reading files ahead (IMPORT_READ_AHEAD).
_WRAPPER = (
    "import atexit, resource, sys, runpy;"
    "cpu = lambda who: resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime;"
    "atexit.register(lambda: sys.stderr.write("
    "'BENCH_MAXRSS_KB=%d BENCH_CPU_S=%.2f\\n' % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
    " cpu(resource.RUSAGE_SELF) + cpu(resource.RUSAGE_CHILDREN))));"
    "sys.argv = ['manage.py'] + sys.argv[1:];"
    "runpy.run_path('manage.py', run_name='__main__')"
)


def _manage(args: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    started = time.perf_counter()
    process = subprocess.run([PYTHON, "-c", _WRAPPER, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=False)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed ({process.returncode}):\n{process.stdout}\n"
                         f"{process.stderr[-4000:]}")
    peak_kb, cpu = 0, 0.0
    for line in process.stderr.splitlines():
        if line.startswith("BENCH_MAXRSS_KB="):
            rss_part, cpu_part = line.split()
            peak_kb, cpu = int(rss_part.split("=", 1)[1]), float(cpu_part.split("=", 1)[1])
    return seconds, cpu, peak_kb / 1024, process.stdout


FLOOR_RUNS = 3


def pandas_parse(files: dict[str, Path]) -> dict[str, list[float]]:
    """The floor: pandas' C parser reading each file (default type inference), in a child process like the import,
    measured in the same run; the fastest of FLOOR_RUNS reads of each file. One read of the 100k files varied from
    6.9 to 10.2 s on a quiet machine (the first read right after the files were written was the slow one): the
    minimum is the stable figure, and the strictest one for the ratio."""
    script = (
        "import json, sys, time; import pandas as pd; out = {}\n"
        f"for _ in range({FLOOR_RUNS}):\n"
        "    for kind, path in json.loads(sys.argv[1]).items():\n"
        "        started, cpu = time.perf_counter(), time.process_time(); frame = pd.read_csv(path)\n"
        "        wall, cpu = time.perf_counter() - started, time.process_time() - cpu\n"
        "        best = out.get(kind, [wall, cpu])\n"
        "        out[kind] = [min(wall, best[0]), min(cpu, best[1])]\n"
        "        del frame\n"
        "print(json.dumps(out))"
    )
    process = subprocess.run([PYTHON, "-c", script, json.dumps({k: str(v) for k, v in files.items()})],
                             capture_output=True, text=True, check=True)
    return json.loads(process.stdout)


_FILE_LINE = re.compile(r"^(products|members|orders|events)\s+\S.*?: (\d+) rows, .*\(([\d.]+) s, ([\d,]+) rows/s\)$")


def _per_file(stdout: str) -> dict[str, tuple[int, float]]:
    """The command's own per-file report lines: '<kind> <file>: N rows, ... (S s, R rows/s)'."""
    found = {}
    for line in stdout.splitlines():
        match = _FILE_LINE.match(line.strip())
        if match:
            found[match.group(1)] = (int(match.group(2)), float(match.group(3)))
    return found


def bench_backend(label: str, env: dict[str, str], files: dict[str, Path], counts: Counts, reimport: bool,
                  bulk_load: str | None = None) -> list[Measure]:
    """ONE `import_platform_data` process with all four files (as an operator runs it), against pandas' parse of the
    same four files in the same run."""
    floor = pandas_parse(files)
    floor_cpu = sum(cpu for _, cpu in floor.values())
    floor_wall = sum(wall for wall, _ in floor.values())
    print(f"\n[{label}] pandas.read_csv of the same files (floor, this run, fastest of {FLOOR_RUNS}): "
          + ", ".join(f"{kind} {wall:.2f} s" for kind, (wall, _) in floor.items())
          + f"; total {floor_wall:.2f} s wall, {floor_cpu:.2f} s CPU", flush=True)
    print(f"[{label}] migrating a fresh database", flush=True)
    _manage(["migrate", "--noinput", "-v0"], env)
    startup_wall, startup_cpu, startup_rss, _ = _manage(["import_platform_data", "--help"], env)
    print(f"  Django start-up alone (import_platform_data --help): {startup_wall:.1f} s wall, {startup_cpu:.1f} s CPU, "
          f"{startup_rss:,.0f} MB", flush=True)
    args = ["import_platform_data", "--no-progress"] + (["--bulk-load", bulk_load] if bulk_load else [])
    for kind in ("products", "members", "orders", "events"):
        args += [f"--{kind}", str(files[kind])]
    rows = sum(getattr(counts, kind) for kind in ("products", "members", "orders", "events"))
    measures = []
    runs = [("import (4 files)", True)] + ([("re-import (no change)", False)] if reimport else [])
    for run_label, first in runs:
        seconds, cpu, peak, stdout = _manage(args, env)
        measures.append(Measure(run_label, rows, seconds, cpu, peak))
        print(measures[-1].line(), flush=True)
        for line in stdout.splitlines():
            if line.startswith(("secondary indexes rebuilt", "foreign keys added again", "foreign keys of the written")):
                print(f"    {line}", flush=True)
        for kind, (file_rows, file_seconds) in _per_file(stdout).items():
            wall, _ = floor[kind]
            print(f"    {kind:<9} {file_rows:>10,} rows {file_seconds:>7.1f} s "
                  f"{file_rows / file_seconds if file_seconds else 0:>9,.0f} rows/s {file_seconds / wall:>7.1f}x pandas wall",
                  flush=True)
        if first:
            print(f"  RATIO import / pandas parse ({label}): wall {seconds:.1f} s / {floor_wall:.2f} s = "
                  f"{seconds / floor_wall:.1f}x; CPU {cpu:.1f} s / {floor_cpu:.2f} s = {cpu / floor_cpu:.1f}x "
                  f"(target 20x); without start-up {(cpu - startup_cpu) / floor_cpu:.1f}x CPU; "
                  f"{rows / seconds:,.0f} rows/s overall; peak RSS {peak:,.0f} MB", flush=True)
    load = os.getloadavg()
    print(f"  load average now {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min)", flush=True)
    return measures


def postgres_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def _postgres_admin(statement: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as connection:
        connection.execute(statement)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.1, help="1 = 100k members / 1M orders / 5M events")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--members", type=int, help="override the scale: members (orders = 10x, events = 50x unless given)")
    parser.add_argument("--orders", type=int)
    parser.add_argument("--events", type=int)
    parser.add_argument("--keep", type=Path, help="keep the CSVs and the SQLite database in this directory")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-reimport", action="store_true", help="skip the idempotent re-import of the four files")
    parser.add_argument("--no-read-ahead", action="store_true",
                        help="IMPORT_READ_AHEAD=0: read every file in the importing process, not ahead in a forked one")
    parser.add_argument("--keep-postgres", action="store_true",
                        help="do not drop the PostgreSQL database afterwards (its DATABASE_URL is printed)")
    parser.add_argument("--root", type=Path,
                        help="run the import of another checkout (e.g. main's code, for a before/after in one go)")
    parser.add_argument("--postgres-name", help="name of the PostgreSQL database to create (default bench_import_<pid>)")
    parser.add_argument("--bulk-load", choices=("auto", "always", "never"),
                        help="pass --bulk-load to the import (default: the command's own default, auto); "
                             "`never` measures the import with its indexes maintained row by row")
    options = parser.parse_args()

    if options.root:
        global ROOT
        ROOT = options.root.resolve()
    counts = Counts.at(options.scale)
    if options.members:
        counts = Counts(options.members, counts.products, options.orders or options.members * 10,
                        options.events or options.members * 50)
    work = options.keep or Path(tempfile.mkdtemp(prefix="bench_import_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"scale {options.scale}: {counts.members:,} members, {counts.products:,} products, {counts.orders:,} orders, "
          f"{counts.events:,} events -> {work}", flush=True)
    try:
        files = generate(work, counts, options.seed)
        base_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "VAR_DIR", "DJANGO_SETTINGS_MODULE")}
        # Production-like: with DEBUG on, Django also formats and keeps the SQL of every query.
        # The import alone: the learning an import sends (ANALYTICS_LEARN_AFTER_IMPORT) is bench_pipeline.py's to send
        # and measure, at the history's cutoff; sent here it would wait in this copy's broker folder for no worker.
        base_env.update({"DJANGO_DEBUG": "0", "SECRET_KEY": "bench-only-not-a-secret",
                         "ANALYTICS_LEARN_AFTER_IMPORT": "0"})
        if options.no_read_ahead:
            base_env["IMPORT_READ_AHEAD"] = "0"
        if not options.no_sqlite:
            var_dir = work / "var"
            if var_dir.exists():
                shutil.rmtree(var_dir)
            env = {**base_env, "VAR_DIR": str(var_dir)}
            bench_backend("sqlite", env, files, counts, reimport=not options.no_reimport,
                          bulk_load=options.bulk_load)
            print(f"  SQLite database: {var_dir / 'db.sqlite3'}"
                  + ("" if options.keep else " (deleted at exit; use --keep DIR to reuse it)"), flush=True)
        if not options.no_postgres and postgres_answers():
            name = options.postgres_name or f"bench_import_{os.getpid()}"
            _postgres_admin(f"CREATE DATABASE {name}")
            try:
                env = {**base_env, "VAR_DIR": str(work / "var-pg"),
                       "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}"}
                bench_backend(f"postgresql ({name})", env, files, counts, reimport=not options.no_reimport,
                              bulk_load=options.bulk_load)
            finally:
                if options.keep_postgres:
                    print(f"  PostgreSQL database kept: DATABASE_URL=postgres://postgres@127.0.0.1:5432/{name}")
                else:
                    _postgres_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        elif not options.no_postgres:
            print("\n[postgresql] nothing answers on 127.0.0.1:5432; skipped")
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        mine = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\npeak RSS: generator (this process) {mine:,.0f} MB, largest child {children:,.0f} MB")
    finally:
        if options.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
