"""The feature reads of one night on PostgreSQL: COPY … TO STDOUT parsed by pandas against the cursor's fetchall.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_pipeline_src .venv/bin/python bench/bench_feature_reads.py \
        --as-of 2026-01-01 --rounds 2

Reads datasets.snapshot(as_of) and the course record inside read_once (what a night reads before its stages), then
builds the feature matrix, alternately with datasets._frame's COPY path and with the cursor path (the COPY path
switched off), in fresh child processes, and prints wall and CPU seconds (this process's user + system: the
client's share; the server's scans are the same in both) of the reads and of the matrix. Read-only.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from in_process import setup_django  # bench/ is on sys.path when this file runs as a script

ROOT = Path(__file__).resolve().parent.parent


def _child(as_of: str, mode: str) -> None:
    sys.path.insert(0, str(ROOT))
    setup_django()
    from datetime import UTC, datetime

    from analytics.ml import datasets, features

    when = datetime.fromisoformat(as_of).replace(tzinfo=UTC)
    if mode == "cursor":
        datasets._copied_frame = lambda *args: None

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    wall, used = time.perf_counter(), cpu()
    with datasets.read_once(when):
        snap = datasets.snapshot(when)
        datasets.course_record(when)
        read_wall, read_cpu = time.perf_counter() - wall, cpu() - used
        feats = features.build(snap)
    print(f"{mode:6}  reads {read_wall:6.2f} s wall {read_cpu:6.2f} s CPU   whole with the matrix "
          f"{time.perf_counter() - wall:6.2f} s wall {cpu() - used:6.2f} s CPU   {len(feats):,} members", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--as-of", required=True, help="YYYY-MM-DD")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=["copy", "cursor"], help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        _child(options.as_of, options.child)
        return
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        parser.error("set DATABASE_URL to a PostgreSQL database (the COPY path is PostgreSQL's)")
    print(f"load average {os.getloadavg()[0]:.1f}")
    for _ in range(options.rounds):
        for mode in ("copy", "cursor"):
            subprocess.run([sys.executable, __file__, "--as-of", options.as_of, "--child", mode], check=True)
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
