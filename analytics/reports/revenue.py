"""Revenue movements: MRR per month split into new, expansion, contraction, churned and reactivated, with ARPU,
LTV, trial-to-paid and dunning-recovery rates. Every figure is defined in docs/METRICS.md ("Revenue").

MRR here is the overview's MRR read per member: a member's MRR at t is the monthly equivalent of their paid membership
orders covering t (monthly as is, yearly ÷ 12). Amounts are carried as integers in 1/1200 of the currency unit
(a monthly cent × 12, a yearly cent × 1), so yearly ÷ 12 is exact and the movements add up to the change in MRR to the
last unit, whatever the rounding shown.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.db.models import Min

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
from members.commerce.selectors import OrderKind
from members.subscriptions import selectors as subscription_selectors
from members.subscriptions.selectors import BillingPeriod, SubscriptionChangeKind

UNITS_PER_CURRENCY = 1200
CENT = Decimal("0.01")
MOVEMENTS = ("new", "expansion", "contraction", "churned", "reactivated")


def money(units: int) -> Decimal:
    """Units (1/1200) as currency, rounded to the cent for display; sums are made on the units."""
    return (Decimal(units) / UNITS_PER_CURRENCY).quantize(CENT)


@dataclass(frozen=True)
class MonthMovement:
    month: Window
    start_units: int
    new_units: int
    expansion_units: int
    contraction_units: int
    churned_units: int
    reactivated_units: int
    end_units: int
    paying_start: int
    paying_end: int
    churned_members: int
    revenue: Decimal
    customers: int

    @property
    def label(self) -> str:
        return f"{self.month.start:%Y-%m}"

    def reconciles(self) -> bool:
        return (self.start_units + self.new_units + self.expansion_units - self.contraction_units
                - self.churned_units + self.reactivated_units) == self.end_units

    @property
    def arpu(self) -> Decimal | None:
        return (self.revenue / self.customers).quantize(CENT) if self.customers else None

    def amount(self, name: str) -> Decimal:
        return money(getattr(self, f"{name}_units"))


@dataclass(frozen=True)
class RevenueReport:
    window: Window
    months: tuple[MonthMovement, ...]
    arpu: Decimal | None  # over the window
    arpa: Decimal | None  # MRR per paying member at the window end
    monthly_churn: float | None  # mean logo churn per month over the months shown
    ltv: Decimal | None
    trial_to_paid: tuple[int, int]
    dunning_recovery: tuple[int, int]

    @property
    def trial_to_paid_rate(self) -> float | None:
        return ratio(*self.trial_to_paid)

    @property
    def dunning_recovery_rate(self) -> float | None:
        return ratio(*self.dunning_recovery)


def _units(amount: Decimal, period: str) -> int:
    cents = int((amount * 100).to_integral_value())
    return cents if period == BillingPeriod.YEAR else cents * 12


def _period_start(t: datetime, period: str) -> datetime:
    return t - (relativedelta(years=1) if period == BillingPeriod.YEAR else relativedelta(months=1))


def member_mrr_at(points: Sequence[datetime], filters: Filters = NO_FILTERS) -> list[dict[int, int]]:
    """Per instant, {member id: MRR units} over members with MRR > 0 (the paid membership orders covering it)."""
    if not points:
        return []
    earliest = min(points) - relativedelta(years=1)
    rows = (
        paid_orders()
        .filter(member_filter_q(filters), kind=OrderKind.SUBSCRIPTION, paid_at__gte=earliest, paid_at__lt=max(points))
        .values_list("member_id", "paid_at", "billing_period", "amount_paid")
    )
    result: list[dict[int, int]] = [defaultdict(int) for _ in points]
    for member_id, paid_at, period, amount in rows.iterator(chunk_size=5000):
        units = _units(amount, period)
        for i, t in enumerate(points):
            if _period_start(t, period) <= paid_at < t:
                result[i][member_id] += units
    return [dict(r) for r in result]


def _first_membership_payment(filters: Filters) -> dict[int, datetime]:
    rows = (paid_orders().filter(member_filter_q(filters), kind=OrderKind.SUBSCRIPTION)
            .values("member_id").annotate(first=Min("paid_at")).values_list("member_id", "first"))
    return dict(rows)


def movements(months: Sequence[Window], filters: Filters = NO_FILTERS) -> list[MonthMovement]:
    points = [months[0].start, *[m.end for m in months]]
    mrr = member_mrr_at(points, filters)
    first_paid = _first_membership_payment(filters)
    from analytics.reports.metrics import revenue_in  # the overview's revenue and customers, per month

    revenue = revenue_in(months, filters)
    out: list[MonthMovement] = []
    for i, month in enumerate(months):
        before, after = mrr[i], mrr[i + 1]
        totals = dict.fromkeys(MOVEMENTS, 0)
        churned_members = 0
        for member_id in before.keys() | after.keys():
            a, b = before.get(member_id, 0), after.get(member_id, 0)
            if a == 0:
                # A payer before the month's start who was not paying at it comes back: reactivated.
                paid_before = first_paid.get(member_id)
                kind = "reactivated" if paid_before is not None and paid_before < month.start else "new"
                totals[kind] += b
            elif b == 0:
                totals["churned"] += a
                churned_members += 1
            elif b > a:
                totals["expansion"] += b - a
            elif b < a:
                totals["contraction"] += a - b
        out.append(MonthMovement(
            month=month, start_units=sum(before.values()), end_units=sum(after.values()),
            new_units=totals["new"], expansion_units=totals["expansion"], contraction_units=totals["contraction"],
            churned_units=totals["churned"], reactivated_units=totals["reactivated"],
            paying_start=len(before), paying_end=len(after), churned_members=churned_members,
            revenue=revenue[i].revenue, customers=revenue[i].customers,
        ))
    return out


def trial_to_paid(window: Window, filters: Filters = NO_FILTERS) -> tuple[int, int]:
    """(converted, trials): trials whose trial_end falls in the window, and those of them the ledger shows converted
    to a paid membership (a `trial_converted` change, at any time)."""
    trials = subscription_selectors.subscriptions().filter(member_filter_q(filters), trial_end__gte=window.start,
                                         trial_end__lt=window.end)
    total = trials.count()
    converted = trials.filter(changes__kind=SubscriptionChangeKind.TRIAL_CONVERTED).distinct().count()
    return converted, total


def dunning_recovery(window: Window, filters: Filters = NO_FILTERS) -> tuple[int, int]:
    """(recovered, episodes): subscriptions that went past due (a `past_due` change) in the window, and those of them
    with a `recovered` change after it (payment collected in dunning, at any time up to now)."""
    went_past_due = (subscription_selectors.subscription_changes()
                     .filter(member_filter_q(filters), kind=SubscriptionChangeKind.PAST_DUE,
                             at__gte=window.start, at__lt=window.end)
                     .values("subscription_id").annotate(first=Min("at")))
    episodes = {row["subscription_id"]: row["first"] for row in went_past_due}
    if not episodes:
        return 0, 0
    recovered_at = (subscription_selectors.subscription_changes()
                    .filter(subscription_id__in=list(episodes), kind=SubscriptionChangeKind.RECOVERED)
                    .values_list("subscription_id", "at"))
    recovered = {sid for sid, at in recovered_at if at >= episodes[sid]}
    return len(recovered), len(episodes)


def revenue_report(*, window: Window, filters: Filters = NO_FILTERS, months: int = 12) -> RevenueReport:
    def compute() -> RevenueReport:
        shown = trailing_months(window.end, months)
        rows = movements(shown, filters)
        from analytics.reports.metrics import revenue_in

        total = revenue_in([window], filters)[0]
        last = rows[-1]
        arpa = (money(last.end_units) / last.paying_end).quantize(CENT) if last.paying_end else None
        paying_starts = sum(r.paying_start for r in rows)
        churn = ratio(sum(r.churned_members for r in rows), paying_starts)
        ltv = (arpa / Decimal(str(churn))).quantize(CENT) if arpa is not None and churn else None
        return RevenueReport(
            window=window, months=tuple(rows), arpu=total.arpu, arpa=arpa, monthly_churn=churn, ltv=ltv,
            trial_to_paid=trial_to_paid(window, filters), dunning_recovery=dunning_recovery(window, filters),
        )

    return cached("revenue", {"window": [window.start, window.end], "filters": filters.key(), "months": months},
                  compute)
