"""Reads for the analytics app: the current recommendations for a member, and members with their latest scores.

Querysets come back with their joins applied. Latest-per-member values are correlated subqueries (one per column)
rather than prefetches, so a staff page of 50 members is one query however many score rows each member has; the
(member, -as_of) indexes on each score table make every subquery an index seek.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import (
    CharField,
    Count,
    DateTimeField,
    F,
    FloatField,
    JSONField,
    Min,
    OuterRef,
    QuerySet,
    Subquery,
)

from analytics.models import (
    EngagementScore,
    Event,
    ModelVersion,
    PropensityScore,
    RecommendationRun,
    SegmentAssignment,
    SegmentRun,
)
from members.accounts import selectors as account_selectors
from members.subscriptions import selectors as subscription_selectors
from members.subscriptions.selectors import LIVE_STATUSES


def _latest(model: type, field: str, output_field: object, **filters: object) -> Subquery:
    return Subquery(
        model.objects.filter(member=OuterRef("pk"), **filters).order_by("-as_of", "-pk").values(field)[:1],
        output_field=output_field,
    )


def members_with_scores() -> QuerySet[Any]:
    """Every non-staff member with their latest engagement score, segment, serving-model propensity and live tier.

    Propensity comes from the serving model only: scores of a retired model are not comparable with the current
    ones. Members with no score yet have NULLs (filters on them exclude those members, as they should).
    """
    serving = {"model_version__is_serving": True}
    return (
        account_selectors.users().filter(is_staff=False)
        .annotate(
            engagement_score=_latest(EngagementScore, "score", FloatField()),
            engagement_as_of=_latest(EngagementScore, "as_of", DateTimeField()),
            segment=_latest(SegmentAssignment, "label", CharField()),
            probability=_latest(PropensityScore, "probability", FloatField(), **serving),
            propensity_as_of=_latest(PropensityScore, "as_of", DateTimeField(), **serving),
            top_reasons=_latest(PropensityScore, "top_reasons", JSONField(), **serving),
            tier=Subquery(
                subscription_selectors.subscriptions().filter(member=OuterRef("pk"), status__in=LIVE_STATUSES)
                .values(slug=F("tier__slug"))[:1],
                output_field=CharField(),
            ),
        )
        .order_by("pk")
    )


# ---------------------------------------------------------------------------------------------------------------
# Scores for one member, model history and the recommendation funnel (analytics engine; appended).


def latest_engagement(member: object) -> EngagementScore | None:
    return EngagementScore.objects.filter(member=member).order_by("-as_of").first()


def engagement_history(member: object, *, limit: int = 90) -> QuerySet[EngagementScore]:
    """Daily snapshots, newest first, for a trend line."""
    return EngagementScore.objects.filter(member=member).order_by("-as_of")[:limit]


def latest_segment(member: object) -> SegmentAssignment | None:
    return SegmentAssignment.objects.filter(member=member).select_related("run").order_by("-as_of", "-pk").first()


def latest_propensity(member: object) -> PropensityScore | None:
    """From the serving model only: scores of a retired model are not comparable with today's."""
    return (
        PropensityScore.objects.filter(member=member, model_version__is_serving=True)
        .select_related("model_version").order_by("-as_of").first()
    )


def serving_model(kind: str = "repurchase") -> ModelVersion | None:
    return ModelVersion.objects.filter(kind=kind, is_serving=True).first()


def model_versions(kind: str = "repurchase") -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(kind=kind).order_by("-created_at")


def current_recommendation_run() -> RecommendationRun | None:
    return RecommendationRun.objects.filter(is_current=True).order_by("-created_at").first()


