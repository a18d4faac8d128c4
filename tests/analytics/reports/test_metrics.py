"""Each overview figure against a small hand-built ledger whose answer is worked out here, in the comments.

Three figures (MRR, renewal rate, repurchase rate at 90 days) are also checked against an independent raw SQL query
that does not go through analytics.reports.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from django.db import connection
from django.utils.dateparse import parse_datetime

from analytics.reports import metrics
from analytics.reports.common import Filters, Window, trailing_months
from members.models import BillingPeriod, Order, Subscription
from tests.members.factories import CourseFactory, TierFactory, UserFactory


def dt(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 12, 0, tzinfo=UTC)


MAY = Window(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))
JAN = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))


def sub_order(member, sub, when, amount, *, renewal=False, status=Order.Status.PAID, period=BillingPeriod.MONTH):
    return Order.objects.create(
        member=member, kind=Order.Kind.SUBSCRIPTION, tier=sub.tier, billing_period=period, subscription=sub,
        is_renewal=renewal, list_price=amount, amount_paid=amount, status=status, created_at=when,
        paid_at=when if status in (Order.Status.PAID, Order.Status.REFUNDED) else None,
        refunded_at=when + timedelta(days=1) if status == Order.Status.REFUNDED else None,
    )


def course_order(member, course, when, amount, *, status=Order.Status.PAID):
    return Order.objects.create(
        member=member, kind=Order.Kind.COURSE, course=course, list_price=amount, amount_paid=amount, status=status,
        created_at=when, paid_at=when, refunded_at=when + timedelta(days=2) if status == Order.Status.REFUNDED else None,
    )


def subscription(member, tier, started, *, status=Subscription.Status.ACTIVE, ended=None, period=BillingPeriod.MONTH,
                 trial_end=None):
    return Subscription.objects.create(
        member=member, tier=tier, billing_period=period, status=status, started_at=started,
        current_period_start=started, current_period_end=started + timedelta(days=30), ended_at=ended,
        trial_end=trial_end,
    )


@pytest.fixture
def ledger(db):
    """The shared story (all times 12:00 UTC):

    Memberships (tier: 50/month, 480/year)
      A  monthly, live since 03-10; paid 03-10 (50), renewals 04-10 (50), 05-10 (50)
      B  yearly, live since 01-15; paid 01-15 (480)
      C  monthly since 02-05, cancelled, ended 05-05; paid 02-05, renewals 03-05, 04-05 (50 each)
      D  trial since 05-20, live, never paid
      E  monthly since 04-20; paid 04-20 (40, discounted); renewal 05-20 REFUNDED
      F  trial 04-01, expired 04-15, never paid
    Courses (X, Y)
      G  X 01-10 (100), Y 02-01 (200)            -> second after 22 days
      H  X 01-20 (100), Y 05-15 (200)            -> second after 115 days
      I  X 01-25 (100), Y 02-01 REFUNDED         -> no second purchase
      J  X 05-03 (100) only
      A  Y 05-12 (150): A's first course order
    """
    tier = TierFactory(monthly_price=Decimal(50), yearly_price=Decimal(480))
    x, y = CourseFactory(price=Decimal(100)), CourseFactory(price=Decimal(200))
    m = {name: UserFactory(display_name=name) for name in "ABCDEFGHIJ"}

    a = subscription(m["A"], tier, dt(2026, 3, 10))
    sub_order(m["A"], a, dt(2026, 3, 10), Decimal(50))
    sub_order(m["A"], a, dt(2026, 4, 10), Decimal(50), renewal=True)
    sub_order(m["A"], a, dt(2026, 5, 10), Decimal(50), renewal=True)
    b = subscription(m["B"], tier, dt(2026, 1, 15), period=BillingPeriod.YEAR)
    sub_order(m["B"], b, dt(2026, 1, 15), Decimal(480), period=BillingPeriod.YEAR)
    c = subscription(m["C"], tier, dt(2026, 2, 5), status=Subscription.Status.CANCELED, ended=dt(2026, 5, 5))
    sub_order(m["C"], c, dt(2026, 2, 5), Decimal(50))
    sub_order(m["C"], c, dt(2026, 3, 5), Decimal(50), renewal=True)
    sub_order(m["C"], c, dt(2026, 4, 5), Decimal(50), renewal=True)
    subscription(m["D"], tier, dt(2026, 5, 20), status=Subscription.Status.TRIALING, trial_end=dt(2026, 6, 3))
    e = subscription(m["E"], tier, dt(2026, 4, 20))
    sub_order(m["E"], e, dt(2026, 4, 20), Decimal(40))
    sub_order(m["E"], e, dt(2026, 5, 20), Decimal(50), renewal=True, status=Order.Status.REFUNDED)
    subscription(m["F"], tier, dt(2026, 4, 1), status=Subscription.Status.EXPIRED, ended=dt(2026, 4, 15),
                 trial_end=dt(2026, 4, 15))

    course_order(m["G"], x, dt(2026, 1, 10), Decimal(100))
    course_order(m["G"], y, dt(2026, 2, 1), Decimal(200))
    course_order(m["H"], x, dt(2026, 1, 20), Decimal(100))
    course_order(m["H"], y, dt(2026, 5, 15), Decimal(200))
    course_order(m["I"], x, dt(2026, 1, 25), Decimal(100))
    course_order(m["I"], y, dt(2026, 2, 1), Decimal(200), status=Order.Status.REFUNDED)
    course_order(m["J"], x, dt(2026, 5, 3), Decimal(100))
    course_order(m["A"], y, dt(2026, 5, 12), Decimal(150))
    return {"tier": tier, "members": m, "x": x, "y": y}


def test_active_members_counts_trials_and_grace_but_not_ended(ledger):
    # At 06-01: A, B, E live; D trialing; C ended 05-05; F ended 04-15 -> 4.
    assert metrics.active_members(at=MAY.end) == 4
    # At 05-01: A, B, C (ends 05-05), E (since 04-20); D not started; F ended -> 4.
    assert metrics.active_members(at=MAY.start) == 4
    # At 04-10: A, B, C, F (trial 04-01..04-15) -> 4; E not yet.
    assert metrics.active_members(at=dt(2026, 4, 10)) == 4


def test_paying_members_and_mrr_come_from_covering_paid_orders(ledger):
    # At 06-01 a monthly order must be paid on/after 05-01, a yearly one on/after 2025-06-01:
    # A (05-10, 50) and B (01-15, 480/12 = 40). C's last order 04-05 is too old; E's 05-20 renewal was refunded.
    assert metrics.paying_members(at=MAY.end) == 2
    assert metrics.mrr(at=MAY.end) == Decimal("90.00")  # 50 + 40
    # At 05-01: A (04-10, 50), B (40), C (04-05, 50), E (04-20, 40) -> 4 members, 180.
    assert metrics.paying_members(at=MAY.start) == 4
    assert metrics.mrr(at=MAY.start) == Decimal("180.00")


def test_renewal_rate_is_renewed_over_due(ledger):
    # May: renewed = A's 05-10 renewal (E's is refunded, so it does not count) = 1;
    # ended after paying = C (05-05) = 1; due = 1 + 1 = 2 -> 50 %. F never paid, so its end is no lost renewal.
    rate = metrics.renewal_rate(window=MAY)
    assert (rate.numerator, rate.denominator) == (1, 2)
    assert rate.value == pytest.approx(0.5)
    # April: renewed A 04-10, C 04-05 = 2; no paid membership ended (F was a trial) -> 2/2.
    april = metrics.renewal_rate(window=Window(dt(2026, 4, 1) - timedelta(hours=12), MAY.start))
    assert (april.numerator, april.denominator) == (2, 2)


def test_churn_rate_is_paid_endings_over_paying_at_start(ledger):
    # May: C ended = 1; paying at 05-01 = 4 -> 25 %.
    rate = metrics.churn_rate(window=MAY)
    assert (rate.numerator, rate.denominator) == (1, 4)


def shifted(window: Window, days: int) -> Window:
    return Window(window.start + timedelta(days=days), window.end + timedelta(days=days))


def test_repurchase_rate_counts_buyers_whose_d_days_closed_in_the_window(ledger):
    # The d-day rate "in" a window is about buyers whose first d days ended in it: for the January buyers
    # G (01-10), H (01-20), I (01-25) that is January shifted by d days.
    # Within 30 days: G (22 days). Within 90: still only G (H took 115). I's second order was refunded.
    r30 = metrics.repurchase_rate(window=shifted(JAN, 30), days=30)
    r90 = metrics.repurchase_rate(window=shifted(JAN, 90), days=90)
    assert (r30.numerator, r30.denominator) == (1, 3)
    assert (r90.numerator, r90.denominator) == (1, 3)
    # Within 180: G (22) and H (115) came back -> 2/3.
    r180 = metrics.repurchase_rate(window=shifted(JAN, 180), days=180)
    assert (r180.numerator, r180.denominator) == (2, 3)
    # The same window seen from 06-01 (before the 180 days are over): nobody is counted -> no rate, not 0 %.
    early = metrics.repurchase_rate(window=shifted(JAN, 180), days=180, as_of=MAY.end)
    assert early.denominator == 0 and early.value is None
    # J bought first on 05-03: their 30 days end 06-02, outside May -> May's 30-day cohort is only buyers of April,
    # and nobody bought a first course in April.
    assert metrics.repurchase_rate(window=MAY, days=30).denominator == 0


def test_median_days_to_second_purchase(ledger):
    # Second purchases paid 02-01..05-31: G 01-10 -> 02-01 = 22 days; H 01-20 -> 05-15 = 11 + 28 + 31 + 30 + 15
    # = 115 days. Median = (22 + 115) / 2 = 68.5.
    assert metrics.median_days_to_second_purchase(window=Window(JAN.end, MAY.end)) == pytest.approx(68.5)
    # February alone: only G's 22 days (I's refunded order is no second purchase).
    assert metrics.median_days_to_second_purchase(window=Window(JAN.end, dt(2026, 3, 1))) == pytest.approx(22)
    assert metrics.median_days_to_second_purchase(window=MAY) == pytest.approx(115)


def test_arpu_and_repeat_buyer_revenue(ledger):
    # May paid revenue: A membership 50 + A course 150 + H course 200 + J course 100 = 500 (E's refund excluded).
    # Paying customers in May: A, H, J = 3 -> ARPU 166.67.
    assert metrics.arpu(window=MAY) == Decimal("166.67")
    # Repeat revenue in May: only H's second course (200); J's and A's May orders are their first.
    assert metrics.repeat_buyer_revenue([MAY]) == [Decimal("200.00")]
    # February: G's second course (200); I's refunded one does not count.
    assert metrics.repeat_buyer_revenue([Window(JAN.end, dt(2026, 3, 1))]) == [Decimal("200.00")]


def test_tier_filter_restricts_to_that_tiers_members(ledger):
    other = TierFactory()
    assert metrics.paying_members(at=MAY.end, filters=Filters(tier_id=other.pk)) == 0
    assert metrics.paying_members(at=MAY.end, filters=Filters(tier_id=ledger["tier"].pk)) == 2


def test_overview_assembles_every_figure_with_trend_and_previous(ledger, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        report = metrics.overview(window=MAY)
    mrr = report.figure("mrr")
    assert mrr.value == pytest.approx(90.0) and mrr.previous == pytest.approx(180.0)
    assert mrr.change == pytest.approx(-90.0)
    # MAY ends at 06-01 00:00 UTC, which is already 08:00 on June 1st in the reporting zone (Asia/Shanghai): the last
    # trend month is June, cut at the window end, so its value is the same 90.
    assert len(mrr.trend) == 12 and mrr.trend[-1].label == "2026-06"
    assert mrr.trend[-1].value == pytest.approx(90.0)
    assert report.figure("renewal_rate").value == pytest.approx(0.5)
    # Cached: a second call runs no query.
    with django_assert_max_num_queries(0):
        metrics.overview(window=MAY)


def test_trailing_months_are_calendar_months_ending_at_the_window():
    months = trailing_months(datetime(2026, 5, 20, tzinfo=UTC))
    assert [f"{m.start:%Y-%m}" for m in months][:2] == ["2025-06", "2025-07"]
    assert months[-1].end == datetime(2026, 5, 20, tzinfo=UTC)


# ------------------------------------------------------------------------------------------------------------------
# Independent raw SQL: these queries share nothing with analytics.reports.


def _as_dt(value):
    # SQLite hands raw datetimes back as naive UTC strings; PostgreSQL as aware datetimes.
    value = parse_datetime(value) if isinstance(value, str) else value
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def test_mrr_agrees_with_raw_sql(ledger):
    at = MAY.end
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT COALESCE(SUM(CASE WHEN billing_period = 'year' THEN amount_paid / 12.0 ELSE amount_paid END), 0)
            FROM members_order
            WHERE status = 'paid' AND kind = 'subscription' AND paid_at < %s
              AND ((billing_period = 'year' AND paid_at >= %s) OR (billing_period <> 'year' AND paid_at >= %s))
            """,
            [at, datetime(2025, 6, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)],
        )
        raw = Decimal(str(cur.fetchone()[0])).quantize(Decimal("0.01"))
    assert raw == metrics.mrr(at=at) == Decimal("90.00")


