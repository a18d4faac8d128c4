"""Shared pieces of the staff reports: windows, filters, the paid-order ledger and the result cache.

Every report function takes an explicit window or as_of so a figure can be reproduced later; nothing here reads the
clock. Timestamps are stored and compared in UTC; days and months are cut at midnight in the platform's reporting
time zone (settings.REPORTING_TIME_ZONE, default Asia/Shanghai), so an order at 2026-01-31 20:00 UTC is February's.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.cache import cache
from django.db.models import Q, QuerySet

from analytics.models import SegmentAssignment, SegmentRun
from members.accounts import selectors as account_selectors
from members.commerce import selectors as commerce_selectors
from members.commerce.selectors import OrderKind
from members.subscriptions import selectors as subscription_selectors

T = TypeVar("T")

# Short: staff expect today's orders to show up soon, and the expensive pages are read in bursts.
CACHE_TTL_SECONDS = 300
CACHE_PREFIX = "reports:v1"
CACHE_VERSION_KEY = f"{CACHE_PREFIX}:version"
# What the nightly warm-up stores the default views for: until the next run bumps the version.
WARM_TTL_SECONDS = 6 * 3600


@dataclass(frozen=True)
class Window:
    """A half-open interval [start, end) in UTC."""

    start: datetime
    end: datetime

    @property
    def days(self) -> int:
        return max(1, round((self.end - self.start).total_seconds() / 86400))

    def previous(self) -> Window:
        """The window of the same length immediately before this one."""
        return Window(self.start - (self.end - self.start), self.start)

    @property
    def label(self) -> str:
        last_day = (self.end - timedelta(microseconds=1)).date()
        return f"{self.start.date():%Y-%m-%d} – {last_day:%Y-%m-%d}"


@dataclass(frozen=True)
class Filters:
    """Member-level filters shared by all pages. Empty means "everyone"."""

    tier_id: int | None = None
    segment: str = ""
    source: str = ""
    first_course_id: int | None = None

    def key(self) -> str:
        return f"{self.tier_id}|{self.segment}|{self.source}|{self.first_course_id}"

    @property
    def is_empty(self) -> bool:
        return not (self.tier_id or self.segment or self.source or self.first_course_id)


# A frozen instance, so sharing it as a default argument is safe.
NO_FILTERS = Filters()


def reporting_zone() -> ZoneInfo:
    return ZoneInfo(settings.REPORTING_TIME_ZONE)


def reporting_today(now: datetime) -> date:
    """The platform's calendar day at `now` (at 2026-01-31 20:00 UTC it is already 02-01 in Shanghai)."""
    return now.astimezone(reporting_zone()).date()


def start_of_day(day: date) -> datetime:
    """Midnight of `day` in the reporting zone."""
    return datetime.combine(day, time.min, tzinfo=reporting_zone())


def month_start(when: datetime) -> datetime:
    """The start of the reporting-zone calendar month holding `when`."""
    local = when.astimezone(reporting_zone())
    return datetime(local.year, local.month, 1, tzinfo=reporting_zone())


def trailing_months(end: datetime, count: int = 12) -> list[Window]:
    """The `count` calendar months up to the one containing `end` (the last one is cut at `end`), oldest first."""
    last_start = month_start(end - timedelta(microseconds=1))
    months: list[Window] = []
    for back in range(count - 1, -1, -1):
        start = last_start - relativedelta(months=back)
        months.append(Window(start, min(start + relativedelta(months=1), end)))
    return months


def paid_orders() -> QuerySet[Any]:
    """What counts as paid: status "paid". A refunded order has status "refunded", so it drops out of revenue,
    repurchase and renewal figures everywhere; pending and failed orders never count."""
    return commerce_selectors.paid_orders()


def paid_course_orders() -> QuerySet[Any]:
    return paid_orders().filter(kind=OrderKind.COURSE)


def latest_segment_run() -> SegmentRun | None:
    return SegmentRun.objects.order_by("-as_of", "-pk").first()


def member_filter_q(filters: Filters, *, prefix: str = "member") -> Q:
    """A Q restricting rows to the filtered members, as index-friendly `member_id IN (subquery)` clauses."""
    q = Q()
    field = f"{prefix}_id" if prefix else "pk"
    if filters.tier_id:
        tier_members = subscription_selectors.subscriptions().filter(tier_id=filters.tier_id).values("member_id")
        q &= Q(**{f"{field}__in": tier_members})
    if filters.segment:
        # Segments are read from the latest segmentation run: a member's current segment.
        run = SegmentRun.objects.order_by("-as_of", "-pk").values("pk")[:1]
        q &= Q(**{f"{field}__in": SegmentAssignment.objects.filter(run_id__in=run, label=filters.segment).values("member_id")})
    if filters.source:
        q &= Q(**{f"{field}__in": account_selectors.users().filter(acquisition_source=filters.source).values("pk")})
    if filters.first_course_id:
        from django.db.models import F, Min, OuterRef, Subquery

        # Start from the (few) paid orders of that course and keep those that were the member's first.
        first_at = Subquery(
            paid_course_orders().filter(member_id=OuterRef("member_id")).values("member_id")
            .annotate(first=Min("paid_at")).values("first")[:1]
        )
        firsts = paid_course_orders().filter(course_id=filters.first_course_id).annotate(first=first_at).filter(
            paid_at=F("first")
        )
        q &= Q(**{f"{field}__in": firsts.values("member_id")})
    return q


def cache_version() -> int:
    """Bumped when the nightly pipeline finishes (new scores, segments, engagement): every key embeds it, so the
    results computed before the run are never served after it."""
    return int(cache.get(CACHE_VERSION_KEY) or 0)


def bump_cache_version() -> int:
    version = cache_version() + 1
    cache.set(CACHE_VERSION_KEY, version, None)
    return version


_ttl: ContextVar[int] = ContextVar("report_cache_ttl", default=CACHE_TTL_SECONDS)


@contextmanager
def cache_ttl(seconds: int) -> Iterator[None]:
    """Results computed inside are kept `seconds` (the nightly warm-up stores the default views for WARM_TTL)."""
    token = _ttl.set(seconds)
    try:
        yield
    finally:
        _ttl.reset(token)


def cached(name: str, params: dict[str, object], compute: Callable[[], T]) -> T:
    """Cache an expensive, frozen result under a key built from every parameter that changes it and the cache
    version."""
    # The reporting zone decides every month and day boundary, so a changed setting must not serve old months.
    raw = json.dumps({**params, "_zone": settings.REPORTING_TIME_ZONE}, sort_keys=True, default=str)
    key = f"{CACHE_PREFIX}:{cache_version()}:{name}:{hashlib.sha256(raw.encode()).hexdigest()[:32]}"
    hit = cache.get(key)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    value = compute()
    cache.set(key, value, _ttl.get())
    return value


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """None (shown as "—") when there is nothing to divide by, so an empty window never reads as 0 %."""
    if not denominator:
        return None
    return float(numerator or 0) / float(denominator)
