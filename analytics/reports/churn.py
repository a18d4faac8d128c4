"""Churn risk: the distribution of predicted risk, the at-risk list and the calibration of the serving model.

Churn risk = 1 − the member's latest predicted (renewal/repurchase) probability from PropensityScore.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import (
    Count,
    Exists,
    F,
    FloatField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce, Greatest

from analytics.models import Event, ModelVersion, PropensityScore
from analytics.reports.common import (
    NO_FILTERS,
    Filters,
    cached,
    member_filter_q,
    paid_orders,
)
from analytics.reports.repurchase import Bin
from members.models import Enrollment, Subscription

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
    """The serving model's latest scoring batch, binned by churn risk (1 − probability)."""
    model = model or serving_model()
    scores = PropensityScore.objects.filter(member_filter_q(filters))
    if model is not None:
        scores = scores.filter(model_version=model)
    latest = scores.aggregate(latest=Max("as_of"))["latest"]
    if latest is None:
        return RiskDistribution(str(model) if model else "", None, 0, ())
    aggregates: dict[str, object] = {"n": Count("pk")}
    for i, (_, low, high) in enumerate(RISK_BINS):
        # risk in [low, high) ⇔ probability in (1 − high, 1 − low]; the top bin includes risk 1.0.
        q = Q(probability__lte=1 - low) & (Q(probability__gt=1 - high) if i < len(RISK_BINS) - 1 else Q())
        aggregates[f"b{i}"] = Count("pk", filter=q)
    row = scores.filter(as_of=latest).aggregate(**aggregates)
    bins = tuple(Bin(label, int(row[f"b{i}"] or 0)) for i, (label, _, _) in enumerate(RISK_BINS))
    return RiskDistribution(str(model) if model else "all models", latest, int(row["n"] or 0), bins)


def at_risk_queryset(
    *, as_of: datetime, filters: Filters = NO_FILTERS, min_risk: float | None = None,
    renewal_within_days: int | None = None, model: ModelVersion | None = None,
) -> QuerySet[Subscription]:
    """Live memberships with the member's latest score and last activity as Subquery annotations: one query per
    page however many rows, ordered by risk (highest first). Members without a score sort last."""
    model = model or serving_model()
    latest = PropensityScore.objects.filter(member_id=OuterRef("member_id"))
    if model is not None:
        latest = latest.filter(model_version=model)
    latest = latest.order_by("-as_of", "-pk")
    last_event = Event.objects.filter(member_id=OuterRef("member_id")).order_by("-occurred_at").values("occurred_at")[:1]
    last_learning = (
        Enrollment.objects.filter(member_id=OuterRef("member_id"), last_activity_at__isnull=False)
        .order_by("-last_activity_at").values("last_activity_at")[:1]
    )
    qs = (
        Subscription.objects.filter(status__in=Subscription.LIVE_STATUSES)
        .filter(member_filter_q(filters))
        .select_related("member", "tier")
        .annotate(
            probability=Subquery(latest.values("probability")[:1], output_field=FloatField()),
            top_reasons=Subquery(latest.values("top_reasons")[:1]),
            scored_at=Subquery(latest.values("as_of")[:1]),
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
        qs = qs.filter(current_period_end__gte=as_of, current_period_end__lt=as_of + timedelta(days=renewal_within_days))
    return qs.order_by(F("probability").asc(nulls_last=True), "current_period_end", "pk")


def calibration(*, now: datetime, deciles: int = 10, model: ModelVersion | None = None) -> Calibration | None:
    """The serving model's scores at the latest as_of whose horizon has fully passed by `now`, against what happened:
    a paid order (any kind, refunds excluded) in (as_of, as_of + horizon]. None when no such window exists yet."""
    model = model or serving_model()
    if model is None:
        return None

    def compute() -> Calibration | None:
        closed = PropensityScore.objects.filter(
            model_version=model, as_of__lte=now - timedelta(days=model.horizon_days)
        ).aggregate(latest=Max("as_of"))["latest"]
        if closed is None:
            return None
        end = closed + timedelta(days=model.horizon_days)
        bought = paid_orders().filter(member_id=OuterRef("member_id"), paid_at__gt=closed, paid_at__lte=end)
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

    return cached("calibration", {"model": model.pk, "now": now.date()}, compute)


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
