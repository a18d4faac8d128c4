"""The members Celery tasks record a JobRun each (through analytics.tracking.job_run), like analytics' own jobs."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics.models import JobRun
from analytics.tracking import job_run
from members.commerce import services
from members.models import BillingDocument, BillingSequence
from members.referrals import tasks as referrals_tasks
from members.referrals.services import referral_grant_rewards
from members.subscriptions import billing, tasks
from tests.members.factories import SubscriptionFactory, UserFactory

DECLINE = "local:decline-test"


def _due_sub(*, token: str | None = None, end=None):
    member = UserFactory()
    if token:
        services.payment_method_set(member=member, token=token, label="Test card")
    end = end or timezone.now() - timedelta(minutes=5)
    return SubscriptionFactory(member=member, current_period_start=end - timedelta(days=30), current_period_end=end)


def test_a_renewal_run_records_a_succeeded_job_run_with_its_row_count(db):
    _due_sub()
    _due_sub()
    _due_sub(token=DECLINE)
    _due_sub(end=timezone.now() + timedelta(days=3))  # not due: no row
    result = tasks.renew_due_subscriptions.delay().get()
    assert (result["renewed"], result["failed"]) == (2, 1)
    run = JobRun.objects.get(job="renew_due_subscriptions")
    assert run.status == JobRun.Status.SUCCEEDED
    assert run.rows == 3 and run.error == ""
    assert "renewed 2, failed 1" in run.message
    assert run.finished_at is not None and run.duration_seconds is not None and run.duration_seconds >= 0

    # A second run has nothing left to renew: a second row, with zero rows, so staff see it ran.
    tasks.renew_due_subscriptions.delay().get()
    assert list(JobRun.objects.filter(job="renew_due_subscriptions").order_by("pk").values_list("rows", flat=True)) \
        == [3, 0]


def test_a_dunning_run_records_its_row_count(db, monkeypatch):
    sub = _due_sub(token=DECLINE)
    billing.renew_due_subscriptions(when=sub.current_period_end + timedelta(minutes=5))  # → past_due
    sub.refresh_from_db()
    # The task runs "now"; pin now past the grace period, so this run expires the subscription: one row.
    run_dunning = billing.run_dunning
    monkeypatch.setattr(billing, "run_dunning", lambda: run_dunning(when=sub.grace_until + timedelta(minutes=1)))
    result = tasks.run_dunning.delay().get()
    assert result["expired"] == 1
    run = JobRun.objects.get(job="run_dunning")
    assert (run.status, run.rows) == (JobRun.Status.SUCCEEDED, 1)


def test_the_referral_task_records_a_job_run(db):
    result = referrals_tasks.grant_referral_rewards.delay().get()
    assert result == {"rewarded": 0, "qualified": 0, "rejected": 0}
    run = JobRun.objects.get(job="grant_referral_rewards")
    assert (run.status, run.rows) == (JobRun.Status.SUCCEEDED, 0)


@pytest.mark.parametrize(("task", "target", "attribute"), [
    (tasks.renew_due_subscriptions, billing, "renew_due_subscriptions"),
    (tasks.run_dunning, billing, "run_dunning"),
    (referrals_tasks.grant_referral_rewards, referrals_tasks, "referral_grant_rewards"),
])
def test_a_failing_task_records_failed_with_the_error_and_re_raises_the_same_exception(db, monkeypatch, task, target,
                                                                                       attribute):
    error = ConnectionError("payment provider unreachable")

    def boom(**_kwargs):
        raise error

    monkeypatch.setattr(target, attribute, boom)
    with pytest.raises(ConnectionError) as raised:
        task()
    assert raised.value is error  # unchanged, so autoretry_for / acks_late behave as before
    run = JobRun.objects.get(job=task.__name__)
    assert run.status == JobRun.Status.FAILED
    assert "ConnectionError: payment provider unreachable" in run.error
    assert run.finished_at is not None


def test_job_run_costs_two_queries(db, django_assert_num_queries):
    with django_assert_num_queries(2), job_run("anything") as job:  # insert "running", update to "succeeded"
        job.rows = 7
    assert JobRun.objects.get(job="anything").rows == 7


@pytest.mark.parametrize("due", [0, 4])
def test_a_task_adds_the_same_two_queries_whatever_it_processes(db, due):
    # The year's first invoice also creates its number sequence: create it up front so both runs number the same way.
    BillingSequence.objects.create(kind=BillingDocument.Kind.INVOICE, year=timezone.now().year)
    for _ in range(due):
        _due_sub()
    with CaptureQueriesContext(connection) as service_alone:
        billing.renew_due_subscriptions()
    for _ in range(due):
        _due_sub()  # the same work again for the task
    with CaptureQueriesContext(connection) as task_run:
        tasks.renew_due_subscriptions()
    assert len(task_run) - len(service_alone) == 2

    with CaptureQueriesContext(connection) as service_alone:
        referral_grant_rewards()
    with CaptureQueriesContext(connection) as task_run:
        referrals_tasks.grant_referral_rewards()
    assert len(task_run) - len(service_alone) == 2
