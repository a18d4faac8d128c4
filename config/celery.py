"""The Celery app, its queues and the one beat schedule.

Queues: "default" (short domain work), "email" (outgoing mail, retried on transient SMTP errors), "ml" (scoring,
training, recommendations: long and memory-hungry, so a deployment can give them their own worker).
"""
from __future__ import annotations

import os
from importlib import import_module
from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import worker_init
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("retention")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each queue bound by its own routing key, so a message lands in exactly one queue.
app.conf.task_queues = tuple(Queue(name, routing_key=name) for name in ("default", "email", "ml"))
app.conf.task_routes = {
    "analytics.scoring.tasks.*": {"queue": "ml"},
    "analytics.ingest.tasks.*": {"queue": "ml"},  # a platform import can run for minutes
    "*.send_*": {"queue": "email"},
}
# A task's name is its module path (no name= anywhere), so the beat schedule below names where the code lives.
app.autodiscover_tasks()
app.autodiscover_tasks(["members.accounts", "members.subscriptions", "members.referrals", "members.commerce",
                        "analytics.scoring", "analytics.outreach", "analytics.ingest"])

# What an "ml" task imports when it first runs: pandas, scipy, scikit-learn and the scoring code (1.8 s alone by
# `python -X importtime`, more with two processes starting at once beside PostgreSQL's work).
ML_MODULES = ("analytics.scoring.services",)


def preloaded_modules(queues: set[str]) -> tuple[str, ...]:
    """The modules a worker imports before it forks its pool: the ML code when it consumes the "ml" queue, nothing
    for a worker of the other queues only (it would carry libraries it never runs)."""
    return ML_MODULES if "ml" in queues else ()


@worker_init.connect
def _preload(sender: Any = None, **kwargs: Any) -> None:
    """In the worker's main process, after Django is set up and before the prefork pool starts: the pool processes
    are forked from it and inherit the imported modules (copy-on-write), so a worker's first ML task (an import's
    learning, the first night after a deploy) does not spend its first seconds importing. Importing starts no
    thread (the numeric libraries start their pools at first use, in the pool processes), so forking stays safe."""
    amqp = getattr(getattr(sender, "app", None), "amqp", None)
    if amqp is None:
        return
    # Without -Q a worker consumes every declared queue.
    queues = set(amqp.queues.consume_from or amqp.queues)
    for module in preloaded_modules(queues):
        import_module(module)


HOUR = 3600

