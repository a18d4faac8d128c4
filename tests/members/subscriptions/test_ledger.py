"""The subscription ledger: every service that changes a subscription appends exactly one SubscriptionChange (the
state after the change) in its own transaction, for one extra INSERT."""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from members.admin import SubscriptionAdmin
from members.models import BillingDocument, BillingPeriod, BillingSequence, Subscription, SubscriptionChange
from members.privacy import services as privacy_services
from members.subscriptions import billing, services
from tests.members.factories import SubscriptionFactory, TierFactory, UserFactory

T0 = datetime(2025, 3, 1, 9, tzinfo=UTC)
DECLINE = "local:decline-test"
STATE = ("status", "tier_id", "billing_period", "current_period_start", "current_period_end", "cancel_at_period_end",
         "canceled_at", "paused_until")


def live_sub(**kwargs: object) -> Subscription:
    defaults = {"status": Subscription.Status.ACTIVE, "started_at": T0, "current_period_start": T0,
                "current_period_end": T0 + timedelta(days=31), "billing_period": BillingPeriod.MONTH}
    return SubscriptionFactory(**{**defaults, **kwargs})


def assert_one_row(sub_id: int, kind: str, at: datetime, before: int = 0) -> SubscriptionChange:
    rows = list(SubscriptionChange.objects.filter(subscription_id=sub_id).order_by("id"))
    assert len(rows) == before + 1, [r.kind for r in rows]
    row = rows[-1]
    sub = Subscription.objects.get(pk=sub_id)
    assert (row.kind, row.at, row.member_id) == (kind, at, sub.member_id)
    assert {f: getattr(row, f) for f in STATE} == {f: getattr(sub, f) for f in STATE}
    return row


# ---------------------------------------------------------------------------------------------- one row per path

def test_a_trial_start_records_started(db):
    tier = TierFactory(trial_days=7)
    sub = services.subscription_start(member=UserFactory(), tier=tier, when=T0)
    row = assert_one_row(sub.pk, SubscriptionChange.Kind.STARTED, T0)
    assert row.status == Subscription.Status.TRIALING


def test_a_paid_start_records_started(db):
    sub = services.subscription_start(member=UserFactory(), tier=TierFactory(), period=BillingPeriod.YEAR, when=T0)
    row = assert_one_row(sub.pk, SubscriptionChange.Kind.STARTED, T0)
    assert (row.status, row.billing_period) == (Subscription.Status.ACTIVE, BillingPeriod.YEAR)


def test_a_declined_start_leaves_no_ledger_row(db):
    with pytest.raises(services.exceptions.PaymentFailed):
        services.subscription_start(member=UserFactory(), tier=TierFactory(), payment_token=DECLINE, when=T0)
    assert not SubscriptionChange.objects.exists()


def test_renewal_outcomes_record_renewed_past_due_retry_failed_recovered(db):
    sub = live_sub()
    end = sub.current_period_end
    services.subscription_renew(subscription=sub, when=end)
    assert_one_row(sub.pk, SubscriptionChange.Kind.RENEWED, end)
    later = end + timedelta(days=31)
    with pytest.raises(services.exceptions.PaymentFailed):
        services.subscription_renew(subscription=sub, when=later, payment_token=DECLINE)
    assert assert_one_row(sub.pk, SubscriptionChange.Kind.PAST_DUE, later, 1).status == Subscription.Status.PAST_DUE
    with pytest.raises(services.exceptions.PaymentFailed):
        services.subscription_renew(subscription=sub, when=later + timedelta(days=1), payment_token=DECLINE)
    assert_one_row(sub.pk, SubscriptionChange.Kind.RETRY_FAILED, later + timedelta(days=1), 2)
    services.subscription_renew(subscription=sub, when=later + timedelta(days=3))
    row = assert_one_row(sub.pk, SubscriptionChange.Kind.RECOVERED, later + timedelta(days=3), 3)
    assert row.status == Subscription.Status.ACTIVE and row.current_period_start == later + timedelta(days=3)


def test_a_trial_conversion_records_trial_converted(db):
    sub = services.subscription_start(member=UserFactory(), tier=TierFactory(trial_days=7), when=T0)
    services.subscription_renew(subscription=sub, when=sub.current_period_end)
    assert_one_row(sub.pk, SubscriptionChange.Kind.TRIAL_CONVERTED, sub.current_period_end, 1)


@pytest.mark.parametrize(("call", "kind"), [
    (lambda sub, when: services.subscription_cancel(subscription=sub, reason="other", when=when),
     SubscriptionChange.Kind.CANCEL_SCHEDULED),
    (lambda sub, when: services.subscription_switch_period(subscription=sub, period=BillingPeriod.YEAR, when=when),
     SubscriptionChange.Kind.PERIOD_CHANGED),
    (lambda sub, when: services.subscription_pause(subscription=sub, days=30, when=when), SubscriptionChange.Kind.PAUSED),
    (lambda sub, when: services.subscription_end(subscription=sub, when=when), SubscriptionChange.Kind.EXPIRED),
])
def test_each_change_records_its_kind_with_the_new_state(db, call: Callable, kind: str):
    sub = live_sub()
    when = T0 + timedelta(days=5)
    call(sub, when)
    assert_one_row(sub.pk, kind, when)


