"""Segments: sizes over time, each segment's RFM profile, renewal rate and cancellation reasons.

Profiles, renewal and cancellations use the latest segmentation run: "the segment a member is in now"."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Avg, Count, FloatField, Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from analytics.models import SegmentAssignment, SegmentRun
from analytics.reports.common import (
    Window,
    cached,
    latest_segment_run,
    paid_orders,
    ratio,
)
from analytics.reports.metrics import paid_subscriptions_ended
from members.commerce.selectors import OrderKind
from members.subscriptions import selectors as subscription_selectors
from members.subscriptions.selectors import CancellationReason, SubscriptionStatus

# Shown first when present; any other numeric feature key follows.
RFM_KEYS = ("recency_days", "frequency", "monetary", "engagement", "tenure_days")
MAX_PROFILE_KEYS = 8


@dataclass(frozen=True)
class SizePoint:
    as_of: datetime
    sizes: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class SegmentRow:
    label: str
    members: int
    profile: tuple[tuple[str, float | None], ...]
    renewed: int
    ended: int
    cancellation_reasons: tuple[tuple[str, int], ...]  # (Subscription.CancellationReason code, members)

    @property
    def renewal_rate(self) -> float | None:
        return ratio(self.renewed, self.renewed + self.ended)


@dataclass(frozen=True)
class SegmentReport:
    window: Window
    run_as_of: datetime | None
    labels: tuple[str, ...]
    sizes_over_time: tuple[SizePoint, ...]
    profile_keys: tuple[str, ...]
    rows: tuple[SegmentRow, ...]


def _profile_keys(run: SegmentRun) -> list[str]:
    sample = SegmentAssignment.objects.filter(run=run).values_list("features", flat=True).first() or {}
    numeric = [k for k, v in sample.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    ordered = [k for k in RFM_KEYS if k in numeric] + sorted(k for k in numeric if k not in RFM_KEYS)
    return ordered[:MAX_PROFILE_KEYS]


def segment_report(*, window: Window, history_runs: int = 12) -> SegmentReport:
    return cached("segments", {"w": window, "h": history_runs}, lambda: _segment_report(window, history_runs))


def _segment_report(window: Window, history_runs: int) -> SegmentReport:
    run_ids = list(SegmentRun.objects.order_by("-as_of", "-pk").values_list("pk", flat=True)[:history_runs])
    sizes: dict[datetime, dict[str, int]] = defaultdict(dict)
    for row in (
        SegmentAssignment.objects.filter(run_id__in=run_ids).values("as_of", "label").annotate(n=Count("pk"))
        .order_by("as_of", "label")
    ):
        sizes[row["as_of"]][row["label"]] = row["n"]
    run = latest_segment_run()
    if run is None:
        return SegmentReport(window, None, (), (), (), ())
    keys = _profile_keys(run)
    # Average each numeric feature in SQL: json_extract on SQLite, ->> on PostgreSQL, both through KeyTextTransform.
    averages = {f"avg_{i}": Avg(Cast(KeyTextTransform(k, "features"), FloatField())) for i, k in enumerate(keys)}
    profiles = {
        r["label"]: r
        for r in SegmentAssignment.objects.filter(run=run).values("label").annotate(n=Count("pk"), **averages)
    }
    in_segment = "member__segments__run"
    renewed = dict(
        paid_orders().filter(kind=OrderKind.SUBSCRIPTION, is_renewal=True, paid_at__gte=window.start,
                             paid_at__lt=window.end, **{in_segment: run})
        .values("member__segments__label").annotate(n=Count("pk")).values_list("member__segments__label", "n")
    )
    ended = dict(
        paid_subscriptions_ended().filter(ended_at__gte=window.start, ended_at__lt=window.end, **{in_segment: run})
        .values("member__segments__label").annotate(n=Count("pk")).values_list("member__segments__label", "n")
    )
    # The reason's code, not its label: the report is cached, and a label resolved here would be cached in the
    # language of whoever computed it first. The view words it (reason_label).
    reasons: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for label, reason, n in (
        # A reason is counted when the member asked to cancel in the window, or when dunning expired it then.
        subscription_selectors.subscriptions().filter(
            Q(canceled_at__gte=window.start, canceled_at__lt=window.end)
            | Q(status=SubscriptionStatus.EXPIRED, canceled_at__isnull=True, ended_at__gte=window.start,
                ended_at__lt=window.end),
            **{in_segment: run},
        )
        .exclude(cancellation_reason="")
        .values("member__segments__label", "cancellation_reason").annotate(n=Count("pk"))
        .order_by("member__segments__label", "-n").values_list("member__segments__label", "cancellation_reason", "n")
    ):
        reasons[label].append((reason, n))
    labels = tuple(sorted(profiles))
    rows = tuple(
        SegmentRow(
            label=label,
            members=profiles[label]["n"],
            profile=tuple((k, profiles[label][f"avg_{i}"]) for i, k in enumerate(keys)),
            renewed=renewed.get(label, 0),
            ended=ended.get(label, 0),
            cancellation_reasons=tuple(reasons.get(label, ())),
        )
        for label in labels
    )
    all_labels = tuple(sorted({label for s in sizes.values() for label in s} | set(labels)))
    points = tuple(
        SizePoint(as_of, tuple((label, sizes[as_of].get(label, 0)) for label in all_labels)) for as_of in sorted(sizes)
    )
    return SegmentReport(window, run.as_of, all_labels, points, tuple(keys), rows)


def reason_label(code: str) -> str:
    """A cancellation reason's label in the active language (the code itself when it is not a known reason)."""
    return str(dict(CancellationReason.choices).get(code, code))
