"""Steps of the night and of beat's weekly learning, each the old way and the new way, side by side on one database
(issue 19, sessions 13 to 16). Each is printed with whether both ways give the same result.

    VAR_DIR=/tmp/copy/var .venv/bin/python bench/bench_learning_steps.py --as-of 2026-01-01
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<copy> .venv/bin/python bench/bench_learning_steps.py --as-of 2026-01-01

The steps:
- the silhouette of k = 3..7: silhouette_score on the sample for each k, against the sample's distances computed
  once and held (sessions 16 to 23), against one pass over them a chunk of rows at a time (segmentation.silhouettes,
  session 24), with whether the figures are the same floats and the same to the 4 decimals stored;
- training's candidate models: fitted one after another, against ANALYTICS_FIT_THREADS=2 at a time;
- a fanned-out night's recommendation side: the course history and who has every course each read on its own,
  against both from one read of the orders and enrolments (datasets.read_once, as recommendations_prepare and
  recommendations_select do).
- the weekly training's one read of the orders and enrolments: of everyone (as inside a night), against of its
  sample's members only (repurchase.train on its own, as beat's weekly task runs it);
- on PostgreSQL, that one read of everyone through psycopg's COPY reader (a call per row), against
  datasets._copy_out's loop over what libpq has buffered;
- on PostgreSQL, the weekly training's window matrices built one after another, against two at a time in threads
  (matrices.build_many);
- the file a fanned-out night's recommendation side stores its read in for the serial part (services._share_reads):
  written and loaded by joblib, against by pickle (artifacts.save_pickled), with its size;
- the weekly training with its candidates fitted after every window, against fitted in a thread while the last
  windows are built (repurchase._train, session 15);
- the inferred subscriptions' walk (datasets.paid_through_walk) by member label, against by array position;
- (session 16) a night that keeps an earlier night's number of segments: with the silhouette sample's distances and
  score, as before, against without (segmentation.fit(k=...)), the same clustering;
- BG/NBD's fit on everyone's (x, t_x, T) at as_of: finite differences, as before, against the likelihood's own
  gradient (btyd.fit), with both likelihoods at their ends;
- purchase_features: the whole orders frame sorted by pandas, as before, against np.lexsort on the columns it uses
  (features.purchase_features), the same frame.
- (session 19) the weekly training (repurchase.train, as beat's task runs it, alone on the machine) with gradient
  boosting refitted after validation has chosen it, as before, against refitted ahead of validation in a thread of
  its own (repurchase.REFIT_AHEAD), with which model each served and whether it is the same.
- (session 21) where history starts before as_of (datasets.history_start, twice in a weekly learning): the events'
  MIN(occurred_at) as one aggregate over every event, as before, against the first event of each kind probed on the
  (kind, time) index (datasets._first_event_before), with whether both give the same instant.
- (session 22) gradient boosting fitted on every column, against without the columns constant in its training
  rows (repurchase._fit_columns), with whether the probabilities and the reasons' effects are the same floats.

Run it on a copy: the last step writes recommender files under ARTIFACTS_DIR. A copy comes from
`bench/bench_pipeline.py --keep-copy`, or `CREATE DATABASE … TEMPLATE bench_pipeline_src`, or a copy of the SQLite
file, then `manage.py migrate`.
"""
from __future__ import annotations

import argparse
import contextlib
import time
import uuid
from datetime import datetime

import numpy as np
from in_process import setup_django  # bench/ is on sys.path when this file runs as a script


