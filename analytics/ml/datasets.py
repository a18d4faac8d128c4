"""The only place the ML layer reads the database.

Every function takes `as_of` and returns only what was known strictly before it: orders paid before as_of (and not
yet refunded then), events that occurred before it, subscriptions as they stood at as_of, and so on. The rest of
analytics/ml works on the DataFrames returned here, so the cutoff is enforced in one file.

Queries are set-based (`values()` / aggregates), never a per-member loop, so 100,000 members cost a few queries.
An optional member-id range (`id_from` inclusive, `id_to` exclusive) lets a chunk task read only its slice.
"""
from __future__ import annotations

import contextlib
import io
import selectors
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, connections
from django.db.models import Avg, Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Subquery, Sum, TextField, Window
from django.db.models.functions import Cast, RowNumber

from analytics.models import Event
from community.models import Comment, Post, Reaction
from members.models import (
    Benefit,
    CouponRedemption,
    Course,
    Enrollment,
    LessonProgress,
    MembershipTier,
    Order,
    Review,
    Subscription,
    SubscriptionChange,
    User,
)

T = TypeVar("T")

# Event kinds that mirror rows already read from their own tables (lesson progress, posts, orders): counting them
# again would give learning and purchases double weight on platforms that record both.
MIRRORED_EVENT_KINDS = frozenset({
    "lesson_completed", "course_completed", "post_created", "comment_created", "reaction_added",
    "course_purchased", "subscription_started", "subscription_renewed", "trial_converted",
})

LEARNING_PREFIXES = ("lesson_", "course_viewed", "course_completed", "video_", "quiz_", "certificate_")
COMMUNITY_PREFIXES = ("post_", "comment_", "reaction_", "follow", "community_")
PURCHASE_PREFIXES = ("course_purchased", "subscription_", "trial_", "checkout_", "cart_", "coupon_", "order_")
EMAIL_PREFIXES = ("email_", "message_", "newsletter_")


def event_category(kind: str) -> str:
    if kind.startswith(LEARNING_PREFIXES):
        return "learning"
    if kind.startswith(COMMUNITY_PREFIXES):
        return "community"
    if kind.startswith(EMAIL_PREFIXES):
        return "email"
    if kind.startswith(PURCHASE_PREFIXES):
        return "purchase"
    return "other"


@dataclass(frozen=True)
class MemberRange:
    """Members with id in [id_from, id_to); with `every` > 1, only those whose id is a multiple of `every` (a
    deterministic sample of about 1/every of them, spread over the whole id range, so over every join date)."""

    id_from: int | None = None
    id_to: int | None = None
    every: int = 1

    def apply(self, qs: QuerySet, field: str = "member_id") -> QuerySet:
        if self.id_from is not None:
            qs = qs.filter(**{f"{field}__gte": self.id_from})
        if self.id_to is not None:
            qs = qs.filter(**{f"{field}__lt": self.id_to})
        if self.every > 1:
            qs = qs.alias(_sample_bucket=F(field) % self.every).filter(_sample_bucket=0)
        return qs

    def covers(self, other: MemberRange) -> bool:
        """Every member of `other` is in this range."""
        low = self.id_from is None or (other.id_from is not None and other.id_from >= self.id_from)
        high = self.id_to is None or (other.id_to is not None and other.id_to <= self.id_to)
        return low and high and other.every % self.every == 0


ALL = MemberRange()


def _frame(rows: QuerySet | list, columns: list[str]) -> pd.DataFrame:
    """Rows into a DataFrame. A values_list QuerySet is run as its raw SQL: Django's per-value converters (aware
    datetimes, decimals) cost seconds per million rows, while pandas converts whole columns at once (_to_utc)."""
    if isinstance(rows, QuerySet) and hasattr(rows, "rewrite"):
        # A translated model's queryset (modeltranslation: courses, lessons, tiers, benefits, topics) selects its
        # columns in its own order and puts them back in Python, so its raw SQL would misalign the columns.
        # These are catalogue-sized tables: iterate normally.
        rows = list(rows)
    elif isinstance(rows, QuerySet):
        if connection.vendor == "postgresql":
            frame = _copied_frame(rows, columns)
            if frame is not None:
                return frame
        sql, params = rows.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    return pd.DataFrame.from_records(list(rows), columns=columns)


# What _copied_frame makes of each selected expression, by its output field's internal type.
_COPY_KINDS = {
    **dict.fromkeys(["AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField",
                     "SmallIntegerField", "PositiveIntegerField", "PositiveBigIntegerField",
                     "PositiveSmallIntegerField"], "int"),
    **dict.fromkeys(["FloatField", "DecimalField"], "float"),
    **dict.fromkeys(["CharField", "TextField", "SlugField", "EmailField", "URLField"], "str"),
    "BooleanField": "bool",
    "DateTimeField": "timestamp",
}


def _copied_frame(rows: QuerySet, columns: list[str]) -> pd.DataFrame | None:
    """A values_list QuerySet's rows as `COPY (query) TO STDOUT` in CSV, parsed by pandas a column at a time:
    psycopg builds a Python object per value and from_records walks a tuple per row (≈ 1 µs a value; 12 million
    values for the orders at 100k members), pandas' C parser does neither. The columns come out as from_records
    gives them — integers (float where there are nulls), floats (numeric too: its callers convert Decimals to
    float), str with NaN for nulls, booleans (object where there are nulls), timestamps as UTC datetimes, a column
    of nulls only as None objects — and a query selecting any other type (JSON, dates, arrays...) returns None, to
    be read by the cursor. The COPY is logged as the query it is (connection.queries, query-count tests)."""
    compiler = rows.query.get_compiler(using=rows.db)
    sql, params = compiler.as_sql()
    kinds = [_COPY_KINDS.get(expression.output_field.get_internal_type()) for expression, _, _ in compiler.select]
    if None in kinds or len(kinds) != len(columns):
        return None
    statement = f"COPY ({sql}) TO STDOUT (FORMAT csv, NULL '\\N')"
    buffer = io.BytesIO()
    started = time.monotonic()
    with connection.cursor() as cursor:
        _copy_out(cursor.cursor, statement, params, buffer)
    if connection.queries_logged:
        connection.queries_log.append({"sql": f"{statement} -- params {params!r}",
                                       "time": f"{time.monotonic() - started:.3f}"})
    if not buffer.getbuffer().nbytes:
        return pd.DataFrame.from_records([], columns=columns)
    buffer.seek(0)
    text = {name: str for name, kind in zip(columns, kinds, strict=True) if kind in ("str", "bool", "timestamp")}
    frame = pd.read_csv(buffer, header=None, names=columns, dtype=text, na_values=["\\N"], keep_default_na=False)
    for name, kind in zip(columns, kinds, strict=True):
        if frame[name].isna().all():
            frame[name] = pd.Series([None] * len(frame), index=frame.index, dtype=object)  # as from_records
        elif kind == "bool":
            values = frame[name].map({"t": True, "f": False})
            frame[name] = values.astype(bool) if values.notna().all() else values.astype(object).where(
                values.notna(), None)
        elif kind == "timestamp":
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    return frame


