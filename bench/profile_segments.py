"""cProfile of the segments stage alone at one cutoff, on a copy of a benchmark history (it writes the night's rows).

    VAR_DIR=/tmp/bench_pipeline_100k/run-sqlite .venv/bin/python bench/profile_segments.py --as-of 2026-01-03

Builds the feature matrix and the engagement scores first (not profiled), then profiles `segments_compute`: with a
run that chose k in the ANALYTICS_RELEARN_DAYS before as_of the stage keeps that k (its criterion says so).
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time

from in_process import setup_django  # bench/ is on sys.path when this file runs as a script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--as-of", required=True, help="YYYY-MM-DD")
    parser.add_argument("--top", type=int, default=18)
    options = parser.parse_args()
    setup_django()
    from datetime import UTC, datetime

    from analytics.ml import datasets, matrices
    from analytics.scoring import services

    as_of = datetime.fromisoformat(options.as_of).replace(tzinfo=UTC)
    with matrices.shared(), datasets.read_once(as_of):
        feats = matrices.at(as_of)
        services.engagement_compute(as_of=as_of, feats=feats)
        profile, started = cProfile.Profile(), time.perf_counter()
        profile.enable()
        run = services.segments_compute(as_of=as_of, feats=feats)
        profile.disable()
    print(f"segments {time.perf_counter() - started:.1f} s wall; k={run.k}, criterion {run.criterion!r}; "
          f"load average {os.getloadavg()[0]:.1f}")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(options.top)


if __name__ == "__main__":
    main()
