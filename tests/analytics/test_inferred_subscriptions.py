"""Subscription state inferred from paid tier orders for members with no Subscription rows (an imported platform:
import_platform_data books tier orders but writes no Subscription rows). datasets.subscriptions walks the orders
before as_of into a paid-through date; the features read it like any other subscription row."""
from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest
from django.conf import settings
from django.core.management import call_command

from analytics.ml import datasets, features
from members.models import BillingPeriod, Order, Subscription, User
from members.subscriptions import services
from tests.members.factories import TierFactory, UserFactory

pytestmark = pytest.mark.django_db

JAN1 = datetime(2025, 1, 1, 9, tzinfo=UTC)
FEB1 = datetime(2025, 2, 1, 9, tzinfo=UTC)
MAR1 = datetime(2025, 3, 1, 9, tzinfo=UTC)
APR1 = datetime(2025, 4, 1, 9, tzinfo=UTC)
GRACE = timedelta(days=settings.RENEWAL_GRACE_DAYS)


def pay(member, tier, when: datetime, period: str = BillingPeriod.MONTH, **extra) -> Order:
    price = tier.yearly_price if period == BillingPeriod.YEAR else tier.monthly_price
    fields = {"status": Order.Status.PAID, "paid_at": when, **extra}
    return Order.objects.create(member=member, kind=Order.Kind.SUBSCRIPTION, tier=tier, billing_period=period,
                                list_price=price, amount_paid=price, created_at=when, **fields)


def state(member, as_of: datetime) -> pd.Series:
    frame = datasets.subscriptions(as_of)
    rows = frame[frame["member_id"] == member.pk]
    assert len(rows) == 1
    return rows.iloc[0]


def feature_row(member, as_of: datetime) -> pd.Series:
    return features.subscription_features(datasets.subscriptions(as_of), datasets.tiers(as_of), as_of).loc[member.pk]


@pytest.fixture
def monthly(db) -> tuple[User, object]:
    """A member who paid monthly on the 1st of January, February and March, and stopped."""
    member, tier = UserFactory(date_joined=JAN1 - timedelta(days=5)), TierFactory(monthly_price=Decimal("30.00"))
    for when in (JAN1, FEB1, MAR1):
        pay(member, tier, when)
    return member, tier


def test_a_monthly_payer_is_live_mid_month_three_with_the_right_days_to_period_end(monthly):
    member, tier = monthly
    as_of = datetime(2025, 3, 15, 9, tzinfo=UTC)
    row = state(member, as_of)
    assert bool(row["live"]) and bool(row["inferred"]) and row["status"] == Subscription.Status.ACTIVE
    assert row["period_start"] == pd.Timestamp(MAR1) and row["period_end"] == pd.Timestamp(APR1)
    assert row["started_at"] == pd.Timestamp(JAN1) and row["tier_id"] == tier.pk and row["billing_period"] == "month"
    assert not row["cancel_pending"] and not row["trialing"] and pd.isna(row["subscription_id"])
    feats = feature_row(member, as_of)
    assert feats["sub_live"] == 1 and feats["sub_days_to_period_end"] == pytest.approx(17)
    assert feats["tier_price"] == 30 and feats["sub_yearly"] == 0 and feats["sub_ever"] == 1


def test_a_monthly_payer_lapses_after_the_grace_days_and_is_not_live_two_months_on(monthly):
    member, _ = monthly
    in_grace = state(member, APR1 + GRACE - timedelta(hours=1))
    assert bool(in_grace["live"]) and in_grace["status"] == Subscription.Status.PAST_DUE
    lapsed = state(member, APR1 + GRACE)
    assert not lapsed["live"] and lapsed["status"] == Subscription.Status.EXPIRED
    assert lapsed["ended_at"] == pd.Timestamp(APR1 + GRACE)
    two_months = datetime(2025, 5, 1, 10, tzinfo=UTC)
    feats = feature_row(member, two_months)
    assert feats["sub_live"] == 0 and feats["sub_days_to_period_end"] == 0 and feats["sub_ever"] == 1


def test_a_yearly_payer(db):
    member, tier = UserFactory(), TierFactory()
    paid = datetime(2025, 1, 10, 9, tzinfo=UTC)
    pay(member, tier, paid, BillingPeriod.YEAR)
    row = state(member, datetime(2025, 12, 1, tzinfo=UTC))
    assert bool(row["live"]) and row["billing_period"] == "year"
    assert row["period_end"] == pd.Timestamp(datetime(2026, 1, 10, 9, tzinfo=UTC))
    assert feature_row(member, datetime(2025, 12, 1, tzinfo=UTC))["sub_yearly"] == 1
    assert not state(member, datetime(2026, 2, 1, tzinfo=UTC))["live"]