def _copy_out(cursor: Any, statement: str, params: Any, buffer: io.BytesIO) -> None:
    """Run `COPY (…) TO STDOUT` on a psycopg cursor into `buffer`. psycopg's own reader hands back one message — one
    row — per call through its generic wait loop; this takes the rows libpq has buffered in a tight loop and waits
    on the socket only when it has none (the 940,000 orders and 690,000 enrolments of 100k members: 3.0 s of CPU
    against 2.0–2.1 s; bench/bench_learning_steps.py --only copy), then reads the COPY's final result off the
    connection as psycopg would and raises its error, if any. The COPY itself is psycopg's (the query, its
    parameters, the cancel when the block fails)."""
    from psycopg import errors, pq

    with cursor.copy(statement, params):
        pgconn = cursor.connection.pgconn
        get, write = pgconn.get_copy_data, buffer.write
        with selectors.DefaultSelector() as selector:
            selector.register(pgconn.socket, selectors.EVENT_READ)
            while True:
                nbytes, data = get(1)  # never blocks; -2 (a broken connection) raises
                if nbytes > 0:
                    write(data)
                elif nbytes == 0:  # nothing buffered: wait for the server (the GIL is released meanwhile)
                    selector.select()
                    pgconn.consume_input()
                else:  # -1: the rows are done
                    break
        results = []
        while (result := pgconn.get_result()) is not None:  # every one, so the connection is free again
            results.append(result)
        failed = [r for r in results if r.status != pq.ExecStatus.COMMAND_OK]
        if failed:
            raise errors.error_from_result(failed[0], encoding=cursor.connection.info.encoding)


def _as_text(field: str) -> Cast:
    """A timestamp column fetched as its text, for _to_utc to parse the whole column at once: psycopg's Python
    timestamp loader costs ≈ 10 µs a value (3.3 s → 0.9 s for 155,000 orders at 20k members on PostgreSQL), and
    Python's sqlite3 parses every column declared `datetime` one value at a time (≈ 2 s per million values); a
    CAST is an expression, so neither driver converts it."""
    return Cast(field, output_field=TextField())


def _to_utc(series: pd.Series) -> pd.Series:
    # SQLite hands back "YYYY-MM-DD HH:MM:SS[.ffffff]" strings in UTC, PostgreSQL aware datetimes: both parse here.
    if series.empty or pd.api.types.is_datetime64_any_dtype(series):
        return pd.to_datetime(series, utc=True)
    return pd.to_datetime(series, utc=True, format="ISO8601")


def members(as_of: datetime, rng: MemberRange = ALL) -> pd.DataFrame:
    """Members who had joined before as_of (staff excluded): member_id, external_id, date_joined."""
    qs = rng.apply(User.objects.filter(date_joined__lt=as_of, is_staff=False), "id")
    frame = _frame(qs.order_by("id").values_list("id", "external_id", _as_text("date_joined")),
                   ["member_id", "external_id", "date_joined"])
    frame["date_joined"] = _to_utc(frame["date_joined"])
    return frame


def _paid_before(as_of: datetime) -> QuerySet:
    """Orders paid before as_of and not refunded before as_of: a refund recorded after as_of was not yet known, and
    one without a time (an imported `refunded` row) is not known to have happened before as_of, so it counts."""
    qs = Order.objects.filter(paid_at__lt=as_of, status__in=[Order.Status.PAID, Order.Status.REFUNDED])
    return qs.exclude(refunded_at__lt=as_of)


# What the ML layer reads of an order (no coupon: coupon features come from the redemptions, coupon_use).
ORDER_COLUMNS = ["order_id", "member_id", "kind", "course_id", "tier_id", "amount", "paid_at", "is_renewal",
                 "billing_period"]

# The paid and refunded orders, and the enrolments, before `until`, each read once for a whole run (read_once): one
# night asks for them at eight to ten cutoffs — as_of, as_of − 90 days, the training windows, the recommendation
# split — and every one of those is a filter of these frames.
_once: dict | None = None


@contextlib.contextmanager
def read_once(until: datetime, rng: MemberRange = ALL) -> Iterator[None]:
    """Inside the block, orders(), enrollments() and the inferred subscriptions at any cutoff ≤ `until`, for a
    member range within `rng`, filter one read of the orders and one of the enrolments of the members in `rng`
    instead of querying again; any other range queries as outside the block (re-entrant: an inner block keeps the
    outer one). `rng`: the weekly training reads its sample's members only (repurchase.train). That one read can
    come from another process (expect_reads)."""
    global _once
    if _once is not None:
        yield
        return
    _once = {"until": until, "rng": rng, "orders": None, "enrollments": None, "given": None}
    try:
        yield
    finally:
        _once = None


@dataclass(frozen=True)
class OnceReads:
    """The one read of the orders and of the enrolments a read_once block filters, handed from one process to
    another (a fanned-out night: scoring.services._share_reads)."""

    until: datetime
    rng: MemberRange
    orders: pd.DataFrame
    enrollments: pd.DataFrame


def once_reads() -> OnceReads:
    """Inside read_once: its one read of the orders and of the enrolments, made now if not yet."""
    if _once is None:
        raise RuntimeError("once_reads() is for inside a read_once block")
    until, rng = _once["until"], _once["rng"]
    return OnceReads(until, rng, _all_orders_before(until, rng), _all_enrollments_before(until, rng))


def expect_reads(source: Callable[[], OnceReads | None]) -> None:
    """Inside read_once, before its one read: when it is first needed, take it from `source()` (another process's,
    for the same `until` and member range) instead of reading; `source()` returning None, or a read made for
    anything else, and this block reads as usual."""
    if _once is None:
        raise RuntimeError("expect_reads() is for inside a read_once block")
    if _once["orders"] is None and _once["enrollments"] is None:
        _once["given"] = source


def _take_given_reads() -> None:
    source, _once["given"] = _once["given"], None
    given = source() if source is not None else None
    if given is not None and given.until == _once["until"] and given.rng == _once["rng"]:
        _once["orders"], _once["enrollments"] = given.orders, given.enrollments


def _read_once_covers(as_of: datetime, rng: MemberRange) -> bool:
    return _once is not None and as_of <= _once["until"] and _once["rng"].covers(rng)


def _all_orders_before(as_of: datetime, rng: MemberRange) -> pd.DataFrame | None:
    """The run's one read of the orders (paid or refunded, paid before `until`, of its members), when a cutoff ≤
    until asks for members it covers."""
    if not _read_once_covers(as_of, rng):
        return None
    if _once["given"] is not None:
        _take_given_reads()
    if _once["orders"] is None:
        qs = _once["rng"].apply(Order.objects.filter(paid_at__lt=_once["until"],
                                                     status__in=[Order.Status.PAID, Order.Status.REFUNDED]))
        frame = _frame(qs.order_by("id").values_list(
            "id", "member_id", "kind", "course_id", "tier_id", "amount_paid", _as_text("paid_at"), "is_renewal",
            "billing_period", _as_text("refunded_at"), "subscription_id"),
            [*ORDER_COLUMNS, "refunded_at", "subscription_id"])
        frame["amount"] = pd.to_numeric(frame["amount"], errors="coerce").astype(float).fillna(0.0)
        frame["paid_at"] = _to_utc(frame["paid_at"])
        frame["refunded_at"] = _to_utc(frame["refunded_at"])
        _once["orders"] = frame
    return _once["orders"]


def _paid_before_frame(frame: pd.DataFrame, as_of: datetime, rng: MemberRange) -> pd.Series:
    """_paid_before on the frame: paid before as_of, not refunded before it, members in the range."""
    ts = pd.Timestamp(as_of)
    return (frame["paid_at"] < ts) & ~(frame["refunded_at"] < ts) & in_range(frame["member_id"], rng)


