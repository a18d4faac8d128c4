"""Renewal reminders: who gets one, exactly once, in their language, with a recap and a working signed link."""
from __future__ import annotations

import time
from datetime import timedelta
from smtplib import SMTPServerDisconnected
from unittest import mock

import pytest
from celery.exceptions import Retry
from django.core import mail, signing
from django.utils import timezone

from analytics.models import (
    Event,
    MessageLog,
    ModelVersion,
    PropensityScore,
    ReminderRule,
    SegmentAssignment,
    SegmentRun,
)
from analytics.outreach import messaging, reminders
from analytics.outreach.recap import period_recap
from analytics.outreach.tasks import send_dunning_emails, send_message_email, send_renewal_reminders
from members.models import Benefit, Subscription
from members.subscriptions import billing
from tests.members.factories import (
    BenefitFactory,
    LessonFactory,
    SubscriptionFactory,
    TierFactory,
    UserFactory,
)


@pytest.fixture
def rules(db):
    return {
        days: ReminderRule.objects.create(name=f"{days} days", days_before=days)
        for days in (14, 7, 1)
    }


def _sub(days_left: float, **kwargs):
    now = timezone.now()
    kwargs.setdefault("member", UserFactory())
    return SubscriptionFactory(current_period_start=now - timedelta(days=20),
                               current_period_end=now + timedelta(days=days_left), **kwargs)


def _score(member, probability, when=None):
    version = ModelVersion.objects.first() or ModelVersion.objects.create(as_of=timezone.now(), horizon_days=30,
                                                                          algorithm="test")
    return PropensityScore.objects.create(member=member, model_version=version, probability=probability,
                                          as_of=when or timezone.now())


def test_each_subscription_gets_only_the_tightest_matching_rule(rules):
    s10, s5, s_half, s20 = _sub(10), _sub(5), _sub(0.5), _sub(20)
    due = {sub.pk: rule.days_before for sub, rule in reminders.reminders_due()}
    assert due == {s10.pk: 14, s5.pk: 7, s_half.pk: 1}
    assert s20.pk not in due


def test_cancelled_and_ended_subscriptions_get_no_reminder(rules):
    _sub(5, cancel_at_period_end=True)
    _sub(5, status=Subscription.Status.PAST_DUE)
    _sub(5, status=Subscription.Status.EXPIRED)
    assert reminders.reminders_due() == []


def test_billing_period_churn_risk_and_segment_conditions(db):
    yearly_rule = ReminderRule.objects.create(name="yearly", days_before=30, billing_period="year")
    risky_rule = ReminderRule.objects.create(name="risky", days_before=10, min_churn_risk=0.6)
    seg_rule = ReminderRule.objects.create(name="seg", days_before=3, segment="Hibernating")
    yearly, monthly = _sub(20, billing_period="year"), _sub(20, billing_period="month")
    risky, safe = _sub(8), _sub(8)
    _score(risky.member, 0.9, when=timezone.now() - timedelta(days=3))
    _score(risky.member, 0.2)  # the latest score counts: churn risk 0.8
    _score(safe.member, 0.7)  # churn risk 0.3
    dormant, active = _sub(2), _sub(2)
    run = SegmentRun.objects.create(as_of=timezone.now(), k=2)
    SegmentAssignment.objects.create(run=run, member=dormant.member, as_of=run.as_of, cluster=0, label="Hibernating")
    SegmentAssignment.objects.create(run=run, member=active.member, as_of=run.as_of, cluster=1, label="champions")
    due = {sub.pk: rule for sub, rule in reminders.reminders_due()}
    assert due[yearly.pk] == yearly_rule and monthly.pk not in due
    assert due[risky.pk] == risky_rule and safe.pk not in due
    assert due[dormant.pk] == seg_rule and active.pk not in due


def test_running_the_task_twice_sends_one_email_per_subscription(rules, django_capture_on_commit_callbacks):
    subs = [_sub(5), _sub(10), _sub(0.5)]
    with django_capture_on_commit_callbacks(execute=True):
        first = send_renewal_reminders.delay().get()
    with django_capture_on_commit_callbacks(execute=True):
        second = send_renewal_reminders.delay().get()
    assert first["queued"] == 3 and second == {"queued": 0, "already_sent": 3, "requeued": 0}
    assert len(mail.outbox) == 3
    assert sorted(m.to[0] for m in mail.outbox) == sorted(s.member.email for s in subs)
    assert MessageLog.objects.filter(status=MessageLog.Status.SENT).count() == 3
    assert Event.objects.filter(kind="reminder_sent").count() == 3


