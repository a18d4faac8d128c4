"""CSV export: every report table is a header plus rows, written the same way for every page."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.http import HttpResponse, StreamingHttpResponse


@dataclass(frozen=True)
class Table:
    name: str
    header: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]


def cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
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
        writer.writerow(header)
        for n, row in enumerate(rows, start=1):
            writer.writerow([cell(v) for v in row])
            if n % STREAM_ROWS == 0:
                yield flush()
        yield flush()

    response = StreamingHttpResponse(generate(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response
