"""cProfile of one nightly run, in process, by CPU time (other jobs on a shared machine disturb it less than wall).

    VAR_DIR=/tmp/copy/var .venv/bin/python bench/profile_nightly.py --as-of 2026-01-01 --top 40
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<copy> .venv/bin/python bench/profile_nightly.py --as-of 2026-01-01

Run it on a copy (it writes the night's rows, as the pipeline does): bench/bench_pipeline.py --keep-copy leaves one in
<data>/run-sqlite or the <postgres-db>_run database. Prints wall and CPU seconds, the JobRun stages this run wrote and
the functions with the most cumulative CPU.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from datetime import datetime

from in_process import setup_django  # bench/ is on sys.path when this file runs as a script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--as-of", required=True, help="the night's cutoff, YYYY-MM-DD")
    parser.add_argument("--top", type=int, default=40, help="functions to print (by cumulative CPU)")
    options = parser.parse_args()
    setup_django()
    from django.utils import timezone

    from analytics.models import JobRun
    from analytics.scoring import services

    as_of = timezone.make_aware(datetime.fromisoformat(options.as_of))
    first = JobRun.objects.order_by("-id").values_list("id", flat=True).first() or 0
    profile = cProfile.Profile(time.process_time)
    wall, cpu = time.perf_counter(), time.process_time()
    profile.enable()
    services.nightly_pipeline(as_of=as_of)
    profile.disable()
    print(f"nightly pipeline: {time.perf_counter() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU")
    for run in JobRun.objects.filter(id__gt=first).order_by("started_at", "id"):
        print(f"  {run.job:<30} {(run.finished_at - run.started_at).total_seconds():8.2f} s {run.rows or 0:>10,} rows")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(options.top)


if __name__ == "__main__":
    main()
