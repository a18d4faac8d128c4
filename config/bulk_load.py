"""Loading many rows into a table at once: its secondary indexes dropped before and rebuilt after.

Maintaining a B-tree row by row costs a random page touch per index per row; building it once from the loaded
table is one sort. pg_restore, `mysqldump` reloads and every serious loader do this. Only indexes that are neither
unique nor a primary key are dropped: unique indexes (including partial ones, e.g. one open order per member) are
what ON CONFLICT and the import's correctness rely on, so they stay and are maintained as before.

The definitions come from Django's model meta and schema editor, never from hand-written SQL: `Meta.indexes`
through `Index.create_sql`/`remove_sql`, and `db_index` fields (foreign keys included) through the statements
`schema_editor._field_indexes_sql` gives (on PostgreSQL that includes the `_like` pattern-ops index of text
columns). An index is only dropped if the database holds it under the name Django would create it with, so what
is rebuilt is what migrations made (tests/config/test_bulk_load.py compares the introspected schema before and
after, on SQLite and PostgreSQL).

Must run inside a transaction (both databases roll DDL back): if the load fails, the rollback restores the indexes
with the rows. The caller rebuilds (`SecondaryIndexes.rebuild`) before committing. On PostgreSQL, DROP INDEX holds
an ACCESS EXCLUSIVE lock on the table until the transaction ends: readers of that table wait for the load, which
is why the importer only does this when the load is large relative to the table (docs/IMPORT.md).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Model


@dataclass(frozen=True)
class _Index:
    name: str
    create: Any  # a Statement (str() is the SQL) from the schema editor


def _editor() -> Any:
    """A schema editor used outside its context manager: on SQLite, entering it inside a transaction is refused
    (it switches foreign key checks off, which SQLite cannot do mid-transaction), and index DDL needs neither that
    nor a table rebuild. `deferred_sql` is what __enter__ would set (remove_sql reads it)."""
    editor = connection.schema_editor(atomic=False)
    editor.deferred_sql = []
    return editor


def secondary_indexes(model: type[Model]) -> list[_Index]:
    """The model's non-unique indexes as migrations create them: db_index fields, then Meta.indexes."""
    editor = _editor()
    indexes = []
    for field in model._meta.local_fields:
        for statement in editor._field_indexes_sql(model, field):
            name_part = statement.parts["name"]
            name = editor._create_index_name(name_part.table, name_part.columns, name_part.suffix)
            indexes.append(_Index(name, statement))
    for index in model._meta.indexes:
        if index.contains_expressions and not connection.features.supports_expression_indexes:
            continue
        indexes.append(_Index(index.name, index.create_sql(model, editor)))
    return indexes


def _existing_index_names(table: str) -> set[str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {name for name, info in constraints.items() if info["index"] and not info["unique"]
            and not info["primary_key"]}


class SecondaryIndexes:
    """The secondary indexes of some tables, dropped for a bulk load; `rebuild()` creates them again."""

    def __init__(self) -> None:
        self.dropped: list[tuple[type[Model], _Index]] = []

    @property
    def tables(self) -> list[str]:
        return list(dict.fromkeys(model._meta.db_table for model, _ in self.dropped))

    def drop(self, model: type[Model]) -> int:
        """Drop the model's secondary indexes (those present under Django's name); how many were dropped."""
        if not connection.in_atomic_block:
            raise RuntimeError("drop secondary indexes only inside a transaction: its rollback restores them")
        present = _existing_index_names(model._meta.db_table)
        editor = _editor()
        count = 0
        for index in secondary_indexes(model):
            if index.name in present:
                editor.execute(editor._delete_index_sql(model, index.name))
                self.dropped.append((model, index))
                count += 1
        return count

    def rebuild(self) -> float:
        """Create every dropped index again, from the same statements migrations use. Returns the seconds spent on
        PostgreSQL's queued foreign key checks, which have to run first."""
        editor = _editor()
        checks = 0.0
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED, and PostgreSQL refuses CREATE INDEX on a
                # table with checks still queued: run them now (they would run at commit anyway; a violation fails
                # the load here, rolling everything back), then defer again for whatever the transaction does next.
                started = time.perf_counter()
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
                checks = time.perf_counter() - started
            while self.dropped:
                _, index = self.dropped.pop(0)
                editor.execute(index.create, params=None)
        return checks


def table_rows_at_least(model: type[Model], limit: int) -> int:
    """min(the table's row count, limit): a count bounded by `limit`, so asking about a 5,000,000-row table
    whether it holds at least 1,000 rows reads 1,000 rows."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} LIMIT %s) AS bounded", [int(limit)])
        return cursor.fetchone()[0]
