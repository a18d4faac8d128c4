"""On PostgreSQL the ML layer reads big result sets through COPY … TO STDOUT parsed by pandas (datasets._frame):
the frames, and so the features and the course record, must be what the cursor path gives."""
from __future__ import annotations

import pandas as pd
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from analytics.ml import datasets, features
from members.models import User
from tests.analytics.factories import make_platform

pytestmark = pytest.mark.postgres


@pytest.fixture
def platform(db):
    return make_platform(members=60, days=200, seed=5)


def _by_cursor(monkeypatch):
    monkeypatch.setattr(datasets, "_copied_frame", lambda *args: None)


def test_the_feature_matrix_read_by_copy_is_the_one_read_by_the_cursor(platform, monkeypatch):
    copied = features.build(datasets.snapshot(platform.end))
    _by_cursor(monkeypatch)
    fetched = features.build(datasets.snapshot(platform.end))
    assert len(copied) == len(platform.member_ids) and copied["frequency"].gt(0).any()
    pd.testing.assert_frame_equal(copied, fetched)


def test_orders_and_the_course_record_read_by_copy_are_the_ones_read_by_the_cursor(platform, monkeypatch):
    with datasets.read_once(platform.end):
        orders = datasets.orders(platform.end)
        record = datasets.course_record(platform.end)
    _by_cursor(monkeypatch)
    with datasets.read_once(platform.end):
        orders_fetched = datasets.orders(platform.end)
        record_fetched = datasets.course_record(platform.end)
    assert len(orders) > 100
    pd.testing.assert_frame_equal(orders, orders_fetched)
    pd.testing.assert_frame_equal(record.orders, record_fetched.orders)
    pd.testing.assert_frame_equal(record.enrollments, record_fetched.enrollments)


def test_copy_keeps_nulls_empty_strings_booleans_and_text_that_looks_like_numbers(db):
    User.objects.create_user(email="a@example.com", password=None, display_name="", external_id="007")
    User.objects.create_user(email='b,"q"\n@example.com', password=None, display_name="x", external_id=None)
    qs = User.objects.order_by("email").values_list("email", "display_name", "external_id", "is_staff", "last_login")
    with CaptureQueriesContext(connection) as queries:
        frame = datasets._copied_frame(qs, ["email", "name", "external_id", "staff", "last_login"])
    assert len(queries) == 1 and queries[0]["sql"].startswith("COPY (SELECT")
    assert frame["email"].tolist() == ["a@example.com", 'b,"q"\n@example.com']
    assert frame["name"].tolist() == ["", "x"]  # an empty string is not a null
    assert frame.loc[0, "external_id"] == "007" and pd.isna(frame.loc[1, "external_id"])
    assert frame["staff"].dtype == bool and not frame["staff"].any()
    assert frame["last_login"].isna().all()


def test_a_result_type_copy_does_not_parse_falls_back_to_the_cursor(db):
    assert connection.vendor == "postgresql"
    assert datasets._copied_frame(User.objects.values_list("id", "date_joined__date"), ["id", "day"]) is None


def test_a_copy_that_fails_halfway_raises_the_servers_error_and_the_connection_goes_on(db):
    import io

    import psycopg

    buffer = io.BytesIO()
    statement = "COPY (SELECT 1 / (5000 - g) FROM generate_series(1, 6000) g) TO STDOUT (FORMAT csv)"
    with pytest.raises(psycopg.errors.DivisionByZero), transaction.atomic(), connection.cursor() as cursor:
        datasets._copy_out(cursor.cursor, statement, None, buffer)
    assert buffer.getvalue().count(b"\n") == 4999  # the rows before the failure came in
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    buffer = io.BytesIO()
    with connection.cursor() as cursor:  # and a large COPY after it is whole
        datasets._copy_out(cursor.cursor, "COPY (SELECT g FROM generate_series(1, 200000) g) TO STDOUT", None, buffer)
    assert buffer.getvalue() == b"".join(b"%d\n" % g for g in range(1, 200001))


@pytest.mark.django_db(transaction=True)
def test_training_windows_built_in_threads_are_the_ones_built_one_by_one(settings, monkeypatch):
    """Outside a transaction on PostgreSQL, training builds its windows' matrices two at a time in threads, each on
    its own connections, from the one read of the orders and enrolments made first: the same matrices."""
    import threading
    from datetime import timedelta

    from analytics.ml import matrices, repurchase

    platform = make_platform(members=60, days=200, seed=5)
    plan = repurchase.plan(platform.end, 30, datasets.history_start(platform.end))
    cutoffs = [w.cutoff for w in (*plan.train_windows, *plan.refit_windows)] + [plan.validation_cutoff]
    rng = datasets.MemberRange(every=2)
    expected = {c: features.build(datasets.snapshot(c, rng)) for c in set(cutoffs)}
    assert len(expected) >= 3
    built_by = []
    real = matrices._build
    monkeypatch.setattr(matrices, "_build", lambda *args: built_by.append(threading.current_thread().name)
                        or real(*args))
    settings.ANALYTICS_FIT_THREADS = 2
    with matrices.shared(), datasets.read_once(platform.end, rng):
        matrices.build_many(cutoffs, rng)
        for cutoff, matrix in expected.items():
            pd.testing.assert_frame_equal(matrices.at(cutoff, rng), matrix)
        assert matrices.at(platform.end - timedelta(days=1), rng) is not None  # not prebuilt: built when asked
    assert len(built_by) == len(expected) + 1
    assert all(name.startswith("matrix") for name in built_by[:-1]) and not built_by[-1].startswith("matrix")
