"""Benchmark `seed_demo` into a fresh, temporary SQLite database and print the figures.

    .venv/bin/python bench/bench_seed.py                          # 5,000 members x 12 months (the issue's target)
    .venv/bin/python bench/bench_seed.py --members 1500           # what `make run` seeds

The database lives in a temporary VAR_DIR (removed afterwards unless --keep). `migrate` runs first in its own process
and is not timed; `seed_demo` then runs in a child process so its peak RSS (os.wait4 -> getrusage of exactly that
child) and wall time are the seeder's alone. Rows per table are counted afterwards with plain SQL.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TABLES = [
    "members_user", "members_course", "members_lesson", "members_membershiptier", "members_benefit",
    "members_subscription", "members_subscriptionchange", "members_order", "members_coupon",
    "members_couponredemption", "members_enrollment",
    "members_lessonprogress", "members_review", "members_referral", "community_post", "community_comment",
    "community_reaction", "community_notification", "analytics_event",
]


def run(args: list[str], env: dict[str, str]) -> tuple[float, int, float]:
    """Run a manage.py command; return (elapsed seconds, peak RSS in MiB, CPU seconds) of that child."""
    started = time.perf_counter()
    proc = subprocess.Popen([PYTHON, "manage.py", *args], cwd=ROOT, env=env)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed")
    # CPU seconds say what the seed costs even when other work shares the cores and stretches the wall time.
    return elapsed, usage.ru_maxrss // 1024, usage.ru_utime + usage.ru_stime  # Linux reports RSS in kilobytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--today", default="2026-11-29", help="Pinned so repeated runs seed the same rows.")
    parser.add_argument("--keep", help="Keep the database in this directory instead of a temporary one.")
    opts = parser.parse_args()

    var_dir = Path(opts.keep) if opts.keep else Path(tempfile.mkdtemp(prefix="bench-seed-"))
    var_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "VAR_DIR": str(var_dir), "DATABASE_URL": f"sqlite:///{var_dir / 'db.sqlite3'}"}
    env.pop("TEST_DB_NAME", None)
    try:
        migrate_s, _, _ = run(["migrate", "--noinput", "-v", "0"], env)
        elapsed, rss, cpu = run(["seed_demo", "--members", str(opts.members), "--months", str(opts.months), "--seed",
                            str(opts.seed), "--today", opts.today, "--no-progress", "-v", "0"], env)
        with sqlite3.connect(var_dir / "db.sqlite3") as db:
            existing = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            counts = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES if t in existing}
        total = sum(counts.values())
        cpus = os.cpu_count()
        print(f"\nseed_demo --members {opts.members} --months {opts.months} --seed {opts.seed} (SQLite, {cpus} CPUs)")
        print(f"  migrate (not timed in the figure): {migrate_s:.1f} s")
        load = os.getloadavg()[0]
        print(f"  elapsed: {elapsed:.1f} s   CPU: {cpu:.1f} s   rows: {total:,}   rows/s: {total / elapsed:,.0f}   "
              f"peak RSS: {rss} MiB   load average: {load:.1f}")
        for table, count in counts.items():
            print(f"  {table:<28} {count:>10,}")
        verdict = "under" if elapsed < 120 else "OVER"
        print(f"  target: 5,000 x 12 in under 120 s -> {verdict} ({elapsed:.1f} s)" if opts.members == 5000 else "")
    finally:
        if not opts.keep:
            shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
