"""The entry points other apps use to record what happened: behaviour (`record_event`) and their jobs (`job_run`).

members and community call `record_event(...)` from their services; the row is written when the surrounding
transaction commits, so a rolled-back purchase never leaves a "course_purchased" event behind. Their Celery tasks
wrap their one service call in `job_run(...)`, so staff see those jobs in the same JobRun history as analytics' own.
Models are imported inside the functions: importing this module loads nothing from analytics.models.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone

if TYPE_CHECKING:
    from analytics.jobs import JobHandle
    from analytics.models import Event
    from analytics.privacy import ForgetResult


def record_event(
    *,
    member: Any,
    kind: str,
    obj: Any = None,
    object_type: str = "",
    object_id: str | int = "",
    properties: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
    source: str = "server",
    idempotency_key: str | None = None,
    on_commit: bool = True,
    quantity: float | None = None,
) -> None:
    """Record one event. With on_commit (the default) the write waits for the caller's transaction to commit.

    quantity: how much (seconds watched, pages read); when not given, a numeric properties["quantity"] is used
    (e.g. properties={"quantity": 95, "unit": "seconds"})."""
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or obj.pk
    member_id = getattr(member, "pk", member)
    when = occurred_at or timezone.now()
    props = dict(properties or {})
    if quantity is None:
        quantity = event_quantity(props)

    def write() -> None:
        from analytics.models import Event

        try:
            with transaction.atomic():
                Event.objects.create(
                    member_id=member_id,
                    kind=kind,
                    object_type=object_type,
                    object_id=str(object_id or ""),
                    occurred_at=when,
                    properties=props,
                    quantity=quantity,
                    source=source,
                    idempotency_key=idempotency_key,
                )
        except IntegrityError:
            if idempotency_key is None:
                raise
            # The same idempotency key was recorded before: this is a retry, and the first write stands.

    if on_commit:
        transaction.on_commit(write)
    else:
        write()



def record_events(*, member: Any, kind: str, items: list[tuple[Any, dict[str, Any]]], source: str = "server") -> None:
    """Record several events of one kind for one member — (obj, properties) each — in one INSERT after the
    caller's transaction commits (a row of recommendation impressions: one write and one commit, not four)."""
    if not items:
        return
    member_id = getattr(member, "pk", member)
    when = timezone.now()
    rows = [(obj._meta.model_name, str(obj.pk), dict(props or {})) for obj, props in items]

    def write() -> None:
        from analytics.models import Event

        Event.objects.bulk_create([
            Event(member_id=member_id, kind=kind, object_type=object_type, object_id=object_id, occurred_at=when,
                  properties=props, quantity=event_quantity(props), source=source)
            for object_type, object_id, props in rows
        ])

    transaction.on_commit(write)


# Course outcomes as live event kinds (object_type "course", object_id the course): the platform, or an import,
# records how an enrolment ended. The ML features count them per member.
COURSE_OUTCOME_KINDS = ("course_completed", "course_failed", "course_withdrawn")


def event_quantity(properties: dict[str, Any] | None) -> float | None:
    """A finite number in properties["quantity"] (bools and numeric strings excluded), else None."""
    value = (properties or {}).get("quantity")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


@contextmanager
def job_run(job: str, *, params: dict[str, Any] | None = None) -> Iterator[JobHandle]:
    """Record a JobRun around another app's job: running, then succeeded with the handle's rows and message, or
    failed with the error, in which case the exception is re-raised unchanged (Celery's retry logic still sees it).

    Two queries per run (insert, update), whatever the job does. Call it outside any transaction, as a task does, so
    a failed job's rollback does not take its "failed" row with it.
    """
    from analytics.jobs import tracked

    with tracked(job, params=params) as handle:
        yield handle


def member_forget(member_id: int) -> ForgetResult:
    """Account deletion's analytics part (members.privacy.services.member_delete calls it in its transaction):
    analytics owns these tables, so analytics decides how a member is removed from them (analytics/privacy.py)."""
    from analytics.privacy import member_forget as forget

    return forget(member_id)


def member_events(*, member: object, limit: int = 20) -> list[Event]:
    """The member's latest events, newest first, for the read-only panel on the member admin page."""
    from analytics.selectors import recent_events

    return list(recent_events(member=member, limit=limit))
