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

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import Any

from django.db import IntegrityError, connection, transaction
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
            with _sqlite_sorting(cursor):
                while self.dropped:
                    _, index = self.dropped.pop(0)
                    editor.execute(index.create, params=None)
        return checks


# SQLite's sorter while CREATE INDEX runs: helper threads, and a small page cache. With the import's 256 MB cache the
# 5,000,000 keys of an events index were one in-memory run, sorted by one thread at the end; with a few MB the
# sorter writes sorted runs as it scans the table, sorts them in helper threads (PRAGMA threads) and merges them.
# The two event indexes of bench_import.py --scale 1: 17.2 s with 256 MB and no helper, 8.5 s with 8 MB and two
# (bench/bench_import_micro.py --sqlite-sort DB; docs/PERFORMANCE.md, "Session 20"). Restored afterwards.
SQLITE_SORT_CACHE_KB = 8192


def sqlite_sort_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


@contextmanager
def _sqlite_sorting(cursor: Any) -> Iterator[None]:
    if connection.vendor != "sqlite":
        yield
        return
    cursor.execute("PRAGMA cache_size")
    (cache_size,) = cursor.fetchone()
    cursor.execute("PRAGMA threads")
    (threads,) = cursor.fetchone()
    cursor.execute(f"PRAGMA cache_size = -{SQLITE_SORT_CACHE_KB}")
    cursor.execute(f"PRAGMA threads = {sqlite_sort_threads()}")
    try:
        yield
    finally:
        cursor.execute(f"PRAGMA cache_size = {int(cache_size)}")
        cursor.execute(f"PRAGMA threads = {int(threads)}")


def table_rows_at_least(model: type[Model], limit: int) -> int:
    """min(the table's row count, limit): a count bounded by `limit`, so asking about a 5,000,000-row table
    whether it holds at least 1,000 rows reads 1,000 rows."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} LIMIT %s) AS bounded", [int(limit)])
        return cursor.fetchone()[0]


# --------------------------------------------------------------------------------------------------------------
# PostgreSQL: foreign keys validated once instead of row by row, and COPY straight into an empty table


@dataclass(frozen=True)
class _ForeignKey:
    name: str
    create: Any  # a Statement from the schema editor (ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY ... DEFERRABLE)


FK_SUFFIX = "_fk_%(to_table)s_%(to_column)s"  # what Django's schema editor names a foreign key constraint with


def _constrained_foreign_keys(model: type[Model]) -> list[Any]:
    """The model's foreign key fields that have a database constraint."""
    return [field for field in model._meta.local_fields
            if field.remote_field is not None and getattr(field, "db_constraint", False)]


def foreign_keys(model: type[Model]) -> list[_ForeignKey]:
    """The model's foreign key constraints as migrations create them (`_create_fk_sql`, the same name and
    DEFERRABLE INITIALLY DEFERRED)."""
    editor = _editor()
    keys = []
    for field in _constrained_foreign_keys(model):
        statement = editor._create_fk_sql(model, field, FK_SUFFIX)
        keys.append(_ForeignKey(str(statement.parts["name"]).strip('"'), statement))
    return keys


