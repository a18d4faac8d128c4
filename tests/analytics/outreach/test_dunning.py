"""The renewal and dunning state machine, one transition per test, driven by members.billing at chosen times."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from analytics.models import Event
from members.commerce import services as commerce_services
from members.models import Order, Subscription
from members.subscriptions import billing
from members.subscriptions import services as subscriptions_services
from tests.members.factories import SubscriptionFactory, TierFactory, UserFactory

DECLINE = "local:decline-test"


def _due_sub(*, token: str | None = None, **kwargs):
    member = UserFactory()
    if token:
        commerce_services.payment_method_set(member=member, token=token, label="Test card")
    end = kwargs.pop("end", timezone.now() - timedelta(minutes=5))
    return SubscriptionFactory(member=member, current_period_start=end - timedelta(days=30), current_period_end=end,
                               **kwargs)


def _kinds(sub: Subscription) -> list[str]:
    return list(Event.objects.filter(object_type="subscription", object_id=str(sub.pk)).order_by("id")
                .values_list("kind", flat=True))


def test_period_end_with_working_card_renews_once_even_if_the_job_runs_twice(db, django_capture_on_commit_callbacks):
    sub = _due_sub()
    old_end = sub.current_period_end
    with django_capture_on_commit_callbacks(execute=True):
        first = billing.renew_due_subscriptions()
        second = billing.renew_due_subscriptions()
    sub.refresh_from_db()
    assert (first.renewed, second.renewed) == (1, 0)
    assert sub.status == Subscription.Status.ACTIVE
    assert sub.current_period_end > old_end
    assert Order.objects.filter(subscription=sub, status=Order.Status.PAID, is_renewal=True).count() == 1
    assert _kinds(sub) == ["subscription_renewed"]


def test_a_second_run_with_a_stale_row_cannot_charge_the_same_period(db):
    sub = _due_sub()
    stale = Subscription.objects.get(pk=sub.pk)  # what a concurrent worker read before the first one renewed
    assert billing.subscription_renew_due(subscription=sub) == "renewed"
    assert billing.subscription_renew_due(subscription=stale) == "skipped"
    assert Order.objects.filter(subscription=sub).count() == 1


def test_failed_charge_moves_to_past_due_with_grace(db, django_capture_on_commit_callbacks):
    sub = _due_sub(token=DECLINE)
    with django_capture_on_commit_callbacks(execute=True):
        summary = billing.renew_due_subscriptions()
    sub.refresh_from_db()
    assert summary.failed == 1
    assert sub.status == Subscription.Status.PAST_DUE
    assert sub.renewal_attempts == 1
    assert sub.grace_until is not None and sub.grace_until > timezone.now() + timedelta(days=settings.RENEWAL_GRACE_DAYS - 1)
    assert sub.is_active  # grace keeps access
    assert _kinds(sub) == ["subscription_past_due"]
    assert Order.objects.get(subscription=sub).status == Order.Status.FAILED


def test_cancel_at_period_end_ends_as_canceled_without_a_charge(db, django_capture_on_commit_callbacks):
    sub = _due_sub(cancel_at_period_end=True)
    with django_capture_on_commit_callbacks(execute=True):
        assert billing.renew_due_subscriptions().ended == 1
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.CANCELED
    assert not Order.objects.filter(subscription=sub).exists()
    assert _kinds(sub) == ["subscription_canceled"]


def test_paused_membership_is_extended_not_charged(db, django_capture_on_commit_callbacks):
    paused_until = timezone.now() + timedelta(days=20)
    sub = _due_sub(paused_until=paused_until)
    with django_capture_on_commit_callbacks(execute=True):
        assert billing.renew_due_subscriptions().extended == 1
    sub.refresh_from_db()
    assert sub.current_period_end == paused_until
    assert sub.status == Subscription.Status.ACTIVE
    assert not Order.objects.filter(subscription=sub).exists()
    assert _kinds(sub) == ["subscription_pause_extended"]


def test_trial_end_converts_with_a_first_charge(db, django_capture_on_commit_callbacks):
    sub = _due_sub(status=Subscription.Status.TRIALING)
    with django_capture_on_commit_callbacks(execute=True):
        assert billing.renew_due_subscriptions().renewed == 1
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.ACTIVE
    assert _kinds(sub) == ["trial_converted"]


def test_dunning_retries_on_schedule_at_most_once_a_day(db):
    sub = _due_sub(token=DECLINE)
    end = sub.current_period_end
    billing.renew_due_subscriptions(when=end + timedelta(minutes=5))
    # Day 0: too early for retry #1.
    assert billing.run_dunning(when=end + timedelta(hours=12)).failed == 0
    # Day 1: retry #1 happens once, a second run the same hour does nothing.
    assert billing.run_dunning(when=end + timedelta(days=1, hours=1)).failed == 1
    assert billing.run_dunning(when=end + timedelta(days=1, hours=2)).failed == 0
    # Day 2: nothing scheduled. Day 3 and day 5: retries #2 and #3.
    assert billing.run_dunning(when=end + timedelta(days=2, hours=1)).failed == 0
    assert billing.run_dunning(when=end + timedelta(days=3, hours=1)).failed == 1
    assert billing.run_dunning(when=end + timedelta(days=5, hours=1)).failed == 1
    # Schedule exhausted: no more charges before grace ends.
    assert billing.run_dunning(when=end + timedelta(days=6, hours=1)).failed == 0
    sub.refresh_from_db()
    assert sub.renewal_attempts == 4
    assert Order.objects.filter(subscription=sub, status=Order.Status.FAILED).count() == 4


def test_grace_runs_out_and_the_subscription_expires(db, django_capture_on_commit_callbacks):
    sub = _due_sub(token=DECLINE)
    end = sub.current_period_end
    with django_capture_on_commit_callbacks(execute=True):
        billing.renew_due_subscriptions(when=end + timedelta(minutes=5))
        sub.refresh_from_db()
        summary = billing.run_dunning(when=sub.grace_until + timedelta(minutes=1))
    sub.refresh_from_db()
    assert summary.expired == 1
    assert sub.status == Subscription.Status.EXPIRED
    assert sub.cancellation_reason == Subscription.CancellationReason.PAYMENT
    assert not sub.is_active
    assert _kinds(sub) == ["subscription_past_due", "subscription_expired"]


def test_payment_recovered_during_grace_by_a_scheduled_retry(db, django_capture_on_commit_callbacks):
    sub = _due_sub(token=DECLINE)
    end = sub.current_period_end
    with django_capture_on_commit_callbacks(execute=True):
        billing.renew_due_subscriptions(when=end + timedelta(minutes=5))
        # The card gets fixed out of band (e.g. the bank lifts a block): the next scheduled retry succeeds.
        commerce_services.payment_method_set(member=sub.member, token="local:ok", label="Working card")
        retry_at = end + timedelta(days=1, hours=1)
        assert billing.run_dunning(when=retry_at).recovered == 1
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.ACTIVE
    assert sub.grace_until is None and sub.renewal_attempts == 0
    # Recovered late: the new period starts from the payment, so the member is not charged for days in arrears.
    assert sub.current_period_start == retry_at
    assert _kinds(sub) == ["subscription_past_due", "subscription_renewed"]


def test_payment_recovered_during_grace_by_the_member_updating_the_card(db, django_capture_on_commit_callbacks):
    sub = _due_sub(token=DECLINE)
    billing.renew_due_subscriptions()
    with django_capture_on_commit_callbacks(execute=True):
        result = billing.payment_method_update_and_retry(member=sub.member, token="local:ok", label="New card")
    sub.refresh_from_db()
    assert result.retried and result.recovered
    assert sub.status == Subscription.Status.ACTIVE
    assert Event.objects.filter(member=sub.member, kind="payment_method_updated").exists()


def test_member_update_with_another_bad_card_stays_past_due(db):
    sub = _due_sub(token=DECLINE)
    billing.renew_due_subscriptions()
    result = billing.payment_method_update_and_retry(member=sub.member, token=DECLINE + "-2", label="Bad card")
    sub.refresh_from_db()
    assert result.retried and not result.recovered and result.error
    assert sub.status == Subscription.Status.PAST_DUE


def test_reactivation_after_expiry_starts_a_new_subscription(db, django_capture_on_commit_callbacks):
    sub = _due_sub(token=DECLINE)
    billing.renew_due_subscriptions()
    sub.refresh_from_db()
    billing.run_dunning(when=sub.grace_until + timedelta(minutes=1))
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.EXPIRED
    commerce_services.payment_method_set(member=sub.member, token="local:ok", label="Working card")
    with django_capture_on_commit_callbacks(execute=True):
        new = subscriptions_services.subscription_start(member=sub.member, tier=TierFactory(), use_trial=False)
    assert new.pk != sub.pk and new.status == Subscription.Status.ACTIVE
    assert Event.objects.filter(member=sub.member, kind="subscription_started").exists()


def test_tasks_call_the_billing_functions(db):
    from members.subscriptions.tasks import renew_due_subscriptions, run_dunning

    _due_sub()
    assert renew_due_subscriptions.delay().get()["renewed"] == 1
    assert run_dunning.delay().get()["recovered"] == 0


@pytest.mark.parametrize("attempts,days,expected", [(1, 0.5, False), (1, 1.1, True), (2, 2, False), (2, 3.1, True),
                                                    (4, 6, False), (0, 3, False)])
def test_retry_schedule(attempts, days, expected):
    end = timezone.now()
    sub = Subscription(current_period_end=end, renewal_attempts=attempts, last_renewal_attempt_at=end,
                       status=Subscription.Status.PAST_DUE)
    assert billing.dunning_retry_due(subscription=sub, when=end + timedelta(days=days)) is expected


def test_a_member_retry_racing_another_retry_charges_once(db):
    sub = _due_sub(token=DECLINE)
    billing.renew_due_subscriptions()
    commerce_services.payment_method_set(member=sub.member, token="local:ok", label="Working card")
    stale = Subscription.objects.get(pk=sub.pk)  # both clicks read the row before either charged
    assert billing.subscription_retry_now(subscription=stale) == "recovered"
    # The second click: the row moved on (active), so the claim would fail; the service says so without charging.
    assert billing.subscription_retry_now(subscription=stale) == "not_past_due"
    assert billing._claim_dunning_attempt(subscription=stale, when=timezone.now()) is False
    assert Order.objects.filter(subscription=sub, status=Order.Status.PAID).count() == 1
