"""What one scoring chunk costs with each kind of model the training can serve, on an imported history:

    VAR_DIR=/tmp/bench_pipeline_100k/var .venv/bin/python bench/bench_scoring.py --as-of 2026-01-01
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_pipeline_src_run .venv/bin/python bench/bench_scoring.py --as-of 2026-01-01

The nightly benchmark's next night scores with whatever its first night promoted; on the synthetic history every
candidate's validation AUC is ≈ 0.5 and a rule (recent_activity) usually wins, which is the cheapest model to score.
This trains once at as_of (repurchase.train, the training sample), fits each algorithm on the same refit windows
(repurchase.fit_peer, as the model card's peers are fitted), and times repurchase.score — the probability and the
top reasons, as the JSON text a night stores — on one chunk of the members (ANALYTICS_CHUNK_SIZE), best of
--rounds, against the reasons as dicts then json.dumps (as before session 21), with whether the texts are the same;
for gradient boosting also its reasons alone, from the members' paths (repurchase._ablation_by_path) and through
predict_proba, and whether they are the same floats. Read-only.
"""
from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime

from in_process import setup_django  # bench/ is on sys.path when this file runs as a script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--as-of", required=True, help="YYYY-MM-DD")
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    setup_django()
    from django.db import connection

    from analytics.ml import datasets, features, matrices, repurchase
    from analytics.scoring import services

    as_of = datetime.fromisoformat(options.as_of).replace(tzinfo=UTC)
    print(f"{connection.vendor}, as_of {as_of:%Y-%m-%d}; load average {os.getloadavg()[0]:.1f}")
    started = time.perf_counter()
    with matrices.shared(), datasets.read_once(as_of):
        result = repurchase.train(as_of, services.DEFAULT_HORIZON_DAYS)
        chunk = datasets.MemberRange(*services.member_chunks()[0])
        X = matrices.at(as_of)
    X = X[datasets.in_range(X.index.to_series(), chunk).to_numpy()]
    print(f"trained in {time.perf_counter() - started:.1f} s; served {result.algorithm}; a chunk of {len(X):,} members")
    reference = result.validation.X
    for algorithm in repurchase.ALGORITHMS:
        served = result.model if algorithm == result.algorithm else repurchase.fit_peer(algorithm, result)
        if served is None:
            print(f"  {algorithm:<20} not fitted (one class)")
            continue
        art = {"model": served, "features": served.feature_names, "input_features": list(features.FEATURES),
               "horizon_days": result.plan.horizon_days,
               "reference": reference[served.feature_names].median().to_dict()}
        best, as_dicts = float("inf"), float("inf")
        for _ in range(options.rounds):
            begun = time.perf_counter()
            scored = repurchase.score(art, X, as_json=True)
            best = min(best, time.perf_counter() - begun)
            begun = time.perf_counter()
            dicts = repurchase.score(art, X)
            texts = [services._db_json(reasons) for reasons in dicts["top_reasons"]]
            as_dicts = min(as_dicts, time.perf_counter() - begun)
        print(f"  {algorithm:<20} {best:6.2f} s a chunk   {len(scored):,} members scored, "
              f"AUC at validation {result.candidates.get(algorithm, {}).get('roc_auc')}")
        print(f"    with the reasons as dicts, then json.dumps (before session 21): {as_dicts:.2f} s; the same text: "
              f"{texts == scored['top_reasons'].tolist()}")
        if algorithm == "gradient_boosting":
            # The reasons from the paths (repurchase._ablation_by_path) against the plain ablation through predict_proba.
            by_path, plain, seconds = _both_ablations(repurchase, art, X, options.rounds)
            print(f"    its reasons: from the paths {seconds[0]:.2f} s, through predict_proba {seconds[1]:.2f} s a chunk; "
                  f"the same floats: {by_path.equals(plain)}")
            split_on = repurchase._features_split_on(served.model, served.model_columns)
            print(f"    its trees split on {len(split_on) if split_on is not None else '?'} of "
                  f"{len(served.feature_names)} features (only those are ablated)")
    print(f"load average {os.getloadavg()[0]:.1f}")


def _both_ablations(repurchase, art: dict, X, rounds: int):
    from analytics.ml.runtime import limited_threads

    X = repurchase.unlabelled(X, art["horizon_days"])  # as score() reads the chunk
    real = repurchase._ablation_by_path
    frames, seconds = [], []
    for by_path in (True, False):
        repurchase._ablation_by_path = real if by_path else (lambda *args: None)
        best = float("inf")
        try:
            for _ in range(rounds):
                begun = time.perf_counter()
                with limited_threads():
                    frame = repurchase.contributions(art, X)
                best = min(best, time.perf_counter() - begun)
        finally:
            repurchase._ablation_by_path = real
        frames.append(frame)
        seconds.append(best)
    return frames[0], frames[1], seconds


if __name__ == "__main__":
    main()