def _timed(call):  # noqa: ANN001, ANN202 - a bench helper
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def silhouette(as_of: datetime, rounds: int) -> None:
    """The silhouettes of k=3..7 on the sample, three ways, each round in that order: silhouette_score per k (before
    session 16), the sample's distances held at once and scored per k (sessions 16 to 23), and segmentation.silhouettes
    (one pass over the distances, a chunk of rows at a time: session 24). Single-threaded, as segmentation.fit runs."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import pairwise_distances, silhouette_score

    from analytics.ml import engagement, matrices, segmentation
    from analytics.ml.runtime import limited_threads

    feats = matrices.at(as_of)
    scores = engagement.score(engagement.components(feats),
                              engagement.Weights(dict(engagement.HAND_WEIGHTS), "hand", ""))["score"]
    X = segmentation._transform(segmentation.prepare(feats, scores))
    n, seed = len(X), 0
    sample = min(n, segmentation.SILHOUETTE_SAMPLE)
    rows = np.random.RandomState(seed).permutation(n)[:sample]
    with limited_threads():
        fit_rows = np.random.default_rng(seed).choice(n, size=min(n, segmentation.FIT_SAMPLE), replace=False)
        labels = {k: KMeans(n_clusters=k, n_init=10, random_state=seed).fit(X[fit_rows]).predict(X)
                  for k in segmentation.K_RANGE}

        def held() -> dict[int, float]:
            distances = pairwise_distances(X[rows])
            return {k: silhouette_score(distances, lab[rows], metric="precomputed") for k, lab in labels.items()}

        for _ in range(rounds):
            each, per_k = _timed(lambda: {k: silhouette_score(X, lab, sample_size=sample, random_state=seed)
                                          for k, lab in labels.items()})
            shared, from_held = _timed(held)
            passed, from_pass = _timed(lambda: segmentation.silhouettes(X[rows], {k: lab[rows]
                                                                                  for k, lab in labels.items()}))
            rounded = {k: round(v, 4) for k, v in per_k.items()}
            print(f"silhouette of k=3..7 on {sample:,} of {n:,} members: per k {each:.2f} s, distances held at once "
                  f"{shared:.2f} s, one pass in {segmentation.SILHOUETTE_WORKING_MB} MB chunks {passed:.2f} s; the "
                  f"same floats: {per_k == from_held} (held), {per_k == from_pass} (one pass); the same to 4 decimals: "
                  f"{rounded == {k: round(v, 4) for k, v in from_pass.items()}}; largest difference "
                  f"{max(abs(per_k[k] - from_pass[k]) for k in per_k):.1e}", flush=True)


def candidate_fits(as_of: datetime) -> None:
    from django.conf import settings

    from analytics.ml import datasets, matrices, repurchase
    from analytics.ml.runtime import limited_threads

    with matrices.shared(), datasets.read_once(as_of):
        plan = repurchase.plan(as_of, 30, datasets.history_start(as_of))
        sample = repurchase.training_sample(plan.validation_cutoff)
        frames = [repurchase.labelled_frame(w.cutoff, w.horizon_days, sample.rng) for w in plan.train_windows]
    X, y = repurchase._concat(frames)
    fitted = {}
    for threads in (1, 2):
        settings.ANALYTICS_FIT_THREADS = threads
        with limited_threads():
            cpu = time.process_time()
            wall, fitted[threads] = _timed(lambda: repurchase._fit_candidates(X, y))
            print(f"training's {len(fitted[threads])} candidate models on {len(X):,} rows, {threads} at a time: "
                  f"{wall:.2f} s wall, {time.process_time() - cpu:.2f} s CPU", flush=True)
    same = all(np.array_equal(fitted[1][name].predict_proba(X)[:, 1], fitted[2][name].predict_proba(X)[:, 1])
               for name in fitted[1])
    print(f"  identical predictions: {same}", flush=True)


def recommendation_side(as_of: datetime, rounds: int) -> None:
    from django.db import connection

    from analytics.ml import datasets
    from analytics.scoring import services

    def side(one_read: bool) -> float:
        """What recommendations_prepare reads and fits: the blend (reading the course history) and the recommender
        with who has every course, each read on its own or all from one read of the orders and enrolments."""
        token = uuid.uuid4().hex
        services._run_model.clear()
        started = time.perf_counter()
        with datasets.read_once(as_of) if one_read else contextlib.nullcontext():
            services._choose_blend(token, as_of=as_of, k=services.DEFAULT_K,
                                   horizon_days=services.DEFAULT_HORIZON_DAYS)
            services._share_model(token, as_of)
        return time.perf_counter() - started

    for _ in range(rounds):
        print(f"a night's recommendation side on {connection.vendor}: each read on its own {side(False):.2f} s, "
              f"one read {side(True):.2f} s (what recommendations_prepare does)", flush=True)


def training_read(as_of: datetime) -> None:
    from analytics.ml import datasets, repurchase

    results = {}
    for label, block in (("of everyone", lambda: datasets.read_once(as_of)), ("of its sample", contextlib.nullcontext)):
        cpu = time.process_time()
        with block():
            wall, results[label] = _timed(lambda: repurchase.train(as_of, 30))
        print(f"the weekly training, its one read {label}: {wall:.2f} s wall, {time.process_time() - cpu:.2f} s CPU",
              flush=True)
    a, b = results.values()
    same = a.algorithm == b.algorithm and a.candidates == b.candidates and np.array_equal(
        a.model.predict_proba(a.validation.X), b.model.predict_proba(b.validation.X))
    print(f"  the same candidates and served predictions: {same}", flush=True)


def copy_reader(as_of: datetime, rounds: int) -> None:
    from django.db import connection

    from analytics.ml import datasets

    if connection.vendor != "postgresql":
        return

    def per_row(cursor, statement, params, buffer) -> None:  # noqa: ANN001 - the replaced loop
        with cursor.copy(statement, params) as copy:
            for block in copy:
                buffer.write(block)

    def read(reader) -> tuple[float, float, object]:  # noqa: ANN001
        real, datasets._copy_out = datasets._copy_out, reader
        try:
            cpu, started = time.process_time(), time.perf_counter()
            with datasets.read_once(as_of):
                frames = (datasets._all_orders_before(as_of, datasets.ALL),
                          datasets._all_enrollments_before(as_of, datasets.ALL))
            return time.perf_counter() - started, time.process_time() - cpu, frames
        finally:
            datasets._copy_out = real

    for _ in range(rounds):
        old_wall, old_cpu, old = read(per_row)
        new_wall, new_cpu, new = read(datasets._copy_out)
        same = all(a.equals(b) for a, b in zip(old, new, strict=True))
        print(f"the one read of {len(new[0]):,} orders and {len(new[1]):,} enrolments: psycopg's reader "
              f"{old_wall:.2f} s wall, {old_cpu:.2f} s CPU; the buffered loop {new_wall:.2f} s wall, {new_cpu:.2f} s "
              f"CPU; identical frames: {same}", flush=True)


def _training_windows(as_of: datetime):  # noqa: ANN202 - a bench helper
    """The weekly training's member sample and its distinct window cutoffs at as_of (repurchase.plan)."""
    from analytics.ml import datasets, repurchase

    plan = repurchase.plan(as_of, 30, datasets.history_start(as_of))
    cutoffs = list(dict.fromkeys([w.cutoff for w in (*plan.train_windows, *plan.refit_windows)]
                                 + [plan.validation_cutoff]))
    return repurchase.training_sample(plan.validation_cutoff), cutoffs


