"""The importer's datetime adaptation gives exactly what Django's own adaptation gives, on either database."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from analytics.ingest.events import instant_adapter, instant_text_adapter
from analytics.ingest.platform import parse_instant

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


TEXTS = [
    "2025-10-20T03:15:17+00:00", "2025-10-20 03:15:17+00:00", "2025-10-20T03:15:17Z", "2024-02-29T23:59:59Z",
    # other forms: no shortcut, the parsed datetime is adapted instead
    "2025-W43-1T03:15:17+00:00", "2025-10-20T03:15:17.5+00:00", "2025-10-20T03:15:17-00:00",
    "2025-10-20T03:15:17+08:00", "20251020T031517+00:00", "2025-10-20T03:15+00:00", "2025-10-20",
]


@pytest.mark.parametrize("text", TEXTS)
def test_the_stored_text_straight_from_the_csv_equals_the_adapted_datetime(text):
    stored_text = instant_text_adapter(connection)
    parsed = parse_instant(text)
    assert parsed is not None
    shortcut = stored_text(text)
    if text in TEXTS[:4]:
        assert shortcut is not None  # the common form does take the shortcut
    if shortcut is None:
        return
    if connection.vendor == "sqlite":
        assert shortcut == instant_adapter(connection)(parsed)
    else:  # PostgreSQL reads the text as the parsed instant, whatever the session's time zone
        with connection.cursor() as cursor:
            for zone in ("UTC", "Asia/Shanghai", "America/Los_Angeles"):
                cursor.execute(f"SET LOCAL TIME ZONE '{zone}'")
                # Compared as seconds since the epoch: Django reads timestamptz back in the zone it set, UTC.
                cursor.execute("SELECT extract(epoch FROM %s::timestamptz)", [shortcut])
                assert float(cursor.fetchone()[0]) == parsed.timestamp(), zone


def test_an_imported_order_stores_its_instant_in_every_form_the_csv_gives_it(tmp_path):
    """Orders take the stored text straight from the CSV where it allows, as events do: read back, each order's
    created_at (and paid_at) is the instant its text names, in every form; the events get the same."""
    from analytics.models import Event
    from members.models import Order
    from tests.analytics.ingest.test_platform import run, write

    orders = "order_id,member_id,product_id,amount,ordered_at,status\n" + "".join(
        f"o{number},m{number},,10.00,{text},paid\n" for number, text in enumerate(TEXTS))
    events = "event_id,member_id,kind,occurred_at\n" + "".join(
        f"e{number},m{number},lesson_started,{text}\n" for number, text in enumerate(TEXTS))
    status, _, err = run(orders=write(tmp_path, "orders.csv", orders), events=write(tmp_path, "events.csv", events))
    assert status == 0, err
    for number, text in enumerate(TEXTS):
        order = Order.objects.get(external_id=f"o{number}")
        assert order.created_at == order.paid_at == parse_instant(text), text
        assert Event.objects.get(idempotency_key=f"import:e{number}").occurred_at == parse_instant(text), text
