"""Exactly-once with real processes: two Celery workers on Redis, PostgreSQL, the reminder and campaign tasks enqueued
several times at once. Each member must get one email and one coupon.

Tier 3 only (`make test-redis`): needs RUN_WORKER_TESTS=1, DATABASE_URL on PostgreSQL, TEST_CELERY_BROKER_URL on Redis
and CELERY_TASK_ALWAYS_EAGER=0. The workers run config.test_settings against the pytest-django *test* database and
write mail with the file-based backend, because locmem mail lives and dies inside one process.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(os.environ.get("RUN_WORKER_TESTS") != "1", reason="set RUN_WORKER_TESTS=1 (make test-redis)"),
]

ROOT = Path(__file__).resolve().parent.parent
MEMBERS = 12
ROUNDS = 4
TIMEOUT = 120


def _database_url() -> str:
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    auth = f"{user}:{db['PASSWORD']}" if db.get("PASSWORD") else user
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def _start_worker(name: str, mail_dir: Path, log_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": _database_url(),
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
    }
    env.pop("TEST_DB_NAME", None)
    celery = Path(sys.executable).with_name("celery")
    log = open(log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [str(celery), "-A", "config", "worker", "-Q", "default,email,ml", "-c", "2", "-n", f"{name}@%h",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _queue_lengths() -> int:
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    return sum(client.llen(q) for q in ("default", "email", "ml")) + len(client.hkeys("unacked"))


def _sent_emails(mail_dir: Path) -> list[str]:
    """Recipients, one per message the workers handed to the backend."""
    recipients = []
    for path in mail_dir.glob("*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("To: "):
                recipients.append(line[4:].strip())
    return recipients


def _wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_workers_running_the_tasks_concurrently_send_once_per_member(tmp_path):
    from analytics.models import (
        Campaign,
        CampaignAssignment,
        MessageLog,
        ModelVersion,
        PropensityScore,
        ReminderRule,
    )
    from analytics.outreach.tasks import run_campaigns, send_renewal_reminders
    from config.celery import app
    from members.models import Coupon
    from tests.members.factories import SubscriptionFactory, UserFactory

    assert connection.vendor == "postgresql", "the worker tier needs PostgreSQL (DATABASE_URL)"
    assert not settings.CELERY_TASK_ALWAYS_EAGER, "set CELERY_TASK_ALWAYS_EAGER=0"
    now = timezone.now()
    ReminderRule.objects.create(name="7 days", days_before=7)
    version = ModelVersion.objects.create(as_of=now, horizon_days=30, algorithm="test")
    for _ in range(MEMBERS):
        member = UserFactory()
        SubscriptionFactory(member=member, current_period_start=now - timedelta(days=25),
                            current_period_end=now + timedelta(days=5))
        PropensityScore.objects.create(member=member, model_version=version, probability=0.1, as_of=now)
    campaign = Campaign.objects.create(name="Worker test", status=Campaign.Status.ACTIVE, min_churn_risk=0.5,
                                       percent_off=Decimal(15), starts_at=now - timedelta(days=1),
                                       holdout_share=Decimal("0.25"))

    mail_dir, log_dir = tmp_path / "mail", tmp_path / "logs"
    mail_dir.mkdir()
    log_dir.mkdir()
    app.control.purge()
    workers = [_start_worker("w1", mail_dir, log_dir), _start_worker("w2", mail_dir, log_dir)]
    try:
        _wait_until(lambda: len(app.control.ping(timeout=1.0)) >= 2, 60, "two workers to answer ping")
        for _ in range(ROUNDS):
            send_renewal_reminders.delay()
            run_campaigns.delay()

        def drained() -> bool:
            logs = MessageLog.objects.all()
            return (
                _queue_lengths() == 0
                and logs.filter(kind=MessageLog.Kind.RENEWAL_REMINDER).count() == MEMBERS
                and CampaignAssignment.objects.filter(campaign=campaign).count() == MEMBERS
                and not logs.exclude(status=MessageLog.Status.SENT).exists()
            )

        _wait_until(drained, TIMEOUT, "the queues to drain and every message to be sent")
        time.sleep(2)  # anything still in flight would show up now
        assert _queue_lengths() == 0
    finally:
        for worker in workers:
            _stop(worker)
        app.control.purge()

    # Both workers took part (prefetch 1, concurrency 2 each, 2 × ROUNDS jobs plus the email tasks).
    for name in ("w1", "w2"):
        assert "succeeded" in (log_dir / f"{name}.log").read_text(errors="replace"), f"{name} ran nothing"
    treatment = CampaignAssignment.objects.filter(campaign=campaign, group=CampaignAssignment.Group.TREATMENT)
    reminders = MessageLog.objects.filter(kind=MessageLog.Kind.RENEWAL_REMINDER)
    offers = MessageLog.objects.filter(kind=MessageLog.Kind.CAMPAIGN)
    assert reminders.count() == MEMBERS and set(reminders.values_list("status", flat=True)) == {"sent"}
    assert offers.count() == treatment.count() > 0
    # One coupon per treated member, none for control.
    coupons = Coupon.objects.filter(source=Coupon.Source.CAMPAIGN)
    assert coupons.count() == treatment.count()
    assert coupons.values("assigned_member").distinct().count() == treatment.count()
    # One email per (member, kind) actually left the workers: MEMBERS reminders + one offer per treated member.
    recipients = _sent_emails(mail_dir)
    assert len(recipients) == MEMBERS + treatment.count()
    assert len(set(recipients)) == MEMBERS  # every member got the reminder; treated members also their offer