def training_windows(as_of: datetime, rounds: int) -> None:
    from django.conf import settings
    from django.db import connection

    from analytics.ml import datasets, matrices

    if connection.vendor != "postgresql":
        return
    sample, cutoffs = _training_windows(as_of)

    def build(threads: int) -> tuple[float, float, list]:
        settings.ANALYTICS_FIT_THREADS = threads
        with matrices.shared(), datasets.read_once(as_of, sample.rng):
            datasets.once_reads()  # the one read, as training makes it first either way
            cpu, started = time.process_time(), time.perf_counter()
            matrices.build_many(cutoffs, sample.rng)
            built = [matrices.at(c, sample.rng) for c in cutoffs]
            return time.perf_counter() - started, time.process_time() - cpu, built

    for _ in range(rounds):
        one_wall, one_cpu, one = build(1)
        two_wall, two_cpu, two = build(2)
        same = all(a.equals(b) for a, b in zip(one, two, strict=True))
        print(f"the weekly training's {len(cutoffs)} window matrices (1 in {sample.every} members): one after another "
              f"{one_wall:.2f} s wall, {one_cpu:.2f} s CPU; two at a time {two_wall:.2f} s wall, {two_cpu:.2f} s CPU; "
              f"identical matrices: {same}", flush=True)


def _timed_training(as_of: datetime, name: str, value: object) -> tuple[float, float, object]:
    """repurchase.train(as_of, 30) with the module attribute `name` set to `value` for the call: wall and CPU seconds
    and the result."""
    from analytics.ml import repurchase

    kept = getattr(repurchase, name)
    setattr(repurchase, name, value)
    try:
        cpu, started = time.process_time(), time.perf_counter()
        result = repurchase.train(as_of, 30)
        return time.perf_counter() - started, time.process_time() - cpu, result
    finally:
        setattr(repurchase, name, kept)