# Each entry: why it runs then. `expires` drops a run that waited past its usefulness, so a backlog after downtime
# never runs the same nightly job twice.
app.conf.beat_schedule = {
    # Provider payments every 15 min: a missed Alipay/WeChat/Stripe notification is found by a status query while
    # the member still remembers paying; orders younger than 10 min are left to the notification.
    "reconcile-provider-payments": {
        "task": "members.commerce.tasks.reconcile_provider_payments",
        "schedule": crontab(minute="*/15"),
        "options": {"expires": 14 * 60},
    },
    # Review invitations hourly at :50, so the email lands within the hour of finishing, while the course is fresh.
    "send-review-invites": {
        "task": "analytics.outreach.tasks.send_review_invites",
        "schedule": crontab(minute=50),
        "options": {"expires": HOUR - 60},
    },
    # Referral rewards at 04:00: refund windows are counted in days, and the night is quiet for coupon writes.
    "grant-referral-rewards": {
        "task": "members.referrals.tasks.grant_referral_rewards",
        "schedule": crontab(hour=4, minute=0),
        "options": {"expires": 6 * HOUR},
    },
    # Renew subscriptions whose period ended; hourly so a renewal lands within the hour of its period end.
    "renew-due-subscriptions": {
        "task": "members.subscriptions.tasks.renew_due_subscriptions",
        "schedule": crontab(minute=5),
        "options": {"expires": HOUR - 60},
    },
    # Dunning retries and expiry after the grace period; hourly, offset from renewals so they see its results.
    "run-dunning": {
        "task": "members.subscriptions.tasks.run_dunning",
        "schedule": crontab(minute=35),
        "options": {"expires": HOUR - 60},
    },
    # Dunning emails ten minutes after run_dunning, so each failed retry gets its email in the same hour.
    "send-dunning-emails": {
        "task": "analytics.outreach.tasks.send_dunning_emails",
        "schedule": crontab(minute=45),
        "options": {"expires": HOUR - 60},
    },
    # The nightly analytics pipeline at 02:00, after the day's events are in: scores, segments, propensity, recs.
    "nightly-analytics": {
        "task": "analytics.scoring.tasks.run_nightly_pipeline",
        "schedule": crontab(hour=2, minute=0),
        "options": {"expires": 6 * HOUR},
    },
    # Expired sessions at 04:30 (Django leaves them to `clearsessions`); their page-cache markers go with them.
    "clear-expired-sessions": {
        "task": "members.accounts.tasks.clear_expired_sessions",
        "schedule": crontab(hour=4, minute=30),
        "options": {"expires": 12 * HOUR},
    },
    # Superseded recommendation rows at 05:00, after the night's run is current (a night writes 10 per member).
    "prune-recommendation-rows": {
        "task": "analytics.scoring.tasks.prune_recommendation_rows_task",
        "schedule": crontab(hour=5, minute=0),
        "options": {"expires": 12 * HOUR},
    },
    # Weekly learning early on Sunday, before that night's pipeline (02:00), which then scores with the new model
    # when it is promoted (only if it beats the serving one) and reuses the week's engagement weights learned with it.
    "weekly-train-repurchase": {
        "task": "analytics.scoring.tasks.train_repurchase_model_task",
        "schedule": crontab(hour=1, minute=0, day_of_week=0),
        "options": {"expires": 12 * HOUR},
    },
    # The week's recommendation blend at the same time, on the worker's other process; that night and the six after
    # it reuse it (a night selects it itself only when none is younger than ANALYTICS_RELEARN_DAYS).
    "weekly-select-recommendation-blend": {
        "task": "analytics.scoring.tasks.select_recommendation_blend_task",
        "schedule": crontab(hour=1, minute=0, day_of_week=0),
        "options": {"expires": 12 * HOUR},
    },
    # Renewal reminders at 09:00 so they arrive in the working day; exactly-once is held by the database.
    "send-renewal-reminders": {
        "task": "analytics.outreach.tasks.send_renewal_reminders",
        "schedule": crontab(hour=9, minute=0),
        "options": {"expires": 6 * HOUR},
    },
    # Every 10 minutes: rows a killed worker left in 'sending'/'running' are moved on past their timeouts
    # (analytics/recovery.py: 15 min for a send, 6 h for a job), so a crash is cleaned up within the half hour.
    "recover-stuck-work": {
        "task": "analytics.tasks.recover_stuck_work",
        "schedule": crontab(minute="*/10"),
        "options": {"expires": 9 * 60},
    },
    # Campaign assignment after the nightly scores exist, so audiences use fresh propensity.
    "run-campaigns": {
        "task": "analytics.outreach.tasks.run_campaigns",
        "schedule": crontab(hour=10, minute=0),
        "options": {"expires": 6 * HOUR},
    },
    # Monday 08:00 (UTC): the past week is complete and the digest is read at the start of the working week.
    "send-community-digest": {
        "task": "analytics.outreach.tasks.send_community_digest",
        "schedule": crontab(hour=8, minute=0, day_of_week=1),
        "options": {"expires": 12 * HOUR},
    },
}

# `make run` sets DEMO_FAST_BEAT=1 so a visitor sees the acting jobs work within minutes instead of waiting for
# tomorrow's 09:00: the same tasks, every few minutes. Exactly-once keys in the database keep reruns harmless.
if os.environ.get("DEMO_FAST_BEAT") == "1":
    from datetime import timedelta

    for _name, _minutes in {
        "send-renewal-reminders": 2,
        "run-campaigns": 3,
        "renew-due-subscriptions": 5,
        "run-dunning": 5,
    }.items():
        app.conf.beat_schedule[_name]["schedule"] = timedelta(minutes=_minutes)
        app.conf.beat_schedule[_name]["options"] = {"expires": _minutes * 60}