def _existing_foreign_key_names(table: str) -> set[str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {name for name, info in constraints.items() if info["foreign_key"]}


class ForeignKeys:
    """PostgreSQL: the foreign key constraints of some tables, dropped for a bulk load and added again before
    commit, as pg_restore does.

    Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: every inserted row queues one check per foreign key
    (a `SELECT ... FOR KEY SHARE` of the referenced row), about 11 million for the issue's 100k import. `ALTER TABLE
    ... ADD CONSTRAINT ... FOREIGN KEY` instead validates the whole table with one anti-join. The database still
    checks every row; a violation fails the ADD, inside the import's transaction, so everything rolls back.

    The price: dropping a foreign key takes an ACCESS EXCLUSIVE lock on the *referenced* table too (members_user,
    the catalogue), until the import commits; the importer only does it for tables that were empty when it started
    (a first import, docs/IMPORT.md). SQLite is left alone (its foreign key checks are cheap lookups in-process,
    and it cannot alter a constraint without rebuilding the table)."""

    def __init__(self) -> None:
        self.dropped: list[_ForeignKey] = []

    def drop(self, model: type[Model]) -> int:
        if connection.vendor != "postgresql":
            return 0
        if not connection.in_atomic_block:
            raise RuntimeError("drop foreign keys only inside a transaction: its rollback restores them")
        present = _existing_foreign_key_names(model._meta.db_table)
        editor = _editor()
        # PostgreSQL refuses ALTER TABLE on a table with checks still queued by this transaction (e.g. rows deleted
        # earlier in it): run them now, as commit would, then defer again.
        editor.execute("SET CONSTRAINTS ALL IMMEDIATE", params=None)
        editor.execute("SET CONSTRAINTS ALL DEFERRED", params=None)
        count = 0
        for key in foreign_keys(model):
            if key.name in present:
                editor.execute(editor._delete_fk_sql(model, key.name))
                self.dropped.append(key)
                count += 1
        return count

    def restore(self) -> float:
        """Add every dropped foreign key again (each validated by one scan of its table); the seconds spent."""
        editor = _editor()
        started = time.perf_counter()
        with transaction.atomic():
            while self.dropped:
                key = self.dropped.pop(0)
                editor.execute(key.create, params=None)
        return time.perf_counter() - started


def missing_parent_sql(table: str, column: str, parent: str, key: str) -> str:
    """One value of table.column (quoted names) that no row of parent.key holds, or no row: the distinct values,
    read from the column's index, anti-joined with the parent table."""
    return (f"SELECT value FROM (SELECT DISTINCT {column} AS value FROM {table} WHERE {column} IS NOT NULL) used "
            f"WHERE NOT EXISTS (SELECT 1 FROM {parent} WHERE {parent}.{key} = used.value) LIMIT 1")


def _check_foreign_keys(model: type[Model]) -> None:
    """Every value of the model's foreign key columns names an existing row: per column, the distinct values (read
    from the column's index, which the bulk load has rebuilt by then) anti-joined with the referenced table.

    What `PRAGMA foreign_key_check` (Django's check_constraints) checks, without reading the whole table: 0.15 s
    instead of 3.11 s for the 5,000,000 events of the 100k import, whose member_id index holds 100,000 values
    (bench/bench_import_micro.py --sqlite DB).
    Raises IntegrityError naming the table, the column and one missing value."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    with connection.cursor() as cursor:
        for field in _constrained_foreign_keys(model):
            column = quote(field.column)
            target = field.target_field
            parent, key = quote(target.model._meta.db_table), quote(target.column)
            cursor.execute(missing_parent_sql(table, column, parent, key))
            missing = cursor.fetchone()
            if missing is not None:
                raise IntegrityError(
                    f"The row in table '{model._meta.db_table}' with {field.column} = {missing[0]!r} references "
                    f"a row of '{target.model._meta.db_table}' that does not exist."
                )


@contextmanager
def foreign_key_checks_at_the_end(models: list[type[Model]]) -> Iterator[Callable[[], float] | None]:
    """SQLite: a bulk load with foreign key enforcement off and every written table checked once before commit,
    as Django's loaddata does (`constraint_checks_disabled`, then a check of every foreign key column).

    With enforcement on, each inserted row looks up every parent it names (five for an order) and counts the
    missing ones until commit; _check_foreign_keys checks the same once per column, set-based, at the end.
    Yields the check to call inside the transaction, before it commits (it raises IntegrityError on the first
    orphan, rolling the load back, and returns its seconds), or None when nothing was switched off: not SQLite, no
    models, or already inside a transaction, where SQLite ignores the pragma (tests, a caller's atomic block), so
    enforcement stays on, row by row. The load holds SQLite's write lock from its first write
    to its commit, so no other connection can delete a parent meanwhile."""
    if connection.vendor != "sqlite" or not models or connection.in_atomic_block:
        yield None
        return
    disabled = connection.disable_constraint_checking()

    def check() -> float:
        started = time.perf_counter()
        for model in models:
            _check_foreign_keys(model)
        return time.perf_counter() - started

    try:
        yield check if disabled else None
    finally:
        if disabled:
            connection.enable_constraint_checking()


def _unique_violation(error: BaseException) -> bool:
    from psycopg import errors

    return isinstance(error, errors.UniqueViolation) or isinstance(error.__cause__, errors.UniqueViolation)


class DirectCopy:
    """PostgreSQL: COPY a batch straight into its table instead of into a staging table followed by
    INSERT ... SELECT ... ON CONFLICT (which writes every row twice and reads it once more).

    Only for a table that was empty when the load began and whose rows the caller has already made unique on the
    conflict key (the importer's duplicate ledger): no row can then conflict. Should one conflict anyway (an
    id-less event whose content hash equals another's key, a concurrent writer), the COPY runs in a savepoint: the
    unique index refuses it, the savepoint is rolled back, and this batch and every later one take the
    ON CONFLICT path (`copy` returns False). The unique indexes are never dropped, so a duplicate cannot slip in."""

    def __init__(self) -> None:
        self.enabled = connection.vendor == "postgresql"
        self.batches = 0

    def copy(self, cursor: Any, table: str, columns: str, rows: Sequence[Any], *, text: str | None = None) -> bool:
        """COPY the rows (tuples of values), or `text`: the same rows already as lines of COPY's text format."""
        if not self.enabled:
            return False
        try:
            with transaction.atomic(), cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                if text is not None:
                    copy.write(text)
                else:
                    for row in rows:
                        copy.write_row(row)
        except Exception as error:
            if not _unique_violation(error):
                raise
            self.enabled = False
            return False
        self.batches += 1
        return True


class CopyInBackground:
    """PostgreSQL: DirectCopy.copy of COPY text that runs in a thread, so the caller's Python work (reading and
    decoding the next batch) overlaps the server's work on this one. The COPY runs on the connection's own psycopg
    connection, in the caller's transaction, inside a savepoint taken here; the caller must not use the connection
    again before wait(). psycopg leaves the GIL while it waits on the server, which is most of a COPY's time."""

    def __init__(self, direct: DirectCopy, table: str, columns: str, text: str) -> None:
        self.direct = direct
        self.error: BaseException | None = None
        self.savepoint = transaction.savepoint()
        raw = connection.connection
        self.thread = threading.Thread(target=self._copy, args=(raw, f"COPY {table} ({columns}) FROM STDIN", text),
                                       name="bulk-load-copy", daemon=True)
        self.thread.start()

    def _copy(self, raw: Any, statement: str, text: str) -> None:
        try:
            with raw.cursor() as cursor, cursor.copy(statement) as copy:
                copy.write(text)
        except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread by wait()
            self.error = error

    def wait(self) -> bool:
        """Wait for the COPY. True if its rows went in; False if the unique index refused a key (the savepoint rolled
        back, and DirectCopy disabled for good, as DirectCopy.copy does). Any other error is raised here."""
        self.thread.join()
        if self.error is None:
            transaction.savepoint_commit(self.savepoint)
            self.direct.batches += 1
            return True
        transaction.savepoint_rollback(self.savepoint)
        if not _unique_violation(self.error):
            with connection.wrap_database_errors:  # as Django's own exception class, like any other query's
                raise self.error
        self.direct.enabled = False
        return False


# COPY's text format: a backslash, and the tab, newline and carriage return that separate its columns and rows, are
# written as escapes (\\, \t, \n, \r); \N is NULL.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: str) -> str:
    """A text value as a column of PostgreSQL's COPY text format."""
    return value.translate(_COPY_ESCAPES)


def copy_lines(values: list[str], rest: str = "") -> str:
    """Lines of COPY's text format: each of `values` as the first column, followed by `rest` (the same columns on
    every line, already in COPY's format: e.g. "\t7"). One join for all the lines, where psycopg's write_row formats
    each value of each row; only values holding a backslash, tab, newline or carriage return are escaped."""
    end = rest + "\n"
    text = end.join(values) + end
    count = len(values)
    if "\\" in text or "\r" in text or text.count("\n") != count or text.count("\t") != count * rest.count("\t"):
        text = end.join([copy_text(value) for value in values]) + end
    return text


# Rows per statement, within the connection's own bound on a statement's parameters (32,766 since SQLite 3.32;
# Django's features.max_query_params says 999, the bound before 3.32, whatever the version).
SQLITE_ROWS_PER_INSERT = 500


def sqlite_insert(head: str, width: int, rows: Sequence[Sequence[Any]], tail: str = "") -> int:
    """SQLite: INSERT the rows with up to SQLITE_ROWS_PER_INSERT rows per statement (`head` VALUES (...), (...)
    `tail`); the number of rows the statements changed, as executemany's rowcount counts them.

    executemany runs the statement's whole program once per row: its set-up, the ON CONFLICT clause's, and for
    Django's AUTOINCREMENT keys a read and a write of sqlite_sequence. A statement of many rows pays those once: a
    million event rows went in about twice as fast (bench/bench_sqlite_insert.py). The rows go in one after
    the other as with executemany, so a later row's ON CONFLICT sees an earlier row of the same statement. A failing
    row fails its whole statement, where executemany kept the rows before it: every caller runs inside a
    transaction that then rolls back.

    `head` is "INSERT INTO table (columns)" and `tail` e.g. an ON CONFLICT clause, with "?" for any parameter of
    their own (none today). The statements go to the connection's sqlite3 cursor directly: Django's cursor would
    rewrite every "%s" of a 500-row statement with a regular expression on each call. Django does not log these
    statements, even with DEBUG on."""
    if not rows:
        return 0
    connection.ensure_connection()
    raw = connection.connection
    per = max(1, min(SQLITE_ROWS_PER_INSERT, raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
    one = "(" + ", ".join(["?"] * width) + ")"
    full = f"{head} VALUES {', '.join([one] * per)}{tail}"
    changed = 0
    with connection.wrap_database_errors, closing(raw.cursor()) as cursor:  # Django's exception classes, as a cursor's
        for start in range(0, len(rows), per):
            part = rows[start:start + per]
            sql = full if len(part) == per else f"{head} VALUES {', '.join([one] * len(part))}{tail}"
            cursor.execute(sql, list(chain.from_iterable(part)))
            changed += cursor.rowcount
    return changed
