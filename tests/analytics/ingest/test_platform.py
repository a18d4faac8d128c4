from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from analytics.ingest import platform as platform_import
from analytics.ingest.platform import GENERIC_PRODUCT_SLUG, import_platform_data, parse_instant, parse_money
from analytics.models import Event
from members.models import (
    Coupon,
    CouponRedemption,
    Course,
    Enrollment,
    MembershipTier,
    Order,
    User,
)
from tests.members.factories import CouponFactory, CourseFactory, UserFactory

pytestmark = pytest.mark.django_db

PRODUCTS = """product_id,kind,title,price,currency,tags,description,published_at
c1,course,Python 101,99.00,CNY,python;beginner,Learn Python,2024-01-01
c2,,数据分析入门,129,CNY,data,,
t1,tier,Gold,49,CNY,,,
"""
MEMBERS = """member_id,email,name,joined_at,country,language,shoe_size
m1,Mia@Example.com,Mia,2024-01-02,cn,zh,38
m2,,Max,,US,en,44
"""
ORDERS = """order_id,member_id,product_id,amount,currency,ordered_at,status,quantity,coupon_code,billing_period
o1,m1,c1,99.00,CNY,2024-02-01T10:00:00+08:00,paid,1,WELCOME,
o2,m3,t1,49,,2024-02-03,,,,year
o3,m2,c2,129,USD,2024-03-01,refunded,,,
o4,m2,,10,,2024-03-02,failed,2,,
"""
EVENTS = """event_id,member_id,kind,object_type,object_id,occurred_at,properties
e1,m1,lesson_completed,lesson,5,2024-02-02T09:00:00Z,"{""lesson"": 5}"
,m4,login,,,2024-01-15,
e2,m3,course_viewed,course,c1,2024-01-20T08:00:00,
"""


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def all_files(tmp_path: Path) -> dict[str, Path]:
    return {
        "products": write(tmp_path, "products.csv", PRODUCTS),
        "members": write(tmp_path, "members.csv", MEMBERS),
        "orders": write(tmp_path, "orders.csv", ORDERS),
        "events": write(tmp_path, "events.csv", EVENTS),
    }


def run(**options: object) -> tuple[int, str, str]:
    """Run the command the way a shell would, returning (exit status, stdout, stderr)."""
    from io import StringIO

    out, err = StringIO(), StringIO()
    args = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value not in (None, False):
            args += [flag, str(value)]
    try:
        call_command("import_platform_data", *args, "--no-progress", stdout=out, stderr=err)
    except CommandError as exc:
        err.write(str(exc))
        return exc.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def ordered(rows: object) -> list[object]:
    return sorted(rows, key=repr)  # type: ignore[call-overload]


def snapshot() -> dict[str, object]:
    return {
        "users": ordered(User.objects.values_list("external_id", "email", "display_name", "date_joined", "country",
                                                 "preferred_language")),
        "courses": ordered(Course.objects.values_list("external_id", "title", "price", "tags", "topic", "is_generic")),
        "tiers": ordered(MembershipTier.objects.values_list("external_id", "name", "monthly_price")),
        "orders": ordered(Order.objects.values_list("external_id", "member__external_id", "kind", "course__slug",
                                                   "tier__external_id", "amount_paid", "status", "paid_at",
                                                   "quantity", "currency", "billing_period", "coupon__code")),
        "enrollments": ordered(Enrollment.objects.values_list("member__external_id", "course__external_id")),
        "events": ordered(Event.objects.values_list("member__external_id", "kind", "occurred_at", "idempotency_key")),
        "redemptions": CouponRedemption.objects.count(),
    }


# --------------------------------------------------------------------------------------------------------------
# Happy path


