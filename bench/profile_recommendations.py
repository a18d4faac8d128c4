"""Time (and optionally cProfile) the nightly recommendation stages alone on an existing database: the run's blend
selection (`recommendations_start`, JobRun "evaluate_recommendations") and every chunk of `member_chunks()`
(`recommendations_chunk`, "recommend"), one after another in this process as the inline pipeline runs them. It
writes a recommendation run into the database: use a copy.

    VAR_DIR=/tmp/recs/v100/var DJANGO_DEBUG=0 SECRET_KEY=x .venv/bin/python bench/profile_recommendations.py \\
        --as-of 2025-12-31 --out /tmp/recs/after [--profile]

With --out PREFIX it saves PREFIX-rows.pkl (the run's rows) and PREFIX-run.pkl (params, metrics, peers) to compare two
versions of the code, and with --profile PREFIX-start.prof and PREFIX-chunks.prof.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pickle
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--as-of", required=True, help="cutoff day, e.g. 2025-12-31 (midnight UTC)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--out", help="prefix of the files to save (rows, run, profiles)")
    parser.add_argument("--profile", action="store_true")
    options = parser.parse_args()

    import django

    django.setup()
    import pandas as pd

    from analytics.models import RecommendationRun, RecommendationSet
    from analytics.scoring import services

    as_of = datetime.fromisoformat(options.as_of).replace(tzinfo=UTC)
    ranges = services.member_chunks()
    profiler = cProfile.Profile() if options.profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    run = services.recommendations_start(as_of=as_of, k=options.k, chunks=max(len(ranges), 1))
    if profiler:
        profiler.disable()
        if options.out:
            profiler.dump_stats(f"{options.out}-start.prof")
        profiler = cProfile.Profile()
    print(f"evaluate_recommendations {time.perf_counter() - started:.2f} s; blend {run.params['weights']} "
          f"({run.params['popularity']}); validation {run.metrics}", flush=True)
    times = []
    if profiler:
        profiler.enable()
    for id_from, id_to in ranges or [(None, None)]:
        started = time.perf_counter()
        services.recommendations_chunk(run=RecommendationRun.objects.get(pk=run.pk), id_from=id_from, id_to=id_to)
        times.append(time.perf_counter() - started)
    if profiler:
        profiler.disable()
        if options.out:
            profiler.dump_stats(f"{options.out}-chunks.prof")
    print(f"recommend {sum(times):.2f} s in {len(times)} chunks: {', '.join(f'{t:.2f}' for t in times)}", flush=True)
    if options.out:
        rows = pd.DataFrame.from_records(
            [(stored.member_id, e.rank, e.course_id, e.score, e.reason, e.reason_course_id)
             for stored in RecommendationSet.objects.filter(run=run).order_by("member_id").iterator(chunk_size=10_000)
             for e in stored.entries()],
            columns=["member_id", "rank", "course_id", "score", "reason", "reason_course_id"])
        rows.to_pickle(f"{options.out}-rows.pkl")
        params = {k: v for k, v in run.params.items() if k != "token"}
        with open(f"{options.out}-run.pkl", "wb") as fh:
            pickle.dump({"params": params, "metrics": run.metrics, "baseline": run.baseline_metrics}, fh)
        print(f"{len(rows):,} rows saved to {options.out}-rows.pkl")


if __name__ == "__main__":
    main()
