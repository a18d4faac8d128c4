"""The feature matrix's reads that session 10 changed, each timed against the formulation it replaced, on the
database DATABASE_URL (or VAR_DIR's SQLite) points at, with the results compared (they must be equal):

    VAR_DIR=/tmp/bench_pipeline_100k/var .venv/bin/python bench/bench_matrix_reads.py --as-of 2026-01-01
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_pipeline_src_run .venv/bin/python bench/bench_matrix_reads.py --as-of 2026-01-01

- last_event: one GROUP BY over every event before as_of, against one backward step down the (member, time) index
  per member; for everyone, a 1-in-5 training sample and an id range of 30,000 members.
- event_counts: the range as a filter on the window's events, against the window's events of the range's members
  (driven from the members), for a 1-in-5 sample (which datasets.event_counts drives from its members) and an id
  range (which it filters).
- BG/NBD's likelihood: per member, against once per distinct repeat count; and the whole fit.
- the run's read of the orders, with the coupon column it no longer reads and without it.
- all_course_members of a recommendation chunk: rebuilt from the subscriptions, against cut from the run's answer
  for everyone (inside read_once).
- the snapshot at as_of: every read in turn on one connection, against the event reads alongside on a second one.

Each is run --rounds times alternately; the best of each is printed. Read-only. On PostgreSQL use a VACUUM ANALYZEd
copy, as bench/bench_pipeline.py does (without it the index-only scans read the heap):
    createdb -h 127.0.0.1 -U postgres -T bench_pipeline_src bench_pipeline_src_run
    psql -h 127.0.0.1 -U postgres -d bench_pipeline_src_run -c 'VACUUM ANALYZE'
"""
from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from in_process import setup_django  # bench/ is on sys.path when this file runs as a script