def test_it_imports_all_four_files(tmp_path):
    CouponFactory(code="WELCOME")
    status, out, _ = run(**all_files(tmp_path))

    assert status == 0, out
    mia = User.objects.get(external_id="m1")
    assert (mia.email, mia.display_name, mia.country, mia.preferred_language) == ("mia@example.com", "Mia", "CN", "zh-hans")
    assert mia.acquisition_source == User.AcquisitionSource.IMPORT and not mia.has_usable_password()
    assert mia.date_joined == datetime(2024, 1, 2, tzinfo=ZoneInfo("UTC"))
    # Members known only from orders/events: placeholder email, joined at their first activity.
    m3 = User.objects.get(external_id="m3")
    assert m3.email == "m3@imported.invalid"
    assert m3.date_joined == datetime(2024, 1, 20, 8, 0, tzinfo=UTC)  # event before the order
    assert User.objects.get(external_id="m4").date_joined == datetime(2024, 1, 15, tzinfo=UTC)
    assert User.objects.get(external_id="m2").email == "m2@imported.invalid"

    course = Course.objects.get(external_id="c1")
    assert (course.title, course.price, course.tags, course.topic, course.is_published) == (
        "Python 101", Decimal("99.00"), ["python", "beginner"], "python", True,
    )
    assert Course.objects.get(external_id="c2").title == "数据分析入门"
    tier = MembershipTier.objects.get(external_id="t1")
    assert tier.monthly_price == Decimal("49.00")

    o1 = Order.objects.get(external_id="o1")
    assert (o1.kind, o1.course, o1.status, o1.amount_paid, o1.list_price, o1.discount) == (
        "course", course, "paid", Decimal("99.00"), Decimal("99.00"), Decimal("0.00"),
    )
    assert o1.paid_at == datetime(2024, 2, 1, 2, 0, tzinfo=UTC)
    assert o1.coupon.code == "WELCOME" and CouponRedemption.objects.get().order == o1
    o2 = Order.objects.get(external_id="o2")
    assert (o2.kind, o2.tier, o2.billing_period, o2.status) == ("subscription", tier, "year", "paid")
    o3 = Order.objects.get(external_id="o3")
    assert (o3.status, o3.currency, o3.paid_at is not None) == ("refunded", "USD", True)
    o4 = Order.objects.get(external_id="o4")
    assert (o4.status, o4.paid_at, o4.quantity, o4.course.slug) == ("failed", None, 2, GENERIC_PRODUCT_SLUG)

    # Paid and refunded course orders enrol (an enrolment exists from its order until its refund; the analytics
    # drop it from the refund's time on), failed ones do not.
    assert list(Enrollment.objects.order_by("id").values_list("member__external_id", "course__external_id")) == [
        ("m1", "c1"), ("m2", "c2")]

    event = Event.objects.get(idempotency_key="import:e1")
    assert (event.member, event.kind, event.object_type, event.object_id, event.properties, event.source) == (
        mia, "lesson_completed", "lesson", "5", {"lesson": 5}, "import",
    )
    assert Event.objects.count() == 3
    assert "imported" in out


def test_reimporting_the_same_files_changes_nothing(tmp_path):
    files = all_files(tmp_path)
    assert run(**files)[0] == 0
    before = snapshot()
    status, out, _ = run(**files)

    assert status == 0
    assert snapshot() == before
    assert "0 created, 4 updated" in out  # orders
    assert "0 created, 0 updated, 3 already imported" in out  # events


def test_orders_only_import_creates_members_and_the_generic_product(tmp_path):
    orders = write(tmp_path, "orders.csv", "order_id,member_id,ordered_at,amount\nA,u1,2024-05-01,10\nB,u2,2024-05-02,20.5\nC,u1,2024-04-01,5\n")
    status, _, _ = run(orders=orders)

    assert status == 0
    generic = Course.objects.get(slug=GENERIC_PRODUCT_SLUG)
    assert generic.is_generic and not generic.is_published
    assert set(Order.objects.values_list("course", flat=True)) == {generic.pk}
    assert User.objects.get(external_id="u1").date_joined == datetime(2024, 4, 1, tzinfo=UTC)
    assert User.objects.filter(external_id__in=["u1", "u2"]).count() == 2
    assert Enrollment.objects.count() == 0  # the generic product is not a course anyone owns


