"""Benchmark the whole nightly pipeline on an imported platform history, on SQLite and on PostgreSQL.

    .venv/bin/python bench/bench_pipeline.py                       # 100k members / 1M orders / 5M events, both databases
    .venv/bin/python bench/bench_pipeline.py --scale 0.05 --data /tmp/pipe-5k   # a quick run on 5,000 members
    .venv/bin/python bench/bench_pipeline.py --no-postgres --runs 2

The history comes from bench/bench_import.py (the same synthetic platform, imported with `import_platform_data`).
It is built once into --data DIR (SQLite database DIR/var/db.sqlite3, PostgreSQL database --postgres-db) and reused
by later runs; --rebuild builds it again. Each run starts from a fresh copy of that database (a file copy for SQLite,
CREATE DATABASE … TEMPLATE for PostgreSQL), migrated to the current schema (untimed: the kept history may predate
a migration), so every run does the same work: no serving model exists, so the run
trains one, as a night does that finds nothing learned (the learning a first import sends, below, not run).

The pipeline runs as `manage.py run_nightly_pipeline --as-of DAY --jobs N` in a child process: the command's own
process runs the serial part and N − 1 processes it forks take the dispatched parts, as a worker's would
(analytics/scoring/processes.py; --jobs 1: every chunk one after another in one process). Wall time comes from the
clock; CPU time and peak RSS from os.wait4 (getrusage of the child, with the processes it forked and waited for:
the CPU of all, the peak of the largest). --as-of defaults to the day after the latest order in the history. The
per-stage breakdown is read back from the JobRun rows that the run wrote. The report-cache warm-up, which Celery
runs as its own task after the pipeline (analytics.scoring.tasks.warm_report_cache), is measured separately unless
--no-warmup.

With --worker, each database is also measured as production runs it (Procfile): on a fresh copy, a Celery worker
started beforehand (`celery worker -Q ml -c 2`, the Procfile's two processes; the embedded filesystem broker on
SQLite, Redis database --redis-db on PostgreSQL) is sent a week's work in beat's order: first the learning an import
sends when no model serves yet (analytics.scoring.tasks.send_learning: beat's two weekly tasks, at the first night's
as_of), then `run_nightly_pipeline` for the first night and for the next night, then, a week later (ANALYTICS_RELEARN_DAYS),
beat's two weekly tasks together (`train_repurchase_model_task`: the model and the week's engagement weights;
`select_recommendation_blend_task`: the blend) and that night, which still chooses the number of segments. A night
runs from the worker receiving the task (its log) to the end of its last chunk (the JobRun rows); the weekly tasks
from the first one received to the last one finished. The nightly task sends the recommendation side to the other
process at its start, so it chooses the blend and writes recommendations while the first builds the feature matrix,
and the score chunks once the model exists, while it computes engagement and segments. The worker imports the
scoring code before it forks its pool (config/celery.py), so the first task of each pool process does not import it
(before session 15 it did, and the first step paid for it). Peak memory is the largest pool process's (VmHWM). The report warm-up each night enqueues runs in the worker
before the next measurement. --night-trains sends no learning first: the first night finds no model and trains one
(as when the import's learning was not sent).

Target (issue 19): the whole nightly pipeline within 10x its SQL GROUP BY scan floor (measured in the same run on
the same database copy), peak memory under 2 GB; stages printed as they finish.

After each night and learning, where the machine's cores went (bench/cpu_accounting.py): every core's busy time
and PostgreSQL's part of it, and the least wall time that CPU takes on these cores, as a multiple of the floor.
When that is near the ratio, the night is as fast as this machine runs the same work, however it is scheduled; on
PostgreSQL the database's own CPU shares the cores. In the worker the window runs from the tasks sent to the end
seen, a little longer than the figure.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_import import postgres_answers  # bench/ is on sys.path when this file runs as a script
from cpu_accounting import CpuSnapshot, CpuUse

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_RATIO = 10  # issue 19: the pipeline within 10x its SQL GROUP BY scan floor
TARGET_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class Usage:
    wall: float
    user: float
    system: float
    peak_rss_bytes: int

    cpu: bool = True  # False: a night in a worker, whose CPU is not its own process's

    def line(self) -> str:
        cpu = f"CPU {self.user:.0f} s user + {self.system:.0f} s system" if self.cpu else "in a Celery worker"
        return (f"{self.wall:8.1f} s wall ({_minutes(self.wall)}), {cpu}, peak RSS "
                f"{self.peak_rss_bytes / 1024**3:.2f} GB")


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def run_child(args: list[str], env: dict[str, str], log: Path, watch: Any = None) -> Usage:
    """Run one manage.py command; its own rusage comes from os.wait4, never from this process. `watch(stop)`, if
    given, runs in a thread while the child runs (it prints the stages as they finish) and must return once
    `stop` is set."""
    started = time.perf_counter()
    stop = threading.Event()
    with log.open("w") as out:
        process = subprocess.Popen([PYTHON, "manage.py", *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        watcher = threading.Thread(target=watch, args=(stop,), daemon=True) if watch else None
        if watcher:
            watcher.start()
        _, status, rusage = os.wait4(process.pid, 0)
        stop.set()
        if watcher:
            watcher.join()
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed ({process.returncode}); last lines of {log}:\n"
                         + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))
    # On Linux ru_maxrss is in kilobytes.
    return Usage(wall, rusage.ru_utime, rusage.ru_stime, rusage.ru_maxrss * 1024)


# --------------------------------------------------------------------------------------------------------------
# The two databases


class Backend:
    label: str

    def env(self, base: dict[str, str]) -> dict[str, str]:
        raise NotImplementedError

    def fresh_copy(self) -> None:
        raise NotImplementedError

    def drop_copy(self) -> None:
        raise NotImplementedError

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError


class SQLiteBackend(Backend):
    label = "SQLite"

    def __init__(self, source: Path, work: Path) -> None:
        self.source, self.work = source, work

    def env(self, base: dict[str, str]) -> dict[str, str]:
        return {**base, "VAR_DIR": str(self.work)}

    def fresh_copy(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        # The import leaves a checkpointed database; copy the main file (and a WAL if one was left).
        for suffix in ("", "-wal"):
            if (self.source.parent / (self.source.name + suffix)).exists():
                shutil.copy2(self.source.parent / (self.source.name + suffix), self.work / ("db.sqlite3" + suffix))

    def drop_copy(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        # Read-only, so polling while the pipeline writes never takes a write lock; %s placeholders as in psycopg.
        with sqlite3.connect(f"file:{self.work / 'db.sqlite3'}?mode=ro", uri=True, timeout=30) as connection:
            return connection.execute(sql.replace("%s", "?"), params).fetchall()

    def bound(self, value: datetime) -> Any:
        # Django stores SQLite datetimes as UTC text "YYYY-MM-DD HH:MM:SS[.ffffff]".
        return value.strftime("%Y-%m-%d %H:%M:%S")


class PostgresBackend(Backend):
    label = "PostgreSQL"

    def __init__(self, source_db: str, work: Path) -> None:
        self.source_db, self.copy_db, self.work = source_db, f"{source_db}_run", work

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:5432/{self.copy_db}"

    def env(self, base: dict[str, str]) -> dict[str, str]:
        return {**base, "VAR_DIR": str(self.work), "DATABASE_URL": self.url}

    def fresh_copy(self) -> None:
        self.drop_copy()
        self.work.mkdir(parents=True)
        _pg_admin(f"CREATE DATABASE {self.copy_db} TEMPLATE {self.source_db}")
        # Fresh planner statistics, as autovacuum would have them on a database that has been up for a while.
        _pg(self.copy_db, "VACUUM ANALYZE")

    def drop_copy(self) -> None:
        _pg_admin(f"DROP DATABASE IF EXISTS {self.copy_db} WITH (FORCE)")
        shutil.rmtree(self.work, ignore_errors=True)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{self.copy_db}") as connection:
            return connection.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def bound(self, value: datetime) -> Any:
        return value.replace(tzinfo=UTC)


def _pg(database: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}", autocommit=True) as connection:
        connection.execute(statement)  # type: ignore[arg-type]


def _pg_admin(statement: str) -> None:
    _pg("postgres", statement)


def pg_database_exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(PG_ADMIN) as connection:
        return connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


# --------------------------------------------------------------------------------------------------------------
# Reading the history and the JobRun rows back


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.fromisoformat(str(value)).replace(tzinfo=None)


def default_as_of(backend: Backend) -> date:
    (latest,), = backend.query("SELECT MAX(created_at) FROM members_order")
    if latest is None:
        raise SystemExit(f"{backend.label}: the history holds no orders; nothing to benchmark")
    return _as_datetime(latest).date() + timedelta(days=1)


def history_size(backend: Backend) -> str:
    counts = {table: backend.query(f"SELECT COUNT(*) FROM {table}")[0][0]
              for table in ("members_user", "members_order", "analytics_event")}
    return (f"{counts['members_user']:,} members, {counts['members_order']:,} orders, "
            f"{counts['analytics_event']:,} events")


def stage_breakdown(backend: Backend, after_id: int = 0) -> list[tuple[str, int, float, int, str]]:
    """(job, runs, seconds, rows, status) per job name, in the order the jobs started (JobRun ids > after_id)."""
    rows = backend.query("SELECT job, status, started_at, finished_at, rows FROM analytics_jobrun WHERE id > %s "
                         "ORDER BY started_at, id", (after_id,))
    grouped: dict[str, list[Any]] = defaultdict(lambda: [0, 0.0, 0, set()])
    for job, status, started, finished, count in rows:
        entry = grouped[job]
        entry[0] += 1
        if finished is not None:
            entry[1] += (_as_datetime(finished) - _as_datetime(started)).total_seconds()
        entry[2] += count or 0
        entry[3].add(status)
    return [(job, runs, seconds, count, "/".join(sorted(statuses)))
            for job, (runs, seconds, count, statuses) in grouped.items()]


def stage_printer(backend: Backend, started: float, after_id: int = 0) -> Any:
    """A watcher for run_child: polls the JobRun table once a second and prints each job (id > after_id) as it
    finishes."""
    def watch(stop: threading.Event) -> None:
        seen: set[int] = set(range(after_id + 1))
        while True:
            finished = stop.wait(1.0)
            with contextlib.suppress(Exception):  # the copy may be mid-migration or locked for a moment
                rows = backend.query("SELECT id, job, started_at, finished_at, rows, status FROM analytics_jobrun "
                                     "WHERE finished_at IS NOT NULL ORDER BY finished_at, id")
                for pk, job, start, end, count, status in rows:
                    if pk in seen:
                        continue
                    seen.add(pk)
                    seconds = (_as_datetime(end) - _as_datetime(start)).total_seconds()
                    print(f"    +{time.perf_counter() - started:7.1f} s  {job:<34} {seconds:8.2f} s {count or 0:>10,} rows"
                          f"  {status}", flush=True)
            if finished:
                return
    return watch


# The floor: the work the pipeline cannot avoid — one pass over the events and the orders before the cutoff,
# grouped by member — as plain SQL on the same database copy, as_of a bound parameter, rows fetched to the client.
FLOOR_QUERIES = {
    "events": "SELECT member_id, COUNT(*), MAX(occurred_at) FROM analytics_event "
              "WHERE occurred_at < %s AND member_id IS NOT NULL GROUP BY member_id",
    "orders": "SELECT member_id, COUNT(*), SUM(amount_paid), MAX(paid_at) FROM members_order "
              "WHERE paid_at < %s GROUP BY member_id",
}


def measure_floor(backend: Backend, as_of: date, repeat: int = 3) -> dict[str, float]:
    """Best of `repeat` wall times of each floor query (the first run also warms the cache, as the pipeline's own
    first read does)."""
    cutoff = backend.bound(datetime.combine(as_of, datetime.min.time()))
    out = {}
    for name, sql in FLOOR_QUERIES.items():
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            backend.query(sql, (cutoff,))
            best = min(best, time.perf_counter() - t0)
        out[name] = best
    return out


# --------------------------------------------------------------------------------------------------------------


def build_history(options: argparse.Namespace, want_postgres: bool) -> None:
    command = [PYTHON, str(ROOT / "bench" / "bench_import.py"), "--scale", str(options.scale), "--keep",
               str(options.data), "--no-reimport", "--seed", str(options.seed)]
    if want_postgres:
        command += ["--keep-postgres", "--postgres-name", options.postgres_db]
    else:
        command += ["--no-postgres"]
    print(f"building the history: {' '.join(command[1:])}", flush=True)
    subprocess.run(command, check=True)


def last_jobrun_id(backend: Backend) -> int:
    return backend.query("SELECT COALESCE(MAX(id), 0) FROM analytics_jobrun")[0][0]


def night(backend: Backend, options: argparse.Namespace, env: dict[str, str], as_of: str, name: str,
          log: Path) -> tuple[Usage, float]:
    """One `run_nightly_pipeline --as-of` on the copy, with the floor measured before and after it."""
    floor = measure_floor(backend, date.fromisoformat(as_of))
    floor_total = sum(floor.values())
    print(f"  {name}, --as-of {as_of}", flush=True)
    print(f"  floor (SQL GROUP BY scans before as_of, best of 3): events {floor['events']:.2f} s + orders "
          f"{floor['orders']:.2f} s = {floor_total:.2f} s", flush=True)
    print("  stages as they finish (JobRun rows):", flush=True)
    first_id = last_jobrun_id(backend)
    cpu_before = CpuSnapshot.now()
    usage = run_child(["run_nightly_pipeline", "--as-of", as_of, "--jobs", str(options.jobs)], env, log,
                      watch=stage_printer(backend, time.perf_counter(), first_id))
    cores = CpuUse.between(cpu_before, CpuSnapshot.now(), usage.wall)
    after = measure_floor(backend, date.fromisoformat(as_of))
    floor_total = min(floor_total, sum(after.values()))  # the floor on the same copy after the run, too
    print(f"  {name}: nightly pipeline {usage.line()}", flush=True)
    print(f"  floor {floor_total:.2f} s (best before/after the run) -> ratio {usage.wall / floor_total:.1f}x "
          f"(target {TARGET_RATIO}x)", flush=True)
    if cores is not None:
        # The least wall time the same CPU could take on these cores (bench/cpu_accounting.py).
        print(f"  the machine during the night: {cores.line()}; {cores.bound_line(floor_total)}", flush=True)
    print(f"  {'stage (JobRun)':<36} {'runs':>5} {'seconds':>9} {'rows':>10}  status")
    for job, runs, seconds, count, status in stage_breakdown(backend, first_id):
        print(f"  {job:<36} {runs:>5} {seconds:>9.1f} {count:>10,}  {status}")
    return usage, floor_total


WEEKLY_TASKS = ["train_repurchase_model_task", "select_recommendation_blend_task"]
NIGHT_JOBS = ("nightly_pipeline", "share_reads", "share_matrix", "evaluate_recommendations", "share_recommender",
              "compute_engagement", "compute_segments", "train_repurchase_model", "score_members", "recommend")


def _pool_peak_rss(worker: subprocess.Popen) -> int:
    """The largest peak RSS (VmHWM) among the worker's pool processes so far, in bytes."""
    peak = 0
    for child in Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split():
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
    return peak


