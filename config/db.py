"""Database upkeep that both apps need and neither owns."""
from __future__ import annotations

from django.db import connection

# Statistics older than this share of a table's rows changing are refreshed by refresh_stale_planner_statistics.
STALE_SHARE = 0.1


def refresh_planner_statistics() -> None:
    """ANALYZE, so the query planner knows the tables' sizes and value spreads after a bulk load.

    SQLite keeps no statistics until ANALYZE runs, and then guesses that `status = 'paid'` is selective: on a
    100,000-member import it read 900,000 paid orders through the (status, paid_at) index for every member-id
    chunk instead of that chunk's 40,000 through (member, paid_at) — 1.8 s against 0.46 s a query. PostgreSQL's
    autovacuum analyses eventually, but not before the first report or nightly run after an import.
    """
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def refresh_stale_planner_statistics(tables: list[str]) -> list[str]:
    """On SQLite (no autovacuum), ANALYZE those of `tables` whose statistics are missing or whose row count moved by
    more than STALE_SHARE since they were taken; returns the tables analysed. A full ANALYZE reads every index
    (1.6 s on a 100,000-member platform, every night); counting rows is a scan of the smallest index. An
    approximate ANALYZE (`PRAGMA analysis_limit`) is no substitute: it estimated 1,001 orders per status where
    there are 333,334, the very mistake that made the planner pick the wrong index."""
    if connection.vendor != "sqlite":
        return []
    stale = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")
        have_stats = cursor.fetchone() is not None
        for table in tables:
            rows = None
            if have_stats:
                cursor.execute("SELECT MAX(CAST(stat AS INTEGER)) FROM sqlite_stat1 WHERE tbl = %s", [table])
                found = cursor.fetchone()
                rows = int(found[0]) if found and found[0] is not None else None
            cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
            (count,) = cursor.fetchone()
            if rows is None or abs(count - rows) > STALE_SHARE * max(rows, 1):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
                stale.append(table)
    return stale