def _planner_knows(table: str) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")
            if cursor.fetchone() is None:
                return False
            cursor.execute("SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = %s", [table])
        else:
            cursor.execute("SELECT COUNT(*) FROM pg_stats WHERE tablename = %s", [table])
        return cursor.fetchone()[0] > 0


def test_an_import_leaves_the_planner_statistics_fresh(tmp_path):
    if _planner_knows("members_order"):  # a test database analysed by an earlier test: start from nothing
        pytest.skip("statistics already present")
    orders = write(tmp_path, "orders.csv", "order_id,member_id,ordered_at,amount\nA,u1,2024-05-01,10\nB,u2,2024-05-02,2\n")
    assert run(orders=orders)[0] == 0
    assert _planner_knows("members_order")


def test_a_dry_run_does_not_analyse(tmp_path):
    if _planner_knows("members_order"):
        pytest.skip("statistics already present")
    orders = write(tmp_path, "orders.csv", "order_id,member_id,ordered_at,amount\nA,u1,2024-05-01,10\n")
    assert run(orders=orders, dry_run=True)[0] == 0
    assert not _planner_knows("members_order")


def test_orders_may_reference_products_already_in_the_database(tmp_path):
    CourseFactory(external_id="old-course")
    orders = write(tmp_path, "orders.csv", "order_id,member_id,product_id,ordered_at,amount\nA,u1,old-course,2024-05-01,10\n")
    assert run(orders=orders)[0] == 0
    assert Order.objects.get().course.external_id == "old-course"


def test_a_byte_order_mark_is_accepted(tmp_path):
    members = write(tmp_path, "members.csv", "member_id,email\nm1,a@example.com\n", encoding="utf-8-sig")
    assert members.read_bytes().startswith(b"\xef\xbb\xbf")
    assert run(members=members)[0] == 0
    assert User.objects.get(external_id="m1").email == "a@example.com"


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York"])
def test_a_bare_date_means_midnight_in_the_site_time_zone(settings, zone):
    settings.TIME_ZONE = zone
    assert parse_instant("2024-03-05") == datetime(2024, 3, 5, tzinfo=ZoneInfo(zone))
    assert parse_instant("2024-03-05T10:00:00+02:00") == datetime(2024, 3, 5, 8, tzinfo=UTC)
    assert parse_instant("2024-03-05T10:00:00Z") == datetime(2024, 3, 5, 10, tzinfo=UTC)


def test_a_bare_date_in_a_file_is_stored_as_site_midnight(tmp_path, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    members = write(tmp_path, "members.csv", "member_id,joined_at\nm1,2024-03-05\n")
    assert run(members=members)[0] == 0
    assert User.objects.get().date_joined == datetime(2024, 3, 4, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "reason"),
    [("12,50", "not a decimal number"), ("abc", "not a decimal number"), ("-1", "negative"), ("NaN", "not a decimal"),
     ("Infinity", "not a decimal"), ("1.234", "more than 2 decimal places"), ("100000000", "larger than")],
)
def test_money_rejects_what_is_not_a_plain_decimal(value, reason):
    amount, message = parse_money(value)
    assert amount is None and reason in message


def test_money_accepts_plain_decimals():
    assert parse_money("12.5") == (Decimal("12.50"), "")
    assert parse_money("0") == (Decimal("0.00"), "")


# --------------------------------------------------------------------------------------------------------------
# Bad files: clear report, nothing lost


def assert_nothing_written() -> None:
    assert User.objects.filter(external_id__isnull=False).count() == 0
    assert Order.objects.count() == 0
    assert Course.objects.count() == 0
    assert MembershipTier.objects.count() == 0
    assert Event.objects.count() == 0


