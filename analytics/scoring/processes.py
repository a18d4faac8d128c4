"""A night's fan-out over this machine's processes, for the inline command (`run_nightly_pipeline --jobs N`).

The Celery task fans a night out to the worker's processes (analytics.scoring.tasks); the command used to run every
part one after another in its one process. With --jobs N it runs the night as the worker does, in N processes: the
command's own, which runs the serial part (the feature matrix, the model, engagement, segments), and N − 1 forked
from it, which take the dispatched parts (services.night_part) in the order they are sent: the recommendation side
first (its blend, its recommender, then its recommend chunks, which that process runs itself), then the score
chunks. What the parts share goes through ARTIFACTS_DIR as between workers (the stored read of the orders and
enrolments, the matrix parts, the recommender).

When the serial part is done, the command takes back every part no process has started yet (Future.cancel) and
runs it itself, so no process waits while parts are queued. A part that fails in a process raises here, after the
parts already running have ended; its JobRun says failed, as a failed task's does.

Processes are forked (so each starts with the code already imported) right at the first dispatch, at the start of
the night, after this process closes its database connections: a forked process must not share a connection's
socket. Not where a forked process cannot see this one's rows: SQLite in memory (the tests) or a database
transaction open around the night (processes_usable).
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from django.db import connection, connections


def processes_usable() -> str | None:
    """None when a night can fan out over forked processes here; else why not."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return "this platform cannot fork processes"
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        return "the SQLite database is in memory: another process would not see it"
    if connection.in_atomic_block:
        return "a transaction is open: another process would not see its rows"
    return None


def _run(kind: str, kwargs: dict[str, Any]) -> int:
    """In a forked process: one part of the night; a recommendation side's recommend chunks run here too."""
    from analytics.scoring import services

    return services.night_part(kind, dispatch=services.night_part, **kwargs)


class NightProcesses:
    """`dispatch` for services.nightly_pipeline(fan_out=True); `finish()` once it returns. A context manager: on
    the way out the processes are shut down (and, after an error, what is queued is dropped)."""

    def __init__(self, jobs: int, progress: Callable[[int], object] | None = None) -> None:
        self.jobs = jobs
        self.progress = progress
        self._pool: ProcessPoolExecutor | None = None
        self._parts: list[tuple[str, dict[str, Any], Future]] = []

    def __enter__(self) -> NightProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=exc[0] is not None)

    def dispatch(self, kind: str, **kwargs: Any) -> None:
        if self._pool is None:
            # Forked at the first submit (fork starts every process at once): no connection may be open then.
            connections.close_all()
            self._pool = ProcessPoolExecutor(max_workers=self.jobs - 1, mp_context=multiprocessing.get_context("fork"))
        future = self._pool.submit(_run, kind, kwargs)
        if self.progress is not None:
            chunks = _chunks(kind, kwargs)
            future.add_done_callback(lambda done: done.cancelled() or done.exception() or self.progress(chunks))
        self._parts.append((kind, kwargs, future))

    def finish(self) -> int:
        """Run here what no process has started, then wait for the rest; raises the first part's error. Returns how
        many parts ran here."""
        here = 0
        for kind, kwargs, future in self._parts:
            if future.cancel():
                _run(kind, kwargs)
                here += 1
                if self.progress is not None:
                    self.progress(_chunks(kind, kwargs))
        for _, _, future in self._parts:
            if not future.cancelled():
                future.result()
        return here


def _chunks(kind: str, kwargs: dict[str, Any]) -> int:
    """The chunks a part writes: a recommendation side writes its run's recommend chunks."""
    return len(kwargs["ranges"]) if kind == "prepare_recommendations" else 1
