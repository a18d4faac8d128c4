"""Bulk load on PostgreSQL into empty tables (issue 19): the order and event batches are COPYed straight into their
tables, and the loaded tables' foreign keys are dropped and added again before commit (one validation per
constraint instead of a queued check per row). Integrity is still checked by the database, a failure rolls
everything back, and a key that turns out to be stored already falls back to the ON CONFLICT path.
PostgreSQL only (the `postgres` tier); the SQLite side of the bulk load is in test_platform_bulk_load.py."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection

from analytics.ingest import platform
from analytics.ingest.events import EventRow, events_bulk_ingest
from analytics.ingest.platform import import_platform_data
from analytics.models import Event
from config.bulk_load import DirectCopy, ForeignKeys, foreign_keys
from members.models import Enrollment, Order, User
from tests.analytics.ingest.test_platform import all_files
from tests.analytics.ingest.test_platform_bulk_load import LOADED, imported_rows, schema
from tests.members.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def foreign_key_names(model) -> set[str]:
    return {name for name, info in schema()[model].items() if info["foreign_key"]}


def test_every_foreign_key_migrations_made_is_known_by_its_django_name():
    for model in LOADED:
        assert {key.name for key in foreign_keys(model)} == foreign_key_names(model)
        assert foreign_key_names(model)


def test_a_first_import_copies_directly_without_foreign_keys_and_restores_them(tmp_path, monkeypatch):
    before = schema()
    seen, copies = [], []
    real_orders, real_load = platform._Writer.orders, platform._Writer.load_directly

    def spying_orders(self, batch, report):
        seen.append({model: foreign_key_names(model) for model in LOADED})
        return real_orders(self, batch, report)

    def spying_load(self, models):
        real_load(self, models)
        copies.append((self.order_upsert.direct, self.event_copy))

    monkeypatch.setattr(platform._Writer, "orders", spying_orders)
    monkeypatch.setattr(platform._Writer, "load_directly", spying_load)
    report = import_platform_data(**all_files(tmp_path), bulk_load="always")
    assert report.written and report.foreign_key_seconds > 0
    assert seen == [{model: set() for model in LOADED}]
    (order_copy, event_copy), = copies
    assert order_copy.enabled and order_copy.batches == 1 and event_copy.enabled and event_copy.batches == 1
    assert schema() == before
    assert Order.objects.count() == 4 and Event.objects.count() == 3


def test_the_rows_equal_those_of_the_row_by_row_path_and_a_reimport_changes_nothing(tmp_path):
    files = all_files(tmp_path)
    assert import_platform_data(**files, bulk_load="never").written
    plain = imported_rows()
    Event.objects.all().delete()
    Enrollment.objects.all().delete()
    Order.objects.all().delete()
    User.objects.filter(external_id__isnull=False).delete()
    report = import_platform_data(**files, bulk_load="always")
    assert report.written and report.foreign_key_seconds > 0
    bulk = imported_rows()
    # date_joined of members without joined_at is the time of the import: compare everything else.
    assert {key: value for key, value in bulk.items() if key != "users"} == {
        key: value for key, value in plain.items() if key != "users"}
    assert [row[:5] for row in bulk["users"]] == [row[:5] for row in plain["users"]]
    again = import_platform_data(**files, bulk_load="always")
    assert again.written and again.foreign_key_seconds == 0  # the tables are no longer empty
    assert again.files["orders"].created == 0 and again.files["events"].created == 0
    assert imported_rows() == bulk


def test_a_reference_the_database_refuses_rolls_everything_back(tmp_path, monkeypatch):
    # An order pointing at a member that does not exist: with its foreign key dropped the COPY takes it, and adding
    # the key again before commit refuses it; the import's one transaction loses everything, constraints restored.
    before = schema()
    real = platform._Writer._member_pks

    def dangling(self, firsts, instant=None):
        pks = real(self, firsts, instant)
        return {member_id: pk + 10_000_000 for member_id, pk in pks.items()}

    monkeypatch.setattr(platform._Writer, "_member_pks", dangling)
    with pytest.raises(IntegrityError, match="violates foreign key constraint"):
        import_platform_data(**all_files(tmp_path), bulk_load="always")
    assert schema() == before
    assert Order.objects.count() == Enrollment.objects.count() == Event.objects.count() == 0
    assert not User.objects.filter(external_id__isnull=False).exists()


def test_tables_holding_rows_keep_their_foreign_keys(tmp_path, monkeypatch):
    dropped = []
    real = ForeignKeys.drop

    def spying(self, model):
        dropped.append(model)
        return real(self, model)

    monkeypatch.setattr(ForeignKeys, "drop", spying)
    member = UserFactory(external_id="m0")
    Event.objects.create(member=member, kind="login", occurred_at=datetime(2024, 1, 1, tzinfo=UTC))
    report = import_platform_data(**all_files(tmp_path), bulk_load="always")
    assert report.written
    assert dropped == [Order, Enrollment]  # the event table was not empty


def test_direct_copy_falls_back_to_on_conflict_when_a_key_is_stored():
    member = UserFactory()
    when = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [EventRow(member_id=member.pk, kind="login", object_type="", object_id="", occurred_at=when,
                     idempotency_key=f"k{n}") for n in range(4)]
    direct = DirectCopy()
    first = events_bulk_ingest(rows[:2], source="import", direct=direct)
    assert (first.created, first.duplicates, direct.enabled, direct.batches) == (2, 0, True, 1)
    # k1 is stored: the COPY is refused by the unique index, its savepoint rolled back, and the batch (and every
    # later one) takes the ON CONFLICT path, which counts k1 as a duplicate.
    second = events_bulk_ingest(rows[1:], source="import", direct=direct)
    assert (second.created, second.duplicates, direct.enabled, direct.batches) == (2, 1, False, 1)
    assert sorted(Event.objects.values_list("idempotency_key", flat=True)) == [f"import:k{n}" for n in range(4)]
    assert connection.in_atomic_block  # the test's transaction survived the refused COPY
