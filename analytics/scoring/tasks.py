"""Celery tasks for the analytics jobs: thin wrappers taking ids and ISO strings, calling analytics.services.

The nightly task fans scoring and recommendation writing out by member-id range: bounded chunk tasks
(ANALYTICS_CHUNK_SIZE members each; a recommend and a score task per range, on the "ml" queue), sent as soon as what
they need exists, so several workers, on several machines, share a large population. It first sends the
recommendation run's preparation (the blend, the recommender fitted once and stored), which another worker takes
and which sends the recommend chunks; the serial part meanwhile builds the feature matrix, then sends the score
chunks and computes engagement and segments. Under eager mode all of it runs inline. No chord: a chord needs a
result backend, and the join is already done in the database — whatever finishes last, a chunk or the serial part,
makes the recommendation run current (under a row lock) and enqueues the report warm-up
(services._finish_if_complete). Every service writes its JobRun, and reruns replace rows for the same as_of, so a
retried chunk is harmless. What the chunks would otherwise each build again (the recommender, each scoring chunk's
part of the feature matrix), and the orders and enrolments both sides read, are stored in ARTIFACTS_DIR, which
every worker shares.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from celery import shared_task
from celery.canvas import Signature
from django.utils import timezone
from django.utils.dateparse import parse_datetime


def _services() -> Any:
    """The scoring services, imported when a task runs: they load scikit-learn, scipy and pandas (about 1.1 s), which
    every process registering these tasks (each web worker, each management command) would otherwise pay at start."""
    from analytics.scoring import services

    return services


def _as_of(value: str | None) -> datetime | None:
    """An ISO datetime or date; without an offset, in the site's time zone (as the commands' --as-of)."""
    if value is None:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueError(f"not an ISO datetime: {value!r}")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
    return parsed


@shared_task(acks_late=True)
def compute_engagement_task(as_of: str | None = None) -> int:
    services = _services()
    return services.engagement_compute(as_of=_as_of(as_of) or services.start_of_day())


@shared_task(acks_late=True)
def compute_segments_task(as_of: str | None = None) -> int:
    services = _services()
    return services.segments_compute(as_of=_as_of(as_of) or services.start_of_day()).pk


@shared_task(acks_late=True)
def train_repurchase_model_task(as_of: str | None = None, horizon_days: int | None = None) -> int:
    """The weekly learning (beat, before that night): the repurchase model and the week's engagement weights."""
    services = _services()
    outcome = services.weekly_learning(as_of=_as_of(as_of) or services.start_of_day(),
                                       horizon_days=horizon_days or services.DEFAULT_HORIZON_DAYS)
    return outcome.version.pk


@shared_task(acks_late=True)
def select_recommendation_blend_task(as_of: str | None = None, k: int | None = None,
                                     horizon_days: int | None = None) -> int:
    """The week's recommendation blend (beat, beside the weekly training, before that night)."""
    services = _services()
    return services.recommendations_select(as_of=_as_of(as_of) or services.start_of_day(), k=k or services.DEFAULT_K,
                                           horizon_days=horizon_days or services.DEFAULT_HORIZON_DAYS).pk


LEARNING_EXPIRES = 12 * 3600  # as beat's weekly learning (config/celery.py)


def send_learning(as_of: str | None = None) -> list[str]:
    """Beat's weekly learning, sent now: the repurchase model with the week's engagement weights, and the
    recommendation blend, one task each, so a worker's two processes take one each. An import sends it when nothing
    has been learned from the platform yet (analytics.ingest.platform), so the staff see a model card without waiting
    for the night, and that night only scores: otherwise it would train the model, learn the weights and select the
    blend itself. Returns the task ids."""
    return [task.apply_async(kwargs={"as_of": as_of}, expires=LEARNING_EXPIRES).id
            for task in (train_repurchase_model_task, select_recommendation_blend_task)]


@shared_task(acks_late=True)
def score_members_chunk_task(as_of: str, version_id: int, id_from: int | None, id_to: int | None,
                             bgnbd: dict[str, float] | None = None, matrix: str | None = None,
                             run_id: int | None = None) -> int:
    return _services().night_part("score", as_of=_as_of(as_of), version_id=version_id, id_from=id_from,
                                  id_to=id_to, bgnbd=bgnbd, matrix=matrix, run_id=run_id)


@shared_task(acks_late=True)
def recommend_chunk_task(run_id: int, id_from: int | None, id_to: int | None) -> int:
    return _services().night_part("recommend", run_id=run_id, id_from=id_from, id_to=id_to)


@shared_task(acks_late=True)
def prepare_recommendations_task(run_id: int, horizon_days: int, ranges: list[list[int]]) -> int:
    """A fanned-out night's recommendation run: its blend, its stored recommender, then its recommend chunks."""
    return _services().night_part("prepare_recommendations", run_id=run_id, horizon_days=horizon_days,
                                  ranges=ranges, dispatch=_send)


def chunk_signature(kind: str, **kwargs: Any) -> Signature:
    """The task for one part of the nightly fan-out (immutable: it takes no parent result): a chunk, or the
    recommendation run's preparation, which sends the recommend chunks."""
    if kind == "prepare_recommendations":
        return prepare_recommendations_task.si(kwargs["run_id"], kwargs["horizon_days"],
                                               [list(r) for r in kwargs["ranges"]])
    if kind == "score":
        return score_members_chunk_task.si(kwargs["as_of"].isoformat(), kwargs["version_id"], kwargs["id_from"],
                                           kwargs["id_to"], kwargs.get("bgnbd"), kwargs.get("matrix"),
                                           kwargs.get("run_id"))
    return recommend_chunk_task.si(kwargs["run_id"], kwargs["id_from"], kwargs["id_to"])


@shared_task(acks_late=True)
def prune_recommendation_rows_task() -> int:
    return _services().prune_recommendation_rows()


def _send(kind: str, **kwargs: Any) -> None:
    # At once: the nightly pipeline runs outside a transaction, so what the chunk reads (its run, the model version)
    # is already committed.
    chunk_signature(kind, **kwargs).apply_async()


@shared_task(acks_late=True)
def run_nightly_pipeline(as_of: str | None = None, horizon_days: int | None = None) -> dict:
    services = _services()
    result = services.nightly_pipeline(as_of=_as_of(as_of), horizon_days=horizon_days or services.DEFAULT_HORIZON_DAYS,
                                       dispatch=_send, fan_out=True)
    return {**result, "as_of": result["as_of"].isoformat()}


@shared_task(acks_late=True)
def warm_report_cache() -> list[str]:
    """Bump the report cache version and compute the default staff report views (after a nightly run)."""
    from analytics.reports.warm import warm_default_views

    return warm_default_views()