def test_renewal_rate_agrees_with_raw_sql(ledger):
    with connection.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM members_order WHERE status = 'paid' AND kind = 'subscription' AND is_renewal "
            "AND paid_at >= %s AND paid_at < %s",
            [MAY.start, MAY.end],
        )
        renewed = cur.fetchone()[0]
        cur.execute(
            """
            SELECT COUNT(*) FROM members_subscription s
            WHERE s.status IN ('canceled', 'expired') AND s.ended_at >= %s AND s.ended_at < %s
              AND EXISTS (SELECT 1 FROM members_order o WHERE o.subscription_id = s.id AND o.status = 'paid')
            """,
            [MAY.start, MAY.end],
        )
        lost = cur.fetchone()[0]
    rate = metrics.renewal_rate(window=MAY)
    assert (rate.numerator, rate.denominator) == (renewed, renewed + lost) == (1, 2)


def test_repurchase_rate_90d_agrees_with_raw_sql(ledger):
    as_of = shifted(JAN, 90).end
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT f.member_id, f.first_at,
                   (SELECT MIN(o2.paid_at) FROM members_order o2
                     WHERE o2.member_id = f.member_id AND o2.status = 'paid' AND o2.kind = 'course'
                       AND o2.paid_at > f.first_at) AS second_at
            FROM (SELECT member_id, MIN(paid_at) AS first_at FROM members_order
                  WHERE status = 'paid' AND kind = 'course' GROUP BY member_id) f
            """
        )
        rows = [(member, _as_dt(first), _as_dt(second)) for member, first, second in cur.fetchall()]
    window = shifted(JAN, 90)
    eligible = [r for r in rows if window.start - timedelta(days=90) <= r[1] < window.end - timedelta(days=90)
                and r[1] <= as_of - timedelta(days=90)]
    came_back = [r for r in eligible if r[2] is not None and r[2] <= r[1] + timedelta(days=90)]
    rate = metrics.repurchase_rate(window=shifted(JAN, 90), days=90, as_of=as_of)
    assert (rate.numerator, rate.denominator) == (len(came_back), len(eligible)) == (1, 3)


# ------------------------------------------------------------------------------------------------------------------
# Every overview figure (value, previous, twelve-month trend) against a plain-Python reading of the definitions in
# docs/METRICS.md over the ledger's rows. Shares nothing with analytics.reports but the windows it is asked about, so
# a query rewritten for speed must still give the same numbers.


def _independent_overview(window: Window, member_ids: set[int]) -> dict[str, tuple[object, object, list[object]]]:
    orders = list(Order.objects.filter(member_id__in=member_ids).values(
        "member_id", "kind", "status", "paid_at", "billing_period", "amount_paid", "is_renewal", "subscription_id"))
    paid = [o for o in orders if o["status"] == Order.Status.PAID and o["paid_at"] is not None]
    subs = list(Subscription.objects.filter(member_id__in=member_ids).values("pk", "member_id", "status", "started_at",
                                                                             "ended_at"))
    live = {Subscription.Status.TRIALING, Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE}

    def active(t):
        return len({s["member_id"] for s in subs if s["started_at"] < t
                    and ((s["ended_at"] is None and s["status"] in live) or (s["ended_at"] is not None and s["ended_at"] > t))})

    def covering(t):
        return [o for o in paid if o["kind"] == Order.Kind.SUBSCRIPTION and o["paid_at"] < t and o["paid_at"] >= t - (
            relativedelta(years=1) if o["billing_period"] == BillingPeriod.YEAR else relativedelta(months=1))]

    def paying(t):
        return len({o["member_id"] for o in covering(t)})

    def mrr(t):
        total = sum((o["amount_paid"] / 12 if o["billing_period"] == BillingPeriod.YEAR else o["amount_paid"]
                     for o in covering(t)), Decimal(0))
        return float(total.quantize(Decimal("0.01")))

    def inside(when, w):
        return when is not None and w.start <= when < w.end

    def arpu(w):
        rows = [o for o in paid if inside(o["paid_at"], w)]
        customers = {o["member_id"] for o in rows}
        return float((sum(o["amount_paid"] for o in rows) / len(customers)).quantize(Decimal("0.01"))) if customers else None

    ever_paid = {o["subscription_id"] for o in paid}

    def ended(w):
        return sum(1 for s in subs if s["status"] in ("canceled", "expired") and inside(s["ended_at"], w)
                   and s["pk"] in ever_paid)

    def renewal(w):
        renewed = sum(1 for o in paid if o["kind"] == Order.Kind.SUBSCRIPTION and o["is_renewal"] and inside(o["paid_at"], w))
        due = renewed + ended(w)
        return renewed / due if due else None

    def churn(w):
        base = paying(w.start)
        return ended(w) / base if base else None

    course = sorted((o["paid_at"], o["member_id"], o["amount_paid"]) for o in paid if o["kind"] == Order.Kind.COURSE)
    first: dict[int, datetime] = {}
    second: dict[int, datetime] = {}
    for at, member, _ in course:
        if member not in first:
            first[member] = at
        elif member not in second and at > first[member]:
            second[member] = at

    def gap_days(member):
        return (second[member] - first[member]).total_seconds() / 86400

    def repurchase(w, d):
        lag = timedelta(days=d)
        cohort = [m for m, f in first.items() if w.start - lag <= f < min(w.end, window.end) - lag]
        back = [m for m in cohort if m in second and gap_days(m) <= d + 1e-6]
        return len(back) / len(cohort) if cohort else None

    def median_gap(w):
        gaps = sorted(gap_days(m) for m in second if inside(second[m], w))
        if not gaps:
            return None
        mid = len(gaps) // 2
        return gaps[mid] if len(gaps) % 2 else (gaps[mid - 1] + gaps[mid]) / 2

    def repeat(w):
        return float(sum((a for at, m, a in course if at > first[m] and inside(at, w)), Decimal(0)))

    previous = window.previous()
    months = trailing_months(window.end)
    point = {"active_members": active, "paying_members": paying, "mrr": mrr}
    span = {"arpu": arpu, "renewal_rate": renewal, "churn_rate": churn, "median_days_to_second": median_gap,
            "repeat_revenue": repeat}
    span |= {f"repurchase_{d}d": (lambda w, d=d: repurchase(w, d)) for d in metrics.REPURCHASE_DAYS}
    expected = {key: (f(window.end), f(window.start), [f(m.end) for m in months]) for key, f in point.items()}
    expected |= {key: (f(window), f(previous), [f(m) for m in months]) for key, f in span.items()}
    return expected


@pytest.mark.parametrize("filtered", [False, True], ids=["everyone", "tier"])
def test_every_overview_figure_matches_an_independent_calculation(ledger, filtered, django_assert_num_queries):
    members = {m.pk for m in ledger["members"].values()}
    filters = Filters()
    if filtered:
        filters = Filters(tier_id=ledger["tier"].pk)
        members = set(Subscription.objects.filter(tier=ledger["tier"]).values_list("member_id", flat=True))
    with django_assert_num_queries(8):  # one statement per metric function, whatever the number of windows
        report = metrics.overview(window=MAY, filters=filters)
    expected = _independent_overview(MAY, members)
    assert {f.key for f in report.figures} == set(expected)
    for figure in report.figures:
        value, previous, trend = expected[figure.key]
        got = [figure.value, figure.previous, *[p.value for p in figure.trend]]
        want = [value, previous, *trend]
        assert [g is None for g in got] == [w is None for w in want], figure.key
        assert [g for g in got if g is not None] == pytest.approx([w for w in want if w is not None], rel=1e-9), (
            figure.key)
        # The story fills a point of every figure (but the 180-day rate: its first buyers are from January), so
        # these cannot agree by both being "—" throughout.
        if not filtered and figure.key != "repurchase_180d":
            assert any(v not in (None, 0) for v in want), figure.key
