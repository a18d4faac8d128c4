"""Churn risk: the distribution of predicted risk, the at-risk list and the calibration of the serving model.

Churn risk = 1 − the member's latest predicted (renewal/repurchase) probability from PropensityScore.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import (
    Count,
    Exists,
    F,
    FilteredRelation,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce, Greatest

from analytics.ml.reasons import reasons_display
from analytics.models import Event, ModelVersion, PropensityScore
from analytics.reports.common import (
    NO_FILTERS,
    Filters,
    cached,
    member_filter_q,
    paid_orders,
)
from analytics.reports.repurchase import Bin
from members.catalogue import selectors as catalogue_selectors
from members.subscriptions import selectors as subscription_selectors
from members.subscriptions.selectors import LIVE_STATUSES

RISK_BINS = tuple((f"{k / 10:.1f}–{(k + 1) / 10:.1f}", k / 10, (k + 1) / 10) for k in range(10))


@dataclass(frozen=True)
class CalibrationRow:
    decile: int
    members: int
    predicted: float  # mean predicted purchase probability
    actual: float  # share who actually had a paid order within the horizon


@dataclass(frozen=True)
class Calibration:
    model: str
    as_of: datetime
    horizon_days: int
    rows: tuple[CalibrationRow, ...]


@dataclass(frozen=True)
class RiskDistribution:
    model: str
    as_of: datetime | None
    scored: int
    bins: tuple[Bin, ...]


def serving_model(kind: str | None = None) -> ModelVersion | None:
    qs = ModelVersion.objects.filter(is_serving=True)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("-created_at", "-pk").first()


def risk_distribution(*, filters: Filters = NO_FILTERS, model: ModelVersion | None = None) -> RiskDistribution:
    """The serving model's latest scoring batch, binned by churn risk (1 − probability). Cached: the bins only change
    when a batch is written (the nightly pipeline bumps the cache version then)."""
    model = model or serving_model()
    return cached("risk_distribution", {"model": model.pk if model else None, "f": filters.key()},
                  lambda: _risk_distribution(filters, model))


def _risk_distribution(filters: Filters, model: ModelVersion | None) -> RiskDistribution:
    scores = PropensityScore.objects.filter(member_filter_q(filters))
    if model is not None:
        scores = scores.filter(model_version=model)
    # One statement: the batch is `as_of = (SELECT MAX(as_of) …)`, an index-friendly equality the planner runs once.
    latest = scores.order_by("-as_of").values("as_of")[:1]
    aggregates: dict[str, object] = {"n": Count("pk"), "latest": Max("as_of")}
    for i, (_, low, high) in enumerate(RISK_BINS):
        # risk in [low, high) ⇔ probability in (1 − high, 1 − low]; the top bin includes risk 1.0.
        q = Q(probability__lte=1 - low) & (Q(probability__gt=1 - high) if i < len(RISK_BINS) - 1 else Q())
        aggregates[f"b{i}"] = Count("pk", filter=q)
    row = scores.filter(as_of=Subquery(latest)).aggregate(**aggregates)
    if row["latest"] is None:
        return RiskDistribution(str(model) if model else "", None, 0, ())
    bins = tuple(Bin(label, int(row[f"b{i}"] or 0)) for i, (label, _, _) in enumerate(RISK_BINS))
    return RiskDistribution(str(model) if model else "all models", row["latest"], int(row["n"] or 0), bins)


def at_risk_queryset(
    *, as_of: datetime, filters: Filters = NO_FILTERS, min_risk: float | None = None,
    renewal_within_days: int | None = None, model: ModelVersion | None = None, scored_as_of: datetime | None = None,
) -> QuerySet[Any]:
    """Live memberships with the member's score from the latest batch (`scored_as_of`, as risk_distribution found
    it; looked up here when not given) joined once, and last activity as Subquery annotations evaluated only for the
    rows of the page. Ordered by risk (highest first); members the batch did not score sort last."""
    model = model or serving_model()
    if scored_as_of is None:
        batch = PropensityScore.objects.all() if model is None else PropensityScore.objects.filter(model_version=model)
        scored_as_of = batch.aggregate(latest=Max("as_of"))["latest"]
    condition = Q(member__propensity_scores__as_of=scored_as_of)
    if model is not None:
        condition &= Q(member__propensity_scores__model_version=model)
    last_event = Event.objects.filter(member_id=OuterRef("member_id")).order_by("-occurred_at").values("occurred_at")[:1]
    last_learning = (
        catalogue_selectors.enrollments().filter(member_id=OuterRef("member_id"), last_activity_at__isnull=False)
        .order_by("-last_activity_at").values("last_activity_at")[:1]
    )
    qs = (
        subscription_selectors.subscriptions().filter(status__in=LIVE_STATUSES)
        .filter(member_filter_q(filters))
        .select_related("member", "tier")
        .annotate(batch=FilteredRelation("member__propensity_scores", condition=condition))
        .annotate(
            probability=F("batch__probability"),
            top_reasons=F("batch__top_reasons"),
            scored_at=F("batch__as_of"),
            last_event_at=Subquery(last_event),
            last_learning_at=Subquery(last_learning),
        )
        # SQLite's MAX(a, b) is NULL when either is; PostgreSQL's GREATEST skips NULLs. Coalescing both sides gives
        # the same answer on both.
        .annotate(last_activity_at=Greatest(
            Coalesce("last_event_at", "last_learning_at"), Coalesce("last_learning_at", "last_event_at")
        ))
    )
    if min_risk is not None:
        qs = qs.filter(probability__lte=1 - min_risk)
    if renewal_within_days is not None:
        # No lower bound: a live membership whose period already ended (past due, renewal pending) is due now.
        qs = qs.filter(current_period_end__lt=as_of + timedelta(days=renewal_within_days))
    return qs.order_by(F("probability").asc(nulls_last=True), "current_period_end", "pk")


# What the at-risk page and CSV show, as plain tuples (at_risk_values). Selecting these columns only, instead of the
# Subscription, User and tier rows select_related loads, is most of what makes the 30,000-row CSV fast: no model
# instances, three timestamps per row to convert instead of eleven, a narrow in-memory sort.
AT_RISK_FIELDS = ("member__display_name", "member__email", "tier__name", "billing_period", "current_period_end",
                  "probability", "top_reasons", "scored_at", "last_event_at", "last_learning_at")


def at_risk_values(qs: QuerySet[Any]) -> QuerySet[Any]:
    """at_risk_queryset's rows as AT_RISK_FIELDS tuples, in the same order. last_activity_at is left out on purpose:
    its GREATEST(COALESCE(…), COALESCE(…)) repeats both correlated subqueries, so it would run four more index
    look-ups per row; last_activity() takes the same maximum from the two values selected once."""
    return qs.values_list(*AT_RISK_FIELDS)


def last_activity(event_at: datetime | None, learning_at: datetime | None) -> datetime | None:
    """The later of the member's last event and last lesson activity, ignoring a missing one (as last_activity_at)."""
    present = [d for d in (event_at, learning_at) if d is not None]
    return max(present) if present else None


