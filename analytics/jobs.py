"""JobRun bookkeeping shared by every analytics job: running → succeeded/failed, with rows, error, as_of, params.

The JobRun row is written outside the job's own transaction, so a job that fails and rolls back its writes still
leaves a "failed" row (with the traceback) for staff to see.
"""
from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from analytics.models import JobRun


@dataclass
class JobHandle:
    run: JobRun
    rows: int = 0
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@contextmanager
def tracked(job: str, *, as_of: datetime | None = None, params: dict[str, Any] | None = None) -> Iterator[JobHandle]:
    run = JobRun.objects.create(job=job, as_of=as_of, params=params or {}, status=JobRun.Status.RUNNING)
    handle = JobHandle(run=run)
    try:
        yield handle
    except Exception as exc:
        # Exceptions only: a worker being killed (SystemExit, a hard time limit) cannot be relied on to get here at
        # all, so such a run stays 'running' and analytics/recovery.py fails it after JOB_RUN_TIMEOUT.
        run.status = JobRun.Status.FAILED
        run.error = f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}"[:20000]
        run.finished_at = timezone.now()
        run.rows = handle.rows
        run.message = handle.message
        run.save(update_fields=["status", "error", "finished_at", "rows", "message"])
        raise
    run.status = JobRun.Status.SUCCEEDED
    run.finished_at = timezone.now()
    run.rows = handle.rows
    run.message = handle.message
    run.save(update_fields=["status", "finished_at", "rows", "message"])
