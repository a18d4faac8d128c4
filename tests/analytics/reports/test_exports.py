"""Every report table exports as CSV (UTF-8 BOM, exact amounts) and as .xlsx."""
from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from html import unescape

import pytest
from openpyxl import load_workbook

from analytics.reports.export import cell
from tests.analytics.reports.test_metrics import (
    course_order,
    dt,
    ledger,  # noqa: F401
)
from tests.analytics.reports.test_views import MAY_QUERY, PAGES, analyst, analyst_client, scored, url  # noqa: F401

LINK = re.compile(r'href="\?([^"]*format=csv[^"]*)"')


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _export_links(client, page: str) -> list[str]:
    html = client.get(url(page, **MAY_QUERY)).content.decode()
    return sorted({unescape(m) for m in LINK.findall(html)})


@pytest.mark.parametrize("page", PAGES)
def test_every_export_opens_with_a_bom_and_has_an_xlsx_twin(analyst_client, scored, page):  # noqa: F811
    links = _export_links(analyst_client, page)
    assert links, f"{page} shows no export link"
    base = url(page)
    for query in links:
        response = analyst_client.get(f"{base}?{query}")
        assert response.status_code == 200, query
        body = _body(response)
        assert body.startswith("\ufeff".encode()), query
        header = next(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        assert header and header[0] and not header[0].startswith("\ufeff")

        xlsx = analyst_client.get(f"{base}?{query.replace('format=csv', 'format=xlsx')}")
        assert xlsx.status_code == 200, query
        assert xlsx["Content-Type"].startswith("application/vnd.openxmlformats")
        sheet = load_workbook(io.BytesIO(_body(xlsx)), read_only=True).worksheets[0]
        rows = list(sheet.iter_rows(values_only=True))
        assert list(rows[0]) == header


def test_exported_amounts_are_exact(analyst_client, scored):  # noqa: F811
    # J's second course purchase: repeat-buyer revenue in May = H's 200 + 12,345.67.
    course_order(scored["members"]["J"], scored["y"], dt(2026, 5, 25), Decimal("12345.67"))
    response = analyst_client.get(url("overview", **MAY_QUERY, format="csv", table="overview"))
    rows = {r[0]: r for r in csv.reader(io.StringIO(_body(response).decode("utf-8-sig")))}
    assert rows["Revenue from repeat buyers"][1] == "12545.67"  # ".6g" wrote 12545.7

    xlsx = analyst_client.get(url("overview", **MAY_QUERY, format="xlsx", table="overview"))
    sheet = load_workbook(io.BytesIO(_body(xlsx)), read_only=True).worksheets[0]
    values = {r[0]: r for r in sheet.iter_rows(values_only=True)}
    assert values["Revenue from repeat buyers"][1] == pytest.approx(12545.67, abs=1e-9)


def test_cells_keep_decimals_and_floats_unrounded():
    assert cell(Decimal("1234567.89")) == "1234567.89"
    assert cell(1234567.89) == "1234567.89"
    assert cell(0.125) == "0.125"
    assert cell("=HYPERLINK()") == "'=HYPERLINK()"