BAD_ORDERS = """order_id,member_id,product_id,amount,currency,ordered_at,status
o1,m1,c1,99.00,CNY,2024-02-01,paid
o2,m1,c1,abc,CNY,2024-02-01,paid
o3,m2,nope,10,CNY,2024-02-01,paid
o4,m2,c1,10,CNY,31/12/2024,paid
o1,m2,c1,10,CNY,2024-02-01,paid
o6,m2,c1,12,50,CNY,2024-02-01,paid
o7,m2,c1,10,CNY,2024-02-01,shipped
o8,m3,,-5,CNY,2024-02-01,paid
o9,m3,c1,10,XYZ,2024-02-02,paid
"""


def test_bad_rows_are_reported_with_file_line_and_column_and_nothing_is_written(tmp_path):
    files = {"products": write(tmp_path, "products.csv", PRODUCTS), "orders": write(tmp_path, "orders.csv", BAD_ORDERS)}
    status, _, err = run(**files)

    assert status == 1
    assert "orders.csv:3: column 'amount': not a decimal number ('abc')" in err
    assert "orders.csv:4: column 'product_id': unknown product 'nope' (not in the products file nor the database)" in err
    assert "orders.csv:5: column 'ordered_at': not an ISO 8601 date or timestamp ('31/12/2024')" in err
    assert "orders.csv:6: column 'order_id': duplicate order_id 'o1'" in err
    assert "orders.csv:7: has 8 fields, more than the header's 7" in err
    assert "orders.csv:8: column 'status': must be one of failed, paid, refunded ('shipped')" in err
    assert "orders.csv:9: column 'amount': negative amount ('-5')" in err
    assert "orders.csv:10: column 'currency'" in err
    assert "nothing was imported" in err
    assert_nothing_written()


def test_partial_imports_the_good_rows_and_reports_the_bad(tmp_path):
    files = {"products": write(tmp_path, "products.csv", PRODUCTS), "orders": write(tmp_path, "orders.csv", BAD_ORDERS)}
    status, _, err = run(**files, partial=True)

    assert status == 1  # rows were rejected, even though the good ones went in
    assert "the good rows were imported" in err
    assert list(Order.objects.values_list("external_id", flat=True)) == ["o1"]
    assert Course.objects.filter(external_id__in=["c1", "c2"]).count() == 2
    # m2/m3 only appear in rejected rows: they must not be created.
    assert list(User.objects.filter(external_id__isnull=False).values_list("external_id", flat=True)) == ["m1"]


def test_errors_out_holds_every_rejected_row(tmp_path):
    files = {"products": write(tmp_path, "products.csv", PRODUCTS), "orders": write(tmp_path, "orders.csv", BAD_ORDERS)}
    errors_out = tmp_path / "errors.csv"
    run(**files, errors_out=errors_out)

    with errors_out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(row["file"], row["line"], row["column"]) for row in rows] == [
        ("orders.csv", "3", "amount"), ("orders.csv", "4", "product_id"), ("orders.csv", "5", "ordered_at"),
        ("orders.csv", "6", "order_id"), ("orders.csv", "7", ""), ("orders.csv", "8", "status"),
        ("orders.csv", "9", "amount"), ("orders.csv", "10", "currency"),
    ]
    assert rows[0]["raw"] == "o2,m1,c1,abc,CNY,2024-02-01,paid"
    assert rows[0]["reason"] == "not a decimal number ('abc')"


def test_missing_required_columns_are_a_file_error_naming_them(tmp_path):
    orders = write(tmp_path, "orders.csv", "order_id,member,amount\no1,m1,10\n")
    status, _, err = run(orders=orders)

    assert status == 1
    assert "orders.csv:1: missing required column(s): member_id, ordered_at" in err
    assert_nothing_written()


def test_a_file_error_stops_the_import_even_with_partial(tmp_path):
    members = write(tmp_path, "members.csv", "member_id\nm1\n")
    orders = write(tmp_path, "orders.csv", "id,member_id,ordered_at,amount\n1,m1,2024-01-01,1\n")
    status, _, err = run(members=members, orders=orders, partial=True)

    assert status == 1
    assert "orders.csv:1: missing required column(s): order_id" in err
    assert_nothing_written()