def orders(as_of: datetime, rng: MemberRange = ALL, *, since: datetime | None = None) -> pd.DataFrame:
    """Orders paid before as_of, not refunded before as_of (a refund after as_of was not yet known)."""
    everything = _all_orders_before(as_of, rng)
    if everything is not None:
        keep = _paid_before_frame(everything, as_of, rng)
        if since is not None:
            keep &= everything["paid_at"] >= pd.Timestamp(since)
        return everything.loc[keep, ORDER_COLUMNS].reset_index(drop=True)
    qs = _paid_before(as_of)
    if since is not None:
        qs = qs.filter(paid_at__gte=since)
    qs = rng.apply(qs)
    frame = _frame(
        qs.order_by("id").values_list("id", "member_id", "kind", "course_id", "tier_id", "amount_paid",
                                      _as_text("paid_at"), "is_renewal", "billing_period"),
        ORDER_COLUMNS,
    )
    frame["amount"] = pd.to_numeric(frame["amount"], errors="coerce").astype(float).fillna(0.0)
    frame["paid_at"] = _to_utc(frame["paid_at"])
    return frame


def buyers_between(start: datetime, end: datetime, rng: MemberRange = ALL) -> set[int]:
    """Members with at least one paid order (course or subscription, renewal included) in [start, end).

    Used for labels: callers pass end <= as_of so a label never looks past the cutoff it is trained at.
    """
    qs = Order.objects.filter(paid_at__gte=start, paid_at__lt=end, status__in=[Order.Status.PAID, Order.Status.REFUNDED])
    return set(rng.apply(qs).values_list("member_id", flat=True).distinct())


def event_counts(as_of: datetime, rng: MemberRange = ALL) -> pd.DataFrame:
    """Per member and event kind: counts and summed quantities (seconds watched, pages read: Event.quantity, 0 when
    null) in the 7/30/90 days before as_of, and the last occurrence in that window."""
    day = timedelta(days=1)
    qs = Event.objects.filter(occurred_at__lt=as_of, occurred_at__gte=as_of - 90 * day, member_id__isnull=False)
    if rng.every > 1:
        # A training sample is driven from its members: SQLite then walks the (member, time) index of those
        # members alone instead of every event in the window (1-in-5 at 100k members: 1.16 s → 0.46 s; PostgreSQL
        # 0.40 s either way). An id range is not: PostgreSQL is slower that way (0.49 s → 0.56 s for 30,000
        # members). bench/bench_matrix_reads.py.
        qs = qs.filter(member_id__in=rng.apply(User.objects.all(), "id").values("id"))
    else:
        qs = rng.apply(qs)
    rows = qs.values("member_id", "kind").annotate(
        n7=Count("id", filter=Q(occurred_at__gte=as_of - 7 * day)),
        n30=Count("id", filter=Q(occurred_at__gte=as_of - 30 * day)),
        n90=Count("id"),
        q7=Sum("quantity", filter=Q(occurred_at__gte=as_of - 7 * day)),
        q30=Sum("quantity", filter=Q(occurred_at__gte=as_of - 30 * day)),
        q90=Sum("quantity"),
        last=Max("occurred_at"),
    ).values_list("member_id", "kind", "n7", "n30", "n90", "q7", "q30", "q90", "last")
    frame = _frame(rows, ["member_id", "kind", "n7", "n30", "n90", "q7", "q30", "q90", "last"])
    for col in ("q7", "q30", "q90"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float).fillna(0.0)
    frame["last"] = _to_utc(frame["last"])
    return frame


def course_outcomes(as_of: datetime, rng: MemberRange = ALL) -> pd.DataFrame:
    """Per member: how their enrolments ended before as_of, from the outcome event kinds (course_completed,
    course_failed, course_withdrawn; tracking.COURSE_OUTCOME_KINDS): counts and the last outcome's time."""
    from analytics.tracking import COURSE_OUTCOME_KINDS

    # The outcome events themselves, aggregated and cut to the member range here: a GROUP BY member_id or a member
    # range in SQL makes SQLite walk the (member, time) index over every event of those members to find the few
    # outcome kinds (3 s for a 34,000-member chunk at 100k, for no rows); this finds them by (kind, time).
    qs = Event.objects.filter(occurred_at__lt=as_of, member_id__isnull=False, kind__in=COURSE_OUTCOME_KINDS)
    events = _frame(qs.values_list("member_id", "kind", _as_text("occurred_at")), ["member_id", "kind", "at"])
    events = events[in_range(events["member_id"], rng)].reset_index(drop=True)
    columns = ["member_id", "outcomes_completed", "outcomes_failed", "outcomes_withdrawn", "last_outcome_at"]
    if events.empty:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    else:
        events["at"] = _to_utc(events["at"])
        counts = pd.crosstab(events["member_id"], events["kind"]).reindex(
            columns=["course_completed", "course_failed", "course_withdrawn"], fill_value=0)
        last = events.groupby("member_id")["at"].max()
        frame = pd.DataFrame({"member_id": counts.index, "outcomes_completed": counts["course_completed"].to_numpy(),
                              "outcomes_failed": counts["course_failed"].to_numpy(),
                              "outcomes_withdrawn": counts["course_withdrawn"].to_numpy(),
                              "last_outcome_at": last.reindex(counts.index).to_numpy()})
    frame["last_outcome_at"] = _to_utc(frame["last_outcome_at"])
    return frame


def last_event(as_of: datetime, rng: MemberRange = ALL) -> pd.DataFrame:
    """Per member with an event before as_of: the last one's time. One backward step down the (member, time) index
    per member instead of grouping every event before as_of (5,000,000 at 100k members): 0.19 s against 0.89 s on
    SQLite, 0.32 s against 0.55 s on PostgreSQL, and a sampled or chunked range probes only its own members
    (bench/bench_matrix_reads.py)."""
    latest = (Event.objects.filter(member_id=OuterRef("pk"), occurred_at__lt=as_of)
              .order_by("-occurred_at").values("occurred_at")[:1])
    qs = rng.apply(User.objects.all(), "id").order_by("id").annotate(last=Subquery(latest))
    frame = _frame(qs.values_list("id", "last"), ["member_id", "last_event_at"])
    frame = frame[frame["last_event_at"].notna()].reset_index(drop=True)
    frame["last_event_at"] = _to_utc(frame["last_event_at"])
    return frame


def lesson_activity(as_of: datetime, rng: MemberRange = ALL) -> pd.DataFrame:
    """Per member: lessons completed in 7/30/90 days and in total before as_of, and the last completion."""
    day = timedelta(days=1)
    qs = rng.apply(LessonProgress.objects.filter(completed_at__lt=as_of))
    rows = qs.values("member_id").annotate(
        l7=Count("id", filter=Q(completed_at__gte=as_of - 7 * day)),
        l30=Count("id", filter=Q(completed_at__gte=as_of - 30 * day)),
        l90=Count("id", filter=Q(completed_at__gte=as_of - 90 * day)),
        ltotal=Count("id"),
        last=Max("completed_at"),
    ).values_list("member_id", "l7", "l30", "l90", "ltotal", "last")
    frame = _frame(rows, ["member_id", "lessons_7", "lessons_30", "lessons_90", "lessons_total", "last_lesson_at"])
    frame["last_lesson_at"] = _to_utc(frame["last_lesson_at"])
    return frame


ENROLLMENT_COLUMNS = ["member_id", "course_id", "source", "enrolled_at", "completed_at"]


def _enrollments_query(qs: QuerySet) -> pd.DataFrame:
    frame = _frame(qs.order_by("id").values_list("member_id", "course_id", "source", _as_text("enrolled_at"),
                                                 _as_text("completed_at")), ENROLLMENT_COLUMNS)
    frame["enrolled_at"] = _to_utc(frame["enrolled_at"])
    frame["completed_at"] = _to_utc(frame["completed_at"])
    return frame