def test_an_early_renewal_extends_the_period_and_a_late_one_starts_a_new_one(db):
    early, late, tier = UserFactory(), UserFactory(), TierFactory()
    pay(early, tier, JAN1)
    pay(early, tier, JAN1 + timedelta(days=20))  # paid before January's period ended: runs on from Feb 1
    pay(late, tier, JAN1)
    late_start = datetime(2025, 3, 10, 9, tzinfo=UTC)  # after the lapse: a new period from the payment
    pay(late, tier, late_start, BillingPeriod.YEAR)
    as_of = datetime(2025, 3, 20, tzinfo=UTC)
    assert state(early, FEB1 + timedelta(days=3))["period_end"] == pd.Timestamp(MAR1)
    row = state(late, as_of)
    assert row["period_start"] == pd.Timestamp(late_start) and row["started_at"] == pd.Timestamp(JAN1)
    assert row["period_end"] == pd.Timestamp(late_start.replace(year=2026)) and row["billing_period"] == "year"


def test_month_ends_step_like_the_platforms_period_arithmetic(db):
    member, tier = UserFactory(), TierFactory()
    jan31 = datetime(2025, 1, 31, 9, tzinfo=UTC)
    first_end = services.period_end(jan31, BillingPeriod.MONTH)  # Feb 28
    pay(member, tier, jan31)
    pay(member, tier, first_end - timedelta(days=1))
    expected = services.period_end(first_end, BillingPeriod.MONTH)  # Mar 28, not Mar 31
    assert state(member, first_end + timedelta(days=2))["period_end"] == pd.Timestamp(expected)


def test_refunded_orders_count_only_until_the_refund_is_known_and_failed_ones_never(db):
    member, tier = UserFactory(), TierFactory()
    pay(member, tier, JAN1)
    pay(member, tier, FEB1, status=Order.Status.REFUNDED, refunded_at=FEB1 + timedelta(days=4))
    pay(member, tier, FEB1 + timedelta(days=1), status=Order.Status.FAILED, paid_at=None)
    before_refund = state(member, FEB1 + timedelta(days=2))
    assert before_refund["period_end"] == pd.Timestamp(MAR1) and bool(before_refund["live"])
    after_refund = state(member, FEB1 + timedelta(days=10))
    assert after_refund["period_end"] == pd.Timestamp(FEB1) and not after_refund["live"]


def test_a_member_with_subscription_rows_is_unaffected_by_their_orders(db):
    tier = TierFactory()
    native = UserFactory(date_joined=JAN1 - timedelta(days=1))
    sub = services.subscription_start(member=native, tier=tier, when=JAN1, use_trial=False)
    as_of = JAN1 + timedelta(days=10)
    alone = state(native, as_of)
    # Orders not tied to the subscription (e.g. imported history) must not add an inferred row or change it.
    pay(native, tier, JAN1 - timedelta(days=40))
    pay(native, tier, JAN1 + timedelta(days=5), BillingPeriod.YEAR)
    row = state(native, as_of)
    assert row["subscription_id"] == sub.pk and not row["inferred"]
    pd.testing.assert_series_equal(row, alone)


def test_one_extra_query_and_a_member_range(monthly, django_assert_num_queries):
    member, tier = monthly
    native = UserFactory()
    services.subscription_start(member=native, tier=tier, when=JAN1, use_trial=False)
    as_of = MAR1 + timedelta(days=3)
    with django_assert_num_queries(3):  # subscriptions, their last ledger rows, the subscription orders
        frame = datasets.subscriptions(as_of)
    assert sorted(zip(frame["member_id"], frame["inferred"])) == sorted([(member.pk, True), (native.pk, False)])
    assert frame["live"].all() and frame["live"].dtype == bool
    with django_assert_num_queries(2):  # no Subscription row in range: no ledger read
        chunk = datasets.subscriptions(as_of, datasets.MemberRange(member.pk, member.pk + 1))
    assert list(chunk["member_id"]) == [member.pk]


def test_an_imported_platform_gets_subscription_state_from_its_tier_orders(tmp_path):
    (tmp_path / "products.csv").write_text("product_id,kind,title,price\nt-1,tier,Club,40\n", encoding="utf-8")
    (tmp_path / "orders.csv").write_text(
        "order_id,member_id,product_id,amount,ordered_at,status,billing_period\n"
        "o-1,m-1,t-1,40,2025-01-01T09:00:00Z,paid,month\n"
        "o-2,m-1,t-1,40,2025-02-01T09:00:00Z,paid,month\n"
        "o-3,m-2,t-1,480,2025-01-05T09:00:00Z,paid,year\n"
        "o-4,m-3,t-1,40,2025-01-05T09:00:00Z,failed,month\n",
        encoding="utf-8",
    )
    call_command("import_platform_data", "--products", str(tmp_path / "products.csv"),
                 "--orders", str(tmp_path / "orders.csv"), "--no-progress", stdout=io.StringIO())
    assert not Subscription.objects.exists()  # import writes none; the analytics infer them
    as_of = datetime(2025, 2, 20, tzinfo=UTC)
    snap = datasets.snapshot(as_of)
    feats = features.build(snap)
    by_ext = dict(User.objects.values_list("external_id", "pk"))
    assert feats.loc[by_ext["m-1"], "sub_live"] == 1 and feats.loc[by_ext["m-2"], "sub_yearly"] == 1
    assert feats.loc[by_ext["m-1"], "sub_days_to_period_end"] == pytest.approx(9 + 9 / 24)
    assert feats.loc[by_ext["m-3"], "sub_ever"] == 0
