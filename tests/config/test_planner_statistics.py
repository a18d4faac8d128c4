"""config.db.refresh_stale_planner_statistics: ANALYZE on SQLite only where statistics are missing or stale."""
from __future__ import annotations

import pytest
from django.db import connection

from config.db import refresh_planner_statistics, refresh_stale_planner_statistics
from members.models import User


@pytest.mark.django_db
def test_only_missing_or_stale_statistics_are_refreshed():
    if connection.vendor != "sqlite":
        assert refresh_stale_planner_statistics(["members_user"]) == []  # PostgreSQL's autovacuum does this
        return
    User.objects.bulk_create([User(email=f"u{i}@example.com") for i in range(20)])
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'")
        if cursor.fetchone():
            cursor.execute("DELETE FROM sqlite_stat1 WHERE tbl = 'members_user'")
    assert refresh_stale_planner_statistics(["members_user"]) == ["members_user"]  # none yet
    assert refresh_stale_planner_statistics(["members_user"]) == []  # fresh
    User.objects.bulk_create([User(email=f"v{i}@example.com") for i in range(2)])
    assert refresh_stale_planner_statistics(["members_user"]) == []  # 10 % more rows: still fresh
    User.objects.bulk_create([User(email=f"w{i}@example.com") for i in range(5)])
    assert refresh_stale_planner_statistics(["members_user"]) == ["members_user"]  # 27 rows against 20: stale
    refresh_planner_statistics()
    assert refresh_stale_planner_statistics(["members_user"]) == []
