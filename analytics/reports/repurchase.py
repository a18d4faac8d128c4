"""Repurchase for one-off course buyers: how long a second purchase takes, who is likely to buy next, and which
first course leads to which next one."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Count, F

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
from members.accounts import selectors as account_selectors
from members.catalogue.selectors import course_titles

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
    """Members with exactly one paid course order, binned by their probability in the latest scoring batch.

    Scores are written per nightly run, so "latest" is the batch with the greatest as_of (and, should two model
    versions share that as_of, the one that wrote last): an index-friendly equality joined once, instead of a
    per-member "latest score" subquery (~1.3 s on 100,000 members). A member the latest batch did not score counts as
    unscored, not with an older score."""
    # A grouped IN-subquery (one pass over course orders), not a count lookup per member.
    one_order = paid_course_orders().values("member_id").annotate(n=Count("pk")).filter(n=1).values("member_id")
    members_sql, members_params = (
        account_selectors.users().filter(member_filter_q(filters, prefix="")).filter(pk__in=one_order)
        .values(member_pk=F("pk")).query.sql_with_params()
    )
    table = PropensityScore._meta.db_table
    columns, params = ["COUNT(*)", "COUNT(s.probability)"], []
    for i, (_, low, high) in enumerate(PROBABILITY_BINS):
        upper = "<=" if i == len(PROBABILITY_BINS) - 1 else "<"
        columns.append(f"SUM(CASE WHEN s.probability >= %s AND s.probability {upper} %s THEN 1 ELSE 0 END)")
        params += [low, high]
    latest = f"(SELECT {{}} FROM {table} ORDER BY as_of DESC, id DESC LIMIT 1)"
    sql = (
        f"SELECT {', '.join(columns)} FROM ({members_sql}) u"
        f" LEFT JOIN {table} s ON s.member_id = u.member_pk AND s.as_of = {latest.format('as_of')}"
        f" AND s.model_version_id = {latest.format('model_version_id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *members_params])
        row = cursor.fetchone()
    bins = tuple(Bin(label, int(row[2 + i] or 0)) for i, (label, _, _) in enumerate(PROBABILITY_BINS))
    return int(row[0] or 0), int(row[1] or 0), bins


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
    titles = course_titles(list(ids))
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
