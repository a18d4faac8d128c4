"""Cohort tables: cohort month × months since. Each table is one or two queries of conditional aggregates."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.db.models import Count, Q, Sum

from analytics.reports import buyers
from analytics.reports.common import (
    NO_FILTERS,
    Filters,
    Window,
    cached,
    member_filter_q,
    paid_orders,
    ratio,
    trailing_months,
)
from analytics.reports.metrics import _active_at
from members.accounts import selectors as account_selectors
from members.subscriptions import selectors as subscription_selectors


@dataclass(frozen=True)
class CohortRow:
    cohort: str
    size: int
    values: tuple[float | None, ...]  # share per month since; None where that month has not closed yet


@dataclass(frozen=True)
class CohortTable:
    key: str
    title: str
    basis: str
    offsets: tuple[int, ...]
    rows: tuple[CohortRow, ...]


@dataclass(frozen=True)
class CohortReport:
    as_of: datetime
    tables: tuple[CohortTable, ...]


def _closed_month_end(cohort: Window, offset: int, as_of: datetime) -> datetime | None:
    """The end of month `offset` after the cohort month, or None if that month has not ended by as_of."""
    end = cohort.start + relativedelta(months=offset + 1)
    return end if end <= as_of else None


def subscription_retention(*, as_of: datetime, months: int = 12, filters: Filters = NO_FILTERS) -> CohortTable:
    """Join-month cohorts: members with a membership at the end of month m ÷ members who joined that month."""
    cohorts = [Window(c.start, c.start + relativedelta(months=1)) for c in trailing_months(as_of, months)]
    sizes = account_selectors.users().filter(member_filter_q(filters, prefix="")).aggregate(
        **{f"s{i}": Count("pk", filter=Q(date_joined__gte=c.start, date_joined__lt=c.end)) for i, c in enumerate(cohorts)}
    )
    aggregates = {}
    for i, c in enumerate(cohorts):
        joined = Q(member__date_joined__gte=c.start, member__date_joined__lt=c.end)
        for m in range(months):
            t = _closed_month_end(c, m, as_of)
            if t is not None:
                aggregates[f"a{i}_{m}"] = Count("member_id", distinct=True, filter=joined & _active_at(t))
    subs = subscription_selectors.subscriptions().filter(member_filter_q(filters))
    active = subs.aggregate(**aggregates) if aggregates else {}
    rows = []
    for i, c in enumerate(cohorts):
        size = int(sizes[f"s{i}"] or 0)
        values = tuple(
            ratio(active[f"a{i}_{m}"], size) if f"a{i}_{m}" in active else None for m in range(months)
        )
        rows.append(CohortRow(f"{c.start:%Y-%m}", size, values))
    return CohortTable("subscription", "Subscription retention", "join month", tuple(range(months)), tuple(rows))


def repurchase_cohorts(*, as_of: datetime, months: int = 12, filters: Filters = NO_FILTERS) -> CohortTable:
    """First-purchase-month cohorts: share of buyers with a second paid course order by the end of month m."""
    cohorts = [Window(c.start, c.start + relativedelta(months=1)) for c in trailing_months(as_of, months)]
    agg = buyers.Aggregates()
    for i, c in enumerate(cohorts):
        first_in = [buyers.dt(c.start), buyers.dt(c.end)]
        agg.count_if(f"s{i}", "first_at >= %s AND first_at < %s", first_in)
        for m in range(months):
            t = _closed_month_end(c, m, as_of)
            if t is not None:
                agg.count_if(f"r{i}_{m}", "first_at >= %s AND first_at < %s AND second_at < %s",
                             [*first_in, buyers.dt(t)])
    row = agg.run(where="first_at >= %s AND first_at < %s",
                  where_params=[buyers.dt(cohorts[0].start), buyers.dt(cohorts[-1].end)], filters=filters)
    rows = []
    for i, c in enumerate(cohorts):
        size = row[f"s{i}"]
        values = tuple(ratio(row[f"r{i}_{m}"], size) if f"r{i}_{m}" in row else None for m in range(months))
        rows.append(CohortRow(f"{c.start:%Y-%m}", size, values))
    return CohortTable("repurchase", "Repurchase (cumulative)", "first-purchase month", tuple(range(months)), tuple(rows))


def revenue_retention(*, as_of: datetime, months: int = 12, filters: Filters = NO_FILTERS) -> CohortTable:
    """Join-month cohorts: the cohort's paid revenue in month m ÷ its paid revenue in month 0."""
    cohorts = [Window(c.start, c.start + relativedelta(months=1)) for c in trailing_months(as_of, months)]
    aggregates = {}
    for i, c in enumerate(cohorts):
        joined = Q(member__date_joined__gte=c.start, member__date_joined__lt=c.end)
        for m in range(months):
            if _closed_month_end(c, m, as_of) is None:
                continue
            start = c.start + relativedelta(months=m)
            paid_in = Q(paid_at__gte=start, paid_at__lt=start + relativedelta(months=1))
            aggregates[f"v{i}_{m}"] = Sum("amount_paid", filter=joined & paid_in)
    row = (
        paid_orders().filter(member_filter_q(filters), paid_at__gte=cohorts[0].start, paid_at__lt=as_of)
        .aggregate(**aggregates) if aggregates else {}
    )
    rows = []
    for i, c in enumerate(cohorts):
        base = Decimal(row.get(f"v{i}_0") or 0)
        values = tuple(
            ratio(float(row[f"v{i}_{m}"] or 0), float(base)) if f"v{i}_{m}" in row else None for m in range(months)
        )
        rows.append(CohortRow(f"{c.start:%Y-%m}", int(base), values))
    return CohortTable("revenue", "Revenue retention", "join month (size = month-0 revenue)", tuple(range(months)),
                       tuple(rows))


def cohort_report(*, as_of: datetime, months: int = 12, filters: Filters = NO_FILTERS) -> CohortReport:
    def compute() -> CohortReport:
        return CohortReport(as_of, (
            subscription_retention(as_of=as_of, months=months, filters=filters),
            repurchase_cohorts(as_of=as_of, months=months, filters=filters),
            revenue_retention(as_of=as_of, months=months, filters=filters),
        ))

    return cached("cohorts", {"as_of": as_of, "m": months, "f": filters.key()}, compute)