def default_within_days(model: ModelVersion | None) -> int | None:
    """The at-risk list's default renewal window: the model's horizon. The probability is the chance of a paid order
    within horizon_days, so its risk only speaks about memberships due to renew inside that window; a yearly member
    renewing in 200 days is "at risk" of not paying this month only because nothing is due."""
    return model.horizon_days if model is not None else None


def risk_drivers(reasons: object) -> list[object]:
    """The stored reasons that lower the predicted probability (effect "-", see analytics.ml.repurchase.top_reasons).
    A reason without a sign (older batches) is kept: unknown is shown rather than hidden. Each comes with its `text`
    in the active language (analytics.ml.reasons.reasons_display)."""
    out = []
    for r in reasons_display(reasons):
        if isinstance(r, dict):
            effect = r.get("effect")
            if effect == "+":
                continue
            weight = r.get("weight")
            if effect is None and isinstance(weight, (int, float)) and weight > 0:
                continue
        out.append(r)
    return out


def at_risk_count_params(*, filters: Filters, min_risk: float | None, within: int | None,
                         model: ModelVersion | None, batch: datetime | None, now: datetime) -> dict[str, object]:
    """Everything the at-risk list's length depends on (the renewal filter moves with the day)."""
    return {"f": filters.key(), "min_risk": min_risk, "within": within, "model": model.pk if model else None,
            "batch": batch, "day": now.date()}


