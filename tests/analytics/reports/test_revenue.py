"""Revenue report: MRR movements (hand-built ledger and the demo), reporting-zone months, ARPU/LTV, trial-to-paid
and dunning recovery, the page and its exports. Definitions: docs/METRICS.md, "Revenue"."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from analytics.reports import metrics, revenue
from analytics.reports.common import Window, month_start, start_of_day, trailing_months
from members.models import BillingPeriod, Subscription, SubscriptionChange
from tests.analytics.reports.test_metrics import course_order, dt, sub_order, subscription
from tests.members.factories import CourseFactory, TierFactory, UserFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")


def sh_month(y: int, m: int) -> Window:
    start = datetime(y, m, 1, tzinfo=SHANGHAI)
    return Window(start, datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=SHANGHAI))


@pytest.fixture
def story(db):
    """(times 12:00 UTC = 20:00 in Shanghai, the same day)
    S  50 on 01-03, nothing in February, 50 on 03-20           -> Feb churned 50, Mar reactivated 50, Apr churned 50
    P  50 on 03-10, 04-10                                      -> Mar new 50, May churned 50
    Q  50 on 03-05, 100 on 04-05 (upgrade)                     -> Mar new 50, Apr expansion 50, May churned 100
    R  100 on 03-07, 60 on 04-07 (downgrade)                   -> Mar new 100, Apr contraction 40, May churned 60
    """
    tier = TierFactory(monthly_price=Decimal(50), yearly_price=Decimal(480))
    m = {name: UserFactory(display_name=name) for name in "SPQR"}
    subs = {name: subscription(member, tier, dt(2026, 1, 1)) for name, member in m.items()}
    for name, when, amount in [("S", dt(2026, 1, 3), 50), ("S", dt(2026, 3, 20), 50), ("P", dt(2026, 3, 10), 50),
                               ("P", dt(2026, 4, 10), 50), ("Q", dt(2026, 3, 5), 50), ("Q", dt(2026, 4, 5), 100),
                               ("R", dt(2026, 3, 7), 100), ("R", dt(2026, 4, 7), 60)]:
        sub_order(m[name], subs[name], when, Decimal(amount))
    return {"members": m, "tier": tier, "subs": subs}


def test_each_movement_is_counted_in_its_month(story):
    months = [sh_month(2026, n) for n in (2, 3, 4, 5)]
    rows = {r.label: r for r in revenue.movements(months)}

    def amounts(label):
        r = rows[label]
        return {name: r.amount(name) for name in ("start", *revenue.MOVEMENTS, "end")}

    zero = Decimal("0.00")
    assert amounts("2026-02") == {"start": Decimal("50.00"), "new": zero, "expansion": zero, "contraction": zero,
                                  "churned": Decimal("50.00"), "reactivated": zero, "end": zero}
    assert amounts("2026-03") == {"start": zero, "new": Decimal("200.00"), "expansion": zero, "contraction": zero,
                                  "churned": zero, "reactivated": Decimal("50.00"), "end": Decimal("250.00")}
    assert amounts("2026-04") == {"start": Decimal("250.00"), "new": zero, "expansion": Decimal("50.00"),
                                  "contraction": Decimal("40.00"), "churned": Decimal("50.00"), "reactivated": zero,
                                  "end": Decimal("210.00")}
    assert amounts("2026-05")["churned"] == Decimal("210.00") and amounts("2026-05")["end"] == zero
    assert all(r.reconciles() for r in rows.values())
    assert [rows[k].churned_members for k in ("2026-02", "2026-03", "2026-04", "2026-05")] == [1, 0, 1, 3]


def test_a_yearly_payment_counts_a_twelfth_exactly(db):
    tier = TierFactory(monthly_price=Decimal(50), yearly_price=Decimal(479))
    member = UserFactory()
    sub_order(member, subscription(member, tier, dt(2026, 3, 1)), dt(2026, 3, 2), Decimal("479.00"),
              period=BillingPeriod.YEAR)
    march = revenue.movements([sh_month(2026, 3)])[0]
    assert march.new_units == 47900 and march.amount("new") == Decimal("39.92")
    # The overview's MRR holds the same twelfth (SQLite used to divide 479 / 12 as integers: 39).
    assert metrics.paying_at([march.month.end])[0].mrr == Decimal("39.92")


def test_report_months_are_the_reporting_zones(db, settings):
    member, course = UserFactory(), CourseFactory(price=Decimal(77))
    course_order(member, course, datetime(2026, 1, 31, 20, 0, tzinfo=UTC), Decimal(77))  # 02-01 04:00 in Shanghai
    window = Window(start_of_day(datetime(2026, 2, 1).date()), start_of_day(datetime(2026, 3, 1).date()))

    by_month = {r.label: r.revenue for r in revenue.revenue_report(window=window, months=3).months}
    assert by_month == {"2025-12": Decimal("0.00"), "2026-01": Decimal("0.00"), "2026-02": Decimal("77.00")}
    assert f"{month_start(datetime(2026, 1, 31, 20, 0, tzinfo=UTC)):%Y-%m}" == "2026-02"
    assert [f"{m.start:%Y-%m}" for m in trailing_months(window.end, 2)] == ["2026-01", "2026-02"]

    settings.REPORTING_TIME_ZONE = "UTC"
    utc_window = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    by_month = {r.label: r.revenue for r in revenue.revenue_report(window=utc_window, months=1).months}
    assert by_month == {"2026-01": Decimal("77.00")}


def _change(sub, kind, at, status):
    return SubscriptionChange.objects.create(
        subscription=sub, member=sub.member, at=at, kind=kind, status=status, tier=sub.tier,
        billing_period=sub.billing_period, current_period_start=at, current_period_end=at + timedelta(days=30),
    )


def test_trial_to_paid_and_dunning_recovery(db):
    tier = TierFactory(monthly_price=Decimal(50), yearly_price=Decimal(480))
    window = sh_month(2026, 5)
    converted, lapsed, later = (subscription(UserFactory(), tier, dt(2026, 4, 25), trial_end=dt(2026, 5, d))
                                for d in (2, 9, 30))
    outside = subscription(UserFactory(), tier, dt(2026, 3, 1), trial_end=dt(2026, 4, 1))
    _change(converted, SubscriptionChange.Kind.TRIAL_CONVERTED, dt(2026, 5, 2), Subscription.Status.ACTIVE)
    _change(outside, SubscriptionChange.Kind.TRIAL_CONVERTED, dt(2026, 4, 1), Subscription.Status.ACTIVE)
    assert revenue.trial_to_paid(window) == (1, 3)  # `later` ends on 05-30, still in May, not converted

    recovered, lost, old = (subscription(UserFactory(), tier, dt(2026, 1, 1)) for _ in range(3))
    _change(recovered, SubscriptionChange.Kind.PAST_DUE, dt(2026, 5, 3), Subscription.Status.PAST_DUE)
    _change(recovered, SubscriptionChange.Kind.RECOVERED, dt(2026, 6, 2), Subscription.Status.ACTIVE)
    _change(lost, SubscriptionChange.Kind.PAST_DUE, dt(2026, 5, 4), Subscription.Status.PAST_DUE)
    _change(lost, SubscriptionChange.Kind.RECOVERED, dt(2026, 4, 1), Subscription.Status.ACTIVE)  # an earlier episode
    _change(old, SubscriptionChange.Kind.PAST_DUE, dt(2026, 4, 4), Subscription.Status.PAST_DUE)
    assert revenue.dunning_recovery(window) == (1, 2)


def test_ltv_is_mrr_per_paying_member_over_monthly_churn(story):
    report = revenue.revenue_report(window=sh_month(2026, 4), months=3)  # Feb, Mar, Apr
    # Paying at month starts: Feb 1, Mar 0, Apr 4 -> 5; churned members: 1 + 0 + 1 = 2 -> churn 40 %.
    assert report.monthly_churn == pytest.approx(0.4)
    assert report.arpa == Decimal("70.00")  # 210 / 3 paying members at the end of April
    assert report.ltv == Decimal("175.00")  # 70 / 0.4
    # ARPU over April: 50 + 100 + 60 from 3 customers.
    assert report.arpu == Decimal("70.00")


def test_the_revenue_page_and_its_exports(staff_client, story):
    url = reverse("analytics:revenue")
    response = staff_client.get(url, {"start": "2026-04-01", "end": "2026-04-30"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "MRR movements by month" in html and "<svg" in html
    fragment = staff_client.get(url, {"start": "2026-04-01", "end": "2026-04-30"}, headers={"HX-Request": "true"})
    assert b"<nav" not in fragment.content and b"MRR movements" in fragment.content
    export = staff_client.get(url, {"start": "2026-04-01", "end": "2026-04-30", "format": "csv", "table": "movements"})
    rows = {r[0]: r for r in csv.reader(io.StringIO(export.content.decode("utf-8-sig")))}
    assert rows["month"][:8] == ["month", "MRR at start", "new", "expansion", "contraction", "churned",
                                 "reactivated", "MRR at end"]
    assert rows["2026-04"][1:8] == ["250.00", "0.00", "50.00", "40.00", "50.00", "0.00", "210.00"]


def test_learners_cannot_see_the_revenue_page(alice_client):
    assert alice_client.get(reverse("analytics:revenue")).status_code == 403
