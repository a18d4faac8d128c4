"""Subscription state at a past as_of comes from the ledger: a change made through the real services after as_of
leaves the features at as_of exactly as they were. Subscriptions without a ledger row before as_of keep the
reconstruction from today's row (test_features.test_subscriptions_are_rebuilt_as_they_stood_at_as_of)."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from django.contrib import admin
from pandas.testing import assert_frame_equal

from analytics.ml import datasets, features
from members.admin import SubscriptionAdmin
from members.models import BillingPeriod, Subscription, SubscriptionChange
from members.subscriptions import billing, services
from tests.members.factories import TierFactory, UserFactory

T0 = datetime(2025, 1, 10, 9, tzinfo=UTC)
AS_OF = T0 + timedelta(days=45)  # inside the second monthly period
LATER = AS_OF + timedelta(days=3)
SUB_COLUMNS = ["subscription_id", "member_id", "tier_id", "billing_period", "status", "period_start", "period_end",
               "live", "cancel_pending", "canceled_at", "ended_at", "trial_end"]


def subs_at(as_of: datetime) -> pd.DataFrame:
    # Row order follows the database (PostgreSQL moves an updated row), so compare by subscription.
    return datasets.subscriptions(as_of)[SUB_COLUMNS].sort_values("subscription_id").reset_index(drop=True)


def features_at(as_of: datetime) -> pd.DataFrame:
    return features.build(datasets.snapshot(as_of)).sort_index()


def switch_to_yearly(sub: Subscription) -> None:
    services.subscription_switch_period(subscription=sub, period=BillingPeriod.YEAR, when=LATER)
    # The yearly price is charged at the next renewal: the period itself moves on a year.
    services.subscription_renew(subscription=sub, when=Subscription.objects.get(pk=sub.pk).current_period_end)


def change_tier(sub: Subscription) -> None:
    # No member-facing tier switch exists; staff change it in the admin, which records the edit.
    sub = Subscription.objects.get(pk=sub.pk)
    sub.tier = TierFactory(slug="premium", monthly_price=99)
    SubscriptionAdmin(Subscription, admin.site).save_model(None, sub, form=None, change=True)


def pause(sub: Subscription) -> None:
    services.subscription_pause(subscription=sub, days=60, when=LATER)
    billing.subscription_extend_pause(subscription=sub, when=Subscription.objects.get(pk=sub.pk).current_period_end)


def cancel_and_end(sub: Subscription) -> None:
    services.subscription_cancel(subscription=sub, reason="other", when=LATER)
    services.subscription_end(subscription=sub, when=Subscription.objects.get(pk=sub.pk).current_period_end)


@pytest.fixture
def subscribed(db) -> list[Subscription]:
    """Three members who subscribed monthly at T0 and renewed once before AS_OF, through the services."""
    subs = []
    for n in range(3):
        member = UserFactory(date_joined=T0 - timedelta(days=10), email=f"m{n}@example.com")
        sub = services.subscription_start(member=member, tier=TierFactory(slug=f"tier-{n}"), when=T0)
        services.subscription_renew(subscription=sub, when=sub.current_period_end)
        subs.append(sub)
    return subs


@pytest.mark.parametrize("change", [switch_to_yearly, change_tier, pause, cancel_and_end])
def test_a_change_after_as_of_leaves_the_features_at_as_of_unchanged(subscribed, change: Callable):
    before_subs = subs_at(AS_OF)
    before = features_at(AS_OF)
    assert before["sub_live"].sum() == 3 and (before["sub_days_to_period_end"] > 0).all()

    change(subscribed[0])

    assert_frame_equal(subs_at(AS_OF), before_subs)
    assert_frame_equal(features_at(AS_OF), before)
    # The change did move something the features read, so the test could fail: today's row differs, and so do the
    # features once the change is before the cutoff.
    after_change = features.build(datasets.snapshot(LATER + timedelta(days=400)))
    moved = ["sub_yearly", "tier_price", "sub_days_to_period_end", "sub_live"]
    assert not after_change.loc[[subscribed[0].member_id], moved].equals(before.loc[[subscribed[0].member_id], moved])


@pytest.mark.parametrize("change", [switch_to_yearly, change_tier, pause])
def test_without_the_ledger_the_reconstruction_from_today_leaks_the_change(subscribed, change: Callable):
    """Why the ledger exists: the fallback reads today's period, tier and billing period."""
    before = features.build(datasets.snapshot(AS_OF))
    change(subscribed[0])
    SubscriptionChange.objects.all().delete()
    leaked = features.build(datasets.snapshot(AS_OF))
    member = subscribed[0].member_id
    cols = ["sub_yearly", "tier_price", "sub_days_to_period_end"]
    assert not leaked.loc[[member], cols].equals(before.loc[[member], cols])


