"""Secondary indexes dropped for a bulk load and rebuilt from Django's own definitions (config/bulk_load.py): the
schema afterwards is exactly what migrations made, and a rollback restores them. Runs on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, connections, transaction

from analytics.ingest import platform
from analytics.ingest.platform import import_platform_data
from analytics.models import Event
from config import bulk_load
from config.bulk_load import SecondaryIndexes, foreign_key_checks_at_the_end, secondary_indexes, table_rows_at_least
from members.models import Enrollment, Order
from tests.analytics.ingest.test_platform import all_files
from tests.members.factories import UserFactory

pytestmark = pytest.mark.django_db

MODELS = (Order, Enrollment, Event)


def schema(model) -> dict:
    """Every index and constraint of the table as the database describes it (names, columns, kind, definition)."""
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, model._meta.db_table)


def secondary_names(model) -> set[str]:
    return {name for name, info in schema(model).items()
            if info["index"] and not info["unique"] and not info["primary_key"]}


class Abort(Exception):
    pass


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model._meta.db_table)
def test_every_secondary_index_migrations_made_is_known_by_its_django_name(model):
    assert {index.name for index in secondary_indexes(model)} == secondary_names(model)


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model._meta.db_table)
def test_drop_keeps_unique_indexes_and_rebuild_restores_the_schema_exactly(model):
    before = schema(model)
    unique = {name for name, info in before.items() if info["unique"]}
    indexes = SecondaryIndexes()
    with transaction.atomic():
        dropped = indexes.drop(model)
        assert dropped == len(secondary_names_from(before))
        during = schema(model)
        assert secondary_names(model) == set()
        assert {name for name, info in during.items() if info["unique"]} == unique  # ON CONFLICT relies on them
        indexes.rebuild()
    assert schema(model) == before
    assert indexes.dropped == []


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's sorter settings")
def test_sqlite_builds_the_indexes_with_sorter_threads_and_a_small_cache_then_restores_both(monkeypatch):
    def pragma(name):
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA {name}")
            return cursor.fetchone()[0]

    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size = -262144")  # what the import sets
    threads_before = pragma("threads")
    seen = []
    execute = connection.schema_editor().__class__.execute

    def observing(editor, sql, params=()):
        if "CREATE INDEX" in str(sql):
            seen.append((pragma("cache_size"), pragma("threads")))
        return execute(editor, sql, params)

    monkeypatch.setattr(connection.schema_editor().__class__, "execute", observing)
    indexes = SecondaryIndexes()
    with transaction.atomic():
        indexes.drop(Event)
        indexes.rebuild()
    assert seen and set(seen) == {(-bulk_load.SQLITE_SORT_CACHE_KB, bulk_load.sqlite_sort_threads())}
    assert bulk_load.sqlite_sort_threads() >= 1
    assert (pragma("cache_size"), pragma("threads")) == (-262144, threads_before)


def secondary_names_from(constraints: dict) -> set[str]:
    return {name for name, info in constraints.items()
            if info["index"] and not info["unique"] and not info["primary_key"]}


def test_a_rollback_restores_the_dropped_indexes():
    before = {model: schema(model) for model in MODELS}
    with pytest.raises(Abort), transaction.atomic():
        indexes = SecondaryIndexes()
        for model in MODELS:
            indexes.drop(model)
        assert all(secondary_names(model) == set() for model in MODELS)
        raise Abort
    assert {model: schema(model) for model in MODELS} == before


def test_orders_have_eight_secondary_indexes_and_keep_their_partial_unique_ones():
    # 5 db_index fields (the foreign keys course, tier, subscription and coupon; paid_at) + 3 Meta.indexes (member
    # and status lead two of them, so they have no index of their own: tests/config/test_schema_indexes.py); on
    # PostgreSQL the text column external_id (unique) also has a non-unique `_like` index (varchar_pattern_ops).
    names = {index.name for index in secondary_indexes(Order)}
    assert {"order_member_paid_at", "order_status_paid_at", "order_paid_course_member"} <= names
    assert len(names) == (9 if connection.vendor == "postgresql" else 8)
    assert {"one_open_course_order_per_member", "one_open_order_per_subscription_period"} <= set(schema(Order))


def test_drop_refuses_to_run_outside_a_transaction(monkeypatch):
    monkeypatch.setattr(connections["default"], "in_atomic_block", False)  # the wrapper, not the proxy
    with pytest.raises(RuntimeError):
        SecondaryIndexes().drop(Order)


def test_table_rows_at_least_is_bounded():
    for _ in range(3):
        UserFactory()
    from members.models import User

    assert table_rows_at_least(User, 2) == 2
    assert table_rows_at_least(User, 100) == User.objects.count()


# --------------------------------------------------------------------------------------------------------------
# SQLite: foreign keys checked once at the end of a bulk load (config.bulk_load.foreign_key_checks_at_the_end)

sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's foreign key pragma")


def _enforced() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA foreign_keys")
        return bool(cursor.fetchone()[0])


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_sqlite_bulk_load_checks_foreign_keys_once_and_refuses_an_orphan():
    with pytest.raises(IntegrityError), foreign_key_checks_at_the_end([Event]) as check, transaction.atomic():
        assert check is not None and not _enforced()
        with connection.cursor() as cursor:  # accepted row by row: enforcement is off
            cursor.execute("INSERT INTO analytics_event (member_id, kind, object_type, object_id, occurred_at, "
                           "received_at, properties, source) VALUES (987654, 'login', '', '', '2026-01-01', "
                           "'2026-01-01', '{}', 'import')")
        check()
    assert _enforced()
    assert not Event.objects.exists()


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_sqlite_bulk_load_import_runs_with_enforcement_off_then_on_again(tmp_path, monkeypatch):
    seen = []
    real = platform._Writer.event_values  # all-or-nothing writes the events from plain values

    def spying(self, batch, firsts, report):
        seen.append(_enforced())
        return real(self, batch, firsts, report)

    monkeypatch.setattr(platform._Writer, "event_values", spying)
    report = import_platform_data(**all_files(tmp_path), bulk_load="always")
    assert report.written and report.foreign_keys_checked_seconds > 0
    assert seen == [False]
    assert _enforced()


def test_inside_a_transaction_nothing_is_switched_off():
    with foreign_key_checks_at_the_end([Event]) as check:
        assert check is None