def _wait_for_line(log: Path, text: str, count: int, worker: subprocess.Popen, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while log.read_text(errors="replace").count(text) < count:
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the worker did not log {text!r} ({count}); last lines of {log}:\n"
                             + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))
        time.sleep(0.2)


def _logged(log: Path, task: str, event: str, nth: int) -> datetime:
    """When the worker logged `event` for the nth `task` (its log's local time, as naive UTC like _as_datetime)."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if task in line and event in line]
    stamp = datetime.strptime(lines[nth - 1][1:24], "%Y-%m-%d %H:%M:%S,%f")
    return stamp.astimezone(UTC).replace(tzinfo=None)


def _print_cores(cores: CpuUse | None, floor: float) -> None:
    """For a step in the worker: the machine's cores from the tasks sent to the end seen (a little longer than the
    figure, which starts when the worker receives the first task), and the least wall that CPU takes on them."""
    if cores is not None:
        print(f"    the machine from the tasks sent to the end seen: {cores.line()}; {cores.bound_line(floor)}",
              flush=True)


def worker_nights(backend: Backend, options: argparse.Namespace, base_env: dict[str, str]
                  ) -> list[tuple[str, Usage, float]]:
    """A week's nights and its weekly learning task as production runs them: the tasks on a started Celery worker
    with the Procfile's two pool processes (see the module docstring)."""
    results: list[tuple[str, Usage, float]] = []
    env = backend.env(base_env)
    if isinstance(backend, PostgresBackend):
        import redis

        env["CELERY_BROKER_URL"] = f"redis://127.0.0.1:6379/{options.redis_db}"
        try:
            redis.Redis.from_url(env["CELERY_BROKER_URL"], socket_connect_timeout=2).flushdb()
        except redis.exceptions.ConnectionError:
            print(f"\n[{backend.label}, Celery worker] skipped: nothing answers on 127.0.0.1:6379 (the worker's "
                  "broker on PostgreSQL is Redis)", flush=True)
            return results
    backend.fresh_copy()
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    label = backend.label.lower()
    run_child(["migrate", "--noinput", "-v0"], env, options.data / f"migrate-{label}-worker.log")
    as_of = options.as_of or default_as_of(backend).isoformat()
    log = options.data / f"worker-{label}.log"
    print(f"\n[{backend.label}, Celery worker -Q ml -c 2, broker {env.get('CELERY_BROKER_URL', 'filesystem://')}]",
          flush=True)
    with log.open("w") as out:
        worker = subprocess.Popen([PYTHON, "-m", "celery", "-A", "config", "worker", "-Q", "ml", "-c", "2",
                                   "--prefetch-multiplier", "1", "-n", f"bench-{label}@%h", "--without-gossip",
                                   "--without-mingle", "-l", "INFO"], cwd=ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_line(log, " ready.", 1, worker, timeout=120)
        day0 = date.fromisoformat(as_of)
        week = (day0 + timedelta(days=int(os.environ.get("ANALYTICS_RELEARN_DAYS") or 7))).isoformat()
        # A production week on one copy: the night after the import (nothing learned yet: it trains a model), the
        # next night (everything reused), then a week later beat's two weekly tasks, sent together (Sunday 01:00:
        # `weekly-train-repurchase`, the model and the week's engagement weights, the only thing that trains once a
        # model serves; `weekly-select-recommendation-blend`, the blend), and that night (02:00), which relearns what
        # a night still learns weekly: the number of segments.
        # An import into a platform with no model sends beat's weekly learning at once (analytics.scoring.tasks.
        # send_learning), so the first night only scores. --night-trains: a night that finds nothing learned, as
        # when that learning was not sent (ANALYTICS_LEARN_AFTER_IMPORT off, or the broker down).
        first = ([("night", as_of, "first night (no model serving: it trains one)")] if options.night_trains else
                 [("learn", as_of, "the import's learning (beat's two weekly tasks, sent by the import: the model and "
                   "the engagement weights; the recommendation blend)"),
                  ("night", as_of, "first night (after the import's learning)")])
        steps = [*first,
                 ("night", (day0 + timedelta(days=1)).isoformat(), "next night (the model serves)"),
                 ("train", week, "weekly learning (beat's two tasks: the model and the engagement weights; the "
                  "recommendation blend)"),
                 ("night", week, "relearning night (the segment count relearned; the model serves)")]
        nights = weeks = 0
        for kind, night_as_of, name in steps:
            floor = sum(measure_floor(backend, date.fromisoformat(night_as_of)).values())
            first_id = last_jobrun_id(backend)
            sent = ["run_nightly_pipeline"] if kind == "night" else WEEKLY_TASKS
            sending = (f"send_learning(parse_as_of('{night_as_of}').isoformat())" if kind == "learn" else
                       "; ".join(f"{task}.apply_async(kwargs={{'as_of': parse_as_of('{night_as_of}').isoformat()}})"
                                 for task in sent))
            run_child(["shell", "-c", f"from analytics.scoring.tasks import {', '.join(sent)}, send_learning; "
                       "from analytics.management.commands._asof import parse_as_of; " + sending],
                      env,
                      options.data / f"send-{label}-{kind}-{night_as_of}.log")
            # The machine's cores from here (the tasks sent) until the end is seen (bench/cpu_accounting.py).
            cpu_before, cpu_started = CpuSnapshot.now(), time.perf_counter()
            if kind in ("train", "learn"):
                # Beat sends both weekly tasks at the same time; the worker's two processes take one each.
                weeks += 1
                for task in sent:
                    _wait_for_line(log, f"{task}[", 2 * weeks, worker)  # received, then succeeded (or raised)
                began = min(_logged(log, f"{task}[", "received", weeks) for task in sent)
                cores = CpuUse.between(cpu_before, CpuSnapshot.now(), time.perf_counter() - cpu_started)
                ends = {task: _logged(log, f"{task}[", "succeeded in", weeks) for task in sent}
                wall = (max(ends.values()) - began).total_seconds()
                after = sum(measure_floor(backend, date.fromisoformat(night_as_of)).values())
                floor = min(floor, after)
                usage = Usage(wall, 0.0, 0.0, _pool_peak_rss(worker), cpu=False)
                print(f"  {name}, --as-of {night_as_of}: {wall:.1f} s from the worker receiving the first task to "
                      f"the end of the last; floor {floor:.2f} s -> ratio {wall / floor:.1f}x; largest pool process "
                      f"{usage.peak_rss_bytes / 1024**3:.2f} GB so far", flush=True)
                for task, end in ends.items():
                    print(f"    {task:<34} -> {(end - began).total_seconds():6.1f} s", flush=True)
                _print_cores(cores, floor)
                results.append((f"{backend.label} {name.split(' (')[0]} (worker)", usage, floor))
                continue
            nights += 1
            number = nights
            query = ("SELECT r.is_current FROM analytics_recommendationrun r WHERE r.as_of >= %s AND r.as_of < %s "
                     "ORDER BY r.id DESC LIMIT 1")
            day = datetime.combine(date.fromisoformat(night_as_of), datetime.min.time())
            while True:
                # Done: the run is current, nothing of the night is still running, and every range has its scores
                # (one score chunk per recommend chunk: code before session 12 made the run current with its last
                # recommend chunk, whatever its score chunks were doing).
                if worker.poll() is not None:
                    raise SystemExit(f"the worker stopped; see {log}")
                rows = backend.query("SELECT job, started_at, finished_at, status FROM analytics_jobrun WHERE id > %s",
                                     (first_id,))
                if any(status == "failed" for *_, status in rows):
                    raise SystemExit(f"a job failed; see the JobRun rows and {log}")
                finished = [job for job, _, end, _ in rows if end is not None]
                current = (backend.query(query, (backend.bound(day), backend.bound(day + timedelta(days=1))))
                           or [(False,)])[0][0]
                if (current and len(finished) == len(rows)
                        and finished.count("score_members") >= finished.count("recommend")):
                    break
                time.sleep(0.2)
            cores = CpuUse.between(cpu_before, CpuSnapshot.now(), time.perf_counter() - cpu_started)
            rows = [row[:3] for row in rows]
            night = [(job, _as_datetime(start), _as_datetime(end)) for job, start, end in rows if job in NIGHT_JOBS]
            began = _logged(log, "run_nightly_pipeline[", "received", number)
            wall = (max(end for _, _, end in night) - began).total_seconds()
            # The warm-up the night enqueued (its own task, not the night's) runs before the floor is measured again.
            _wait_for_line(log, "warm_report_cache[", 2 * number, worker)  # received, then succeeded (or raised)
            warmed = (_logged(log, "warm_report_cache[", "succeeded in", number)
                      - _logged(log, "warm_report_cache[", "received", number)).total_seconds()
            after = sum(measure_floor(backend, date.fromisoformat(night_as_of)).values())
            floor = min(floor, after)
            usage = Usage(wall, 0.0, 0.0, _pool_peak_rss(worker), cpu=False)
            print(f"  {name}, --as-of {night_as_of}: {wall:.1f} s from the worker receiving the task to the end of "
                  f"the night's last chunk; "
                  f"floor {floor:.2f} s -> ratio {wall / floor:.1f}x (target {TARGET_RATIO}x); largest pool "
                  f"process {usage.peak_rss_bytes / 1024**3:.2f} GB so far", flush=True)
            for job, start, end in sorted(night, key=lambda item: item[1]):
                print(f"    {job:<28} {(start - began).total_seconds():6.1f} -> {(end - began).total_seconds():6.1f} s",
                      flush=True)
            _print_cores(cores, floor)
            results.append((f"{backend.label} {name.split(' (')[0]} (worker)", usage, floor))
            print(f"  the report warm-up the night enqueued, its own task in the worker: {warmed:.1f} s (not in the "
                  "figure)", flush=True)
    finally:
        os.killpg(worker.pid, signal.SIGQUIT)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:  # seen once on SQLite: the cold shutdown hung
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=60)
        if not options.keep_copy:
            backend.drop_copy()
    return results


