"""Model card: model versions with metrics against baselines, feature importance, data window; recommendation quality
offline (metrics vs the popularity baseline) and online (impressions → clicks → purchases from Events).

The metric keys are whatever analytics/ml wrote into the JSON fields; the card renders every key present rather
than assuming a fixed list, so a new metric shows up without a change here.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, OuterRef, Q

from analytics.models import Event, ModelVersion, RecommendationRun
from analytics.reports.common import Window, cached

# Lower is better for these; everything else is higher-is-better.
LOWER_IS_BETTER = {"brier", "log_loss", "logloss", "mae", "rmse", "ece"}
# Sizes and settings describe the evaluation (same for model and baselines); they are neither better nor worse.
DESCRIPTIVE = {"n", "positives", "base_rate", "users", "k", "train_rows", "requested_horizon_days"}


@dataclass(frozen=True)
class MetricRow:
    name: str
    value: float | None
    baselines: tuple[float | None, ...]  # aligned with the card's baseline_names

    @property
    def better(self) -> bool | None:
        """Better than every baseline that has this metric; None when no baseline has it."""
        present = [b for b in self.baselines if b is not None]
        if self.value is None or not present or self.name.lower() in DESCRIPTIVE:
            return None
        if self.name.lower() in LOWER_IS_BETTER:
            return all(self.value < b for b in present)
        return all(self.value > b for b in present)


@dataclass(frozen=True)
class ModelCard:
    pk: int
    kind: str
    algorithm: str
    is_serving: bool
    created_at: datetime
    as_of: datetime
    horizon_days: int
    data_start: datetime | None
    data_end: datetime | None
    baseline_names: tuple[str, ...]
    metrics: tuple[MetricRow, ...]
    importance: tuple[tuple[str, float], ...]
    notes: str


@dataclass(frozen=True)
class RecommendationCard:
    pk: int
    as_of: datetime
    k: int
    is_current: bool
    baseline_names: tuple[str, ...]
    metrics: tuple[MetricRow, ...]
    selection_only: bool = False  # the week's blend selection, made ahead of the night: no rows


@dataclass(frozen=True)
class Funnel:
    window: Window
    impressions: int
    clicks: int
    purchases: int

    @property
    def click_rate(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None

    @property
    def purchase_rate(self) -> float | None:
        return self.purchases / self.clicks if self.clicks else None


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        # A baseline may be stored as {"name": {"roc_auc": ...}}; callers flatten it first.
        return None
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return None


def compare(metrics: dict, baselines: dict) -> tuple[tuple[str, ...], tuple[MetricRow, ...]]:
    """Pair each scalar metric with each baseline. Baselines are either flat ({"roc_auc": 0.5}: one baseline called
    "baseline") or named ({"popularity": {"ndcg": ...}, "bgnbd": {...}}: one column per name)."""
    baselines = baselines or {}
    named = {k: v for k, v in baselines.items() if isinstance(v, dict)}
    flat = {k: v for k, v in baselines.items() if not isinstance(v, dict)}
    columns: list[tuple[str, dict]] = ([("baseline", flat)] if flat else []) + list(named.items())
    rows = []
    for name, value in (metrics or {}).items():
        if isinstance(value, (dict, list)):
            continue
        rows.append(MetricRow(name, _number(value), tuple(_number(values.get(name)) for _, values in columns)))
    return tuple(name for name, _ in columns), tuple(rows)


def _importance(raw: object, limit: int = 15) -> tuple[tuple[str, float], ...]:
    items: list[tuple[str, float]] = []
    if isinstance(raw, dict):
        items = [(str(k), float(v)) for k, v in raw.items() if _number(v) is not None]
    elif isinstance(raw, list):
        for entry in raw:
            if isinstance(entry, dict) and "feature" in entry:
                value = _number(entry.get("importance", entry.get("value")))
                if value is not None:
                    items.append((str(entry["feature"]), value))
            elif isinstance(entry, (list, tuple)) and len(entry) == 2 and _number(entry[1]) is not None:
                items.append((str(entry[0]), float(entry[1])))
    items.sort(key=lambda kv: -abs(kv[1]))
    return tuple(items[:limit])


def model_cards(limit: int = 10) -> tuple[ModelCard, ...]:
    versions = ModelVersion.objects.order_by("-is_serving", "-created_at", "-pk")[:limit]
    return tuple(
        ModelCard(
            pk=v.pk, kind=v.kind, algorithm=v.algorithm, is_serving=v.is_serving, created_at=v.created_at,
            as_of=v.as_of, horizon_days=v.horizon_days, data_start=v.data_start, data_end=v.data_end,
            baseline_names=names, metrics=rows, importance=_importance(v.feature_importance), notes=v.notes,
        )
        for v in versions
        for names, rows in [compare(v.metrics, v.baselines)]
    )


def recommendation_cards(limit: int = 5) -> tuple[RecommendationCard, ...]:
    runs = RecommendationRun.objects.order_by("-is_current", "-created_at", "-pk")[:limit]
    return tuple(
        RecommendationCard(r.pk, r.as_of, r.k, r.is_current, *compare(r.metrics, r.baseline_metrics),
                           selection_only=bool(r.params.get("selection_only")))
        for r in runs
    )


def recommendation_funnel(*, window: Window) -> Funnel:
    """Impressions and clicks are counted as events in the window; a purchase is a course_purchased event in the
    window for a course the same member clicked in a recommendation at or before the purchase."""
    def compute() -> Funnel:
        in_window = Q(occurred_at__gte=window.start, occurred_at__lt=window.end)
        counts = Event.objects.filter(in_window, kind__in=["recommendation_impression", "recommendation_click"]).aggregate(
            impressions=Count("pk", filter=Q(kind="recommendation_impression")),
            clicks=Count("pk", filter=Q(kind="recommendation_click")),
        )
        clicked_before = Event.objects.filter(
            kind="recommendation_click", member_id=OuterRef("member_id"), object_id=OuterRef("object_id"),
            occurred_at__lte=OuterRef("occurred_at"),
        )
        purchases = Event.objects.filter(in_window, kind="course_purchased").filter(Exists(clicked_before)).count()
        return Funnel(window, int(counts["impressions"] or 0), int(counts["clicks"] or 0), purchases)

    return cached("funnel", {"w": window}, compute)
