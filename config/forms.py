"""Form fields shared by every app's forms."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

EARLIEST_DATE = date(2000, 1, 1)
LATEST_DAYS_AHEAD = 366


class BoundedDateField(forms.DateField):
    """A date between 2000-01-01 and a year from today (issue 13.10).

    `?end=9999-12-31` overflowed when a report added the day after the end ("date value out of range", a 500) and
    `?start=0001-01-01` failed converting midnight to UTC; a window of centuries would also make every daily or
    monthly series a denial of service. No platform's history starts before 2000, and nothing is planned a year out.
    """

    def clean(self, value: Any) -> date | None:
        day = super().clean(value)
        if day is None:
            return None
        latest = timezone.localdate() + timedelta(days=LATEST_DAYS_AHEAD)
        if not EARLIEST_DATE <= day <= latest:
            raise ValidationError(
                _("Choose a date between %(earliest)s and %(latest)s.") % {
                    "earliest": EARLIEST_DATE.isoformat(), "latest": latest.isoformat()},
                code="out_of_range",
            )
        return day
