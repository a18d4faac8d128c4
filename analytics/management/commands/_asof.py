"""Shared argument parsing for the analytics commands: --as-of takes a date (midnight, site time zone) or an ISO
datetime."""
from __future__ import annotations

import math
from datetime import datetime, time

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime


def parse_as_of(value: str | None) -> datetime:
    if not value:
        from analytics.scoring.services import start_of_day

        return start_of_day()
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--as-of {value!r} is neither a date (YYYY-MM-DD) nor an ISO datetime")
        parsed = datetime.combine(day, time.min)
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
    return parsed


def fmt(value: object) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.4f}"
    return str(value)
