"""Reads for course reviews: ratings, a course's reviews, a member's review, reviewed pairs."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import (
    Avg,
    Count,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce

from members.models import Course, Review, ReviewHelpful, User


@dataclass(frozen=True)
class RatingSummary:
    average: float | None
    count: int
    distribution: dict[int, int] = field(default_factory=dict)

    @property
    def bars(self) -> list[tuple[int, int, int]]:
        """(stars, count, percent of reviews) from 5 down to 1, for the histogram."""
        return [
            (stars, self.distribution.get(stars, 0), round(100 * self.distribution.get(stars, 0) / self.count) if self.count else 0)
            for stars in range(5, 0, -1)
        ]


def course_rating_summary(*, course: Course) -> RatingSummary:
    """Average, count and 1–5 distribution of the visible reviews, in one aggregate query."""
    agg = Review.objects.filter(course=course, is_hidden=False).aggregate(
        average=Avg("rating"), count=Count("pk"), **{f"r{n}": Count("pk", filter=Q(rating=n)) for n in range(1, 6)}
    )
    average = round(float(agg["average"]), 2) if agg["average"] is not None else None
    return RatingSummary(average=average, count=agg["count"], distribution={n: agg[f"r{n}"] for n in range(1, 6)})


def course_reviews(*, course: Course, limit: int = 10) -> QuerySet[Review]:
    """Visible reviews, most helpful first (the review_course_helpful index serves this order)."""
    return (
        Review.objects.filter(course=course, is_hidden=False)
        .select_related("member")
        .order_by("-helpful_count", "-created_at")[:limit]
    )


def member_review(*, member: User, course: Course) -> Review | None:
    if not getattr(member, "is_authenticated", False):
        return None
    return Review.objects.filter(member=member, course=course).first()


def helpful_review_ids(*, member: User, review_ids: list[int]) -> set[int]:
    if not getattr(member, "is_authenticated", False) or not review_ids:
        return set()
    return set(ReviewHelpful.objects.filter(member=member, review_id__in=review_ids).values_list("review_id", flat=True))


def courses_with_ratings(qs: QuerySet[Course]) -> QuerySet[Course]:
    """Annotate avg_rating / rating_count so the catalogue can show and sort by rating in the same query.

    Correlated subqueries rather than a JOIN: the catalogue also annotates Count("enrollments"), and two joined
    to-many relations would multiply each other's rows (inflated counts, and enrollments x reviews rows per course).
    """
    visible = Review.objects.filter(course=OuterRef("pk"), is_hidden=False).order_by().values("course")
    return qs.annotate(
        avg_rating=Subquery(visible.annotate(a=Avg("rating")).values("a"), output_field=FloatField()),
        rating_count=Coalesce(Subquery(visible.annotate(n=Count("pk")).values("n"), output_field=IntegerField()), 0),
    )


def reviewed_pairs(*, member_ids: list[int]) -> set[tuple[int, int]]:
    """(member_id, course_id) for every review the given members wrote (the review-invite job skips those)."""
    return set(Review.objects.filter(member_id__in=member_ids).values_list("member_id", "course_id"))


def courses_by_id(*, ids: list[int]) -> dict[int, Course]:
    return Course.objects.in_bulk(ids)


def reviews() -> QuerySet[Review]:
    """Every review, for other apps to filter and aggregate."""
    return Review.objects.all()