def bench(backend: Backend, options: argparse.Namespace, base_env: dict[str, str]) -> list[tuple[str, Usage, float]]:
    results = []
    for number in range(1, options.runs + 1):
        backend.fresh_copy()
        try:
            as_of = options.as_of or default_as_of(backend).isoformat()
            if number == 1:
                print(f"\n[{backend.label}] {history_size(backend)}; --as-of {as_of}", flush=True)
            env = backend.env(base_env)
            # The kept history may predate a later migration: bring the copy's schema up to date (not timed).
            run_child(["migrate", "--noinput", "-v0"], env, options.data / f"migrate-{backend.label.lower()}.log")
            label = backend.label.lower()
            usage, floor = night(backend, options, env, as_of, f"run {number}, first night (no model serving: "
                                 "it trains one)", options.data / f"pipeline-{label}-{number}.log")
            results.append((f"{backend.label} first night", usage, floor))
            if not options.no_next_night:
                # The next night, as every later night runs: the model trained above serves, nothing is trained
                # (retraining is the weekly task).
                following = (date.fromisoformat(as_of) + timedelta(days=1)).isoformat()
                usage, floor = night(backend, options, env, following, f"run {number}, next night (the model "
                                     "serves)", options.data / f"pipeline-{label}-{number}-next.log")
                results.append((f"{backend.label} next night", usage, floor))
            if not options.no_warmup:
                warm = run_child(["shell", "-c", "from analytics.scoring.tasks import warm_report_cache; warm_report_cache()"],
                                 env, options.data / f"warmup-{backend.label.lower()}-{number}.log")
                print(f"  report-cache warm-up (its own Celery task, not part of the pipeline): {warm.line()}",
                      flush=True)
        finally:
            if not options.keep_copy:
                backend.drop_copy()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/tmp/bench_pipeline_100k"),
                        help="where the imported history is kept between runs (default %(default)s)")
    parser.add_argument("--scale", type=float, default=1.0, help="history size when it is built (1 = 100k members)")
    parser.add_argument("--members", type=int, help="history size in members (sets --scale: 20000 = 0.2)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rebuild", action="store_true", help="build the history again even if it exists")
    parser.add_argument("--postgres-db", default="bench_pipeline_src",
                        help="the PostgreSQL database holding the imported history (default %(default)s)")
    parser.add_argument("--as-of", help="pipeline cutoff (default: the day after the latest order)")
    parser.add_argument("--runs", type=int, default=1, help="runs per database, each on a fresh copy")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-warmup", action="store_true", help="skip measuring the report-cache warm-up task")
    parser.add_argument("--keep-copy", action="store_true", help="leave the last run's database copy in place")
    parser.add_argument("--no-next-night", action="store_true",
                        help="measure only the first night (which trains), not also the night after it")
    parser.add_argument("--worker", action="store_true",
                        help="also run both nights as production does: the nightly task on a Celery worker -c 2")
    parser.add_argument("--no-inline", action="store_true", help="with --worker: skip the inline command's nights")
    parser.add_argument("--jobs", type=int, default=2,
                        help="the inline command's --jobs: its processes (2, its default on 2 cores; 1: every part "
                             "one after another in one process)")
    parser.add_argument("--night-trains", action="store_true",
                        help="with --worker: the first night finds nothing learned and trains (as without the "
                             "learning an import sends)")
    parser.add_argument("--redis-db", type=int, default=12, help="Redis database for --worker on PostgreSQL "
                        "(flushed first; default %(default)s)")
    options = parser.parse_args()
    if options.members:
        options.scale = options.members / 100_000

    want_postgres = not options.no_postgres and postgres_answers()
    if not options.no_postgres and not want_postgres:
        print("PostgreSQL skipped: nothing answers on 127.0.0.1:5432")
    source = options.data / "var" / "db.sqlite3"
    missing_sqlite = not options.no_sqlite and not source.exists()
    missing_pg = want_postgres and not pg_database_exists(options.postgres_db)
    if options.rebuild or missing_sqlite or missing_pg:
        if want_postgres and pg_database_exists(options.postgres_db):
            _pg_admin(f"DROP DATABASE {options.postgres_db} WITH (FORCE)")
        build_history(options, want_postgres)

    base_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "VAR_DIR", "DJANGO_SETTINGS_MODULE")}
    # Production-like: with DEBUG on, Django also formats and keeps the SQL of every query.
    base_env.update({"DJANGO_DEBUG": "0", "SECRET_KEY": "bench-only-not-a-secret"})
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} before the runs", flush=True)

    summary: list[tuple[str, Usage, float]] = []
    backends: list[Backend] = []
    if not options.no_sqlite:
        backends.append(SQLiteBackend(source, options.data / "run-sqlite"))
    if want_postgres:
        backends.append(PostgresBackend(options.postgres_db, options.data / "run-postgres"))
    for backend in backends:
        if not options.no_inline:
            summary.extend(bench(backend, options, base_env))
        if options.worker:
            summary.extend(worker_nights(backend, options, base_env))

    print(f"\nsummary (target: within {TARGET_RATIO}x the SQL scan floor, peak under {TARGET_BYTES / 1024**3:.0f} GB)")
    for label, usage, floor in summary:
        ratio = usage.wall / floor
        verdict = "meets" if ratio <= TARGET_RATIO and usage.peak_rss_bytes < TARGET_BYTES else "MISSES"
        print(f"  {label:<23} {usage.line()}; floor {floor:.2f} s; ratio {ratio:.1f}x  -> {verdict} the target")
    print(f"load average after the runs {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
