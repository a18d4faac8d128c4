"""Import files beyond UTF-8 CSV: GBK / GB18030 (detected or --encoding) and .xlsx, through the same validation."""
from __future__ import annotations

import codecs
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from analytics.ingest import files
from analytics.ingest.files import normalise_encoding, read_records, xlsx_cell_text
from members.models import Course, MembershipTier, Order, User
from tests.analytics.ingest.test_platform import run

pytestmark = pytest.mark.django_db

MEMBERS_ZH = "member_id,email,name,country,language\nm1,li@example.com,李小龙,CN,zh\nm2,,王芳,CN,zh\n"
PRODUCTS_ZH = "product_id,kind,title,price\nc1,course,数据分析入门,129.00\nt1,tier,黄金会员,49\n"


def write(tmp_path: Path, name: str, text: str, encoding: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_a_chinese_export_is_detected_and_imported_intact(tmp_path, encoding):
    members = write(tmp_path, "members.csv", MEMBERS_ZH, encoding)
    products = write(tmp_path, "products.csv", PRODUCTS_ZH, encoding)

    status, _, err = run(members=members, products=products)

    assert status == 0, err
    assert dict(User.objects.values_list("external_id", "display_name")) == {"m1": "李小龙", "m2": "王芳"}
    assert Course.objects.get(external_id="c1").title == "数据分析入门"
    assert MembershipTier.objects.get(external_id="t1").name == "黄金会员"


def test_a_gb18030_only_character_survives(tmp_path):
    # 𠀀 (CJK extension B) has no GBK code; GB18030 writes it in four bytes.
    members = write(tmp_path, "members.csv", "member_id,name\nm1,张𠀀\n", "gb18030")

    status, _, err = run(members=members, encoding="gb18030")

    assert status == 0, err
    assert User.objects.get(external_id="m1").display_name == "张𠀀"


def test_detection_switches_after_ascii_lines(tmp_path):
    text = "member_id,name\n" + "".join(f"m{i},Ann\n" for i in range(50)) + "m99,李雷\n"
    members = write(tmp_path, "members.csv", text, "gbk")

    status, _, err = run(members=members)

    assert status == 0, err
    assert User.objects.get(external_id="m99").display_name == "李雷"


def test_a_utf8_file_with_a_gbk_line_is_not_half_switched(tmp_path):
    path = tmp_path / "members.csv"
    path.write_bytes("member_id,name\nm1,李雷\n".encode() + "m2,王芳\n".encode("gbk"))

    status, _, err = run(members=path)

    assert status == 1
    assert "members.csv:3: not valid UTF-8" in err
    assert not User.objects.filter(external_id__in=["m1", "m2"]).exists()


def test_an_unknown_encoding_is_a_usage_error(tmp_path):
    members = write(tmp_path, "members.csv", MEMBERS_ZH, "utf-8")
    status, _, err = run(members=members, encoding="klingon")
    assert status == 2
    assert "unknown encoding" in err
    assert normalise_encoding("GBK") == "gbk"
    assert normalise_encoding("auto") is None


def _xlsx(tmp_path: Path, name: str, rows: list[list[object]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    path = tmp_path / name
    workbook.save(path)
    return path


def test_an_xlsx_import_goes_through_the_same_validation(tmp_path):
    products = _xlsx(tmp_path, "products.xlsx", [["product_id", "title", "price"], ["c1", "数据分析入门", 129.5]])
    orders = _xlsx(tmp_path, "orders.xlsx", [
        ["order_id", "member_id", "product_id", "amount", "ordered_at"],
        ["o1", 1001, "c1", 129.5, datetime(2024, 3, 5, 10, 0)],
        ["o2", 1002, "c1", "abc", datetime(2024, 3, 6, 10, 0)],
        [None, None, None, None, None],
        ["o3", 1003, "c9", 10, "2024-03-07"],
    ])

    status, _, err = run(products=products, orders=orders, partial=True)

    assert status == 1
    assert "orders.xlsx:3: column 'amount': not a decimal number ('abc')" in err
    assert "orders.xlsx:5: column 'product_id': unknown product 'c9'" in err
    order = Order.objects.get(external_id="o1")
    assert order.member.external_id == "1001"
    assert str(order.amount_paid) == "129.50"
    assert Course.objects.get(external_id="c1").title == "数据分析入门"


def test_a_broken_xlsx_is_a_file_error(tmp_path):
    path = tmp_path / "orders.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    status, _, err = run(orders=path)
    assert status == 1
    assert "not a readable .xlsx workbook" in err


def test_xlsx_cells_read_as_the_csv_contract_expects():
    assert xlsx_cell_text(12.5) == "12.5"
    assert xlsx_cell_text(1001.0) == "1001"
    assert xlsx_cell_text(0.1 + 0.2) == "0.30000000000000004"  # kept exact, so money validation rejects it
    assert xlsx_cell_text(None) == ""
    assert xlsx_cell_text(datetime(2024, 1, 2, 3, 4)) == "2024-01-02T03:04:00"


def test_a_bom_wins_over_detection(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "member_id,name\nm1,李雷\n".encode())
    assert list(read_records(path)) == [(1, ["member_id", "name"]), (2, ["m1", "李雷"])]


# Files whose lines are read in blocks (files.BLOCK_BYTES): what each block size must read exactly as one block
# holding the whole file, which goes line by line (a first block is never taken whole).
BLOCK_CASES = {
    "ascii, CRLF, no newline at the end": b"id,name\r\nm1,a\r\nm2,b\r\nm3,c",
    "a quoted field over lines": b'id,note\nm1,"one\nline two"\nm2,x\nm3,"a\r\nb"\n',
    "characters str.splitlines would split at": b"id,note\nm1,a\x0cb\nm2,c\x1cd\x1de\nm3,f\x0bg\n",
    "ascii lines then GBK": b"id,name\nm1,a\nm2,b\nm3," + "李小龙".encode("gbk") + b"\nm4,c\n",
    "UTF-8 with a BOM": codecs.BOM_UTF8 + "id,name\nm1,a\nm2,Zoë\nm3,b\n".encode(),
    "blank lines": b"id,name\n\nm1,a\n\n\nm2,b\n",
}
BLOCK_FAILURES = {
    "a NUL byte on line 4": (b"id,name\nm1,a\nm2,b\nm3,\x00\nm4,c\n", None, 4, "NUL"),
    "not UTF-8 on line 4 after UTF-8 text": ("id,name\nm1,Zoë\nm2,b\n".encode() + b"m3,\xff\n", None, 4, "UTF-8"),
    "not GBK on line 3": (b"id,name\nm1,a\nm2,\xff\xff\xff\n", "gbk", 3, "GBK"),
}


def records(path: Path, block_bytes: int, monkeypatch, encoding: str | None = None) -> list:
    monkeypatch.setattr(files, "BLOCK_BYTES", block_bytes)
    return list(read_records(path, encoding=encoding))


@pytest.mark.parametrize("case", BLOCK_CASES, ids=list(BLOCK_CASES))
@pytest.mark.parametrize("block_bytes", [1, 12, 30])
def test_lines_read_in_blocks_are_the_lines_read_one_by_one(tmp_path, monkeypatch, case, block_bytes):
    path = tmp_path / "file.csv"
    path.write_bytes(BLOCK_CASES[case])
    whole = records(path, 1 << 30, monkeypatch)
    assert len(whole) >= 3
    assert records(path, block_bytes, monkeypatch) == whole


@pytest.mark.parametrize("case", BLOCK_FAILURES, ids=list(BLOCK_FAILURES))
@pytest.mark.parametrize("block_bytes", [1, 12, 1 << 30])
def test_a_bad_line_is_named_whatever_the_block_size(tmp_path, monkeypatch, case, block_bytes):
    content, encoding, line, words = BLOCK_FAILURES[case]
    path = tmp_path / "file.csv"
    path.write_bytes(content)
    with pytest.raises(files.FileProblem) as problem:
        records(path, block_bytes, monkeypatch, encoding)
    assert problem.value.line == line and words in problem.value.reason


@pytest.mark.parametrize("block_bytes", [1, 40, 1 << 20])
def test_the_progress_bar_counts_every_byte_of_the_file(tmp_path, monkeypatch, block_bytes):
    """The bar advances a block at a time and ends at the file's size, whatever the block size."""
    import io

    from tqdm import tqdm

    monkeypatch.setattr(files, "BLOCK_BYTES", block_bytes)
    path = write(tmp_path, "members.csv", "member_id,email\n" + "".join(f"m{n},m{n}@example.com\n" for n in range(50))
                 + "m50,last@example.com", "utf-8")
    bar = tqdm(total=path.stat().st_size, file=io.StringIO())
    records = list(read_records(path, bar=bar))
    assert len(records) == 52
    assert bar.n == path.stat().st_size
