"""No index that another index already serves.

A B-tree on (member, paid_at) answers every lookup by member alone, in either order, so a separate index on member is
one more tree to update on every insert (an imported event, a night's engagement row) and one more to rebuild after
a bulk load, for nothing. Checked against the schema the migrations build, on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection

pytestmark = pytest.mark.django_db

OUR_APPS = ("members", "community", "analytics")


def _indexes(table: str) -> dict[str, dict]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {name: info for name, info in constraints.items() if info["index"] or info["unique"] or info["primary_key"]}


def _partial(model) -> set[str]:
    """Names of the model's indexes with a condition: they serve only the rows they hold."""
    return {item.name for item in [*model._meta.indexes, *model._meta.constraints]
            if getattr(item, "condition", None) is not None}


def _covered(table: str, partial: set[str] = frozenset()) -> list[str]:
    """Single-column, non-unique indexes whose column leads another (unconditional) index of the table."""
    indexes = _indexes(table)
    found = []
    for name, info in indexes.items():
        columns = info["columns"] or []
        if len(columns) != 1 or info["unique"] or info["primary_key"]:
            continue
        if connection.vendor == "postgresql" and name.endswith("_like"):
            continue  # pattern-ops: serves LIKE 'prefix%', which a plain B-tree does not
        for other_name, other in indexes.items():
            other_columns = other["columns"] or []
            if other_name not in partial and other_name != name and len(other_columns) > 1 \
                    and other_columns[0] == columns[0]:
                found.append(f"{table}.{name} ({columns[0]}) is led by {other_name} {other_columns}")
                break
    return found


def test_no_single_column_index_is_led_by_another_index():
    covered = []
    for model in apps.get_models():
        if model._meta.app_label in OUR_APPS and model._meta.managed:
            covered += _covered(model._meta.db_table, _partial(model))
    assert covered == []


def test_the_check_finds_a_covered_index():
    """The check above can fail: an index on analytics_event(member_id) is led by event_member_time."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE INDEX test_covered_member ON analytics_event (member_id)")
    try:
        assert any("test_covered_member" in line for line in _covered("analytics_event"))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX test_covered_member")


def test_events_have_one_unique_index_on_their_key_and_no_pattern_index():
    indexes = _indexes("analytics_event")
    on_key = {name: info for name, info in indexes.items() if info["columns"] == ["idempotency_key"]}
    assert [info["unique"] for info in on_key.values()] == [True], on_key