def in_range(member: pd.Series, rng: MemberRange) -> pd.Series:
    """The rows whose member id is in the range (MemberRange.apply, on a column)."""
    keep = pd.Series(True, index=member.index)
    if rng.id_from is not None:
        keep &= member >= rng.id_from
    if rng.id_to is not None:
        keep &= member < rng.id_to
    if rng.every > 1:
        keep &= member % rng.every == 0
    return keep


def _all_enrollments_before(as_of: datetime, rng: MemberRange) -> pd.DataFrame | None:
    """The run's one read of the enrolments (made before `until`, of its members), when a cutoff ≤ until asks for
    members it covers."""
    if not _read_once_covers(as_of, rng):
        return None
    if _once["given"] is not None:
        _take_given_reads()
    if _once["enrollments"] is None:
        _once["enrollments"] = _enrollments_query(
            _once["rng"].apply(Enrollment.objects.filter(enrolled_at__lt=_once["until"])))
    return _once["enrollments"]


def enrollments(as_of: datetime, rng: MemberRange = ALL) -> pd.DataFrame:
    """Enrollments that existed at as_of; a completion after as_of is blanked (it had not happened yet).

    An enrolment bought with an order exists from that order until its refund: a purchase enrolment whose course
    orders were all refunded before as_of is left out, one refunded after as_of is in (the refund was not known)."""
    # The refunded pairs come from the few orders refunded before as_of (each checked for a still-paid order of
    # the same course); a correlated test per enrolment row cost two index searches for every enrolment.
    still_paid = _paid_before(as_of).filter(member=OuterRef("member_id"), course=OuterRef("course_id"))
    refunded = rng.apply(Order.objects.filter(refunded_at__lt=as_of, course__isnull=False)).exclude(Exists(still_paid))
    gone = set(refunded.values_list("member_id", "course_id").distinct())
    everything = _all_enrollments_before(as_of, rng)
    if everything is not None:
        keep = (everything["enrolled_at"] < pd.Timestamp(as_of)) & in_range(everything["member_id"], rng)
        frame = everything.loc[keep].reset_index(drop=True)
    else:
        frame = _enrollments_query(rng.apply(Enrollment.objects.filter(enrolled_at__lt=as_of)))
    if gone:
        pairs = pd.MultiIndex.from_arrays([frame["member_id"], frame["course_id"]])
        drop = (frame["source"] == Enrollment.Source.PURCHASE).to_numpy() & pairs.isin(list(gone))
        frame = frame[~drop].reset_index(drop=True)
    frame.loc[frame["completed_at"] >= pd.Timestamp(as_of), "completed_at"] = pd.NaT
    return frame


def community_activity(as_of: datetime, rng: MemberRange = ALL) -> pd.DataFrame:
    """Per member: posts, comments and reactions written in the 30/90 days before as_of (hidden ones count too:
    the member still showed up). A deleted member's posts and comments stay with no author; they count for
    nobody."""
    day = timedelta(days=1)
    parts = []
    for model, field, name in ((Post, "author_id", "posts"), (Comment, "author_id", "comments"),
                               (Reaction, "member_id", "reactions")):
        qs = rng.apply(model.objects.filter(created_at__lt=as_of, **{f"{field}__isnull": False}), field)
        rows = qs.values(field).annotate(
            n30=Count("id", filter=Q(created_at__gte=as_of - 30 * day)),
            n90=Count("id", filter=Q(created_at__gte=as_of - 90 * day)),
            total=Count("id"),
            last=Max("created_at"),
        ).values_list(field, "n30", "n90", "total", "last")
        part = _frame(rows, ["member_id", f"{name}_30", f"{name}_90", f"{name}_total", f"{name}_last"])
        parts.append(part.set_index("member_id"))
    frame = pd.concat(parts, axis=1).reset_index()
    for name in ("posts", "comments", "reactions"):
        frame[f"{name}_last"] = _to_utc(frame[f"{name}_last"])
    return frame


def coupon_use(as_of: datetime, rng: MemberRange = ALL) -> pd.DataFrame:
    qs = rng.apply(CouponRedemption.objects.filter(redeemed_at__lt=as_of))
    return _frame(qs.values("member_id").annotate(n=Count("id")).values_list("member_id", "n"),
                  ["member_id", "coupons_redeemed"])


def _visible_reviews(as_of: datetime) -> QuerySet:
    # Staff-hidden reviews are left out everywhere the platform shows ratings, so the models leave them out too.
    return Review.objects.filter(created_at__lt=as_of, is_hidden=False)


def reviews(as_of: datetime, rng: MemberRange = ALL) -> pd.DataFrame:
    """Per member: visible course reviews written before as_of (in total, in the last 30 and 90 days), and the
    ratings of those not edited since (an edit after as_of would show a rating that was not known then)."""
    day = timedelta(days=1)
    qs = rng.apply(_visible_reviews(as_of))
    rows = qs.values("member_id").annotate(
        n=Count("id"),
        n30=Count("id", filter=Q(created_at__gte=as_of - 30 * day)),
        n90=Count("id", filter=Q(created_at__gte=as_of - 90 * day)),
        rated=Count("id", filter=Q(updated_at__lt=as_of)),
        rating_sum=Sum("rating", filter=Q(updated_at__lt=as_of)),
        low=Count("id", filter=Q(updated_at__lt=as_of, rating__lte=2)),
    ).values_list("member_id", "n", "n30", "n90", "rated", "rating_sum", "low")
    return _frame(rows, ["member_id", "n_reviews_given", "reviews_30", "reviews_90", "rated", "rating_sum",
                         "low_ratings_given"])


def course_rating_averages(as_of: datetime) -> pd.DataFrame:
    """Per course: the average of the visible ratings known before as_of (all members, whatever the member range:
    a chunk's members bought courses everyone rated). One row per rated course."""
    rows = (_visible_reviews(as_of).filter(updated_at__lt=as_of).values("course_id")
            .annotate(avg=Avg("rating"), n=Count("id")).values_list("course_id", "avg", "n"))
    frame = _frame(rows, ["course_id", "course_avg_rating", "course_ratings"])
    frame["course_avg_rating"] = pd.to_numeric(frame["course_avg_rating"]).astype(float)
    return frame


def course_ratings(as_of: datetime, rng: MemberRange = ALL) -> pd.DataFrame:
    """(member_id, course_id, rating) of the visible reviews written and last edited before as_of."""
    qs = rng.apply(_visible_reviews(as_of).filter(updated_at__lt=as_of))
    frame = _frame(qs.values_list("member_id", "course_id", "rating"), ["member_id", "course_id", "rating"])
    return frame.astype({"member_id": int, "course_id": int, "rating": int})


