"""Bulk load (issue 19): the all-or-nothing import drops the order, enrolment and event tables' secondary indexes
and rebuilds them before committing. The rows are the same as without it, the schema afterwards is what migrations
made, and a failed import leaves indexes and data as they were. Runs on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test import override_settings

from analytics.ingest import platform
from analytics.ingest.platform import estimated_rows, import_platform_data
from analytics.models import Event
from members.models import Enrollment, Order, User
from tests.analytics.ingest.test_platform import all_files, run, write
from tests.members.factories import UserFactory

pytestmark = pytest.mark.django_db

LOADED = (Order, Enrollment, Event)


def schema() -> dict:
    with connection.cursor() as cursor:
        return {model: connection.introspection.get_constraints(cursor, model._meta.db_table) for model in LOADED}


def secondary(constraints: dict) -> set[str]:
    return {name for name, info in constraints.items() if info["index"] and not info["unique"] and not info["primary_key"]}


def imported_rows() -> dict[str, list[tuple]]:
    """Every imported row by natural keys (primary keys differ between two imports on PostgreSQL)."""
    return {
        "orders": sorted(Order.objects.values_list(
            "external_id", "member__external_id", "kind", "course__external_id", "course__slug", "tier__external_id",
            "billing_period", "list_price", "discount", "amount_paid", "currency", "quantity", "coupon__code", "status",
            "created_at", "paid_at", "refunded_at", "failure_reason", "provider")),
        "enrollments": sorted(Enrollment.objects.values_list(
            "member__external_id", "course__external_id", "source", "enrolled_at", "last_activity_at")),
        "events": sorted(Event.objects.values_list(
            "member__external_id", "kind", "object_type", "object_id", "occurred_at", "properties", "source",
            "idempotency_key", "quantity"), key=repr),
        "users": sorted(User.objects.filter(external_id__isnull=False).values_list(
            "external_id", "email", "display_name", "country", "preferred_language", "date_joined")),
    }


class Abort(Exception):
    pass


def import_and_read(files: dict, bulk_load: str) -> tuple[object, dict]:
    """Import in a savepoint, read the rows, roll back: two imports of the same files compared in one test."""
    captured = {}
    with pytest.raises(Abort), transaction.atomic():
        captured["report"] = import_platform_data(**files, bulk_load=bulk_load)
        captured["rows"] = imported_rows()
        captured["schema"] = schema()
        raise Abort
    return captured["report"], captured


def test_bulk_load_imports_the_same_rows_and_leaves_the_schema_migrations_made(tmp_path):
    files = all_files(tmp_path)
    before = schema()
    plain_report, plain = import_and_read(files, "never")
    bulk_report, bulk = import_and_read(files, "always")
    assert plain_report.ok and plain_report.written and bulk_report.ok and bulk_report.written
    assert plain_report.index_rebuild_seconds == 0 and bulk_report.index_rebuild_seconds > 0
    assert bulk["rows"] == plain["rows"]
    assert len(bulk["rows"]["orders"]) == 4 and len(bulk["rows"]["events"]) == 3
    assert bulk["schema"] == before == plain["schema"]
    assert schema() == before


def test_indexes_are_absent_while_the_rows_are_written(tmp_path, monkeypatch):
    seen = []
    real = platform._Writer.orders

    def spying(self, batch, report):
        seen.append(secondary(schema()[Order]))
        return real(self, batch, report)

    monkeypatch.setattr(platform._Writer, "orders", spying)
    files = all_files(tmp_path)
    assert import_platform_data(**files, bulk_load="always").written
    assert seen == [set()]
    assert len(secondary(schema()[Order])) >= 8


def test_a_rejected_row_rolls_back_with_the_indexes_in_place(tmp_path):
    files = all_files(tmp_path)
    files["events"] = write(tmp_path, "bad-events.csv", files["events"].read_text() + "e9,m1,login,,,not-a-date,\n")
    before = schema()
    report = import_platform_data(**files, bulk_load="always")
    assert not report.ok and not report.written
    assert schema() == before
    assert Order.objects.count() == Enrollment.objects.count() == Event.objects.count() == 0
    assert not User.objects.filter(external_id__isnull=False).exists()


def test_a_database_error_mid_import_leaves_indexes_and_earlier_rows_intact(tmp_path, monkeypatch):
    member = UserFactory(external_id="m1")
    files = all_files(tmp_path)
    assert import_platform_data(orders=files["orders"], products=files["products"], bulk_load="never").written
    rows_before, before = imported_rows(), schema()

    def failing(self, batch, report):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(platform._Writer, "events", failing)
    monkeypatch.setattr(platform._Writer, "event_values", lambda self, batch, firsts, report: failing(self, batch, report))
    with pytest.raises(RuntimeError):
        import_platform_data(**files, bulk_load="always")
    assert schema() == before
    assert imported_rows() == rows_before
    assert User.objects.get(pk=member.pk).external_id == "m1"


def test_reimport_in_bulk_load_is_idempotent_through_the_unique_indexes_kept(tmp_path):
    # ON CONFLICT on the order/event/enrolment keys needs their unique indexes: the bulk load keeps them, so a
    # second import of the same files adds nothing.
    files = all_files(tmp_path)
    assert import_platform_data(**files, bulk_load="always").written
    first = imported_rows()
    again = import_platform_data(**files, bulk_load="always")
    assert again.written and again.files["orders"].created == 0 and again.files["events"].created == 0
    assert imported_rows() == first


def test_command_flag_and_partial_mode(tmp_path, monkeypatch):
    dropped = []
    real = platform.SecondaryIndexes.drop

    def recording(self, model):
        dropped.append(model._meta.db_table)
        return real(self, model)

    monkeypatch.setattr(platform.SecondaryIndexes, "drop", recording)
    files = all_files(tmp_path)
    code, out, _ = run(**files, bulk_load="always", partial=True)
    assert code == 0 and dropped == []  # --partial commits per chunk: never without its indexes
    code, out, _ = run(**files, bulk_load="always")
    assert code == 0 and dropped == ["members_order", "members_enrollment", "analytics_event"]
    assert "secondary indexes rebuilt" in out
    code, _, _ = run(**files, bulk_load="never")
    assert code == 0 and len(dropped) == 3


@override_settings(IMPORT_BULK_LOAD_MIN_ROWS=3)
def test_auto_drops_for_a_file_at_least_as_large_as_the_table(tmp_path):
    files = all_files(tmp_path)  # 4 orders, 3 events
    assert platform._bulk_load_models(files, "auto", lambda message: None) == [Order, Enrollment, Event]
    member = UserFactory()
    Event.objects.bulk_create(
        [Event(member=member, kind="login", occurred_at=member.date_joined) for _ in range(4)]
    )
    # 4 stored events > 3 incoming: the events table keeps its indexes.
    assert platform._bulk_load_models(files, "auto", lambda message: None) == [Order, Enrollment]
    with override_settings(IMPORT_BULK_LOAD_MIN_ROWS=5):
        assert platform._bulk_load_models(files, "auto", lambda message: None) == []
    assert platform._bulk_load_models(files, "never", lambda message: None) == []
    assert platform._bulk_load_models({"members": files["members"]}, "always", lambda message: None) == []


def test_default_keeps_small_imports_row_by_row(tmp_path):
    files = all_files(tmp_path)
    report = import_platform_data(**files)  # settings.IMPORT_BULK_LOAD = auto, 50,000-row minimum
    assert report.written and report.index_rebuild_seconds == 0


def test_estimated_rows(tmp_path):
    small = write(tmp_path, "small.csv", "a,b\n1,2\n3,4\n")
    assert estimated_rows(small) == 2
    no_newline = write(tmp_path, "no-newline.csv", "a,b\n1,2\n3,4")
    assert estimated_rows(no_newline) == 2
    big = write(tmp_path, "big.csv", "a,b\n" + "".join(f"{i},x\n" for i in range(400_000)))
    assert abs(estimated_rows(big) - 400_000) < 400_000 * 0.2