def test_undoing_a_cancellation_and_ending_a_cancelled_one(db):
    sub = live_sub(cancel_at_period_end=True, canceled_at=T0 + timedelta(days=1))
    services.subscription_reactivate(subscription=sub, when=T0 + timedelta(days=2))
    assert not assert_one_row(sub.pk, SubscriptionChange.Kind.CANCEL_UNDONE, T0 + timedelta(days=2)).cancel_at_period_end
    services.subscription_cancel(subscription=sub, reason="other", when=T0 + timedelta(days=3))
    services.subscription_end(subscription=sub, when=sub.current_period_end)
    row = assert_one_row(sub.pk, SubscriptionChange.Kind.CANCELED, sub.current_period_end, 2)
    assert row.status == Subscription.Status.CANCELED


def test_a_pause_reaching_the_period_end_records_pause_extended(db):
    sub = live_sub()
    services.subscription_pause(subscription=sub, days=20, when=T0 + timedelta(days=3))
    billing.subscription_extend_pause(subscription=sub, when=sub.current_period_end)
    row = assert_one_row(sub.pk, SubscriptionChange.Kind.PAUSE_EXTENDED, sub.current_period_end, 1)
    assert row.current_period_end == sub.current_period_end + timedelta(days=20)


def test_account_deletion_records_the_end_and_keeps_the_ledger(db):
    sub = live_sub()
    services.subscription_pause(subscription=sub, days=10, when=T0 + timedelta(days=1))
    privacy_services.member_delete(member=sub.member, actor=None, when=T0 + timedelta(days=2))
    row = assert_one_row(sub.pk, SubscriptionChange.Kind.ACCOUNT_DELETED, T0 + timedelta(days=2), 1)
    assert row.status == Subscription.Status.CANCELED


def test_a_staff_edit_in_the_admin_records_edited(db, rf, charlie):
    sub = live_sub()
    sub.tier = TierFactory()
    request = rf.post("/")
    request.user = charlie
    SubscriptionAdmin(Subscription, admin.site).save_model(request, sub, form=None, change=True)
    row = SubscriptionChange.objects.get(subscription=sub)
    assert (row.kind, row.tier_id) == (SubscriptionChange.Kind.EDITED, sub.tier_id)


# ---------------------------------------------------------------------------------------------- the cost: +1 query

def _count(call: Callable[[], object]) -> int:
    # Both measured calls start with Django's content-type cache empty: member_delete looks up the user's content
    # type (for the admin log), which only the first call in a process queries. Run alone, the first call made one
    # query more than the second; after other tests had filled the cache, both made the same.
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.clear_cache()
    with CaptureQueriesContext(connection) as ctx, contextlib.suppress(services.exceptions.PaymentFailed):
        call()
    return len(ctx.captured_queries)


LEDGERED_CALLS: dict[str, Callable[[Subscription], object]] = {
    "renew": lambda sub: services.subscription_renew(subscription=sub, when=sub.current_period_end),
    "renew_declined": lambda sub: services.subscription_renew(subscription=sub, when=sub.current_period_end,
                                                              payment_token=DECLINE),
    "cancel": lambda sub: services.subscription_cancel(subscription=sub, reason="other", when=T0 + timedelta(days=1)),
    "switch_period": lambda sub: services.subscription_switch_period(subscription=sub, period=BillingPeriod.YEAR,
                                                                     when=T0 + timedelta(days=1)),
    "pause": lambda sub: services.subscription_pause(subscription=sub, days=30, when=T0 + timedelta(days=1)),
    "end": lambda sub: services.subscription_end(subscription=sub, when=sub.current_period_end),
    "delete_member": lambda sub: privacy_services.member_delete(member=sub.member, actor=None),
    "extend_pause": lambda sub: billing.subscription_extend_pause(subscription=sub, when=sub.current_period_end),
}


@pytest.mark.parametrize("name", sorted(LEDGERED_CALLS))
def test_the_ledger_costs_each_service_call_one_insert(db, monkeypatch, name: str):
    call = LEDGERED_CALLS[name]
    # The year's first invoice also creates its number sequence; both measured calls take a number from it.
    BillingSequence.objects.create(kind=BillingDocument.Kind.INVOICE, year=timezone.now().year)
    paused = {"paused_until": T0 + timedelta(days=60)} if name == "extend_pause" else {}
    with_ledger = _count(lambda: call(live_sub(**paused)))
    for module in (services, privacy_services, billing):
        monkeypatch.setattr(module, "subscription_record", lambda *a, **k: None)
    without_ledger = _count(lambda: call(live_sub(**paused)))
    assert with_ledger == without_ledger + 1
    assert SubscriptionChange.objects.count() == 1  # only the first call wrote one


def test_scheduling_a_period_switch_is_locks_key_update_and_one_ledger_insert(db, django_assert_num_queries):
    sub = live_sub(billing_period=BillingPeriod.YEAR)
    # savepoint, member FOR UPDATE, key SELECT, key INSERT (in its savepoint: 3), subscription FOR UPDATE, UPDATE,
    # ledger INSERT, key UPDATE, release. Yearly -> monthly is scheduled; monthly -> yearly is a charge.
    with django_assert_num_queries(11):
        services.subscription_switch_period(subscription=sub, period=BillingPeriod.MONTH, when=T0)


def test_pausing_is_lock_update_and_one_ledger_insert(db, django_assert_num_queries):
    sub = live_sub()
    with django_assert_num_queries(5):
        services.subscription_pause(subscription=sub, days=30, when=T0)