def test_an_empty_file_is_reported(tmp_path):
    status, _, err = run(members=write(tmp_path, "members.csv", ""))
    assert status == 1
    assert "members.csv: the file is empty (no header row)" in err


def test_a_header_only_file_imports_nothing_without_error(tmp_path):
    status, out, _ = run(members=write(tmp_path, "members.csv", "member_id,email\n"))
    assert status == 0
    assert "0 rows" in out


def test_latin1_bytes_are_reported_with_their_line(tmp_path):
    members = write(tmp_path, "members.csv", "member_id,name\nm1,Ana\nm2,José\n", encoding="latin-1")
    status, _, err = run(members=members, partial=True)

    assert status == 1
    assert "members.csv:3: not valid UTF-8 (byte 0xe9" in err
    assert_nothing_written()


def test_utf16_is_reported(tmp_path):
    members = write(tmp_path, "members.csv", "member_id,name\nm1,Ana\n", encoding="utf-16")
    status, _, err = run(members=members)

    assert status == 1
    assert "members.csv:1: the file is UTF-16 encoded; save it as UTF-8" in err
    assert_nothing_written()


def test_utf16_without_bom_is_reported(tmp_path):
    members = write(tmp_path, "members.csv", "member_id,name\nm1,Ana\n", encoding="utf-16-le")
    status, _, err = run(members=members)

    assert status == 1
    assert "UTF-16" in err
    assert_nothing_written()


def test_duplicates_in_members_products_and_events_are_rejected(tmp_path):
    files = {
        "members": write(tmp_path, "members.csv", "member_id,email\nm1,a@example.com\nm1,b@example.com\nm2,A@example.com\n"),
        "products": write(tmp_path, "products.csv", "product_id,title\np1,One\np1,Again\n"),
        "events": write(tmp_path, "events.csv", "event_id,member_id,kind,occurred_at\ne1,m1,x,2024-01-01\ne1,m1,x,2024-01-02\n"),
    }
    status, _, err = run(**files)

    assert status == 1
    assert "members.csv:3: column 'member_id': duplicate member_id 'm1'" in err
    assert "members.csv:4: column 'email': duplicate email 'a@example.com'" in err
    assert "products.csv:3: column 'product_id': duplicate product_id 'p1'" in err
    assert "events.csv:3: column 'event_id': duplicate event_id 'e1'" in err
    assert_nothing_written()


def test_bad_member_and_event_values_are_reported(tmp_path):
    UserFactory(email="taken@example.com")
    files = {
        "members": write(tmp_path, "members.csv", "member_id,email,joined_at,country,language\n"
                         "m1,not-an-email,2024-01-01,CN,en\nm2,taken@example.com,,CN,en\nm3,,yesterday,China,fr\n,x@example.com,,,\n"),
        "events": write(tmp_path, "events.csv", "member_id,kind,occurred_at,properties\nm1,x,2024-01-01,[1]\nm1,,2024-13-01,{bad\n"),
    }
    status, _, err = run(**files)

    assert status == 1
    for expected in [
        "members.csv:2: column 'email': not an email address ('not-an-email')",
        "members.csv:3: column 'email': 'taken@example.com' already belongs to another member",
        "members.csv:4: column 'joined_at': not an ISO 8601 date or timestamp ('yesterday')",
        "members.csv:4: column 'country': not a 2-letter country code ('CHINA')",
        "members.csv:4: column 'language': must be one of en, zh-hans ('fr')",
        "members.csv:5: column 'member_id': required value is empty",
        "events.csv:2: column 'properties': must be a JSON object",
        "events.csv:3: column 'kind': required value is empty",
        "events.csv:3: column 'occurred_at': not an ISO 8601 date or timestamp ('2024-13-01')",
        "events.csv:3: column 'properties': not valid JSON",
    ]:
        assert expected in err
    assert User.objects.count() == 1


def test_line_numbers_count_physical_lines_across_quoted_newlines(tmp_path):
    products = write(tmp_path, "products.csv", 'product_id,title,description,price\np1,One,"two\nlines",1\np2,Two,,x\n')
    status, _, err = run(products=products)
    assert status == 1
    assert "products.csv:4: column 'price': not a decimal number ('x')" in err