def best(rounds: int, *variants: Callable[[], Any]) -> tuple[list[float], list[Any]]:
    times = [float("inf")] * len(variants)
    results: list[Any] = [None] * len(variants)
    for _ in range(rounds):
        for i, run in enumerate(variants):
            started = time.perf_counter()
            results[i] = run()
            times[i] = min(times[i], time.perf_counter() - started)
    return times, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--as-of", required=True, help="YYYY-MM-DD")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    setup_django()
    import numpy as np
    import pandas as pd
    from django.conf import settings
    from django.db import connection
    from django.db.models import Count, Max, Q, Sum
    from scipy import optimize

    from analytics.ml import btyd, datasets, features
    from analytics.models import Event
    from analytics.scoring import services

    as_of = datetime.fromisoformat(options.as_of).replace(tzinfo=UTC)
    day = timedelta(days=1)
    print(f"{connection.vendor}, as_of {as_of:%Y-%m-%d}, best of {options.rounds}; load average "
          f"{os.getloadavg()[0]:.1f}")

    def grouped_last_event(rng: datasets.MemberRange) -> pd.DataFrame:
        qs = rng.apply(Event.objects.filter(occurred_at__lt=as_of, member_id__isnull=False))
        frame = datasets._frame(qs.values("member_id").annotate(last=Max("occurred_at")).values_list(
            "member_id", "last"), ["member_id", "last_event_at"])
        frame["last_event_at"] = datasets._to_utc(frame["last_event_at"])
        return frame.sort_values("member_id").reset_index(drop=True)

    ids = datasets.member_ids()
    ranges = {"everyone": datasets.ALL, "1-in-5 sample": datasets.MemberRange(every=5),
              "30,000-member range": datasets.MemberRange(ids[len(ids) // 3], ids[len(ids) // 3 + 30000])}
    for label, rng in ranges.items():
        (old, new), (a, b) = best(options.rounds, lambda rng=rng: grouped_last_event(rng),
                                  lambda rng=rng: datasets.last_event(as_of, rng))
        print(f"last_event, {label:<20} GROUP BY {old:6.2f} s   per-member probe {new:6.2f} s   "
              f"{len(b):>7,} rows, equal: {a.equals(b)}")

    def counts(rng: datasets.MemberRange, driven: bool) -> pd.DataFrame:
        """event_counts' query with the range as a filter on the window's events, or driven from its members."""
        qs = Event.objects.filter(occurred_at__lt=as_of, occurred_at__gte=as_of - 90 * day, member_id__isnull=False)
        if driven:
            qs = qs.filter(member_id__in=rng.apply(datasets.User.objects.all(), "id").values("id"))
        else:
            qs = rng.apply(qs)
        rows = qs.values("member_id", "kind").annotate(
            n7=Count("id", filter=Q(occurred_at__gte=as_of - 7 * day)),
            n30=Count("id", filter=Q(occurred_at__gte=as_of - 30 * day)), n90=Count("id"),
            q7=Sum("quantity", filter=Q(occurred_at__gte=as_of - 7 * day)),
            q30=Sum("quantity", filter=Q(occurred_at__gte=as_of - 30 * day)), q90=Sum("quantity"),
            last=Max("occurred_at")).values_list("member_id", "kind", "n7", "n30", "n90", "q7", "q30", "q90", "last")
        frame = datasets._frame(rows, ["member_id", "kind", "n7", "n30", "n90", "q7", "q30", "q90", "last"])
        for col in ("q7", "q30", "q90"):
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float).fillna(0.0)
        frame["last"] = datasets._to_utc(frame["last"])
        return frame.sort_values(["member_id", "kind"]).reset_index(drop=True)

    for label in ("1-in-5 sample", "30,000-member range"):
        rng = ranges[label]
        (old, new), (a, b) = best(options.rounds, lambda rng=rng: counts(rng, False),
                                  lambda rng=rng: counts(rng, True))
        print(f"event_counts, {label:<20} filtered {old:6.2f} s   from the members {new:6.2f} s   "
              f"{len(b):>7,} rows, equal: {a.equals(b)}")
    served = datasets.event_counts(as_of, ranges["1-in-5 sample"]).sort_values(["member_id", "kind"])
    driven = counts(ranges["1-in-5 sample"], True)
    print(f"event_counts of the 1-in-5 sample is the query driven from the members: "
          f"{served.reset_index(drop=True).equals(driven)}")

    def orders_read(coupon: bool) -> int:
        """The run's one read of the orders (datasets._all_orders_before), with the coupon column it used to read."""
        extra = ["coupon_id"] if coupon else []
        qs = datasets.Order.objects.filter(paid_at__lt=as_of, status__in=[datasets.Order.Status.PAID,
                                                                          datasets.Order.Status.REFUNDED]).order_by("id")
        columns = ["id", "member_id", "kind", "course_id", "tier_id", "amount_paid", "paid_at", "is_renewal",
                   *extra, "billing_period", "refunded_at", "subscription_id"]
        fields = [datasets._as_text(c) if c.endswith("_at") else c for c in columns]
        return len(datasets._frame(qs.values_list(*fields), columns))

    (old, new), (a, b) = best(options.rounds, lambda: orders_read(True), lambda: orders_read(False))
    print(f"orders read, {b:,} rows             with the coupon column {old:6.2f} s   without {new:6.2f} s")

    with datasets.read_once(as_of):
        orders = datasets.orders(as_of)
    inputs = features.bgnbd_inputs(orders, as_of, pd.Index(ids))
    buyers = inputs[inputs["buyer"] > 0]
    x, tx, T = (buyers[c].to_numpy(dtype=float) for c in ("x", "t_x", "T"))
    T = np.maximum(T, 1e-3)
    counts = np.unique(x, return_inverse=True)
    point = np.array([0.5, 1.0, -1.0, 0.5])
    calls = 50
    (old, new), (a, b) = best(options.rounds, lambda: [btyd._nll(point, x, tx, T) for _ in range(calls)][-1],
                              lambda: [btyd._nll(point, x, tx, T, counts) for _ in range(calls)][-1])
    def per_member_fit() -> np.ndarray:
        # btyd.fit as it was: the same optimiser on the per-member likelihood.
        return optimize.minimize(btyd._nll, x0=np.zeros(4), args=(x, tx, T), method="L-BFGS-B",
                                 bounds=[(-8, 8)] * 4).x

    (old_fit, new_fit), (was, now) = best(options.rounds, per_member_fit, lambda: btyd.fit(inputs))
    same = [float(v) for v in np.exp(was)] == [now[k] for k in ("r", "alpha", "a", "b")]
    print(f"BG/NBD likelihood, {len(x):,} buyers, {len(counts[0])} distinct x: per member "
          f"{old / calls * 1000:6.2f} ms   by distinct x {new / calls * 1000:6.2f} ms a call, equal: {a == b}; "
          f"the fit {old_fit:.2f} s → {new_fit:.2f} s, the same parameters: {same}")

    chunk = datasets.MemberRange(*services.member_chunks()[1])

    def cut_from_everyone() -> set[int]:
        with datasets.read_once(as_of):
            datasets.all_course_members(as_of)  # the run's first ask (the matrix's subscriptions are read anyway)
            started = time.perf_counter()
            members = datasets.all_course_members(as_of, chunk)
            cut_from_everyone.seconds = time.perf_counter() - started
            return members

    (old, _), (a, b) = best(options.rounds, lambda: datasets.all_course_members(as_of, chunk), cut_from_everyone)
    print(f"all_course_members of a {chunk.id_to - chunk.id_from:,}-id chunk   rebuilt {old:6.2f} s   cut from the "
          f"run's answer {cut_from_everyone.seconds:6.3f} s   {len(b):,} members, equal: {a == b}")

    def snapshot(alongside: bool) -> datasets.Snapshot:
        settings.ANALYTICS_READS_ALONGSIDE = alongside
        with datasets.read_once(as_of):
            return datasets.snapshot(as_of)

    def forced() -> datasets.Snapshot:
        # What the snapshot would take alongside on SQLite too (datasets.alongside reads in turn there).
        real = datasets.reads_alongside
        datasets.reads_alongside = lambda: not connection.in_atomic_block
        try:
            return snapshot(True)
        finally:
            datasets.reads_alongside = real

    (old, new), (a, b) = best(options.rounds, lambda: snapshot(False),
                              forced if connection.vendor == "sqlite" else lambda: snapshot(True))
    equal = all(getattr(a, name).equals(getattr(b, name)) for name in ("event_counts", "last_event", "orders"))
    print(f"snapshot at as_of               in turn {old:6.2f} s   event reads alongside {new:6.2f} s   "
          f"equal: {equal}" + ("  (forced: SQLite reads in turn)" if connection.vendor == "sqlite" else ""))
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