def subscriptions(as_of: datetime, rng: MemberRange = ALL) -> pd.DataFrame:
    """Subscriptions as they stood at as_of.

    The state comes from the subscription ledger (members.SubscriptionChange, appended by every service that
    changes a subscription): the last ledger row before as_of gives status, tier, billing period, the period and
    a pending cancellation exactly, so a pause, period switch, tier edit or cancellation made after as_of changes
    nothing here. live = that status is trialing/active/past_due; ended_at = the time of that row when it ended the
    subscription.

    Fallback, for subscriptions with no ledger row before as_of (created before the ledger existed, or written by
    something other than the services): rebuilt from today's row, which is approximate. Live at as_of if it had
    started and had not ended (ended_at, or for an expired row without ended_at its last period end); the period at
    as_of is found by stepping the current period back one billing period at a time; status, tier and billing
    period are today's, so a change made after as_of shows through for these rows only.

    Inferred, for members with no Subscription row started before as_of (an imported platform: import books tier
    orders but writes no Subscription rows): the paid-through state is rebuilt from their paid subscription orders
    not tied to a Subscription row (see _inferred_from_orders). These rows have no subscription_id and inferred=True;
    every other row has inferred=False. Members with a Subscription row are never inferred for.
    """
    qs = rng.apply(Subscription.objects.filter(started_at__lt=as_of))
    frame = _frame(
        qs.values_list("id", "member_id", "tier_id", "billing_period", "status", "started_at", "current_period_start",
                       "current_period_end", "trial_end", "canceled_at", "ended_at"),
        ["subscription_id", "member_id", "tier_id", "billing_period", "status", "started_at", "period_start",
         "period_end", "trial_end", "canceled_at", "ended_at"],
    )
    for col in ("started_at", "period_start", "period_end", "trial_end", "canceled_at", "ended_at"):
        frame[col] = _to_utc(frame[col])
    ts = pd.Timestamp(as_of)
    if frame.empty:
        frame["live"] = pd.Series(dtype=bool)
        frame["cancel_pending"] = pd.Series(dtype=bool)
        frame["trialing"] = pd.Series(dtype=bool)
        frame["inferred"] = pd.Series(dtype=bool)
    else:
        frame = _recorded_at(frame, as_of, rng, ts)
        frame["inferred"] = False
    inferred = _inferred_from_orders(as_of, rng, set(frame["member_id"]))
    if inferred.empty:
        return frame
    if frame.empty:
        return inferred
    return pd.concat([frame, inferred[frame.columns]], ignore_index=True)


def _recorded_at(frame: pd.DataFrame, as_of: datetime, rng: MemberRange, ts: pd.Timestamp) -> pd.DataFrame:
    """State at as_of of the Subscription rows themselves: the ledger, else the reconstruction from today's row."""
    ledger = _ledger_at(as_of, rng).set_index("subscription_id")
    exact = frame["subscription_id"].isin(ledger.index)
    if exact.all():
        frame = _from_ledger(frame, ledger)
    elif not exact.any():
        frame = _rebuilt_from_today(frame, ts)
    else:
        frame = pd.concat([_rebuilt_from_today(frame[~exact], ts), _from_ledger(frame[exact], ledger)]).sort_index()
    # In a trial at as_of: the ledger's status says so exactly; a fallback row was if its trial, whose end was set
    # when it started (before as_of), had not ended yet. trial_end itself is a date known from the start.
    trial_running = frame["trial_end"].notna() & (frame["trial_end"] > ts) & frame["live"]
    frame["trialing"] = np.where(frame["subscription_id"].isin(ledger.index),
                                 frame["status"] == Subscription.Status.TRIALING, trial_running).astype(bool)
    return frame


def _inferred_from_orders(as_of: datetime, rng: MemberRange, recorded: set[int]) -> pd.DataFrame:
    """Subscription state at as_of inferred from paid subscription orders, for members without Subscription rows.

    One query: the member's subscription-kind orders paid before as_of and not refunded before it (the rule of
    datasets.orders), not tied to a Subscription row. Walking them in payment order, each buys one billing period
    (its own, month or year, by calendar arithmetic like members.services.period_end) from the later of the
    previous paid-through and its payment, so a renewal paid early extends the period and one paid after a lapse
    starts a new one. The walk is vectorised across members: one pass per order rank, so as many passes as the
    most orders one member has (36 for three years of monthly payments), never a pass per member.

    At as_of: period_end = paid-through; period_start = where the last paid period began; tier and billing period
    those of the last order; started_at = the first order. Live while as_of < paid-through + RENEWAL_GRACE_DAYS,
    as on the platform, where a renewal that has not come in by the period end leaves the membership past due
    (still live) for the grace days before it ends; an orders-only history cannot tell a lapse from a cancellation,
    so every lapse gets the grace. status: active before paid-through, past_due in the grace days, expired after
    (ended_at = paid-through + grace). No trial, no pending cancellation, no subscription_id; inferred=True.
    """
    everything = _all_orders_before(as_of, rng)
    if everything is not None:
        keep = (_paid_before_frame(everything, as_of, rng) & (everything["kind"] == Order.Kind.SUBSCRIPTION)
                & everything["subscription_id"].isna())
        rows = everything.loc[keep, ["member_id", "tier_id", "billing_period", "paid_at", "order_id"]]
        rows = rows.sort_values(["member_id", "paid_at", "order_id"], kind="mergesort")
        rows = rows.drop(columns="order_id").reset_index(drop=True)
        if rows["tier_id"].notna().all():  # the frame's tier_id is float (course orders have none); SQL's is int
            rows["tier_id"] = rows["tier_id"].astype("int64")
    else:
        qs = rng.apply(_paid_before(as_of).filter(kind=Order.Kind.SUBSCRIPTION, subscription__isnull=True))
        rows = _frame(qs.order_by("member_id", "paid_at", "id").values_list(
            "member_id", "tier_id", "billing_period", _as_text("paid_at")), ["member_id", "tier_id", "billing_period",
                                                                            "paid_at"])
    rows = rows[~rows["member_id"].isin(recorded)]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(paid_at=_to_utc(rows["paid_at"]), rank=rows.groupby("member_id").cumcount())
    rows["billing_period"] = rows["billing_period"].where(rows["billing_period"] == "year", "month")
    paid_through, period_start = paid_through_walk(rows)
    member_ids = paid_through.index
    last = rows.groupby("member_id").tail(1).set_index("member_id")
    ts = pd.Timestamp(as_of)
    grace_end = paid_through + pd.Timedelta(days=settings.RENEWAL_GRACE_DAYS)
    live = ts < grace_end
    status = np.where(ts < paid_through, Subscription.Status.ACTIVE,
                      np.where(live, Subscription.Status.PAST_DUE, Subscription.Status.EXPIRED))
    no_time = pd.Series(pd.NaT, index=member_ids, dtype="datetime64[ns, UTC]")
    frame = pd.DataFrame({
        "subscription_id": pd.Series(pd.NA, index=member_ids, dtype="Int64"),
        "tier_id": last["tier_id"].reindex(member_ids),
        "billing_period": last["billing_period"].reindex(member_ids),
        "status": pd.Series(status, index=member_ids).astype(str),
        "started_at": rows.groupby("member_id")["paid_at"].min().reindex(member_ids),
        "period_start": period_start,
        "period_end": paid_through,
        "trial_end": no_time,
        "canceled_at": no_time,
        "ended_at": grace_end.where(~live),
        "live": live.astype(bool),
        "cancel_pending": False,
        "trialing": False,
        "inferred": True,
    }, index=member_ids)
    return frame.reset_index()