def refit_ahead(as_of: datetime, rounds: int) -> None:
    """The weekly training with gradient boosting's refit after validation (REFIT_AHEAD empty), against ahead of it
    (session 19), alternating."""
    import numpy as np

    from analytics.ml import repurchase

    for _ in range(rounds):
        after_wall, after_cpu, after = _timed_training(as_of, "REFIT_AHEAD", ())
        early_wall, early_cpu, early = _timed_training(as_of, "REFIT_AHEAD", repurchase.REFIT_AHEAD)
        X = after.validation.X
        same = (after.algorithm == early.algorithm
                and np.array_equal(after.model.predict_proba(X), early.model.predict_proba(X)))
        print(f"the weekly training, serving {after.algorithm}: refitted after validation {after_wall:.2f} s wall, "
              f"{after_cpu:.2f} s CPU; gradient boosting refitted ahead {early_wall:.2f} s wall, {early_cpu:.2f} s "
              f"CPU; the same model: {same}", flush=True)


def candidates_alongside(as_of: datetime, rounds: int) -> None:
    """The weekly training (repurchase.train, as beat's task runs it) with its candidates fitted after every window
    is built, against fitted in a thread as soon as the selection windows exist (session 15)."""
    import numpy as np

    from analytics.ml import repurchase

    for _ in range(rounds):
        # None: fit_and_validate fits them itself, after every window, as before.
        after_wall, after_cpu, after = _timed_training(as_of, "fit_candidates", lambda train_frames: None)
        along_wall, along_cpu, along = _timed_training(as_of, "fit_candidates", repurchase.fit_candidates)
        X = after.validation.X
        same = (after.algorithm == along.algorithm and after.candidates == along.candidates
                and np.array_equal(after.model.predict_proba(X), along.model.predict_proba(X)))
        print(f"the weekly training: candidates fitted after every window {after_wall:.2f} s wall, {after_cpu:.2f} s "
              f"CPU; alongside the last windows {along_wall:.2f} s wall, {along_cpu:.2f} s CPU; the same model: {same}",
              flush=True)


def _paid_through_by_label(rows):  # noqa: ANN001, ANN202 - session 14's walk, kept here to compare against
    import pandas as pd

    member_ids = pd.Index(rows["member_id"].unique(), name="member_id")
    paid_through = pd.Series(pd.NaT, index=member_ids, dtype="datetime64[ns, UTC]")
    period_start = paid_through.copy()
    for rank in range(int(rows["rank"].max()) + 1):
        step = rows[rows["rank"] == rank].set_index("member_id")
        before = paid_through.reindex(step.index)
        start = before.where(before > step["paid_at"], step["paid_at"])
        yearly = step["billing_period"] == "year"
        end = start.copy()
        end[yearly] = start[yearly] + pd.DateOffset(years=1)
        end[~yearly] = start[~yearly] + pd.DateOffset(months=1)
        paid_through[step.index] = end
        period_start[step.index] = start
    return paid_through, period_start


