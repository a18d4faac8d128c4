from __future__ import annotations

from datetime import UTC, datetime

import pytest

from analytics.ingest.events import EventRow, events_bulk_ingest, stored_key
from analytics.models import Event
from tests.members.factories import UserFactory

pytestmark = pytest.mark.django_db

WHEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _row(member_id: int | None, key: str | None, kind: str = "lesson_completed") -> EventRow:
    return EventRow(
        member_id=member_id, kind=kind, object_type="lesson", object_id="7", occurred_at=WHEN,
        properties={"k": key}, idempotency_key=key,
    )


def test_it_inserts_rows_with_namespaced_keys():
    member = UserFactory()
    result = events_bulk_ingest([_row(member.pk, "e1"), _row(member.pk, "e2"), _row(member.pk, None)], source="import")

    assert (result.created, result.duplicates) == (3, 0)
    assert set(Event.objects.values_list("idempotency_key", flat=True)) == {"import:e1", "import:e2", None}
    event = Event.objects.get(idempotency_key=stored_key("import", "e1"))
    assert (event.member_id, event.kind, event.object_type, event.object_id, event.source) == (
        member.pk, "lesson_completed", "lesson", "7", "import",
    )
    assert event.occurred_at == WHEN and event.properties == {"k": "e1"}


def test_it_counts_duplicates_already_stored_and_within_the_input():
    member = UserFactory()
    events_bulk_ingest([_row(member.pk, "e1")], source="import")

    rows = [_row(member.pk, "e1"), _row(member.pk, "e2"), _row(member.pk, "e2"), _row(member.pk, None)]
    result = events_bulk_ingest(rows, source="import", batch_size=2, report_positions=True)

    assert (result.created, result.duplicates, result.received) == (2, 2, 4)
    assert result.duplicate_positions == (0, 2)
    assert Event.objects.count() == 3


def test_reingesting_the_same_batch_changes_nothing():
    member = UserFactory()
    rows = [_row(member.pk, f"e{i}") for i in range(25)]
    first = events_bulk_ingest(iter(rows), source="mobile", batch_size=10)
    second = events_bulk_ingest(iter(rows), source="mobile", batch_size=10)

    assert (first.created, first.duplicates) == (25, 0)
    assert (second.created, second.duplicates) == (0, 25)
    assert Event.objects.count() == 25


def test_the_same_key_from_another_source_is_a_different_event():
    member = UserFactory()
    events_bulk_ingest([_row(member.pk, "1")], source="import")
    result = events_bulk_ingest([_row(member.pk, "1")], source="mobile")

    assert result.created == 1
    assert Event.objects.count() == 2


def test_it_refuses_an_unknown_source():
    with pytest.raises(ValueError, match="Unknown event source"):
        events_bulk_ingest([], source="fax")