def test_dedupe_key_is_per_subscription_period_and_rule(rules, django_capture_on_commit_callbacks):
    sub = _sub(5)
    with django_capture_on_commit_callbacks(execute=True):
        reminders.reminders_send()
    # Two days later, the 1-day rule is now the tightest: a second, different reminder for the same period.
    with django_capture_on_commit_callbacks(execute=True):
        reminders.reminders_send(when=sub.current_period_end - timedelta(hours=12))
    keys = sorted(MessageLog.objects.values_list("dedupe_key", flat=True))
    end = f"{sub.current_period_end:%Y%m%d}"
    assert keys == sorted([f"reminder:{sub.pk}:{end}:{rules[7].pk}", f"reminder:{sub.pk}:{end}:{rules[1].pk}"])
    # Next period (after renewal) a new key.
    sub.current_period_end += timedelta(days=30)
    assert reminders.reminder_key(subscription=sub, rule=rules[7]) not in keys


def test_a_duplicate_send_task_sends_nothing(rules, django_capture_on_commit_callbacks):
    _sub(5)
    with django_capture_on_commit_callbacks(execute=True):
        reminders.reminders_send()
    log = MessageLog.objects.get()
    # The same task delivered again (acks_late redelivery, sweep racing the original): the claim refuses it.
    assert messaging.message_send(message_id=log.pk).status == "skipped"
    assert len(mail.outbox) == 1


def test_crash_between_insert_and_send_is_picked_up_by_the_sweep_once(rules, django_capture_on_commit_callbacks):
    _sub(5)
    # The run inserts the row, then the process dies before the on-commit enqueue: the callback never runs.
    with django_capture_on_commit_callbacks(execute=False):
        reminders.reminders_send()
    log = MessageLog.objects.get()
    assert log.status == MessageLog.Status.QUEUED and mail.outbox == []
    later = timezone.now() + timedelta(minutes=messaging.STALE_QUEUED_MINUTES + 1)
    with django_capture_on_commit_callbacks(execute=True):
        summary = reminders.reminders_send(when=later)
    assert summary.requeued == 1 and summary.queued == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert reminders.reminders_send(when=later + timedelta(minutes=20)).requeued == 0
    log.refresh_from_db()
    assert log.status == MessageLog.Status.SENT
    assert len(mail.outbox) == 1


def test_transient_smtp_error_is_retried_and_sent_once(rules, django_capture_on_commit_callbacks):
    _sub(5)
    real_send = mail.EmailMultiAlternatives.send
    calls = {"n": 0}

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise SMTPServerDisconnected("try again")
        return real_send(self, *args, **kwargs)

    # Eager Celery surfaces the scheduled retry as a Retry exception; a worker would re-run the task after backoff.
    with mock.patch.object(mail.EmailMultiAlternatives, "send", flaky), pytest.raises(Retry), \
            django_capture_on_commit_callbacks(execute=True):
        reminders.reminders_send()
    log = MessageLog.objects.get()
    assert log.status == MessageLog.Status.QUEUED and "SMTPServerDisconnected" in log.error  # released for the retry
    with mock.patch.object(mail.EmailMultiAlternatives, "send", flaky):
        assert send_message_email.apply(args=[log.pk]).get() == "sent"
        assert send_message_email.apply(args=[log.pk]).get() == "skipped"
    assert calls["n"] == 2
    assert len(mail.outbox) == 1
    assert MessageLog.objects.get().status == MessageLog.Status.SENT


def test_reminder_for_a_cancelled_membership_is_suppressed_at_send_time(rules, django_capture_on_commit_callbacks):
    sub = _sub(5)
    with django_capture_on_commit_callbacks(execute=False):
        reminders.reminders_send()
    Subscription.objects.filter(pk=sub.pk).update(cancel_at_period_end=True)
    log = MessageLog.objects.get()
    assert messaging.message_send(message_id=log.pk).status == "suppressed"
    log.refresh_from_db()
    assert log.status == MessageLog.Status.FAILED and mail.outbox == []


def test_email_has_html_and_text_in_the_members_language_with_recap(rules, django_capture_on_commit_callbacks):
    tier = TierFactory(name="Pro")
    BenefitFactory(tier=tier, kind=Benefit.Kind.ALL_COURSES)
    BenefitFactory(tier=tier, kind=Benefit.Kind.COMMUNITY)
    member = UserFactory(preferred_language="zh-hans")
    sub = _sub(5, member=member, tier=tier)
    lesson = LessonFactory()
    from members.models import LessonProgress
    LessonProgress.objects.create(member=member, lesson=lesson, completed_at=timezone.now() - timedelta(days=2))
    english = _sub(5)
    with django_capture_on_commit_callbacks(execute=True):
        reminders.reminders_send()
    by_to = {m.to[0]: m for m in mail.outbox}
    zh, en = by_to[member.email], by_to[english.member.email]
    assert "续费" in zh.subject and "renews automatically in 5 days" in en.subject
    # Subject and body say the same thing: it renews by itself, on that date, for that price.
    period_end = f"{english.current_period_end:%Y-%m-%d}"
    assert f"renews automatically on {period_end}" in en.body and "period ends" not in en.body
    assert f"{english.tier.monthly_price:.2f}" in en.body and "自动续费" in zh.body
    html = zh.alternatives[0][0]
    assert zh.alternatives[0][1] == "text/html" and "<table" in html
    assert "完成课时：1" in zh.body
    # All-course access was used (a lesson finished), community was not (no posts).
    recap = period_recap(subscription=sub)
    assert recap.lessons_finished == 1 and recap.posts == 0
    assert any("All-course" in b for b in recap.benefits_used)
    assert any("Community" in b for b in recap.benefits_unused)