def inferred_walk(as_of: datetime, rounds: int) -> None:
    """The inferred subscriptions' walk (datasets.paid_through_walk) at the weekly training's cutoffs, of its
    sample's members and of everyone: by member label (session 14) against by array position, the same rows."""
    from analytics.ml import datasets

    sample, cutoffs = _training_windows(as_of)
    captured = []
    real = datasets.paid_through_walk

    def capture(rows):  # noqa: ANN001, ANN202
        captured.append(rows)
        return real(rows)

    for name, rng in (("the sample", sample.rng), ("everyone", datasets.ALL)):
        captured.clear()
        datasets.paid_through_walk = capture
        try:
            with datasets.read_once(as_of, rng):
                for cutoff in cutoffs:
                    datasets._inferred_from_orders(cutoff, rng, set())
        finally:
            datasets.paid_through_walk = real
        for _ in range(rounds):
            label, by_label = _timed(lambda: [_paid_through_by_label(rows) for rows in captured])
            position, by_position = _timed(lambda: [real(rows) for rows in captured])
            same = all(a[0].equals(b[0]) and a[1].equals(b[1]) and a[0].index.equals(b[0].index)
                       for a, b in zip(by_label, by_position, strict=True))
            print(f"the inferred subscriptions' walk at {len(cutoffs)} cutoffs, {name} "
                  f"({sum(len(r) for r in captured):,} orders in all): by member label {label:.2f} s, by array "
                  f"position {position:.2f} s; the same: {same}", flush=True)


def reads_file(as_of: datetime, rounds: int) -> None:
    from analytics.ml import artifacts, datasets

    with datasets.read_once(as_of):
        reads = datasets.once_reads()
    names = {"joblib": "bench/reads.joblib", "pickle": "bench/reads.pickle"}
    write = {"joblib": lambda: artifacts.save(reads, names["joblib"], compress=0),
             "pickle": lambda: artifacts.save_pickled(reads, names["pickle"])}
    read = {"joblib": lambda: artifacts.load(names["joblib"]), "pickle": lambda: artifacts.load_pickled(names["pickle"])}
    try:
        for _ in range(rounds):
            figures = []
            for way in ("joblib", "pickle"):
                saved, _ = _timed(write[way])
                loaded, back = _timed(read[way])
                same = back.orders.equals(reads.orders) and back.enrollments.equals(reads.enrollments)
                size = (artifacts.artifacts_dir() / names[way]).stat().st_size / 1e6
                figures.append(f"{way} written {saved:.2f} s, loaded {loaded:.2f} s, {size:.0f} MB, the same: {same}")
            print(f"the read file ({len(reads.orders):,} orders, {len(reads.enrollments):,} enrolments): "
                  + "; ".join(figures), flush=True)
    finally:
        for name in names.values():
            artifacts.delete(name)


def kept_segments(as_of: datetime, rounds: int) -> None:
    """A night that keeps k: KMeans for that k plus the silhouette sample's distances and score (before session 16;
    since session 24 in one pass, segmentation.silhouettes), against the KMeans alone (segmentation.fit with k)."""
    from analytics.ml import engagement, matrices, segmentation
    from analytics.ml.runtime import limited_threads

    feats = matrices.at(as_of)
    scores = engagement.score(engagement.components(feats),
                              engagement.Weights(dict(engagement.HAND_WEIGHTS), "hand", ""))["score"]
    frame = segmentation.prepare(feats, scores)
    k = segmentation.fit(frame).k

    def with_silhouette():  # noqa: ANN202
        result = segmentation.fit(frame, k=k)
        with limited_threads():  # as segmentation.fit ran it
            X = segmentation._transform(frame)
            rows = np.random.RandomState(0).permutation(len(X))[:min(len(X), segmentation.SILHOUETTE_SAMPLE)]
            labels = result.assignments["cluster"].to_numpy()
            segmentation.silhouettes(X[rows], {k: labels[rows]})
        return result

    for _ in range(rounds):
        before, old = _timed(with_silhouette)
        after, new = _timed(lambda: segmentation.fit(frame, k=k))
        print(f"a night keeping k={k} ({len(frame):,} members): with the silhouette {before:.2f} s, without "
              f"{after:.2f} s; the same clustering: {old.assignments.equals(new.assignments)}", flush=True)


