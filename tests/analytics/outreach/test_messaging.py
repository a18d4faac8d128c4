"""The one claim-then-send path every member email goes through (analytics.messaging.message_send).

Reminders, dunning, campaigns and review invitations all queue a MessageLog row and let the email task call
message_send; these tests pin the helper itself: one claimer wins, failures are recorded on the row, success is
stamped.
"""
from __future__ import annotations

from datetime import timedelta
from smtplib import SMTPServerDisconnected
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from analytics.models import MessageLog
from analytics.outreach import messaging
from tests.members.factories import SubscriptionFactory


@pytest.fixture
def queued(db, django_capture_on_commit_callbacks) -> MessageLog:
    """A queued renewal reminder whose send task was never run (on-commit callbacks captured, not executed)."""
    sub = SubscriptionFactory()
    with django_capture_on_commit_callbacks(execute=False):
        log = messaging.message_create(
            member=sub.member, kind=MessageLog.Kind.RENEWAL_REMINDER, dedupe_key=f"test:{sub.pk}",
            context={"subscription_id": sub.pk, "period_end": sub.current_period_end.isoformat()},
        )
    assert log is not None and log.status == MessageLog.Status.QUEUED
    return log


def test_a_second_claimer_while_the_first_is_sending_sends_nothing(queued, django_assert_num_queries):
    real_send = mail.EmailMultiAlternatives.send
    second: list[str] = []

    def send_while_another_task_claims(self, *args, **kwargs):
        # The row is 'sending' now; a duplicate task delivery (acks_late redelivery, the stale sweep) arrives.
        # It loses the conditional UPDATE and stops there: one query, no row load, no email.
        with django_assert_num_queries(1):
            second.append(messaging.message_send(message_id=queued.pk).status)
        return real_send(self, *args, **kwargs)

    with mock.patch.object(mail.EmailMultiAlternatives, "send", send_while_another_task_claims):
        first = messaging.message_send(message_id=queued.pk).status
    assert (first, second) == ("sent", ["skipped"])
    # And a claim after it was sent is refused too.
    assert messaging.message_send(message_id=queued.pk).status == "skipped"
    assert len(mail.outbox) == 1
    assert MessageLog.objects.get(pk=queued.pk).status == MessageLog.Status.SENT


def test_a_send_failure_marks_the_row_failed_with_the_error(queued):
    with mock.patch.object(mail.EmailMultiAlternatives, "send", side_effect=ValueError("bad header")), \
            pytest.raises(ValueError):
        messaging.message_send(message_id=queued.pk)
    log = MessageLog.objects.get(pk=queued.pk)
    assert log.status == MessageLog.Status.FAILED
    assert log.error == "ValueError: bad header"
    assert log.sent_at is None
    # Failed is final: no later claim sends it.
    assert messaging.message_send(message_id=queued.pk).status == "skipped"
    assert mail.outbox == []


def test_a_transient_send_error_releases_the_row_for_the_retry(queued):
    with mock.patch.object(mail.EmailMultiAlternatives, "send", side_effect=SMTPServerDisconnected("try again")), \
            pytest.raises(SMTPServerDisconnected):
        messaging.message_send(message_id=queued.pk)
    log = MessageLog.objects.get(pk=queued.pk)
    assert log.status == MessageLog.Status.QUEUED
    assert log.error == "SMTPServerDisconnected: try again"
    # The retry claims it again and sends it, clearing the error.
    assert messaging.message_send(message_id=queued.pk).status == "sent"
    log.refresh_from_db()
    assert log.status == MessageLog.Status.SENT and log.error == ""
    assert len(mail.outbox) == 1


def test_success_marks_the_row_sent_with_a_timestamp_and_subject(queued):
    before = timezone.now()
    assert messaging.message_send(message_id=queued.pk).status == "sent"
    after = timezone.now()
    log = MessageLog.objects.get(pk=queued.pk)
    assert log.status == MessageLog.Status.SENT
    assert log.sent_at is not None and before <= log.sent_at <= after
    assert log.subject == mail.outbox[0].subject != ""
    assert log.error == ""


def test_the_send_time_is_the_real_clock_not_the_runs_when(queued):
    # `when` drives the message's content (days left); sent_at records when the email actually went out.
    earlier = timezone.now() - timedelta(days=3)
    assert messaging.message_send(message_id=queued.pk, when=earlier).status == "sent"
    assert MessageLog.objects.get(pk=queued.pk).sent_at > earlier + timedelta(days=2)