def test_state_at_as_of_is_the_last_ledger_row_before_it(subscribed):
    sub = subscribed[0]
    services.subscription_cancel(subscription=sub, reason="other", when=AS_OF - timedelta(days=2))
    services.subscription_reactivate(subscription=sub, when=AS_OF + timedelta(days=1))  # not known at AS_OF
    row = datasets.subscriptions(AS_OF).set_index("subscription_id").loc[sub.pk]
    assert bool(row["live"]) and bool(row["cancel_pending"])
    assert row["canceled_at"] == AS_OF - timedelta(days=2)
    later = datasets.subscriptions(AS_OF + timedelta(days=2)).set_index("subscription_id").loc[sub.pk]
    assert bool(later["live"]) and not bool(later["cancel_pending"])


def test_an_ended_subscription_is_not_live_after_its_end_row(subscribed):
    sub = subscribed[1]
    end = Subscription.objects.get(pk=sub.pk).current_period_end
    services.subscription_cancel(subscription=sub, reason="other", when=end - timedelta(days=5))
    services.subscription_end(subscription=sub, when=end)
    just_before = datasets.subscriptions(end).set_index("subscription_id").loc[sub.pk]
    after = datasets.subscriptions(end + timedelta(seconds=1)).set_index("subscription_id").loc[sub.pk]
    assert bool(just_before["live"]) and bool(just_before["cancel_pending"])
    assert not bool(after["live"]) and after["status"] == Subscription.Status.CANCELED and after["ended_at"] == end


def test_ledger_and_fallback_rows_mix_in_one_read_and_a_member_range(subscribed):
    from tests.members.factories import SubscriptionFactory

    legacy = SubscriptionFactory(member=UserFactory(date_joined=T0), started_at=T0, current_period_start=T0,
                                 current_period_end=T0 + timedelta(days=400), billing_period=BillingPeriod.YEAR)
    frame = datasets.subscriptions(AS_OF).set_index("subscription_id")
    assert set(frame.index) == {s.pk for s in subscribed} | {legacy.pk}
    assert frame["live"].all() and frame["live"].dtype == bool
    ids = sorted(s.member_id for s in subscribed)
    chunk = datasets.subscriptions(AS_OF, datasets.MemberRange(ids[1], ids[2]))
    assert list(chunk["member_id"]) == [ids[1]]


def test_the_ledger_read_is_one_query(subscribed, django_assert_num_queries):
    # The subscriptions, the last ledger row of each, then the subscription orders of members without one
    # (test_inferred_subscriptions).
    with django_assert_num_queries(3):
        datasets.subscriptions(AS_OF)


def test_a_period_restarted_by_a_dunning_recovery_is_exact(db):
    """The calendar step-back of the fallback cannot know that a recovered renewal restarted the period at the
    payment; the ledger can (the demo seed had 54 such subscriptions out of 847 at one as_of)."""
    member = UserFactory(date_joined=T0 - timedelta(days=10))
    sub = services.subscription_start(member=member, tier=TierFactory(), when=T0)
    first_end = sub.current_period_end
    with pytest.raises(services.exceptions.PaymentFailed):
        services.subscription_renew(subscription=sub, when=first_end, payment_token="local:decline-test")
    paid = first_end + timedelta(days=3)
    services.subscription_renew(subscription=sub, when=paid)
    as_of = paid + timedelta(days=40)  # the recovered period has renewed once more before as_of
    services.subscription_renew(subscription=sub, when=Subscription.objects.get(pk=sub.pk).current_period_end)
    expected = SubscriptionChange.objects.filter(subscription=sub, at__lt=as_of).order_by("-at").first()
    row = datasets.subscriptions(as_of).set_index("subscription_id").loc[sub.pk]
    assert (row["period_start"], row["period_end"]) == (expected.current_period_start, expected.current_period_end)
    assert expected.kind == SubscriptionChange.Kind.RENEWED and expected.current_period_start.day == paid.day


def test_a_member_in_a_trial_at_as_of_is_trialing_before_and_after_converting(db):
    member = UserFactory(date_joined=T0 - timedelta(days=10), email="trial@example.com")
    sub = services.subscription_start(member=member, tier=TierFactory(slug="trial-tier", trial_days=14), when=T0)
    in_trial, after_trial = T0 + timedelta(days=5), T0 + timedelta(days=20)
    assert features_at(in_trial).loc[member.pk, "sub_trialing"] == 1.0

    services.subscription_renew(subscription=sub, when=sub.trial_end)  # the trial converts to a paid period

    assert features_at(in_trial).loc[member.pk, "sub_trialing"] == 1.0  # unchanged at the earlier as_of
    converted = features_at(after_trial).loc[member.pk]
    assert converted["sub_trialing"] == 0.0 and converted["sub_live"] == 1.0
    # Without the ledger (the fallback), the trial's end date, set when it started, still tells.
    SubscriptionChange.objects.filter(subscription=sub).delete()
    assert features_at(in_trial).loc[member.pk, "sub_trialing"] == 1.0
    assert features_at(after_trial).loc[member.pk, "sub_trialing"] == 0.0