def bgnbd_fit(as_of: datetime, rounds: int) -> None:
    """BG/NBD on everyone's inputs at as_of: L-BFGS-B with finite differences (before session 16) against with the
    likelihood's gradient (btyd.fit)."""
    from scipy import optimize

    from analytics.ml import btyd, datasets, features

    snap = datasets.snapshot(as_of, datasets.ALL)
    inputs = features.bgnbd_inputs(snap.orders, as_of, snap.members.set_index("member_id").index)
    buyers = inputs[inputs["buyer"] > 0]
    x, tx, T = (buyers[c].to_numpy(dtype=float) for c in ("x", "t_x", "T"))
    T = np.maximum(T, 1e-3)
    counts = np.unique(x, return_inverse=True)
    for _ in range(rounds):
        before, old = _timed(lambda: optimize.minimize(btyd._nll, x0=np.zeros(4), args=(x, tx, T, counts),
                                                       method="L-BFGS-B", bounds=[(-8, 8)] * 4))
        after, new = _timed(lambda: btyd.fit(inputs))
        at_new = btyd._nll(np.log([new["r"], new["alpha"], new["a"], new["b"]]), x, tx, T, counts)
        print(f"BG/NBD on {len(buyers):,} buyers: finite differences {before:.3f} s ({old.nfev} likelihood calls, "
              f"minus log-likelihood {old.fun:,.1f}), its gradient {after:.3f} s (minus log-likelihood "
              f"{at_new:,.1f}); r {np.exp(old.x[0]):.4g} -> {new['r']:.4g}, alpha {np.exp(old.x[1]):.4g} -> "
              f"{new['alpha']:.4g}", flush=True)


def purchases(as_of: datetime, rounds: int) -> None:
    """purchase_features' sort of everyone's orders at as_of: the whole frame by pandas on both keys (before
    session 16), against the columns it uses by np.lexsort on the raw integers (as features.purchase_features
    sorts now); the same order. And the function itself, now."""
    from analytics.ml import datasets, features

    orders = datasets.orders(as_of)

    def by_lexsort():  # noqa: ANN202
        used = orders[["member_id", "paid_at", "amount", "is_renewal"]].assign(
            is_course=(orders["kind"] == "course").astype(float))
        return used.take(np.lexsort((used["paid_at"].array.asi8, used["member_id"].to_numpy())))

    for _ in range(rounds):
        before, old = _timed(lambda: orders.sort_values(["member_id", "paid_at"]))
        after, new = _timed(by_lexsort)
        whole, _ = _timed(lambda: features.purchase_features(orders, as_of))
        print(f"purchase_features' sort of {len(orders):,} orders: the whole frame by pandas {before:.2f} s, the "
              f"used columns by np.lexsort {after:.2f} s, the same order: {old.index.equals(new.index)}; the "
              f"function now {whole:.2f} s", flush=True)


def history_start(as_of: datetime, rounds: int) -> None:
    """The events' first instant before as_of: the plain aggregate (before session 21) against the probes per kind."""
    from django.db.models import Min

    from analytics.ml import datasets
    from analytics.models import Event

    for _ in range(rounds):
        before, old = _timed(lambda: Event.objects.filter(occurred_at__lt=as_of).aggregate(m=Min("occurred_at"))["m"])
        after, new = _timed(lambda: datasets._first_event_before(as_of))
        whole, start = _timed(lambda: datasets.history_start(as_of))
        kinds = len(datasets._first_event_ids_by_kind(as_of))
        print(f"the first event before {as_of:%Y-%m-%d}: one aggregate {before:.3f} s, probed by kind ({kinds} kinds) "
              f"{after:.3f} s; the same instant: {old == new} ({new}); history_start {whole:.3f} s", flush=True)


