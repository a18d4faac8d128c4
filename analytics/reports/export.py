"""CSV and .xlsx export: every report table is a header plus rows, written the same way for every page.

CSV starts with a UTF-8 byte-order mark (without it Excel reads the file in the system code page and Chinese turns to
mojibake) and writes numbers exactly: a Decimal as stored, a float as its shortest round-trip text, never rounded."""
from __future__ import annotations

import csv
import io
import math
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.http import FileResponse, HttpResponse, StreamingHttpResponse

BOM = "\ufeff"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = ("csv", "xlsx")


@dataclass(frozen=True)
class Table:
    name: str
    header: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]


def cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        # repr is the shortest text that reads back as the same float: 12345.67 stays 12345.67 (".6g" made 12345.7).
        return repr(value) if math.isfinite(value) else ""
    text = str(value)
    # A cell starting with = + - @ is a formula to a spreadsheet; quote it so an exported name cannot run one.
    if text[:1] in ("=", "+", "@") or (text[:1] == "-" and not _is_number(text)):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_response(table: Table, filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    response.write(BOM)
    writer = csv.writer(response)
    writer.writerow(table.header)
    for row in table.rows:
        writer.writerow([cell(v) for v in row])
    return response


# Rows per chunk handed to the server: one chunk per row made the response encode and flush 30,000 tiny strings.
STREAM_ROWS = 500


def csv_stream(header: Sequence[str], rows: Iterable[Sequence[object]], filename: str) -> StreamingHttpResponse:
    """For long lists (the at-risk list): rows are written as the database cursor yields them, STREAM_ROWS at a
    time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    def generate() -> Iterable[str]:
        yield BOM
        writer.writerow(header)
        for n, row in enumerate(rows, start=1):
            writer.writerow([cell(v) for v in row])
            if n % STREAM_ROWS == 0:
                yield flush()
        yield flush()

    response = StreamingHttpResponse(generate(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


def xlsx_cell(value: object) -> object:
    """Numbers stay numbers (Excel sums them), text is guarded against formulas like the CSV, datetimes lose their
    zone (Excel has none; reports pass them already in the reporting zone)."""
    if value is None:
        return None
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return value
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return cell(value)


def xlsx_response(header: Sequence[str], rows: Iterable[Sequence[object]], filename: str, *,
                  sheet: str = "report") -> FileResponse:
    """openpyxl's write-only workbook writes each row to a temporary file as it comes (constant memory for the long
    at-risk list); the finished file is then streamed from disk in chunks."""
    from openpyxl import Workbook  # only exports pay for it

    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(title=sheet[:31])
    worksheet.append(list(header))
    for row in rows:
        worksheet.append([xlsx_cell(v) for v in row])
    handle = tempfile.TemporaryFile()  # noqa: SIM115 -- FileResponse closes it after the last chunk
    workbook.save(handle)
    handle.seek(0)
    return FileResponse(handle, as_attachment=True, filename=f"{filename}.xlsx", content_type=XLSX_CONTENT_TYPE)


def table_response(table: Table, filename: str, fmt: str) -> HttpResponse | FileResponse:
    if fmt == "xlsx":
        return xlsx_response(table.header, table.rows, filename, sheet=table.name)
    return csv_response(table, filename)


def stream_response(header: Sequence[str], rows: Iterable[Sequence[object]], filename: str, fmt: str
                    ) -> StreamingHttpResponse | FileResponse:
    if fmt == "xlsx":
        return xlsx_response(header, rows, filename)
    return csv_stream(header, rows, filename)