def test_renew_link_is_signed_and_expires(rules, settings):
    sub = _sub(5)
    token = messaging.renew_token(subscription_id=sub.pk)
    assert messaging.renew_token_read(token=token) == sub.pk
    with pytest.raises(signing.BadSignature):
        messaging.renew_token_read(token=token[:-2] + "xx")
    settings.RENEW_LINK_MAX_AGE_DAYS = 0
    later = time.time() + 5
    with pytest.raises(signing.SignatureExpired), mock.patch("time.time", return_value=later):
        messaging.renew_token_read(token=token)


# ---------------------------------------------------------------------------------------------------- the view

def _url(sub):
    from django.urls import reverse
    return reverse("acting:renew", kwargs={"token": messaging.renew_token(subscription_id=sub.pk)})


def test_renew_link_sends_anonymous_visitors_to_log_in(client, db):
    sub = _sub(5)
    response = client.get(_url(sub))
    assert response.status_code == 302 and "/login" in response["Location"]


def test_renew_link_renews_a_past_due_membership_for_its_owner_on_post(client, db):
    sub = _sub(-1, status=Subscription.Status.PAST_DUE)
    client.force_login(sub.member)
    assert client.get(_url(sub)).status_code == 200
    assert Subscription.objects.get(pk=sub.pk).status == Subscription.Status.PAST_DUE  # GET never charges
    response = client.post(_url(sub))
    assert response.status_code == 302
    assert Subscription.objects.get(pk=sub.pk).status == Subscription.Status.ACTIVE


def test_renew_link_for_an_active_membership_shows_the_membership_page(client, db):
    sub = _sub(5)
    client.force_login(sub.member)
    response = client.get(_url(sub))
    assert response.status_code == 302 and response["Location"].startswith("/membership")


def test_renew_link_of_another_member_is_refused(client, db):
    sub = _sub(-1, status=Subscription.Status.PAST_DUE)
    client.force_login(UserFactory())
    assert client.post(_url(sub)).status_code == 403
    assert Subscription.objects.get(pk=sub.pk).status == Subscription.Status.PAST_DUE


def test_tampered_and_expired_links(client, db, settings):
    sub = _sub(5)
    client.force_login(sub.member)
    assert client.get(_url(sub)[:-3] + "zz/").status_code == 400
    settings.RENEW_LINK_MAX_AGE_DAYS = 0
    url = _url(sub)
    with mock.patch("time.time", return_value=time.time() + 5):
        assert client.get(url).status_code == 410


# ---------------------------------------------------------------------------------------------------- dunning emails

def test_dunning_email_once_per_failed_attempt(db, django_capture_on_commit_callbacks):
    member = UserFactory()
    from members.commerce.services import payment_method_set
    payment_method_set(member=member, token="local:decline-x", label="Bad")
    sub = SubscriptionFactory(member=member, current_period_start=timezone.now() - timedelta(days=31),
                              current_period_end=timezone.now() - timedelta(minutes=1))
    billing.renew_due_subscriptions()
    with django_capture_on_commit_callbacks(execute=True):
        send_dunning_emails.delay().get()
        send_dunning_emails.delay().get()
    assert len(mail.outbox) == 1
    assert "/membership/payment-method/" in mail.outbox[0].body
    sub.refresh_from_db()
    billing.run_dunning(when=sub.current_period_end + timedelta(days=1, hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        reminders.dunning_emails_send(when=sub.current_period_end + timedelta(days=1, hours=2))
    assert len(mail.outbox) == 2
    assert Event.objects.filter(kind="dunning_email_sent").count() == 2


def test_every_beat_entry_names_a_registered_task():
    """What a fresh worker registers (autodiscovery only, nothing imported by the tests): every beat name resolves,
    e.g. the acting tasks defined in analytics/tasks_acting.py under their analytics.tasks.* names."""
    import json
    import subprocess
    import sys

    code = (
        "import django, json; django.setup()\n"
        "from config.celery import app\n"
        "app.loader.import_default_modules()\n"
        "print(json.dumps([e['task'] for e in app.conf.beat_schedule.values() if e['task'] not in app.tasks]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"})
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
