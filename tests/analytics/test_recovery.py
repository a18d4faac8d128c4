"""Crash recovery (issue 13.11). A worker killed mid-send or mid-job runs no except/finally; the simulation here
raises a BaseException the code does not catch at the same point, which leaves exactly the rows a SIGKILL leaves.
Before: the message stayed 'sending' and the JobRun 'running' forever."""
from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from analytics import recovery
from analytics.models import JobRun, MessageLog
from analytics.outreach import campaigns, messaging
from analytics.outreach.messaging import message_create, message_send
from analytics.outreach.tasks import run_campaigns
from analytics.tasks import recover_stuck_work
from config.celery import app as celery_app
from tests.members.factories import UserFactory

pytestmark = [pytest.mark.adversarial, pytest.mark.django_db]


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: nothing in the code under test catches a BaseException that isn't Exception."""


def _killed_mid_send(kind: str) -> MessageLog:
    log = message_create(member=UserFactory(), kind=kind, dedupe_key=f"test:{kind}")
    with mock.patch.dict(messaging.CONTEXT_BUILDERS, {kind: lambda log, when: {}}), \
            mock.patch("analytics.outreach.messaging.render_message", return_value=("s", "t", "<p>h</p>")), \
            mock.patch.object(EmailMultiAlternatives, "send", side_effect=WorkerKilled), \
            pytest.raises(WorkerKilled):
        message_send(message_id=log.pk)
    log.refresh_from_db()
    assert log.status == MessageLog.Status.SENDING and log.attempts == 1 and log.claimed_at is not None
    return log


def test_a_message_stuck_in_sending_is_left_alone_before_the_timeout():
    log = _killed_mid_send(MessageLog.Kind.DUNNING)
    assert recovery.stuck_messages_recover(when=timezone.now() + recovery.SENDING_TIMEOUT / 2) == (0, 0)
    log.refresh_from_db()
    assert log.status == MessageLog.Status.SENDING


def test_an_at_least_once_message_is_queued_and_sent_again(django_capture_on_commit_callbacks):
    log = _killed_mid_send(MessageLog.Kind.DUNNING)
    with mock.patch("analytics.recovery.enqueue_send") as enqueue, \
            django_capture_on_commit_callbacks(execute=True):
        assert recovery.stuck_messages_recover(when=timezone.now() + recovery.SENDING_TIMEOUT * 2) == (1, 0)
    enqueue.assert_called_once_with(message_id=log.pk)
    log.refresh_from_db()
    assert log.status == MessageLog.Status.QUEUED and "Interrupted while sending" in log.error


def test_an_at_most_once_message_is_failed_not_resent():
    log = _killed_mid_send(MessageLog.Kind.RENEWAL_REMINDER)
    with mock.patch("analytics.recovery.enqueue_send") as enqueue:
        assert recovery.stuck_messages_recover(when=timezone.now() + recovery.SENDING_TIMEOUT * 2) == (0, 1)
    enqueue.assert_not_called()
    log.refresh_from_db()
    assert log.status == MessageLog.Status.FAILED and "at most once" in log.error


def test_a_message_that_keeps_killing_its_worker_stops_being_retried():
    log = _killed_mid_send(MessageLog.Kind.DUNNING)
    MessageLog.objects.filter(pk=log.pk).update(attempts=recovery.MAX_SEND_ATTEMPTS)
    assert recovery.stuck_messages_recover(when=timezone.now() + recovery.SENDING_TIMEOUT * 2) == (0, 1)


def test_a_job_run_left_running_by_a_killed_worker_is_failed_and_shown_on_the_jobs_page(staff_client):
    with mock.patch.object(campaigns, "campaigns_run_all", side_effect=WorkerKilled), pytest.raises(WorkerKilled):
        run_campaigns.apply()
    stuck = JobRun.objects.get(job="run_campaigns")
    assert stuck.status == JobRun.Status.RUNNING
    assert recovery.stuck_job_runs_fail(when=timezone.now() + timedelta(hours=1)) == 0
    JobRun.objects.filter(pk=stuck.pk).update(started_at=timezone.now() - recovery.JOB_RUN_TIMEOUT - timedelta(1))

    result = recover_stuck_work.delay().get()

    assert result == {"messages_requeued": 0, "messages_failed": 0, "job_runs_failed": 1}
    stuck.refresh_from_db()
    assert stuck.status == JobRun.Status.FAILED and stuck.error.startswith("Interrupted:")
    page = staff_client.get("/api/v1/staff/job-runs/", {"status": "failed"}).json()
    assert [(r["job"], r["error"][:12]) for r in page["results"]] == [("run_campaigns", "Interrupted:")]
    sweep = JobRun.objects.get(job="recover_stuck_work")
    assert sweep.status == JobRun.Status.SUCCEEDED and "job runs failed 1" in sweep.message


def test_the_sweep_is_on_the_beat_schedule():
    tasks = {entry["task"] for entry in celery_app.conf.beat_schedule.values()}
    assert "analytics.tasks.recover_stuck_work" in tasks
