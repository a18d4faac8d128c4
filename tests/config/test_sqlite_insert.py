"""config.bulk_load.sqlite_insert: many rows per INSERT statement on SQLite, with what executemany gave — the same
rows stored, the same count of changed rows, ON CONFLICT seeing the earlier rows of its own statement, Django's
exception classes."""
from __future__ import annotations

import sqlite3

import pytest
from django.db import IntegrityError, connection, transaction

from config import bulk_load
from config.bulk_load import sqlite_insert

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite only (PostgreSQL writes through COPY)"),
]

ROWS = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("d", 5), ("b", 6), ("e", 7), ("f", 8), ("a", 9), ("g", 10)]
DO_NOTHING = " ON CONFLICT (key) DO NOTHING"
DO_UPDATE = " ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE t.value IS NOT excluded.value"


def stored() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, value FROM t ORDER BY key")
        return cursor.fetchall()


def load(rows: list[tuple], tail: str, *, many: bool) -> tuple[int, list[tuple]]:
    """Into a fresh table t: (the count of changed rows, what the table holds)."""
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS t")
        cursor.execute("CREATE TEMPORARY TABLE t (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        if many:
            changed = sqlite_insert("INSERT INTO t (key, value)", 2, rows, tail)
        else:
            cursor.executemany("INSERT INTO t (key, value) VALUES (%s, %s)" + tail, rows)
            changed = cursor.rowcount
    return changed, stored()


@pytest.mark.parametrize("tail", [DO_NOTHING, DO_UPDATE, ""], ids=["do-nothing", "do-update", "plain"])
def test_rows_split_over_statements_give_what_executemany_gave(monkeypatch, tail):
    rows = ROWS if tail else list(dict(ROWS).items())  # a plain INSERT of distinct keys
    monkeypatch.setattr(bulk_load, "SQLITE_ROWS_PER_INSERT", 3)  # 10 rows: statements of 3, 3, 3 and 1
    expected = load(rows, tail, many=False)
    assert load(rows, tail, many=True) == expected
    if tail == DO_NOTHING:  # each key's first row, as the file order gave it
        assert expected == (7, [("a", 1), ("b", 2), ("c", 4), ("d", 5), ("e", 7), ("f", 8), ("g", 10)])
    if tail == DO_UPDATE:  # each key's last row; a later row of one statement updates an earlier one
        assert expected == (10, [("a", 9), ("b", 6), ("c", 4), ("d", 5), ("e", 7), ("f", 8), ("g", 10)])


def test_a_statement_holds_no_more_parameters_than_sqlite_allows():
    connection.ensure_connection()
    raw = connection.connection
    before = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 5)  # two rows of two columns per statement
    try:
        assert load(ROWS, DO_NOTHING, many=True)[0] == 7
    finally:
        raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, before)


def test_a_failing_row_raises_djangos_integrity_error_and_nothing_of_the_load_stays():
    load([], DO_NOTHING, many=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        sqlite_insert("INSERT INTO t (key, value)", 2, [("a", 1), ("b", None)])
    assert stored() == []


def test_no_rows_runs_no_statement():
    assert sqlite_insert("INSERT INTO no_such_table (key)", 1, []) == 0