def segment_sizes(*, runs: int = 12) -> list[dict[str, object]]:
    """Segment sizes per run for the last `runs` segment runs, oldest first: [{as_of, label, members}, ...]."""
    recent = list(SegmentRun.objects.order_by("-as_of").values_list("pk", flat=True)[:runs])
    rows = (
        SegmentAssignment.objects.filter(run_id__in=recent)
        .values("run__as_of", "label").annotate(members=Count("id")).order_by("run__as_of", "label")
    )
    return [{"as_of": r["run__as_of"], "label": r["label"], "members": r["members"]} for r in rows]


@dataclass(frozen=True)
class RecommendationFunnel:
    impressions: int
    clicks: int
    purchases: int

    @property
    def click_through_rate(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def purchase_rate(self) -> float:
        """Purchases per click."""
        return self.purchases / self.clicks if self.clicks else 0.0


def recommendation_funnel(*, start: datetime, end: datetime, attribution_days: int = 7) -> RecommendationFunnel:
    """Online metrics from events in [start, end): recommendation impressions → clicks → purchases.

    A purchase counts when the member bought (event "course_purchased") a course they had clicked in a
    recommendation within the `attribution_days` before; each member–course pair counts once.
    """
    kinds = ["recommendation_impression", "recommendation_click"]
    counts = dict(
        Event.objects.filter(kind__in=kinds, occurred_at__gte=start, occurred_at__lt=end)
        .values("kind").annotate(n=Count("id")).values_list("kind", "n")
    )
    clicks = (
        Event.objects.filter(kind="recommendation_click", occurred_at__gte=start, occurred_at__lt=end)
        .values("member_id", "object_id").annotate(first=Min("occurred_at"))
    )
    first_click = {(c["member_id"], c["object_id"]): c["first"] for c in clicks}
    bought = set()
    if first_click:
        purchases = Event.objects.filter(
            kind="course_purchased", occurred_at__gte=start,
            occurred_at__lt=end + timedelta(days=attribution_days),
            member_id__in={m for m, _ in first_click},
        ).values_list("member_id", "object_id", "occurred_at")
        for member_id, object_id, at in purchases:
            clicked = first_click.get((member_id, object_id))
            if clicked is not None and clicked <= at <= clicked + timedelta(days=attribution_days):
                bought.add((member_id, object_id))
    return RecommendationFunnel(
        impressions=counts.get("recommendation_impression", 0),
        clicks=counts.get("recommendation_click", 0),
        purchases=len(bought),
    )


def recent_events(*, member: object, limit: int = 20) -> QuerySet[Event]:
    """The member's latest events, newest first (the admin member page shows them read-only)."""
    return Event.objects.filter(member=member).order_by("-occurred_at", "-pk")[:limit]


def members_with_scores_filtered(
    *, segment: str = "", tier: str = "", min_probability: float | None = None, max_probability: float | None = None
) -> QuerySet[Any]:
    """members_with_scores() narrowed by the latest values.

    Each filter is applied twice: first as a semi-join on the score table (a member whose *latest* segment is X has
    *some* row labelled X; same for probability and tier), which the database answers with one pass or an index,
    then on the annotated latest value for exactness. Without the first step the correlated subqueries would run
    for every member in the WHERE clause and again for the page's COUNT.
    """
    qs = members_with_scores()
    serving = {"model_version__is_serving": True}
    if segment:
        qs = qs.filter(pk__in=SegmentAssignment.objects.filter(label=segment).values("member_id"), segment=segment)
    if tier:
        qs = qs.filter(
            pk__in=subscription_selectors.subscriptions().filter(status__in=LIVE_STATUSES, tier__slug=tier)
            .values("member_id"),
            tier=tier,
        )
    if min_probability is not None:
        qs = qs.filter(
            pk__in=PropensityScore.objects.filter(probability__gte=min_probability, **serving).values("member_id"),
            probability__gte=min_probability,
        )
    if max_probability is not None:
        qs = qs.filter(
            pk__in=PropensityScore.objects.filter(probability__lte=max_probability, **serving).values("member_id"),
            probability__lte=max_probability,
        )
    return qs
