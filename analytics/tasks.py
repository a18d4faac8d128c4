"""Housekeeping across analytics' packages (the beat schedule in config/celery.py names it by this module path)."""
from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from analytics.jobs import tracked


@shared_task(queue="default")
def recover_stuck_work() -> dict[str, int]:
    """Rows a killed worker left in 'sending'/'running' (analytics/recovery.py); its own JobRun shows what it did."""
    from analytics.recovery import stuck_work_recover

    with tracked("recover_stuck_work", as_of=timezone.now()) as run:
        summary = stuck_work_recover()
        run.rows = summary.rows
        run.message = (f"messages re-sent {summary.messages_requeued}, messages failed {summary.messages_failed}, "
                       f"job runs failed {summary.job_runs_failed}")
    return {"messages_requeued": summary.messages_requeued, "messages_failed": summary.messages_failed,
            "job_runs_failed": summary.job_runs_failed}
