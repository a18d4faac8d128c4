"""Reads for the analytics app: the current recommendations for a member, and members with their latest scores.

Querysets come back with their joins applied. Latest-per-member values are correlated subqueries (one per column)
rather than prefetches, so a staff page of 50 members is one query however many score rows each member has; the
(member, -as_of) indexes on each score table make every subquery an index seek.
"""
from __future__ import annotations

from django.db.models import (
    CharField,
    DateTimeField,
    F,
    FloatField,
    JSONField,
    OuterRef,
    QuerySet,
    Subquery,
)

from analytics.models import (
    EngagementScore,
    PropensityScore,
    Recommendation,
    SegmentAssignment,
)
from members.models import Subscription, User


def recommendations_for(*, member: object, limit: int = 10) -> QuerySet[Recommendation]:
    """The member's recommendations from the current run, best first, published courses only."""
    return (
        Recommendation.objects.filter(member=member, run__is_current=True, course__is_published=True)
        .select_related("course", "reason_course", "run")
        .order_by("rank")[:limit]
    )


def _latest(model: type, field: str, output_field: object, **filters: object) -> Subquery:
    return Subquery(
        model.objects.filter(member=OuterRef("pk"), **filters).order_by("-as_of", "-pk").values(field)[:1],
        output_field=output_field,
    )


def members_with_scores() -> QuerySet[User]:
    """Every non-staff member with their latest engagement score, segment, serving-model propensity and live tier.

    Propensity comes from the serving model only: scores of a retired model are not comparable with the current
    ones. Members with no score yet have NULLs (filters on them exclude those members, as they should).
    """
    serving = {"model_version__is_serving": True}
    return (
        User.objects.filter(is_staff=False)
        .annotate(
            engagement_score=_latest(EngagementScore, "score", FloatField()),
            engagement_as_of=_latest(EngagementScore, "as_of", DateTimeField()),
            segment=_latest(SegmentAssignment, "label", CharField()),
            probability=_latest(PropensityScore, "probability", FloatField(), **serving),
            propensity_as_of=_latest(PropensityScore, "as_of", DateTimeField(), **serving),
            top_reasons=_latest(PropensityScore, "top_reasons", JSONField(), **serving),
            tier=Subquery(
                Subscription.objects.filter(member=OuterRef("pk"), status__in=Subscription.LIVE_STATUSES)
                .values(slug=F("tier__slug"))[:1],
                output_field=CharField(),
            ),
        )
        .order_by("pk")
    )
