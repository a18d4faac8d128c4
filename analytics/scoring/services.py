"""Analytics writes: the scoring jobs. Tasks and management commands call these functions and nothing else.

Each job records a JobRun (analytics.jobs.tracked) and computes at an explicit `as_of`, reading history only
through analytics.ml.datasets, so a rerun at the same as_of gives the same rows (old rows for that as_of are
replaced inside one transaction).
"""
from __future__ import annotations

import contextlib
import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import partial
from time import monotonic, sleep
from typing import Any

import numpy as np
import pandas as pd
from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min, Q, QuerySet
from django.utils import timezone

from analytics.jobs import tracked
from analytics.ml import (
    artifacts,
    datasets,
    engagement,
    evaluation,
    features,
    matrices,
    recommendations,
    repurchase,
    segmentation,
)
from analytics.ml.reasons import reasons_display
from analytics.ml.runtime import limited_threads
from analytics.models import (
    EngagementScore,
    EngagementWeights,
    JobRun,
    ModelVersion,
    PropensityScore,
    RecommendationRun,
    RecommendationSet,
    SegmentAssignment,
    SegmentRun,
    recommended_courses,
)
from config.bulk_load import sqlite_insert
from config.db import refresh_stale_planner_statistics
from members import pagecache

DEFAULT_HORIZON_DAYS = 30
DEFAULT_K = 10
REPURCHASE = "repurchase"


def chunk_size() -> int:
    return int(getattr(settings, "ANALYTICS_CHUNK_SIZE", 50000))


def start_of_day(when: datetime | None = None) -> datetime:
    """Nightly jobs score at local midnight so there is one snapshot per day, whatever minute they ran."""
    local = timezone.localtime(when or timezone.now())
    return timezone.make_aware(datetime.combine(local.date(), time.min), timezone.get_current_timezone())


def _rng(id_from: int | None, id_to: int | None) -> datasets.MemberRange:
    return datasets.MemberRange(id_from, id_to)


def night_processes() -> int:
    """The worker processes a night's chunks share (ANALYTICS_NIGHT_PROCESSES)."""
    return max(1, int(getattr(settings, "ANALYTICS_NIGHT_PROCESSES", 1)))