def test_dry_run_validates_and_writes_nothing(tmp_path):
    status, out, _ = run(**all_files(tmp_path), dry_run=True)

    assert status == 0
    assert "orders    orders.csv: 4 rows, 4 valid, 0 rejected" in out
    assert "dry run: nothing was written" in out
    assert_nothing_written()


def test_dry_run_with_bad_rows_exits_1(tmp_path):
    files = {"products": write(tmp_path, "products.csv", PRODUCTS), "orders": write(tmp_path, "orders.csv", BAD_ORDERS)}
    status, _, err = run(**files, dry_run=True)
    assert status == 1
    assert "orders.csv:3: column 'amount'" in err


def test_usage_errors_exit_2(tmp_path):
    assert run()[0] == 2
    assert run(orders=tmp_path / "missing.csv")[0] == 2


def test_a_failed_write_rolls_back_everything(tmp_path, monkeypatch):
    """All-or-nothing also covers errors the validator cannot see (here: the database refusing the events)."""

    def boom(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(platform_import, "events_bulk_ingest", boom)
    # The events read as plain values (all-or-nothing): COPY lines on PostgreSQL, tuples on SQLite.
    monkeypatch.setattr(platform_import, "copy_event_lines", boom)
    monkeypatch.setattr(platform_import, "insert_event_rows", boom)
    with pytest.raises(RuntimeError):
        import_platform_data(**all_files(tmp_path))
    assert_nothing_written()
    assert Coupon.objects.count() == 0


def test_the_report_keeps_only_the_first_errors_but_counts_all(tmp_path):
    rows = "".join(f"o{i},m1,,x,2024-01-01\n" for i in range(120))
    orders = write(tmp_path, "orders.csv", "order_id,member_id,product_id,amount,ordered_at\n" + rows)
    report = import_platform_data(orders=orders, errors_out=tmp_path / "e.csv")

    assert report.error_count == 120 and len(report.first_errors) == 50
    assert sum(1 for _ in (tmp_path / "e.csv").open()) == 121


def test_a_later_export_with_changed_values_updates_the_same_rows(tmp_path):
    files = all_files(tmp_path)
    assert run(**files)[0] == 0
    changed_orders = ORDERS.replace("o1,m1,c1,99.00,CNY,2024-02-01T10:00:00+08:00,paid", "o1,m1,c1,89.00,CNY,2024-02-01T10:00:00+08:00,refunded")
    changed_members = MEMBERS.replace("m1,Mia@Example.com,Mia", "m1,mia.new@example.com,Mia Li")
    files["orders"] = write(tmp_path, "orders.csv", changed_orders)
    files["members"] = write(tmp_path, "members.csv", changed_members)
    status, _, _ = run(**files)

    assert status == 0
    order = Order.objects.get(external_id="o1")
    assert (order.amount_paid, order.status) == (Decimal("89.00"), "refunded")
    mia = User.objects.get(external_id="m1")
    assert (mia.email, mia.display_name) == ("mia.new@example.com", "Mia Li")
    assert Order.objects.count() == 4 and User.objects.filter(external_id__isnull=False).count() == 4


def test_a_renamed_product_shows_its_new_name_on_the_english_page(tmp_path):
    # Pages read the translated columns (title_en, name_en); a re-import must update them, not only `title`.
    from django.utils import translation

    from members.models import Course, MembershipTier

    files = all_files(tmp_path)
    assert run(**files)[0] == 0
    files["products"] = write(tmp_path, "products.csv",
                              PRODUCTS.replace("Python 101", "Python 102").replace("t1,tier,Gold", "t1,tier,Platinum"))
    assert run(**files)[0] == 0
    with translation.override("en"):
        assert str(Course.objects.get(external_id="c1")) == "Python 102"
        assert str(MembershipTier.objects.get(external_id="t1")) == "Platinum"
