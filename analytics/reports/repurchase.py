"""Repurchase for one-off course buyers: how long a second purchase takes, who is likely to buy next, and which
first course leads to which next one."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, OuterRef, Q, Subquery

from analytics.models import PropensityScore
from analytics.reports import buyers
from analytics.reports.common import (
    NO_FILTERS,
    Filters,
    Window,
    cached,
    member_filter_q,
    paid_course_orders,
    ratio,
)
from members.models import Course, User

GAP_BINS: tuple[tuple[str, int, int | None], ...] = (
    ("0–7 d", 0, 7), ("8–30 d", 7, 30), ("31–60 d", 30, 60), ("61–90 d", 60, 90),
    ("91–180 d", 90, 180), ("181–365 d", 180, 365), ("> 365 d", 365, None),
)
PROBABILITY_BINS = tuple((f"{k / 10:.1f}–{(k + 1) / 10:.1f}", k / 10, (k + 1) / 10) for k in range(10))


@dataclass(frozen=True)
class Bin:
    label: str
    count: int


@dataclass(frozen=True)
class Transition:
    from_course: str
    to_course: str
    buyers: int


@dataclass(frozen=True)
class FirstCourseRow:
    course: str
    buyers: int
    came_back: int

    @property
    def rate(self) -> float | None:
        return ratio(self.came_back, self.buyers)


@dataclass(frozen=True)
class RepurchaseReport:
    window: Window
    gap_bins: tuple[Bin, ...]
    one_off_buyers: int
    scored_one_off_buyers: int
    probability_bins: tuple[Bin, ...]
    transitions: tuple[Transition, ...]
    first_courses: tuple[FirstCourseRow, ...]


def time_to_second_purchase(*, window: Window, as_of: datetime, filters: Filters = NO_FILTERS) -> tuple[Bin, ...]:
    """Buyers whose first paid course order is in the window and who bought again before as_of, by days between
    (each bin is (low, high] days)."""
    agg = buyers.Aggregates()
    for i, (_, low, high) in enumerate(GAP_BINS):
        condition, params = "gap_days > %s", [low + buyers.EPSILON_DAYS if low else 0]
        if high is not None:
            condition += " AND gap_days <= %s"
            params.append(high + buyers.EPSILON_DAYS)
        agg.count_if(f"b{i}", condition, params)
    row = agg.run(
        where="first_at >= %s AND first_at < %s AND second_at IS NOT NULL AND second_at < %s",
        where_params=[buyers.dt(window.start), buyers.dt(window.end), buyers.dt(as_of)], filters=filters,
    )
    return tuple(Bin(label, row[f"b{i}"]) for i, (label, _, _) in enumerate(GAP_BINS))


def one_off_buyer_probabilities(*, filters: Filters = NO_FILTERS) -> tuple[int, int, tuple[Bin, ...]]:
    """Members with exactly one paid course order, binned by their latest PropensityScore probability."""
    # A grouped IN-subquery (one pass over course orders), not a count lookup per member.
    one_order = paid_course_orders().values("member_id").annotate(n=Count("pk")).filter(n=1).values("member_id")
    latest = Subquery(
        PropensityScore.objects.filter(member_id=OuterRef("pk")).order_by("-as_of", "-pk").values("probability")[:1]
    )
    aggregates: dict[str, object] = {"total": Count("pk"), "scored": Count("pk", filter=Q(p__isnull=False))}
    for i, (_, low, high) in enumerate(PROBABILITY_BINS):
        upper = Q(p__lte=high) if i == len(PROBABILITY_BINS) - 1 else Q(p__lt=high)
        aggregates[f"b{i}"] = Count("pk", filter=Q(p__gte=low) & upper)
    row = (
        User.objects.filter(member_filter_q(filters, prefix=""))
        .filter(pk__in=one_order)
        .annotate(p=latest)
        .aggregate(**aggregates)
    )
    bins = tuple(Bin(label, int(row[f"b{i}"] or 0)) for i, (label, _, _) in enumerate(PROBABILITY_BINS))
    return int(row["total"] or 0), int(row["scored"] or 0), bins


def course_transitions(*, window: Window, as_of: datetime, limit: int = 15, filters: Filters = NO_FILTERS
                       ) -> tuple[tuple[Transition, ...], tuple[FirstCourseRow, ...]]:
    """First course → the course of the next (strictly later) paid course order, for first purchases in the window;
    and per first course, how many of its first-time buyers bought again before as_of."""
    in_window = [buyers.dt(window.start), buyers.dt(window.end)]
    pairs = buyers.query(
        "SELECT first_course, next_course, COUNT(*) AS n FROM courses"
        " WHERE first_at >= %s AND first_at < %s AND second_at IS NOT NULL AND second_at < %s"
        " GROUP BY first_course, next_course ORDER BY n DESC, first_course, next_course LIMIT %s",
        [*in_window, buyers.dt(as_of), limit], filters=filters, courses=True,
    )
    per_first = buyers.query(
        "SELECT first_course, COUNT(*) AS n,"
        " SUM(CASE WHEN second_at IS NOT NULL AND second_at < %s THEN 1 ELSE 0 END) AS back FROM courses"
        " WHERE first_at >= %s AND first_at < %s GROUP BY first_course ORDER BY n DESC, first_course LIMIT %s",
        [buyers.dt(as_of), *in_window, limit], filters=filters, courses=True,
    )
    ids = {p[0] for p in pairs} | {p[1] for p in pairs} | {r[0] for r in per_first}
    titles = dict(Course.objects.filter(pk__in=ids).values_list("pk", "title"))
    transitions = tuple(Transition(titles.get(a, "?"), titles.get(b, "?"), int(n)) for a, b, n in pairs)
    firsts = tuple(FirstCourseRow(titles.get(c, "?"), int(n), int(back or 0)) for c, n, back in per_first)
    return transitions, firsts


def repurchase_report(*, window: Window, as_of: datetime, filters: Filters = NO_FILTERS) -> RepurchaseReport:
    def compute() -> RepurchaseReport:
        total, scored, prob_bins = one_off_buyer_probabilities(filters=filters)
        transitions, firsts = course_transitions(window=window, as_of=as_of, filters=filters)
        return RepurchaseReport(
            window=window,
            gap_bins=time_to_second_purchase(window=window, as_of=as_of, filters=filters),
            one_off_buyers=total,
            scored_one_off_buyers=scored,
            probability_bins=prob_bins,
            transitions=transitions,
            first_courses=firsts,
        )

    return cached("repurchase", {"w": window, "as_of": as_of, "f": filters.key()}, compute)
