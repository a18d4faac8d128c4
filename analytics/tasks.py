"""Celery tasks for analytics. The ML jobs live above; reminders, dunning emails and campaigns live in
analytics/tasks_acting.py and are re-exported here so autodiscovery registers them under their beat names."""
from __future__ import annotations

from analytics.tasks_acting import *  # noqa: F401,F403  (reminders and campaigns)