def paid_through_walk(rows: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """_inferred_from_orders' walk: rows (member_id, billing_period, paid_at, rank = the member's n-th order) in
    payment order; per member (the index, in order of first appearance), where the paid periods end and where the
    last began.

    One pass per rank, on integer timestamps by array position: a gather, a comparison and a scatter over the rows
    of that rank (found once by a stable sort), with the calendar arithmetic on DatetimeIndex. The same values as a
    pass by member label (bench/bench_learning_steps.py --only inferred), at a fraction of the cost."""
    codes, uniques = pd.factorize(rows["member_id"])  # each member's position, in order of first appearance
    member_ids = pd.Index(uniques, name="member_id")
    paid = pd.DatetimeIndex(rows["paid_at"])
    unit = paid.unit
    paid_i8, yearly_all = paid.asi8, (rows["billing_period"] == "year").to_numpy()
    ranks = rows["rank"].to_numpy()
    by_rank = np.argsort(ranks, kind="stable")
    bounds = np.searchsorted(ranks[by_rank], np.arange(int(ranks.max()) + 2))
    through = np.full(len(member_ids), np.iinfo(np.int64).min)  # NaT: compares below every time
    began = through.copy()
    for rank in range(int(ranks.max()) + 1):
        at = by_rank[bounds[rank]:bounds[rank + 1]]  # one row per member: a rank is a member's n-th order
        who, paid_at = codes[at], paid_i8[at]
        before = through[who]
        start = np.where(before > paid_at, before, paid_at)  # NaT (first order) compares False
        starts = pd.DatetimeIndex(start.view(f"M8[{unit}]")).tz_localize("UTC")
        yearly = yearly_all[at]
        end = start.copy()
        end[yearly] = (starts[yearly] + pd.DateOffset(years=1)).asi8
        end[~yearly] = (starts[~yearly] + pd.DateOffset(months=1)).asi8
        through[who] = end
        began[who] = start

    def utc(values: np.ndarray) -> pd.Series:
        return pd.Series(pd.DatetimeIndex(values.view(f"M8[{unit}]")).tz_localize("UTC").as_unit("ns"),
                         index=member_ids)

    return utc(through), utc(began)


def _ledger_at(as_of: datetime, rng: MemberRange) -> pd.DataFrame:
    """The last ledger row before as_of of each subscription in the range: one query (ROW_NUMBER per subscription,
    latest first; the id breaks ties between changes recorded at the same instant)."""
    latest = Window(RowNumber(), partition_by=[F("subscription_id")], order_by=[F("at").desc(), F("id").desc()])
    qs = rng.apply(SubscriptionChange.objects.filter(at__lt=as_of)).annotate(n=latest).filter(n=1)
    frame = _frame(
        qs.values_list("subscription_id", "at", "status", "tier_id", "billing_period", "current_period_start",
                       "current_period_end", "cancel_at_period_end", "canceled_at"),
        ["subscription_id", "at", "status", "tier_id", "billing_period", "period_start", "period_end",
         "cancel_at_period_end", "canceled_at"],
    )
    for col in ("at", "period_start", "period_end", "canceled_at"):
        frame[col] = _to_utc(frame[col])
    frame["cancel_at_period_end"] = frame["cancel_at_period_end"].astype(bool)
    return frame


def _from_ledger(frame: pd.DataFrame, ledger: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    state = ledger.loc[frame["subscription_id"]]
    for col in ("status", "tier_id", "billing_period", "period_start", "period_end", "canceled_at"):
        frame[col] = state[col].to_numpy()
    live = frame["status"].isin(Subscription.LIVE_STATUSES)
    frame["live"] = live
    frame["ended_at"] = state["at"].where(~live.to_numpy()).to_numpy()
    frame["cancel_pending"] = state["cancel_at_period_end"].to_numpy() & live
    return frame


def _rebuilt_from_today(frame: pd.DataFrame, ts: pd.Timestamp) -> pd.DataFrame:
    frame = frame.copy()
    ended = frame["ended_at"].copy()
    no_end = ended.isna() & frame["status"].isin([Subscription.Status.EXPIRED, Subscription.Status.CANCELED])
    ended[no_end] = frame.loc[no_end, "period_end"]
    frame["live"] = ended.isna() | (ended > ts)

    start, end = frame["period_start"].copy(), frame["period_end"].copy()
    yearly = frame["billing_period"] == "year"
    for _ in range(400):  # bounded: one step per billing period between as_of and today
        back = start > ts
        if not back.any():
            break
        for is_year, offset in ((True, pd.DateOffset(years=1)), (False, pd.DateOffset(months=1))):
            mask = back & (yearly == is_year)
            if mask.any():
                end[mask] = start[mask]
                start[mask] = start[mask] - offset
    frame["period_start"], frame["period_end"] = start, end
    frame.loc[frame["canceled_at"] >= ts, "canceled_at"] = pd.NaT
    frame["cancel_pending"] = frame["canceled_at"].notna() & frame["live"]
    return frame


def tiers(as_of: datetime) -> pd.DataFrame:
    """Tier prices and which tiers grant all-course access at as_of. Tiers carry no dates or price history, so
    every tier is returned with today's price; as_of is in the signature so that callers state their cutoff and a
    dated catalogue can be filtered here alone."""
    frame = _frame(MembershipTier.objects.values_list("id", "monthly_price", "order"), ["tier_id", "monthly_price", "order"])
    frame["monthly_price"] = pd.to_numeric(frame["monthly_price"]).astype(float)
    all_access = set(Benefit.objects.filter(kind=Benefit.Kind.ALL_COURSES).values_list("tier_id", flat=True))
    frame["all_courses"] = frame["tier_id"].isin(all_access)
    return frame


def all_course_members(as_of: datetime, rng: MemberRange = ALL) -> set[int]:
    """Members in the range with a live subscription to a tier that includes every course. Inside read_once it is
    worked out once per cutoff for everyone and cut to the range: a night asks for it once per recommendation
    chunk, and each answer rebuilt the subscriptions (at 100k members 0.26 s a chunk on PostgreSQL, 0.73 s on
    SQLite: bench/bench_matrix_reads.py)."""
    if _read_once_covers(as_of, rng):
        everyone = _once.setdefault("all_course_members", {})
        if as_of not in everyone:
            everyone[as_of] = _all_course_members(as_of, _once["rng"])
        ids = pd.Series(list(everyone[as_of]), dtype="int64")
        return set(ids[in_range(ids, rng)].tolist())
    return _all_course_members(as_of, rng)


def _all_course_members(as_of: datetime, rng: MemberRange) -> set[int]:
    subs = subscriptions(as_of, rng)
    if subs.empty:
        return set()
    tier_frame = tiers(as_of)
    access = set(tier_frame.loc[tier_frame["all_courses"], "tier_id"])
    live = subs[subs["live"] & subs["tier_id"].isin(access)]
    return set(live["member_id"].astype(int))


def courses(as_of: datetime) -> pd.DataFrame:
    """The catalogue as it was at as_of: published, non-generic courses that existed before as_of.

    "Existed" is published_at < as_of when the course has one; otherwise created before as_of, or bought or
    enrolled in before as_of — an imported catalogue is created today but its history proves older courses.
    """
    sold_before = Order.objects.filter(course=OuterRef("pk"), paid_at__lt=as_of)
    enrolled_before = Enrollment.objects.filter(course=OuterRef("pk"), enrolled_at__lt=as_of)
    qs = Course.objects.filter(is_generic=False, is_published=True).filter(
        Q(published_at__lt=as_of)
        | Q(published_at__isnull=True, created_at__lt=as_of)
        | Q(published_at__isnull=True) & (Exists(sold_before) | Exists(enrolled_before))
    )
    return _frame(
        list(qs.order_by("id").values_list("id", "external_id", "slug", "title", "title_zh", "summary",
                                           "description", "tags", "topic", "price")),
        ["course_id", "external_id", "slug", "title", "title_zh", "summary", "description", "tags", "topic", "price"],
    )


@dataclass(frozen=True)
class CourseRecord:
    """The course-linked orders and enrolments known before `as_of`, raw enough that course_history at any cutoff
    <= as_of is a filter of it (so one read serves a run's validation split and its serving): orders paid before
    as_of with status paid/refunded (refunded_at kept, not applied), orders refunded before as_of (any status),
    enrolments made before as_of (completed_at kept, not blanked)."""

    as_of: datetime
    orders: pd.DataFrame       # member_id, course_id, kind, paid_at, refunded_at
    refunds: pd.DataFrame      # member_id, course_id, refunded_at
    enrollments: pd.DataFrame  # member_id, course_id, source, enrolled_at, completed_at


def course_record(as_of: datetime, rng: MemberRange = ALL) -> CourseRecord:
    """Three plain scans; the refund rule of _paid_before and enrollments() is applied later, in pandas
    (course_history), not as enrollments()' two correlated subqueries per enrolment row (on SQLite those cost
    2.2 s of 2.4 s at 135,000 enrolments). Inside read_once the orders and enrolments are filters of the run's one
    read of each (the features read them too); only the few refunds are queried."""
    refunds = _frame(rng.apply(Order.objects.filter(refunded_at__lt=as_of, course__isnull=False))
                     .values_list("member_id", "course_id", _as_text("refunded_at")),
                     ["member_id", "course_id", "refunded_at"])
    refunds["refunded_at"] = _to_utc(refunds["refunded_at"])
    all_orders, all_enrollments = _all_orders_before(as_of, rng), _all_enrollments_before(as_of, rng)
    if all_orders is not None and all_enrollments is not None:
        ts = pd.Timestamp(as_of)
        keep = all_orders["course_id"].notna() & (all_orders["paid_at"] < ts) & in_range(all_orders["member_id"], rng)
        orders = (all_orders.loc[keep, ["member_id", "course_id", "kind", "paid_at", "refunded_at"]]
                  .astype({"member_id": int, "course_id": int}).reset_index(drop=True))
        keep = (all_enrollments["enrolled_at"] < ts) & in_range(all_enrollments["member_id"], rng)
        return CourseRecord(as_of, orders, refunds, all_enrollments.loc[keep].reset_index(drop=True))
    orders = _frame(rng.apply(Order.objects.filter(paid_at__lt=as_of, course__isnull=False,
                                                   status__in=[Order.Status.PAID, Order.Status.REFUNDED]))
                    .values_list("member_id", "course_id", "kind", _as_text("paid_at"), _as_text("refunded_at")),
                    ["member_id", "course_id", "kind", "paid_at", "refunded_at"])
    enrollments = _frame(rng.apply(Enrollment.objects.filter(enrolled_at__lt=as_of)).values_list(
        "member_id", "course_id", "source", _as_text("enrolled_at"), _as_text("completed_at")),
        ["member_id", "course_id", "source", "enrolled_at", "completed_at"])
    for frame, cols in ((orders, ("paid_at", "refunded_at")), (enrollments, ("enrolled_at", "completed_at"))):
        for col in cols:
            frame[col] = _to_utc(frame[col])
    return CourseRecord(as_of, orders, refunds, enrollments)


def _record_enrollments(record: CourseRecord, as_of: datetime, paid: pd.DataFrame) -> pd.DataFrame:
    """enrollments(as_of) from a record (as_of <= record.as_of): the same rows, in the record's order. paid: the
    record's orders that count at as_of (_paid_before(as_of), any kind)."""
    ts = pd.Timestamp(as_of)
    frame = record.enrollments
    frame = frame[frame["enrolled_at"] < ts].reset_index(drop=True)
    refunds = record.refunds
    refunded = set(zip(*(refunds.loc[refunds["refunded_at"] < ts, c].astype(int) for c in ("member_id", "course_id"))))
    if refunded and len(frame):
        # Left out: a purchase enrolment with an order for that course refunded before as_of and none still paid.
        gone = refunded - set(zip(paid["member_id"].astype(int), paid["course_id"].astype(int)))
        pairs = pd.MultiIndex.from_arrays([frame["member_id"].astype(int), frame["course_id"].astype(int)])
        drop = (frame["source"] == Enrollment.Source.PURCHASE).to_numpy() & pairs.isin(list(gone))
        frame = frame[~drop].reset_index(drop=True)
    frame = frame.copy()
    frame.loc[frame["completed_at"] >= ts, "completed_at"] = pd.NaT
    return frame


def course_history(as_of: datetime, rng: MemberRange = ALL, *, record: CourseRecord | None = None) -> pd.DataFrame:
    """Every course purchase (paid before as_of, not refunded before it) and enrolment before as_of (the rules of
    orders() and enrollments()), repeats kept: member_id, course_id, at, completed (an enrolment finished before
    as_of). course_events and course_interactions are views of it. record: course_record(T, rng) for some
    T >= as_of, read once and filtered here (default: read at as_of)."""
    record = record if record is not None else course_record(as_of, rng)
    if as_of > record.as_of:
        raise ValueError(f"a course record read at {record.as_of} cannot give the history at {as_of}")
    ts = pd.Timestamp(as_of)
    orders = record.orders
    paid = orders[(orders["paid_at"] < ts) & ~(orders["refunded_at"] < ts)]
    enr = _record_enrollments(record, as_of, paid)
    ords = paid.loc[paid["kind"] == Order.Kind.COURSE, ["member_id", "course_id", "paid_at"]]
    ords = ords.rename(columns={"paid_at": "at"}).assign(completed=False)
    enr = enr.assign(completed=enr["completed_at"].notna())[["member_id", "course_id", "enrolled_at", "completed"]]
    both = pd.concat([ords, enr.rename(columns={"enrolled_at": "at"})], ignore_index=True)
    if both.empty:
        return pd.DataFrame({"member_id": pd.Series(dtype=int), "course_id": pd.Series(dtype=int),
                             "at": pd.Series(dtype="datetime64[ns, UTC]"), "completed": pd.Series(dtype=bool)})
    return both.astype({"member_id": int, "course_id": int, "completed": bool})


def interactions_from(history: pd.DataFrame, since: datetime | None = None) -> pd.DataFrame:
    """course_interactions from a course_history frame: one row per member–course pair, the latest time and
    whether the member finished it."""
    if since is not None:
        history = history[history["at"] >= pd.Timestamp(since)]
    if history.empty:
        return pd.DataFrame({"member_id": pd.Series(dtype=int), "course_id": pd.Series(dtype=int),
                             "at": pd.Series(dtype="datetime64[ns, UTC]"), "completed": pd.Series(dtype=bool)})
    return history.groupby(["member_id", "course_id"], as_index=False).agg(at=("at", "max"),
                                                                          completed=("completed", "max"))


def events_from(history: pd.DataFrame) -> pd.DataFrame:
    """course_events from a course_history frame. An enrolment made by a purchase repeats that purchase at the same
    instant: counted once."""
    return history[["member_id", "course_id", "at"]].drop_duplicates(["member_id", "course_id", "at"]).reset_index(
        drop=True)


def course_interactions(as_of: datetime, rng: MemberRange = ALL, *, since: datetime | None = None) -> pd.DataFrame:
    """Member–course pairs known before as_of: course orders and enrollments, with the latest time and whether the
    member finished the course (completed before as_of)."""
    return interactions_from(course_history(as_of, rng), since)


def course_events(as_of: datetime, rng: MemberRange = ALL) -> pd.DataFrame:
    """Every course purchase (paid before as_of, not refunded before it) and enrolment before as_of, repeats kept:
    member_id, course_id, at. Repeats say which items members buy again."""
    return events_from(course_history(as_of, rng))


def new_interactions(start: datetime, end: datetime) -> pd.DataFrame:
    """Course purchases and enrollments in [start, end) — the test set of a time-split evaluation (end <= as_of)."""
    ords = Order.objects.filter(kind=Order.Kind.COURSE, paid_at__gte=start, paid_at__lt=end,
                                status__in=[Order.Status.PAID, Order.Status.REFUNDED])
    enr = Enrollment.objects.filter(enrolled_at__gte=start, enrolled_at__lt=end)
    rows = list(ords.values_list("member_id", "course_id")) + list(enr.values_list("member_id", "course_id"))
    return _frame(rows, ["member_id", "course_id"]).drop_duplicates()


def history_start(as_of: datetime) -> datetime | None:
    """The first instant member history exists before as_of (orders, events, enrolments): bounds how far back
    training can go. None when nothing happened before as_of."""
    candidates = [
        Order.objects.filter(paid_at__lt=as_of).aggregate(m=Min("paid_at"))["m"],
        _first_event_before(as_of),
        Enrollment.objects.filter(enrolled_at__lt=as_of).aggregate(m=Min("enrolled_at"))["m"],
    ]
    found = [c for c in candidates if c is not None]
    return min(found) if found else None


# Above this many event kinds, _first_event_before reads every event instead of probing each kind.
FIRST_EVENT_KIND_PROBES = 500


def _first_event_ids_by_kind(as_of: datetime) -> list[int | None]:
    """For each event kind, up to FIRST_EVENT_KIND_PROBES + 1 of them, the id of its first event before as_of (None
    for a kind with none), in one query on the (kind, occurred_at) index: the kinds are read off it one at a time (a
    loose index scan: each step asks for the least kind above the last), and each kind's first event is one probe.
    Raw SQL: the ORM cannot write a recursive query."""
    table = connection.ops.quote_name(Event._meta.db_table)
    pk, kind, at = (connection.ops.quote_name(Event._meta.get_field(name).column)
                    for name in ("id", "kind", "occurred_at"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH RECURSIVE kinds (kind) AS (SELECT MIN({kind}) FROM {table} UNION ALL "
            f"SELECT (SELECT MIN(e.{kind}) FROM {table} e WHERE e.{kind} > kinds.kind) FROM kinds "
            "WHERE kinds.kind IS NOT NULL) "
            f"SELECT (SELECT e.{pk} FROM {table} e WHERE e.{kind} = kinds.kind AND e.{at} < %s "
            f"ORDER BY e.{at} LIMIT 1) FROM kinds WHERE kinds.kind IS NOT NULL LIMIT {FIRST_EVENT_KIND_PROBES + 1}",
            [connection.ops.adapt_datetimefield_value(as_of)],
        )
        return [row[0] for row in cursor.fetchall()]


def _first_event_before(as_of: datetime) -> datetime | None:
    """MIN(occurred_at) of the events before as_of, from the first event of each kind (_first_event_ids_by_kind):
    no index leads with occurred_at, so the plain aggregate read every event (0.3–0.6 s at 5,000,000 on either
    database, twice in a weekly learning; bench/bench_learning_steps.py --only history-start). A platform with more
    kinds than FIRST_EVENT_KIND_PROBES gets the plain aggregate."""
    ids = _first_event_ids_by_kind(as_of)
    events = Event.objects.filter(occurred_at__lt=as_of)
    if len(ids) <= FIRST_EVENT_KIND_PROBES:
        events = events.filter(pk__in=[pk for pk in ids if pk is not None])
    return events.aggregate(m=Min("occurred_at"))["m"]


def first_order_at(as_of: datetime) -> datetime | None:
    return Order.objects.filter(paid_at__lt=as_of).aggregate(m=Min("paid_at"))["m"]


def member_count(as_of: datetime) -> int:
    """Members who had joined before as_of (staff excluded), as datasets.members counts them."""
    return User.objects.filter(date_joined__lt=as_of, is_staff=False).count()


def member_ids() -> list[int]:
    """Every member's id (staff excluded), ascending: what the scoring chunks are cut from."""
    return list(User.objects.filter(is_staff=False).order_by("id").values_list("id", flat=True))


@dataclass(frozen=True)
class Snapshot:
    """Everything the feature builders need about members at one as_of."""

    as_of: datetime
    members: pd.DataFrame
    orders: pd.DataFrame
    event_counts: pd.DataFrame
    last_event: pd.DataFrame
    lessons: pd.DataFrame
    enrollments: pd.DataFrame
    community: pd.DataFrame
    coupons: pd.DataFrame
    subscriptions: pd.DataFrame
    tiers: pd.DataFrame
    reviews: pd.DataFrame | None = None
    course_ratings: pd.DataFrame | None = None  # course_id, course_avg_rating, course_ratings
    outcomes: pd.DataFrame | None = None


def snapshot(as_of: datetime, rng: MemberRange = ALL) -> Snapshot:
    # The event reads are aggregations PostgreSQL does in its own process: run alongside, they overlap the orders
    # and enrolments this thread parses.
    with alongside() as later:
        counts = later(event_counts, as_of, rng)
        last = later(last_event, as_of, rng)
        outcomes = later(course_outcomes, as_of, rng)
        # What does not read the orders or enrolments first: in a fanned-out night they may still be on their way
        # from the other process (read_once, expect_reads).
        people, lessons, community = members(as_of, rng), lesson_activity(as_of, rng), community_activity(as_of, rng)
        coupons = coupon_use(as_of, rng)
        reviewed, ratings, tier_frame = reviews(as_of, rng), course_rating_averages(as_of), tiers(as_of)
        return Snapshot(
            as_of=as_of,
            members=people,
            orders=orders(as_of, rng),
            lessons=lessons,
            enrollments=enrollments(as_of, rng),
            community=community,
            coupons=coupons,
            subscriptions=subscriptions(as_of, rng),
            tiers=tier_frame,
            reviews=reviewed,
            course_ratings=ratings,
            event_counts=counts.result(),
            last_event=last.result(),
            outcomes=outcomes.result(),
        )


def on_its_own_connection(read: Callable[..., T], *args: Any) -> T:
    """read(*args), then this thread's database connections closed: for a read run in a thread other than the
    request's or task's (alongside, matrices.build_many), which would otherwise leave its connections open."""
    try:
        return read(*args)
    finally:
        connections.close_all()  # this thread's connections only


def reads_alongside() -> bool:
    """Whether reads may run on other connections, in threads: on PostgreSQL, outside a transaction, unless
    ANALYTICS_READS_ALONGSIDE is False (alongside)."""
    return (connection.vendor == "postgresql" and not connection.in_atomic_block
            and getattr(settings, "ANALYTICS_READS_ALONGSIDE", True))


@contextlib.contextmanager
def alongside() -> Iterator[Callable[..., Future]]:
    """`later(read, *args)` starts a read on a second database connection, in one worker thread, and returns its
    Future; the block waits for every read it started. On PostgreSQL, outside a transaction, and unless
    ANALYTICS_READS_ALONGSIDE is False; otherwise the read runs at once, on this connection, and returns a finished
    Future. Inside a transaction (a caller's, a test's) another connection would not see its rows. On SQLite the
    engine runs in this process and the sqlite3 module takes the GIL back for every row it steps, so two reading
    threads slowed the snapshot at 100k members (6.3 s in turn, 7.7 s alongside); on PostgreSQL it goes from 4.6 to
    4.0 s (bench/bench_matrix_reads.py)."""
    if not reads_alongside():
        def now(read: Callable[..., T], *args: Any) -> Future:
            done: Future = Future()
            done.set_result(read(*args))
            return done

        yield now
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="analytics-read") as pool:
        yield lambda read, *args: pool.submit(on_its_own_connection, read, *args)