def member_chunks(size: int | None = None, processes: int | None = None) -> list[tuple[int, int]]:
    """Member-id ranges [from, to) holding at most `size` members each and as equal as the ids allow, so several
    workers can share a population: 20,400 members in chunks of 20,000 are two chunks of 10,200, not 20,000 + 400
    (a chunk's fixed cost — its queries, the model load — is paid per chunk however few members it holds).
    More than one chunk come in a multiple of `processes` (default: night_processes()), so the last round of a
    night's chunks keeps every process busy: 102,000 members in chunks of at most 50,000 on two processes are four
    chunks of 25,500, not three of 34,000, the third of which would run alone at the end of the night while the
    other process waits (issue 19)."""
    ids = datasets.member_ids()
    if not ids:
        return []
    size = size or chunk_size()
    count = -(-len(ids) // size)
    if count > 1:
        step = processes or night_processes()
        count = min(-(-count // step) * step, len(ids))
    per = -(-len(ids) // count)
    starts = ids[::per]
    return list(zip(starts, [*starts[1:], ids[-1] + 1], strict=True))


def _insert_rows(model: type, fields: list[str], rows: list[tuple]) -> int:
    """Write many rows without model instances: building 1,000,000 model instances for bulk_create costs a
    minute of Python; tuples cost seconds. PostgreSQL gets COPY (about twice as fast as executemany there), SQLite
    INSERTs of many rows each (config.bulk_load.sqlite_insert). Values must already be in DB form (see _db_datetime,
    _db_json)."""
    if not rows:
        return 0
    meta = model._meta
    table = connection.ops.quote_name(meta.db_table)
    columns = ", ".join(connection.ops.quote_name(meta.get_field(f).column) for f in fields)
    if connection.vendor != "postgresql":
        return sqlite_insert(f"INSERT INTO {table} ({columns})", len(fields), rows)
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    return len(rows)


def _delete_rows(rows: QuerySet) -> int:
    """Delete the rows a stage is about to write again (a night re-run, a chunk task retried) in one DELETE.
    QuerySet.delete() would first fetch every row as an object to send post_delete (the page cache listens to every
    model): 100,000 engagement or propensity rows at 100k members, which made re-running a night ≈ 9 s slower on
    PostgreSQL, or a retried chunk's recommendation sets. These derived rows have no dependents, and no page shows them
    before the stage is done: recommendations become visible when their run is made current, a save that
    bumps the page cache. Returns the number of rows deleted."""
    return rows._raw_delete(rows.db)


def _db_datetime(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


_JSON = json.JSONEncoder(ensure_ascii=False)  # json.dumps with a keyword builds an encoder per call


def _db_json(value: Any) -> str:
    return _JSON.encode(value)


def _db_json_objects(names: list[str], values: np.ndarray) -> list[str]:
    """_db_json(dict(zip(names, row))) for each row of a float matrix, the same text: json writes a finite float as
    its repr, so one %-template per row replaces json.dumps (≈ 15 µs a row; 300,000 rows a night at 100k members).
    A row with a NaN or an infinity (JSON spells them differently) goes through json.dumps."""
    values = np.asarray(values, dtype=float)
    template = "{" + ", ".join(f"{_db_json(name)}: %r" for name in names) + "}"
    finite = np.isfinite(values).all(axis=1).tolist()
    return [template % tuple(row) if ok else _db_json(dict(zip(names, row)))
            for row, ok in zip(values.tolist(), finite, strict=True)]


# ---------------------------------------------------------------------------------------------------------------
# Engagement


def relearn_days() -> int:
    return max(0, int(getattr(settings, "ANALYTICS_RELEARN_DAYS", 7)))


def engagement_weights(as_of: datetime) -> engagement.Weights:
    """Weights learned from what happened after an earlier cutoff (as_of − 90 days), on the propensity model's
    training sample of members, else the hand weights. Learned weights are kept (EngagementWeights) and reused by
    later nights until they are ANALYTICS_RELEARN_DAYS old; only weights learned at or before as_of are reused, so a
    backfill never sees later outcomes."""
    days = relearn_days()
    if days:
        kept = (EngagementWeights.objects.filter(as_of__lte=as_of, as_of__gt=as_of - timedelta(days=days))
                .order_by("-as_of", "-pk").first())
        if kept is not None:
            return engagement.Weights(dict(kept.weights), "learned",
                                      f"{kept.detail}; learned at {kept.as_of:%Y-%m-%d}, relearned every {days} days")
    cutoff = as_of - timedelta(days=engagement.LEARN_WINDOW_DAYS)
    start = datasets.history_start(as_of)
    if start is None or cutoff < start + timedelta(days=30):
        return engagement.Weights(dict(engagement.HAND_WEIGHTS), "hand", "history too short to learn weights")
    # Learned on the propensity model's training sample (repurchase.training_sample: every member below
    # ANALYTICS_TRAIN_SAMPLE_MEMBERS, a 1-in-N id sample above it), recorded in the detail: five weights need no
    # 100,000 rows, and inside a nightly run the sampled matrix at this cutoff is also one of the training windows'.
    sample = repurchase.training_sample(cutoff)
    earlier = engagement.components(matrices.at(cutoff, sample.rng))
    bought = pd.Series(1, index=list(datasets.buyers_between(cutoff, as_of, sample.rng)), dtype=int)
    weights = engagement.learn_weights(earlier, bought)
    if sample.every > 1 and weights.source == "learned":
        weights = engagement.Weights(weights.weights, weights.source, f"{weights.detail} (every member whose id "
                                     f"is a multiple of {sample.every}, of {sample.members:,})")
    if days and weights.source == "learned":
        # Hand weights are not kept: the next night may have the history to learn.
        EngagementWeights.objects.create(as_of=as_of, weights=weights.weights, detail=weights.detail)
    return weights


def engagement_frame(as_of: datetime, feats: pd.DataFrame | None = None) -> tuple[pd.DataFrame, engagement.Weights]:
    feats = matrices.at(as_of) if feats is None else feats
    comps = engagement.components(feats)
    weights = engagement_weights(as_of)
    scored = engagement.score(comps, weights)
    return scored.join(comps), weights


def engagement_compute(*, as_of: datetime, feats: pd.DataFrame | None = None) -> int:
    """EngagementScore per member at as_of (a rerun replaces that as_of's rows). Returns the row count.
    `feats` lets the nightly pipeline build the feature matrix once for engagement and segments."""
    with tracked("compute_engagement", as_of=as_of) as job:
        frame, weights = engagement_frame(as_of, feats)
        when = _db_datetime(as_of)
        comps = _db_json_objects(engagement.COMPONENTS, frame[engagement.COMPONENTS].round(4).to_numpy(dtype=float))
        rows = [
            (int(member_id), when, float(score), float(raw), c, weights.source)
            for member_id, score, raw, c in zip(frame.index, frame["score"], frame["raw"], comps)
        ]
        with transaction.atomic():
            _delete_rows(EngagementScore.objects.filter(as_of=as_of))
            _insert_rows(EngagementScore, ["member", "as_of", "score", "raw", "components", "weights_source"], rows)
        job.rows = len(rows)
        job.message = f"weights ({weights.source}): {weights.weights}. {weights.detail}"
    return len(rows)


# ---------------------------------------------------------------------------------------------------------------
# Segments


def _chosen_segment_run(as_of: datetime) -> SegmentRun | None:
    """The newest run that chose k over k=3..7 within ANALYTICS_RELEARN_DAYS before as_of (never after it, never
    as_of itself: rerunning a night chooses again), whose k the nights in between keep, as they keep the
    engagement weights and the recommendation blend learned that night. None: choose tonight."""
    days = relearn_days()
    if not days:
        return None
    return (SegmentRun.objects.filter(criterion="silhouette", as_of__lt=as_of, as_of__gt=as_of - timedelta(days=days))
            .order_by("-as_of", "-pk").first())


def segments_compute(*, as_of: datetime, feats: pd.DataFrame | None = None) -> SegmentRun:
    with tracked("compute_segments", as_of=as_of) as job:
        feats = matrices.at(as_of) if feats is None else feats
        stored = dict(EngagementScore.objects.filter(as_of=as_of).values_list("member_id", "score"))
        if stored:
            eng = pd.Series(stored, dtype=float)
        else:
            eng = engagement_frame(as_of, feats)[0]["score"]
        frame = segmentation.prepare(feats, eng)
        chosen = _chosen_segment_run(as_of)
        result = segmentation.fit(frame, k=chosen.k if chosen is not None else None)
        criterion = "silhouette" if result.selected else f"silhouette, k of {chosen.as_of:%Y-%m-%d}"
        with transaction.atomic():
            # A rerun of the night replaces its run. Its assignments go first (_delete_rows): the cascade would load
            # all 100,000 of them as objects to send their delete signals.
            replaced = list(SegmentRun.objects.filter(as_of=as_of).values_list("pk", flat=True))
            _delete_rows(SegmentAssignment.objects.filter(run_id__in=replaced))
            SegmentRun.objects.filter(pk__in=replaced).delete()
            run = SegmentRun.objects.create(
                as_of=as_of, k=result.k, criterion=criterion, criterion_scores=result.criterion_scores,
                centroids=result.centroids, labels=result.labels,
            )
            values = frame.round(2).reindex(result.assignments.index)
            names = list(values.columns)
            when = _db_datetime(as_of)
            _insert_rows(SegmentAssignment, ["run", "member", "as_of", "cluster", "label", "features"], [
                (run.pk, int(m), when, int(cluster), label, feats)
                for m, cluster, label, feats in zip(result.assignments.index, result.assignments["cluster"],
                                                    result.assignments["label"],
                                                    _db_json_objects(names, values.to_numpy(dtype=float)))
            ])
        job.rows = len(result.assignments)
        silhouettes = f"; silhouette by k: {result.criterion_scores}" if result.criterion_scores else ""
        job.message = f"{result.notes}{silhouettes}; labels: {result.labels}"
    return run


# ---------------------------------------------------------------------------------------------------------------
# Repurchase propensity


@dataclass(frozen=True)
class TrainOutcome:
    version: ModelVersion
    promoted: bool
    serving_auc_on_this_validation: float | None
    result: repurchase.TrainResult


def _serving(kind: str = REPURCHASE) -> ModelVersion | None:
    return ModelVersion.objects.filter(kind=kind, is_serving=True).first()


def _auc_of(version: ModelVersion, validation: repurchase.LabelledFrame, as_of: datetime) -> float | None:
    """The serving model re-scored on the new validation rows, so old and new are compared on the same data.
    A serving model is refitted on labels up to its own as_of: when that is after the validation cutoff it has seen
    these labels (a backfill, or a retrain at the same as_of), so its stored figure is used instead."""
    if version.as_of > validation.cutoff or not version.artifact_path:
        return version.metrics.get("roc_auc")
    try:
        art = artifacts.load(version.artifact_path)
    except (OSError, EOFError, ValueError, AttributeError, ImportError):
        return version.metrics.get("roc_auc")
    if art.get("input_features") != list(features.FEATURES):
        return version.metrics.get("roc_auc")
    p = art["model"].predict_proba(validation.X)[:, 1]
    return repurchase.evaluate(validation.y, p)["roc_auc"]


def _json_safe(value: Any) -> Any:
    """NaN (a metric undefined on one class) as null: PostgreSQL's jsonb rejects NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def repurchase_train(*, as_of: datetime, horizon_days: int = DEFAULT_HORIZON_DAYS, promote: bool = True) -> TrainOutcome:
    """Train, validate on a later cutoff, store a ModelVersion with ours-vs-baselines, promote only if better."""
    params = {"horizon_days": horizon_days, "promote": promote}
    with tracked("train_repurchase_model", as_of=as_of, params=params) as job:
        result = repurchase.train(as_of, horizon_days)
        plan = result.plan
        version = ModelVersion.objects.create(
            kind=REPURCHASE, as_of=as_of, horizon_days=plan.horizon_days, data_start=plan.data_start,
            data_end=as_of, train_cutoffs=[c.isoformat() for c in plan.train_cutoffs],
            validation_cutoff=plan.validation_cutoff, algorithm=result.algorithm, features=list(features.FEATURES),
            metrics=_json_safe({**result.metrics, "candidates": result.candidates, "train_rows": result.train_rows,
                                "requested_horizon_days": plan.requested_horizon_days, **result.extra}),
            baselines=_json_safe(result.baselines), feature_importance=result.feature_importance,
            calibration=result.calibration, notes=" ".join(filter(None, [plan.notes, result.extra.get("notes")])),
        )
        version.artifact_path = artifacts.save(repurchase.artifact(result),
                                               f"repurchase/v{version.pk}-{as_of:%Y%m%d}.joblib")
        version.save(update_fields=["artifact_path"])
        promoted, serving_auc = False, None
        if promote:
            promoted, serving_auc = _promote_if_better(version, result, as_of)
        else:
            version.notes = (version.notes + "\nNot considered for promotion (trained with promote=False).").strip()
            version.save(update_fields=["notes"])
        job.rows = result.metrics["n"]
        job.message = f"v{version.pk} {result.algorithm} AUC {result.metrics['roc_auc']}; promoted={promoted}"
        job.run.params = {**params, "model_version": version.pk}
        job.run.save(update_fields=["params"])
    return TrainOutcome(version, promoted, serving_auc, result)


def weekly_learning(*, as_of: datetime, horizon_days: int = DEFAULT_HORIZON_DAYS) -> TrainOutcome:
    """Beat's weekly job, before that night's pipeline: train the repurchase model (promoted only if it beats the
    serving one on the same validation rows) and learn the week's engagement weights (engagement_weights), from one
    read of the history. The weights are learned on the model's training sample at as_of − 90 days, the matrix of
    one of its training windows, so here they cost almost nothing; the nights of the week, that night included,
    reuse them. A night that finds none younger than ANALYTICS_RELEARN_DAYS learns them itself. The one read of
    the orders and enrolments is training's, of its sample's members (repurchase.train)."""
    with matrices.shared():
        outcome = repurchase_train(as_of=as_of, horizon_days=horizon_days)
        engagement_weights(as_of)
    return outcome


def _promote_if_better(version: ModelVersion, result: repurchase.TrainResult, as_of: datetime) -> tuple[bool, float | None]:
    new_auc = result.metrics["roc_auc"]
    new_auc = float("nan") if new_auc is None else new_auc
    if result.validation is None or not result.extra.get("validated"):
        # Nothing to compare on: an unvalidated model replaces nothing, but serves when nothing else does.
        serving = _serving(version.kind)
        if serving is None:
            version.is_serving = True
        version.notes = (version.notes + "\n" + ("Promoted: no model was serving (unvalidated)." if serving is None
                         else f"Not promoted: unvalidated, v{serving.pk} keeps serving.")).strip()
        version.save(update_fields=["is_serving", "notes"])
        return serving is None, None
    with transaction.atomic():
        # Lock the serving row: two trainings finishing together must not both decide they beat it.
        serving = ModelVersion.objects.select_for_update().filter(kind=version.kind, is_serving=True).first()
        serving_auc = _auc_of(serving, result.validation, as_of) if serving else None
        new_ok = not math.isnan(new_auc)
        serving_unknown = serving_auc is None or math.isnan(serving_auc)
        better = serving is None or (new_ok and (serving_unknown or new_auc > serving_auc))
        if better:
            if serving:
                ModelVersion.objects.filter(pk=serving.pk).update(is_serving=False)
            version.is_serving = True
        note = (f"Promoted: validation AUC {new_auc} vs serving v{serving.pk} {serving_auc} on the same rows."
                if better and serving else "Promoted: no model was serving." if better else
                f"Not promoted: validation AUC {new_auc} does not beat serving v{serving.pk} ({serving_auc}).")
        version.notes = (version.notes + "\n" + note).strip()
        version.save(update_fields=["is_serving", "notes"])
    return better, serving_auc


def _scores_today(version: ModelVersion) -> bool:
    """Whether the version's artifact reads the feature matrix this code builds (a model trained before a feature
    was added or renamed cannot score; a new one is trained instead)."""
    try:
        art = artifacts.load(version.artifact_path) if version.artifact_path else None
    except (OSError, EOFError, ValueError, AttributeError, ImportError):
        return False
    return art is not None and art.get("input_features") == list(features.FEATURES)


def model_for(as_of: datetime, horizon_days: int | None = None) -> ModelVersion:
    """The serving model if it was trained no later than as_of (and for the asked horizon); else train one now at
    as_of — promoted only if nothing serves — so a backfill never scores with a model that saw the future."""
    serving = _serving()
    if serving and serving.as_of <= as_of and (horizon_days is None or serving.metrics.get(
            "requested_horizon_days", serving.horizon_days) == horizon_days) and _scores_today(serving):
        return serving
    outcome = repurchase_train(as_of=as_of, horizon_days=horizon_days or DEFAULT_HORIZON_DAYS,
                               promote=serving is None)
    if serving is not None and not _scores_today(serving) and serving.as_of <= as_of:
        # The serving model cannot read today's features: it is replaced, not compared (it could never score).
        with transaction.atomic():
            ModelVersion.objects.filter(pk=serving.pk).update(is_serving=False)
            version = outcome.version
            version.is_serving = True
            version.notes = (version.notes + f"\nPromoted: v{serving.pk} was trained on an older feature set.").strip()
            version.save(update_fields=["is_serving", "notes"])
    return outcome.version


def propensity_score(*, as_of: datetime, version: ModelVersion | None = None, id_from: int | None = None,
                     id_to: int | None = None, bgnbd: dict[str, float] | None = None, matrix: str | None = None,
                     run: RecommendationRun | None = None) -> int:
    """PropensityScore for members in [id_from, id_to) with the given (default: serving) model. `bgnbd`: the whole
    population's BG/NBD parameters at as_of (the nightly run passes them to every chunk), so a member's score does
    not depend on the chunk it falls in; without them a chunk fits its own. `matrix`: the chunk's rows of the night's
    feature matrix, stored by the serial part of a fanned-out night (_share_matrix). `run`: the night's
    recommendation run, when this chunk is one of its scoring chunks: the night's last chunk to finish, scoring or
    recommending, makes it current (_finish_if_complete)."""
    version = version or model_for(as_of)
    params = {"model_version": version.pk, "id_from": id_from, "id_to": id_to}
    if run is not None:
        params["run_id"] = run.pk
    with tracked("score_members", as_of=as_of, params=params) as job:
        art = artifacts.load(version.artifact_path)
        # Inline inside the nightly run the chunk is a slice of the matrix engagement and segments used (same
        # parameters, same rows); on another worker it loads its part of that matrix, stored by the serial part,
        # or, when that file is gone (a chunk retried after its night completed), builds it for the chunk's members
        # alone (matrices.at): the same rows either way.
        X = _shared_matrix(matrix) if matrix else None
        if X is None:
            X = matrices.at(as_of, _rng(id_from, id_to), bgnbd)
        scored = repurchase.score(art, X, as_json=True)  # the reasons as the JSON text stored
        when = _db_datetime(as_of)
        rows = [(int(m), version.pk, when, float(p), r)
                for m, p, r in zip(scored.index, scored["probability"], scored["top_reasons"])]
        with transaction.atomic():
            existing = PropensityScore.objects.filter(model_version=version, as_of=as_of)
            _delete_rows(_rng(id_from, id_to).apply(existing))
            _insert_rows(PropensityScore, ["member", "model_version", "as_of", "probability", "top_reasons"], rows)
        job.rows = len(rows)
    if run is not None:
        _finish_if_complete(run)
    return len(rows)


def _matrix_part_names(token: str, chunks: int) -> list[str]:
    """Where _share_matrix stores the parts of the night whose run has this token, one per chunk."""
    return [f"{SHARED_MODELS}/run-{token}-matrix-{i}.joblib" for i in range(chunks)]


def _share_matrix(feats: pd.DataFrame, ranges: list[tuple[int, int]], names: list[str]) -> None:
    """Store each range's rows of the night's feature matrix (built with the population's BG/NBD parameters) for
    the scoring chunks of a fanned-out night, one uncompressed file per chunk (`names`): a chunk in another worker
    process then loads its part instead of reading its members' history and building it again (about as long as the
    scoring itself). Deleted when the night completes; prune-recommendation-rows deletes what a night that never
    completed left."""
    for (id_from, id_to), name in zip(ranges, names, strict=True):
        artifacts.save(matrices.part(feats, _rng(id_from, id_to)), name, compress=0)


def _shared_matrix(name: str) -> pd.DataFrame | None:
    """A chunk's part of the night's feature matrix (_share_matrix); None when the file is gone: the caller builds
    it."""
    try:
        return artifacts.load(name)
    except FileNotFoundError:
        return None


# ---------------------------------------------------------------------------------------------------------------
# Recommendations


def recommendation_model(as_of: datetime, record: datasets.CourseRecord | None = None) -> evaluation.CutoffData:
    """What the blend needs at as_of whatever the members: the catalogue, the purchase/enrolment history (one read,
    or `record` filtered) and the per-item signals (popularity, re-buyable items, item–item similarities)."""
    return evaluation.cutoff_data(as_of, record)


@dataclass
class _RunCache:
    record: datasets.CourseRecord | None = None  # read by recommendations_start, used once by the first chunk
    model: evaluation.CutoffData | None = None
    # The members with every course through their tier, at the run's as_of, when the run's file holds them.
    all_course_members: np.ndarray | None = None


# What one worker keeps of a run, so it reads the course history once for the run's validation split and every
# chunk of it it takes (that history covers every member). Keyed by the run's random token, never its pk: a pk can
# come back after a rollback, with different data behind it. One run at a time; released when the run completes.
_run_model: dict[str, _RunCache] = {}


def _run_cache(token: str) -> _RunCache:
    if token not in _run_model:
        _run_model.clear()
        _run_model[token] = _RunCache()
    return _run_model[token]


def _model_for_run(run: RecommendationRun) -> evaluation.CutoffData:
    token = run.params.get("token")
    if token is None:
        return recommendation_model(run.as_of)
    cache = _run_cache(token)
    if cache.model is None:
        shared = _shared_model(run)
        if isinstance(shared, dict):  # (a file of the release before this one held the model alone: refit)
            cache.model, cache.all_course_members = shared["model"], shared["all_course_members"]
        else:
            cache.model = recommendation_model(run.as_of, cache.record)
        cache.record = None
    return cache.model


def _all_course_members_of_run(run: RecommendationRun, id_from: int | None, id_to: int | None) -> set[int] | None:
    """The range's members with every course, from the run's file (_share_model) when this worker loaded it; None:
    read them (datasets.all_course_members)."""
    ids = _run_model.get(run.params.get("token"), _RunCache()).all_course_members
    if ids is None:
        return None
    return set(ids[datasets.in_range(pd.Series(ids), _rng(id_from, id_to)).to_numpy()].tolist())


# The folder of ARTIFACTS_DIR holding each fanned-out night's files for its chunks: the recommender (_share_model),
# the parts of the feature matrix (_share_matrix) and the night's one read of the orders and enrolments
# (_share_reads).
SHARED_MODELS = "recommendations"


def _shared_model_name(token: str) -> str:
    return f"{SHARED_MODELS}/run-{token}.joblib"


def _shared_reads_name(token: str) -> str:
    return f"{SHARED_MODELS}/run-{token}-reads.pickle"


def _share_model(token: str, as_of: datetime) -> str:
    """Fit the run's recommender once, here, and store it for the chunk tasks (ARTIFACTS_DIR, which workers share as
    they share the propensity model's artifacts): otherwise every worker process fits the same model in its first
    chunk, which does not get cheaper with more processes (docs/SCALING.md). Uncompressed: it is read back within
    minutes and deleted when the run completes."""
    cache = _run_cache(token)
    cache.model = recommendation_model(as_of, cache.record)
    cache.record = None
    # And who has every course through their tier (they get no recommendations): a chunk would otherwise rebuild
    # its members' subscriptions from the orders (≈ 0.75 s a chunk of 34,000 on PostgreSQL).
    cache.all_course_members = np.array(sorted(datasets.all_course_members(as_of)), dtype=np.int64)
    return artifacts.save({"model": cache.model, "all_course_members": cache.all_course_members},
                          _shared_model_name(token), compress=0)


def _share_reads(run: RecommendationRun) -> None:
    """Inside a fanned-out night's recommendation side (recommendations_prepare), under its read_once: make the one
    read of the orders and enrolments now and store it for the night's serial part (_shared_reads), which needs the
    same rows for the feature matrix: read by both at once, on 2 cores, the two reads (and PostgreSQL serving both)
    slowed each other and everything beside them."""
    with tracked("share_reads", as_of=run.as_of, params={"run_id": run.pk}) as job:
        reads = datasets.once_reads()
        artifacts.save_pickled(reads, run.params["shared_reads"])
        job.rows = len(reads.orders) + len(reads.enrollments)
        job.message = f"{len(reads.orders)} orders, {len(reads.enrollments)} enrolments: {run.params['shared_reads']}"


def _shared_reads(run: RecommendationRun, *, wait: float | None = None) -> datasets.OnceReads | None:
    """For the night's serial part, when its feature matrix first needs the orders and enrolments: the read the
    recommendation side stores (_share_reads), waited for while that side is at it (ANALYTICS_SHARED_READS_WAIT
    seconds at most). None — the serial part reads them itself — when that side has not started (a busy worker),
    failed, or takes longer, or the file is gone."""
    wait = float(getattr(settings, "ANALYTICS_SHARED_READS_WAIT", 60) if wait is None else wait)
    deadline = monotonic() + wait
    name = run.params["shared_reads"]
    while True:
        # The status before the file: a side that succeeded between the two looks has written it.
        status = (JobRun.objects.filter(job="share_reads", params__run_id=run.pk).order_by("-pk")
                  .values_list("status", flat=True).first())
        with contextlib.suppress(FileNotFoundError):
            return artifacts.load_pickled(name)
        if status != JobRun.Status.RUNNING or monotonic() > deadline:
            return None
        sleep(0.05)


def _shared_model(run: RecommendationRun) -> dict[str, Any] | None:
    """What _share_model stored for this run (the recommender, the members with every course); None when the run has
    none or its file is gone (a chunk retried after the run completed): the caller fits it."""
    name = run.params.get("shared_model")
    if not name:
        return None
    try:
        return artifacts.load(name)
    except FileNotFoundError:
        return None


def recommendations_for(as_of: datetime, k: int, id_from: int | None = None, id_to: int | None = None, *,
                        blend: dict | None = None, fitted: evaluation.CutoffData | None = None,
                        horizon_days: int = DEFAULT_HORIZON_DAYS, blocked: set[int] | None = None) -> pd.DataFrame:
    """Top-k per member in the range, computed at as_of (nothing written), with the blend that evaluation selects:
    `blend` is evaluation.tuned_blend(as_of, horizon_days, k) (tuned here when not given), `fitted` the data at
    as_of (recommendation_model) when the caller already has it, `blocked` the range's members with every course
    (who get none) when the caller has them. Only the range's members' rows are read from `fitted`."""
    blend = blend or evaluation.tuned_blend(as_of, horizon_days, k)
    if blocked is None:
        blocked = datasets.all_course_members(as_of, _rng(id_from, id_to))
    member_ids = [m for m in datasets.members(as_of, _rng(id_from, id_to))["member_id"].astype(int).tolist()
                  if m not in blocked]
    data = fitted if fitted is not None else recommendation_model(as_of)
    with limited_threads():
        sig = evaluation.signals_at(as_of, member_ids, data=data)
        interactions = data.members(id_from, id_to)[1]
        completed = interactions.loc[interactions["completed"], ["member_id", "course_id"]]
        return recommendations.serve(sig, tuple(blend["weights"]), k, completed, None, blend["popularity"])


def recommendations_evaluate(*, as_of: datetime, horizon_days: int = DEFAULT_HORIZON_DAYS, k: int = DEFAULT_K
                             ) -> dict[str, Any]:
    """Time split (the evaluation `evaluate_models` prints): the served blend, tuned on the split before
    as_of − horizon, fitted at as_of − horizon and tested on what members took up in the horizon after it,
    against popularity, time-decayed popularity, own items then popularity and item-kNN."""
    with tracked("evaluate_recommendations", as_of=as_of, params={"horizon_days": horizon_days, "k": k}) as job:
        result = evaluation.recommendation_evaluation(as_of, horizon_days, k)
        out: dict[str, Any] = dict(result["metrics"])
        cutoff = as_of - timedelta(days=horizon_days)
        out["window"] = {"train_before": cutoff.isoformat(), "test_until": as_of.isoformat(),
                         "horizon_days": horizon_days}
        out["blend"] = {"weights": list(result["weights"]), "popularity": result["popularity"]}
        job.rows = out["ours"]["users"]
        job.message = f"NDCG@{k} ours {out['ours']['ndcg']} vs popularity {out['popularity']['ndcg']}"
    return out


def recommendations_start(*, as_of: datetime, k: int = DEFAULT_K, chunks: int = 1,
                          horizon_days: int = DEFAULT_HORIZON_DAYS, night: dict[str, Any] | None = None
                          ) -> RecommendationRun:
    """Select the blend for this run — evaluation.tuned_blend, the selection `evaluate_models` measures — and store
    it with its validation NDCG@k against the peers' on the same split; its chunks share this process's recommender
    (a run whose chunks go to other processes is prepared by one of them: _pending_run, recommendations_prepare).
    `night`: the run is a nightly pipeline's, which completes it (_finish_if_complete) once its own part is done
    ("night_done") and its `score_chunks` scoring chunks too; the night's other parameters (its shared files)."""
    token = uuid.uuid4().hex
    chosen = _choose_blend(token, as_of=as_of, k=k, horizon_days=horizon_days)
    return _pending_run(as_of=as_of, k=k, chunks=chunks, night=night, token=token, chosen=chosen)


def _pending_run(*, as_of: datetime, k: int, chunks: int, night: dict[str, Any] | None, token: str | None = None,
                 chosen: dict[str, Any] | None = None) -> RecommendationRun:
    """A run's row, not current. Without `chosen` its blend is not chosen yet: recommendations_prepare chooses it
    and fills the row in (a fanned-out night creates it first, for its chunks' completion)."""
    chosen = chosen or {"params": {}, "metrics": {}, "baseline_metrics": {}}
    return RecommendationRun.objects.create(
        as_of=as_of, k=k, params={"chunks": chunks, "token": token or uuid.uuid4().hex,
                                  **({**night, "night_done": False} if night is not None else {}),
                                  **chosen["params"]},
        metrics=chosen["metrics"], baseline_metrics=chosen["baseline_metrics"], is_current=False)


def _choose_blend(token: str, *, as_of: datetime, k: int, horizon_days: int) -> dict[str, Any]:
    """The blend of a run at as_of (the params, metrics and baseline metrics it is stored with): the one selected this
    week (by beat's weekly task or an earlier night, _recent_blend), else tuned now (evaluation.tuned_blend). Reads
    the course history at as_of into the run's cache (`token`), which the recommender is then fitted from."""
    with tracked("evaluate_recommendations", as_of=as_of, params={"horizon_days": horizon_days, "k": k}) as job:
        # Read at as_of: the validation split (as_of − horizon) is a filter of it, and a chunk run by this worker
        # serves from it.
        record = _run_cache(token).record = datasets.course_record(as_of)
        selected = _recent_blend(as_of, k, horizon_days)
        if selected is not None:
            # The blend selected by an earlier night of this week, with the validation figures of its selection.
            job.rows = selected.metrics.get("users", 0)
            job.message = (f"blend {selected.params['weights']} ({selected.params.get('popularity')} popularity) "
                           f"selected at {selected.as_of:%Y-%m-%d} (run {_selected_in(selected)}), reused for "
                           f"{relearn_days()} days; validation NDCG@{k} {selected.metrics.get('ndcg')}")
            return {"params": {**{key: selected.params[key] for key in ("weights", "popularity", "tuned",
                                                                         "evaluation_window")
                                  if key in selected.params},
                               "selected_in_run": _selected_in(selected)},
                    "metrics": selected.metrics, "baseline_metrics": selected.baseline_metrics}
        blend = evaluation.tuned_blend(as_of, horizon_days, k, record)
        validation = blend.pop("validation")
        job.rows = blend["validation_users"]
        job.message = (f"blend {blend['weights']} ({blend['popularity']} popularity); validation NDCG@{k} "
                       f"{validation['ours']['ndcg']}")
    ours = validation.pop("ours")
    return {"params": _json_safe({
                "weights": list(blend["weights"]), "popularity": blend["popularity"], "tuned": blend["tuned"],
                "evaluation_window": {"train_before": blend["validation_cutoff"].isoformat(),
                                      "test_until": as_of.isoformat(), "horizon_days": horizon_days}}),
            "metrics": _json_safe(ours), "baseline_metrics": _json_safe(validation)}


def recommendations_prepare(*, run: RecommendationRun, horizon_days: int, ranges: list[tuple[int, int]],
                            dispatch: Any) -> RecommendationRun:
    """The recommendation part of a fanned-out night, in a process of its own (nightly_pipeline created `run` and
    sent this): choose the blend, fit and store the recommender for the chunks (_share_model), then send the run's
    recommend chunks through `dispatch`. Meanwhile the serial part builds the feature matrix, scores and computes
    engagement and segments in the other process; it marks its own end on the same row, so what this writes is
    merged under the row's lock."""
    # One read of the orders and enrolments for the course history and who has every course
    # (bench/bench_learning_steps.py: on SQLite about half the time, on PostgreSQL the same), made first and stored
    # for a night's serial part, which needs the same rows (_share_reads).
    with datasets.read_once(run.as_of):
        if run.params.get("shared_reads"):
            _share_reads(run)
        chosen = _choose_blend(run.params["token"], as_of=run.as_of, k=run.k, horizon_days=horizon_days)
        with tracked("share_recommender", as_of=run.as_of, params={"run_id": run.pk}) as job:
            name = _share_model(run.params["token"], run.as_of)
            job.message = f"fitted once for the run's {len(ranges)} chunks: {name}"
    with transaction.atomic():
        locked = RecommendationRun.objects.select_for_update().get(pk=run.pk)
        locked.params = {**locked.params, **chosen["params"], "shared_model": name}
        locked.metrics, locked.baseline_metrics = chosen["metrics"], chosen["baseline_metrics"]
        locked.save(update_fields=["params", "metrics", "baseline_metrics"])
    for id_from, id_to in ranges:
        dispatch("recommend", run_id=run.pk, id_from=id_from, id_to=id_to)
    return locked


def recommendations_select(*, as_of: datetime, k: int = DEFAULT_K, horizon_days: int = DEFAULT_HORIZON_DAYS
                           ) -> RecommendationRun:
    """The week's recommendation blend, selected ahead of that night (beat's weekly task, beside the model's
    training, on the other worker process): a run holding the selection and its validation figures against the
    peers', with no rows, never current (params["selection_only"]); the nights of the week reuse it (_recent_blend)
    instead of each first night selecting it itself. When a blend selected less than ANALYTICS_RELEARN_DAYS ago
    exists, that run is returned and nothing is selected."""
    recent = _recent_blend(as_of, k, horizon_days)
    if recent is not None:
        return recent
    token = uuid.uuid4().hex
    try:
        with datasets.read_once(as_of):
            chosen = _choose_blend(token, as_of=as_of, k=k, horizon_days=horizon_days)
    finally:
        _run_model.pop(token, None)  # the course history read for it
    return RecommendationRun.objects.create(
        as_of=as_of, k=k, params={"selection_only": True, **chosen["params"]}, metrics=chosen["metrics"],
        baseline_metrics=chosen["baseline_metrics"], is_current=False)


def _selected_in(run: RecommendationRun) -> int:
    """The run whose night selected this run's blend (itself unless it reused one)."""
    return int(run.params.get("selected_in_run", run.pk))


def _recent_blend(as_of: datetime, k: int, horizon_days: int) -> RecommendationRun | None:
    """The newest completed run whose blend was selected (tuned on a split that ends at or before as_of) less than
    ANALYTICS_RELEARN_DAYS before as_of, for the same k and horizon; None when the blend must be selected again."""
    days = relearn_days()
    if not days:
        return None
    oldest = as_of - timedelta(days=days)
    # A night's run once current, or the week's selection made ahead of the night (recommendations_select).
    run = (RecommendationRun.objects.filter(Q(is_current=True) | Q(params__selection_only=True), k=k,
                                            as_of__lte=as_of, as_of__gt=oldest)
           .order_by("-as_of", "-pk").first())
    if run is None or not run.params.get("tuned") or "weights" not in run.params:
        return None
    if (run.params.get("evaluation_window") or {}).get("horizon_days") != horizon_days:
        return None
    selected_at = RecommendationRun.objects.filter(pk=_selected_in(run)).values_list("as_of", flat=True).first()
    return run if selected_at is not None and selected_at > oldest else None


def recommendations_chunk(*, run: RecommendationRun, id_from: int | None = None, id_to: int | None = None) -> int:
    """Write the run's RecommendationSet of every member in the range (a retried chunk replaces its rows). Returns
    the number of courses recommended."""
    params = {"run_id": run.pk, "id_from": id_from, "id_to": id_to}
    with tracked("recommend", as_of=run.as_of, params=params) as job:
        blend = {"weights": run.params["weights"], "popularity": run.params.get("popularity", "decayed")}
        fitted = _model_for_run(run)
        recs = recommendations_for(run.as_of, run.k, id_from, id_to, blend=blend, fitted=fitted,
                                   blocked=_all_course_members_of_run(run, id_from, id_to))
        members, items = _recommendation_items(recs)
        with transaction.atomic():
            _delete_rows(_rng(id_from, id_to).apply(RecommendationSet.objects.filter(run=run)))
            _insert_rows(RecommendationSet, ["run", "member", "items"],
                         list(zip([run.pk] * len(members), members, items)))
            if RecommendationRun.objects.filter(pk=run.pk, is_current=True).exists():
                # A chunk of a run learners already see, written again (its task delivered twice): neither the
                # DELETE nor COPY sends a signal, so tell the page cache here.
                transaction.on_commit(pagecache.bump)
        job.rows = len(recs)
        job.message = f"{len(members)} members"
    _finish_if_complete(run)
    return len(recs)


def _recommendation_items(recs: pd.DataFrame) -> tuple[list[int], list[str]]:
    """Each member's rows of `recs` (recommendations.serve: sorted by member, then rank 1..k) as the JSON text of
    RecommendationSet.items: [[course id, score, reason code, reason course id or null], ...] best first. The text
    json.dumps would write (a float as its repr), one %-template per course: 1,000,000 a night at 100k members."""
    if recs.empty:
        return [], []
    members = recs["member_id"].astype(int).to_numpy()
    scores = recs["score"].astype(float).to_numpy()
    if not np.isfinite(scores).all():
        raise ValueError("a recommendation score is not a finite number")
    reasons = {code: _db_json(code) for code in recs["reason"].unique().tolist()}
    because = recs["reason_course_id"]
    because = because.astype(object).where(because.notna(), None).tolist()
    entry = "[%d, %r, %s, %s]"  # json.dumps' text for these values, without its per-call cost
    entries = [entry % (course, score, reasons[reason], "null" if other is None else int(other))
               for course, score, reason, other in zip(recs["course_id"].astype(int).tolist(), scores.tolist(),
                                                        recs["reason"].tolist(), because, strict=True)]
    starts = np.flatnonzero(np.r_[True, members[1:] != members[:-1]])
    position = np.arange(len(recs)) - np.repeat(starts, np.diff(np.r_[starts, len(recs)])) + 1
    if not np.array_equal(recs["rank"].to_numpy(), position):
        raise ValueError("recommendations must come member by member, ranked 1, 2, 3, ... (the set stores the order)")
    starts = starts.tolist()
    ends = [*starts[1:], len(entries)]
    return ([int(members[start]) for start in starts],
            ["[" + ", ".join(entries[start:end]) + "]" for start, end in zip(starts, ends, strict=True)])


def _chunks_done(job: str, run: RecommendationRun) -> int:
    """How many of the run's chunk ranges have a succeeded `job` (a chunk delivered twice counts once)."""
    done = JobRun.objects.filter(job=job, status=JobRun.Status.SUCCEEDED, params__run_id=run.pk)
    return len(set(done.values_list("params__id_from", flat=True)))


def _finish_if_complete(run: RecommendationRun, *, night_done: bool = False) -> None:
    """Make the run current once all its chunks have succeeded: its recommendation chunks and, for a nightly run,
    its scoring chunks (params["score_chunks"]) and the night's own part (engagement, segments: `night_done`, from
    nightly_pipeline), whichever finishes last: the chunks of a fanned-out night run beside the serial part and
    beside each other."""
    with transaction.atomic():
        locked = RecommendationRun.objects.select_for_update().get(pk=run.pk)
        if night_done and locked.params.get("night_done") is False:
            locked.params = {**locked.params, "night_done": True}
            locked.save(update_fields=["params"])
        if locked.is_current or locked.params.get("night_done") is False:
            return
        if _chunks_done("recommend", run) < int(locked.params.get("chunks", 1)):
            return
        if _chunks_done("score_members", run) < int(locked.params.get("score_chunks", 0)):
            return
        RecommendationRun.objects.filter(is_current=True).exclude(pk=run.pk).update(is_current=False)
        locked.is_current = True
        locked.save(update_fields=["is_current"])
        _run_model.clear()  # every chunk is done: this worker no longer needs the fitted model
        for name in [locked.params.get("shared_model"), locked.params.get("shared_reads"),
                     *locked.params.get("shared_matrices", [])]:
            if name:
                transaction.on_commit(partial(artifacts.delete, name))
        # The night's last step just finished: new scores, segments and recommendations are in, so bump the report
        # cache version and warm the default views.
        transaction.on_commit(_warm_reports)


def prune_recommendation_rows(*, keep_days: int | None = None, batch: int = 20_000) -> int:
    """Delete the RecommendationSet rows of runs that are neither current nor among the last `keep_days`
    (RECOMMENDATION_ROWS_KEEP_DAYS) days of runs: a night writes one row of k courses per member, and nothing reads a
    superseded run's rows once its successors serve (members see the current run; online evaluation counts Events).
    The runs themselves stay, with their metrics, for the model card. Deleted in primary-key slices of `batch` rows,
    one short transaction each, so other writers wait milliseconds, not the whole delete. Returns the number of rows
    deleted."""
    keep_days = settings.RECOMMENDATION_ROWS_KEEP_DAYS if keep_days is None else keep_days
    newest = RecommendationRun.objects.order_by("-as_of").values_list("as_of", flat=True).first()
    stale = (RecommendationRun.objects.filter(is_current=False, as_of__lt=newest - timedelta(days=keep_days))
             if newest is not None else RecommendationRun.objects.none())
    deleted = 0
    with tracked("prune_recommendations", params={"keep_days": keep_days}) as job:
        for run_id in stale.order_by("as_of").values_list("pk", flat=True):
            rows = RecommendationSet.objects.filter(run_id=run_id)
            bounds = rows.aggregate(low=Min("pk"), high=Max("pk"))
            if bounds["low"] is None:
                continue
            for start in range(bounds["low"], bounds["high"] + 1, batch):
                with transaction.atomic():
                    deleted += _delete_rows(rows.filter(pk__gte=start, pk__lt=start + batch))
            job.rows = deleted
        files = _drop_stale_shared_models()
        job.message = (f"{deleted} rows of runs older than {keep_days} days before the newest run deleted; "
                       f"{files} recommender, feature-matrix and read files of nights that never completed")
    return deleted


def _drop_stale_shared_models(max_age: timedelta = timedelta(days=1)) -> int:
    """Delete the files of fanned-out nights (_share_model, _share_matrix, _share_reads) older than `max_age`: a
    completed run deletes its own, so these are nights whose chunks never all succeeded. Returns how many."""
    folder = artifacts.artifacts_dir() / SHARED_MODELS
    oldest = (timezone.now() - max_age).timestamp()
    stale = [path for path in folder.glob("run-*") if path.stat().st_mtime < oldest] if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def _warm_reports() -> None:
    # Its own task, so the pipeline's run time does not include computing the staff reports (≈ 2.5 min on 100k
    # members on SQLite); under eager Celery (tests) it runs inline.
    # By name, because the tasks module imports this one (tasks are thin doors onto these services).
    current_app.signature("analytics.scoring.tasks.warm_report_cache").delay()


def recommendations_compute(*, as_of: datetime, k: int = DEFAULT_K) -> RecommendationRun:
    """Inline: one run over every member, evaluated, then made current."""
    run = recommendations_start(as_of=as_of, k=k, chunks=1)
    recommendations_chunk(run=run)
    run.refresh_from_db()
    return run


# ---------------------------------------------------------------------------------------------------------------
# Nightly pipeline


def nightly_pipeline(*, as_of: datetime | None = None, horizon_days: int = DEFAULT_HORIZON_DAYS, k: int = DEFAULT_K,
                     dispatch: Any = None, fan_out: bool = False,
                     progress: Callable[[], object] | None = None, processes: int | None = None) -> dict[str, Any]:
    """recommendations → feature matrix → propensity (serving model; one is trained if none) → engagement, segments.

    Scoring and recommendation writing fan out by member-id range through `dispatch(kind, **kwargs)` (the Celery
    task layer passes one that sends chunk tasks; inline it runs them here), each kind as soon as what it needs is
    ready, so other workers write recommendations while this one builds the feature matrix, and scores while it
    computes engagement and segments.
    `fan_out`: the dispatched work runs in other worker processes. With more than one chunk the whole recommendation
    side goes to one of them ("prepare_recommendations": the blend, the recommender fitted once and stored, then
    the recommend chunks; recommendations_prepare), so it runs beside this part from the start, and each scoring
    chunk's part of the feature matrix built here is stored for the score chunks (ARTIFACTS_DIR). The night's
    recommendation run becomes current when this part and every chunk are done (_finish_if_complete).
    `progress`: without a dispatch, called after each chunk run here (the command's progress bar).
    `processes`: how many share the chunks (member_chunks; default: night_processes())."""
    as_of = as_of or start_of_day()
    # One store of feature matrices for the whole run (analytics/ml/matrices.py): the one at as_of − 90 days
    # serves the engagement weights and a training window, the training windows both selection and refit.
    with matrices.shared(), datasets.read_once(as_of), tracked("nightly_pipeline", as_of=as_of,
                                    params={"horizon_days": horizon_days, "k": k}) as job:
        # SQLite has no autovacuum to keep statistics fresh; without them the chunked reads pick a poor index.
        refresh_stale_planner_statistics(["members_user", "members_order", "members_enrollment", "analytics_event"])
        # One chunk covers everyone: it runs unbounded, so inline it reads the matrix built below.
        ranges = member_chunks(processes=processes)
        ranges = ranges if len(ranges) > 1 else []
        share = fan_out and dispatch is not None and len(ranges) > 1
        token = uuid.uuid4().hex  # the night's run's, and every file it stores for its chunks
        parts: list[str | None] = _matrix_part_names(token, len(ranges)) if share else [None] * max(len(ranges), 1)
        # The recommendations first: they need the course history, not the matrix. Inline, the run is started here
        # (the matrix then filters the same one read of the orders and enrolments) and its chunks share this
        # process's recommender.
        night = {"score_chunks": max(len(ranges), 1), **({"shared_matrices": parts} if share else {})}
        if share:
            # Another process chooses the blend, fits the recommender and sends the recommend chunks
            # (recommendations_prepare) while this one builds the feature matrix: the run exists first, for the
            # chunks' completion. The blend is stored on it before any recommend chunk is sent. That process reads
            # the orders and enrolments first and stores them for this one (_share_reads), which meanwhile reads
            # the rest of the matrix's history.
            night["shared_reads"] = _shared_reads_name(token)
            run = _pending_run(as_of=as_of, k=k, chunks=len(ranges), night=night, token=token)
            dispatch("prepare_recommendations", run_id=run.pk, horizon_days=horizon_days, ranges=ranges)
            datasets.expect_reads(partial(_shared_reads, run))
        else:
            run = recommendations_start(as_of=as_of, k=k, chunks=max(len(ranges), 1), horizon_days=horizon_days,
                                        night=night)
        if dispatch is None:
            def dispatch(kind: str, **kwargs: Any) -> None:
                night_part(kind, **kwargs)  # here, as a worker would run it
                if progress is not None:
                    progress()
        if not share:
            for id_from, id_to in ranges or [(None, None)]:
                dispatch("recommend", run_id=run.pk, id_from=id_from, id_to=id_to)
        feats = matrices.at(as_of)
        bgnbd = feats.attrs["bgnbd_params"]  # the population's: every scoring chunk uses them
        if share:
            with tracked("share_matrix", as_of=as_of, params={"chunks": len(ranges)}) as shared:
                _share_matrix(feats, ranges, parts)
                shared.rows = len(feats)
        # Any serving model will do (whatever its horizon); the horizon only matters when one must be trained.
        version = model_for(as_of) if _serving() else model_for(as_of, horizon_days)
        for (id_from, id_to), part in zip(ranges or [(None, None)], parts, strict=True):
            dispatch("score", as_of=as_of, version_id=version.pk, id_from=id_from, id_to=id_to, bgnbd=bgnbd,
                     matrix=part, run_id=run.pk)
        engaged = engagement_compute(as_of=as_of, feats=feats)
        segments_compute(as_of=as_of, feats=feats)
        del feats
        job.rows = engaged
        job.message = f"model v{version.pk}, recommendation run {run.pk}, {max(len(ranges), 1)} chunks"
    _finish_if_complete(run, night_done=True)
    return {"as_of": as_of, "model_version": version.pk, "recommendation_run": run.pk, "chunks": max(len(ranges), 1)}


def night_part(kind: str, *, dispatch: Callable[..., None] | None = None, **kwargs: Any) -> int:
    """One part a fanned-out night dispatches (nightly_pipeline's `dispatch(kind, **kwargs)`), whoever runs it: a
    Celery task (analytics.scoring.tasks) or a process of the inline command (analytics.scoring.processes).
    "prepare_recommendations" (run_id, horizon_days, ranges) sends its recommend chunks through `dispatch`;
    "recommend" (run_id, id_from, id_to); "score" (as_of, version_id, id_from, id_to, bgnbd, matrix, run_id)."""
    if kind == "prepare_recommendations":
        run = RecommendationRun.objects.get(pk=kwargs["run_id"])
        recommendations_prepare(run=run, horizon_days=kwargs["horizon_days"],
                                ranges=[(id_from, id_to) for id_from, id_to in kwargs["ranges"]], dispatch=dispatch)
        return run.pk
    if kind == "recommend":
        run = RecommendationRun.objects.get(pk=kwargs["run_id"])
        return recommendations_chunk(run=run, id_from=kwargs["id_from"], id_to=kwargs["id_to"])
    if kind == "score":
        version = ModelVersion.objects.get(pk=kwargs["version_id"])
        run_id = kwargs.get("run_id")
        run = RecommendationRun.objects.get(pk=run_id) if run_id is not None else None
        return propensity_score(as_of=kwargs["as_of"], version=version, id_from=kwargs["id_from"],
                                id_to=kwargs["id_to"], bgnbd=kwargs.get("bgnbd"), matrix=kwargs.get("matrix"), run=run)
    raise ValueError(f"unknown part of a night: {kind!r}")


# ---------------------------------------------------------------------------------------------------------------
# Exports for the command-line contract


def member_labels(member_ids: list[int]) -> dict[int, str]:
    """The platform's id (external_id) for imported members, else our pk."""
    from members.accounts.selectors import member_external_ids

    # All external ids in one query (a pk__in list of 100,000 would exceed SQLite's parameter limit).
    ext = member_external_ids()
    return {m: (ext.get(m) or str(m)) for m in member_ids}


def product_labels(course_ids: list[int]) -> dict[int, str]:
    from members.catalogue.selectors import course_external_keys

    wanted = set(course_ids)
    rows = course_external_keys()
    return {pk: (ext or slug) for pk, ext, slug in rows if pk in wanted}


def scores_table(*, as_of: datetime, version: ModelVersion) -> pd.DataFrame:
    """member_id, repurchase_probability, engagement_score, segment, top_reasons for every scored member."""
    probs = pd.DataFrame.from_records(
        PropensityScore.objects.filter(model_version=version, as_of=as_of).order_by("member_id").values_list(
            "member_id", "probability", "top_reasons"), columns=["member", "repurchase_probability", "top_reasons"])
    eng = dict(EngagementScore.objects.filter(as_of=as_of).values_list("member_id", "score"))
    run = SegmentRun.objects.filter(as_of=as_of).first()
    seg = dict(SegmentAssignment.objects.filter(run=run).values_list("member_id", "label")) if run else {}
    labels = member_labels(probs["member"].tolist())
    out = pd.DataFrame({
        "member_id": probs["member"].map(labels),
        "repurchase_probability": probs["repurchase_probability"].round(4),
        "engagement_score": probs["member"].map(eng).astype(float).round(2),
        "segment": [seg.get(m, "") for m in probs["member"]],
        # "+" raises the member's probability, "−" lowers it.
        "top_reasons": ["; ".join(f"{'+' if r['effect'] == '+' else '−'} {r['text']}"
                                  for r in reasons_display(reasons))
                        for reasons in probs["top_reasons"]],
    })
    return out


def recommendations_table(run: RecommendationRun) -> pd.DataFrame:
    """One row per member and rank of the run, members in id order."""
    rows = pd.DataFrame.from_records(
        [(entry.rank, entry.course_id, entry.score, entry.reason, member)
         for member, items in RecommendationSet.objects.filter(run=run).order_by("member_id").values_list(
             "member_id", "items").iterator(chunk_size=10_000)
         for entry in recommended_courses(items)],
        columns=["rank", "course", "score", "reason", "member"])
    members = member_labels(rows["member"].unique().tolist())
    products = product_labels(rows["course"].unique().tolist())
    return pd.DataFrame({
        "member_id": rows["member"].map(members), "rank": rows["rank"],
        # A course deleted since the run keeps its id.
        "product_id": rows["course"].map(products).fillna(rows["course"].astype(str)),
        "score": rows["score"].round(4), "reason": rows["reason"],
    })

