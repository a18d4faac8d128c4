"""The importer's datetime adaptation gives exactly what Django's own adaptation gives, on either database."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from analytics.ingest.events import instant_adapter

pytestmark = pytest.mark.django_db

INSTANTS = [
    datetime(2025, 10, 20, 3, 15, 17, tzinfo=UTC),
    datetime.fromisoformat("2025-10-20T03:15:17+00:00"),
    datetime.fromisoformat("2025-10-20T03:15:17.123Z"),
    datetime(2025, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(2025, 10, 20, 11, 15, 17, tzinfo=timezone(timedelta(hours=8))),
    datetime(2025, 3, 30, 1, 30, tzinfo=ZoneInfo("Europe/Berlin")),
    datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=ZoneInfo("Asia/Shanghai")),
    None,
]


@pytest.mark.parametrize("value", INSTANTS, ids=str)
def test_the_fast_path_adapts_as_django_does(value):
    assert instant_adapter(connection)(value) == connection.ops.adapt_datetimefield_value(value)