def at_risk_count(qs: QuerySet[Any], params: dict[str, object]) -> int:
    """The at-risk list's length, cached: counting every live membership is the expensive part of a page."""
    return cached("at_risk_count", params, qs.count)


def latest_closed_batch(*, now: datetime) -> tuple[ModelVersion, datetime] | None:
    """The most recent scoring run whose outcome window has fully passed (as_of + the model's horizon ≤ now), from
    whichever model version wrote it: the serving model of today usually has no closed window yet, but the one that
    scored a horizon ago does. Two queries: the (few) model versions, then one index scan down as_of."""
    versions = {v.pk: v for v in ModelVersion.objects.all()}
    if not versions:
        return None
    closed = Q()
    for v in versions.values():
        closed |= Q(model_version_id=v.pk, as_of__lte=now - timedelta(days=v.horizon_days))
    row = (
        PropensityScore.objects.filter(closed).order_by("-as_of", "-pk").values_list("model_version_id", "as_of")
        .first()
    )
    if row is None:
        return None
    return versions[row[0]], row[1]


def calibration(*, now: datetime, deciles: int = 10) -> Calibration | None:
    """The latest closed scoring run (see latest_closed_batch) against what happened: a paid order (any kind, refunds
    excluded) in [as_of, as_of + horizon), the window the model was trained to predict. Members are split into
    deciles by predicted probability. None when no scoring run's horizon has passed yet."""

    def compute() -> Calibration | None:
        found = latest_closed_batch(now=now)
        if found is None:
            return None
        model, closed = found
        end = closed + timedelta(days=model.horizon_days)
        bought = paid_orders().filter(member_id=OuterRef("member_id"), paid_at__gte=closed, paid_at__lt=end)
        rows = list(
            PropensityScore.objects.filter(model_version=model, as_of=closed)
            .annotate(actual=Exists(bought))
            .order_by("probability", "member_id")
            .values_list("probability", "actual")
        )
        out = []
        n = len(rows)
        for d in range(deciles):
            chunk = rows[d * n // deciles : (d + 1) * n // deciles]
            if not chunk:
                continue
            out.append(CalibrationRow(
                decile=d + 1, members=len(chunk),
                predicted=sum(p for p, _ in chunk) / len(chunk),
                actual=sum(1 for _, a in chunk if a) / len(chunk),
            ))
        return Calibration(str(model), closed, model.horizon_days, tuple(out))

    return cached("calibration", {"now": now.date()}, compute)


def validation_calibration(model: ModelVersion | None) -> Calibration | None:
    """The calibration analytics/ml measured on held-out members at the model's validation cutoff (stored in
    ModelVersion.calibration as bins of predicted vs observed). Shown next to the live check, and instead of it
    while no live window has closed."""
    if model is None or not isinstance(model.calibration, list) or not model.calibration:
        return None
    rows = []
    for entry in model.calibration:
        if not isinstance(entry, dict):
            continue
        try:
            rows.append(CalibrationRow(
                decile=int(entry.get("bin", len(rows))) + 1, members=int(entry.get("n", 0)),
                predicted=float(entry["predicted"]), actual=float(entry.get("observed", entry.get("actual", 0.0))),
            ))
        except (KeyError, TypeError, ValueError):
            continue
    if not rows:
        return None
    return Calibration(str(model), model.validation_cutoff or model.as_of, model.horizon_days, tuple(rows))