def constant_columns(as_of: datetime, rounds: int) -> None:
    """Gradient boosting fitted on every column, as before session 22, against without the columns constant in its
    training rows (repurchase._fit_columns), alternating, on the weekly training's selection windows: the fit's wall
    and CPU time, and whether the probabilities and the reasons' effects are the same floats."""
    from analytics.ml import datasets, matrices, repurchase
    from analytics.ml.runtime import limited_threads

    with matrices.shared(), datasets.read_once(as_of):
        plan = repurchase.plan(as_of, 30, datasets.history_start(as_of))
        sample = repurchase.training_sample(plan.validation_cutoff)
        frames = [repurchase.labelled_frame(w.cutoff, w.horizon_days, sample.rng) for w in plan.train_windows]
    X, y = repurchase._concat(frames)
    skips = repurchase.SKIPS_CONSTANT_COLUMNS
    fitted = {}
    for _ in range(rounds):
        for way, skipping in (("every column", ()), ("without the constant ones", skips)):
            repurchase.SKIPS_CONSTANT_COLUMNS = skipping
            try:
                with limited_threads():
                    cpu = time.process_time()
                    wall, fitted[way] = _timed(lambda: repurchase._fit_one("gradient_boosting", X, y))
                    cpu = time.process_time() - cpu
            finally:
                repurchase.SKIPS_CONSTANT_COLUMNS = skips
            print(f"gradient boosting on {len(X):,} rows, {len(fitted[way].model_columns)} of "
                  f"{len(fitted[way].feature_names)} columns ({way}): {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
    every, skipping = fitted["every column"], fitted["without the constant ones"]
    scoring = repurchase.unlabelled(frames[-1].X, 30)
    reference = scoring[every.feature_names].median().to_dict()
    effects = [repurchase.contributions({"model": served, "features": served.feature_names, "reference": reference},
                                        scoring) for served in (every, skipping)]
    print(f"  the same probabilities: {np.array_equal(every.predict_proba(X), skipping.predict_proba(X))}; "
          f"the same reasons' effects: {effects[0].equals(effects[1])}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--as-of", required=True, help="the cutoff, YYYY-MM-DD")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the recommendation side's and the COPY "
                        "reader's two ways")
    parser.add_argument("--only", choices=["silhouette", "fits", "recommendations", "training", "copy", "windows",
                                           "reads-file", "candidates", "inferred", "kept-segments", "bgnbd",
                                           "purchases", "refit-ahead", "history-start", "constant-columns"],
                        help="one step only")
    options = parser.parse_args()
    setup_django()
    from django.utils import timezone

    as_of = timezone.make_aware(datetime.fromisoformat(options.as_of))
    steps = {"silhouette": lambda: silhouette(as_of, options.rounds), "fits": lambda: candidate_fits(as_of),
             "recommendations": lambda: recommendation_side(as_of, options.rounds),
             "training": lambda: training_read(as_of), "copy": lambda: copy_reader(as_of, options.rounds),
             "windows": lambda: training_windows(as_of, options.rounds),
             "reads-file": lambda: reads_file(as_of, options.rounds),
             "candidates": lambda: candidates_alongside(as_of, options.rounds),
             "inferred": lambda: inferred_walk(as_of, options.rounds),
             "kept-segments": lambda: kept_segments(as_of, options.rounds),
             "bgnbd": lambda: bgnbd_fit(as_of, options.rounds),
             "purchases": lambda: purchases(as_of, options.rounds),
             "refit-ahead": lambda: refit_ahead(as_of, options.rounds),
             "history-start": lambda: history_start(as_of, options.rounds),
             "constant-columns": lambda: constant_columns(as_of, options.rounds)}
    for name, step in steps.items():
        if options.only in (None, name):
            step()


if __name__ == "__main__":
    main()
