"""Reading an import file into records: CSV in UTF-8 (with or without BOM) or GBK/GB18030, or .xlsx (docs/IMPORT.md).

This is the file layer only: it turns bytes into (line, cells) pairs and raises FileProblem for defects of the whole
file. Row validation (types, references, duplicates) stays in the importer and is the same for every format.

Encoding detection without a second pass over a multi-gigabyte file: lines are decoded as UTF-8 until one is not;
if every line before it was plain ASCII (which both encodings share) and that line decodes as GB18030, the rest of
the file is read as GB18030 (a superset of GBK and GB2312, what Chinese Excel and platform exports write). A file
that already had UTF-8 text is not switched half-way: its bad line is reported. `encoding=` skips the guessing.
"""
from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import IO

from tqdm import tqdm

XLSX_MAGIC = b"PK\x03\x04"
CHINESE_FALLBACK = "gb18030"


class FileProblem(Exception):
    """A defect of the whole file (encoding, header, empty); the file is not imported at all."""

    def __init__(self, line: int, reason: str, column: str = "") -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason
        self.column = column


def normalise_encoding(name: str | None) -> str | None:
    """The codec name for a user-given encoding ("GBK", "gb18030", "utf-8"); None means detect. Raises ValueError."""
    if not name or name.strip().lower() in ("auto", "detect"):
        return None
    try:
        return codecs.lookup(name.strip()).name
    except LookupError:
        raise ValueError(f"unknown encoding {name!r} (use utf-8, gbk or gb18030)") from None


def is_xlsx(path: Path) -> bool:
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return True
    with path.open("rb") as fh:
        return fh.read(4) == XLSX_MAGIC


def read_records(path: Path, *, encoding: str | None = None, bar: tqdm | None = None) -> Iterator[tuple[int, list[str]]]:
    """(first physical line, cells) per record, the header first. Blank xlsx rows are skipped here; blank CSV lines
    are left to the caller, as before. `bar` is advanced (bytes; rows for a workbook), never closed: the caller
    made it and closes it."""
    if is_xlsx(path):
        yield from _xlsx_records(path, bar)
    else:
        yield from _csv_records(path, encoding, bar)


# CSV ----------------------------------------------------------------------------------------------------------


BLOCK_BYTES = 1 << 20


class _Progress:
    """The file's lines a block at a time (lists of about BLOCK_BYTES: readlines stops at the first line that reaches
    the hint), feeding the progress bar once per block. The bar is its creator's to close."""

    def __init__(self, fh: IO[bytes], bar: tqdm | None) -> None:
        self.fh = fh
        self.bar = bar

    def __iter__(self) -> Iterator[list[bytes]]:
        while block := self.fh.readlines(BLOCK_BYTES):
            if self.bar is not None:
                self.bar.update(sum(map(len, block)))
            yield block


def _ascii_compatible(encoding: str) -> bool:
    """Whether the encoding reads ASCII bytes as ASCII (UTF-8, GBK, GB18030; not UTF-16)."""
    ascii_bytes = bytes(range(1, 128))
    try:
        return ascii_bytes.decode(encoding) == ascii_bytes.decode("ascii")
    except (UnicodeDecodeError, LookupError):
        return False


def _decoded_lines(blocks: Iterator[list[bytes]] | _Progress, encoding: str | None) -> Iterator[str]:
    """Decode line by line (not through a TextIOWrapper) so a decoding error names its line.

    A block of lines that is plain ASCII without NUL bytes (the common export) cannot fail either check and reads
    the same in UTF-8 and GB18030: it is decoded in one call and split at its newlines, as the binary file splits
    its lines (never at the other characters str.splitlines splits at). Every other block goes line by line."""
    current = encoding or "utf-8"
    fast = _ascii_compatible(current)
    only_ascii_so_far = True
    number = 0
    for block in blocks:
        if number and fast:
            joined = b"".join(block)
            if joined.isascii() and b"\x00" not in joined:
                number += len(block)
                lines = joined.decode("ascii").split("\n")
                last = lines.pop()
                for line in lines:
                    yield line + "\n"
                if last:  # the file's last line, without a newline
                    yield last
                continue
        for raw in block:
            number += 1
            if number == 1:
                if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
                    raise FileProblem(1, "the file is UTF-16 encoded; save it as UTF-8 (CSV UTF-8)")
                if raw[:3] == codecs.BOM_UTF8:
                    raw = raw[3:]
                    current = "utf-8"  # a BOM is an explicit statement, whatever was guessed
                    fast = True
            if b"\x00" in raw:
                # UTF-16 without a byte-order mark decodes as "valid" UTF-8 full of NULs; no real CSV contains them.
                raise FileProblem(number, "contains NUL bytes: the file looks like UTF-16; save it as UTF-8")
            try:
                text = raw.decode(current)
            except UnicodeDecodeError as exc:
                if encoding is None and current == "utf-8" and only_ascii_so_far:
                    try:
                        text = raw.decode(CHINESE_FALLBACK)
                    except UnicodeDecodeError:
                        pass
                    else:
                        current = CHINESE_FALLBACK
                        only_ascii_so_far = False
                        yield text
                        continue
                bad = raw[exc.start:exc.start + 1].hex()
                label = "UTF-8" if current == "utf-8" else current.upper()
                raise FileProblem(
                    number,
                    f"not valid {label} (byte 0x{bad} at position {exc.start + 1}); save the file as UTF-8 "
                    "or give its encoding (--encoding gb18030)",
                ) from exc
            if only_ascii_so_far and not raw.isascii():
                only_ascii_so_far = False
            yield text


def _csv_records(path: Path, encoding: str | None, bar: tqdm | None) -> Iterator[tuple[int, list[str]]]:
    with path.open("rb") as fh:
        reader = csv.reader(_decoded_lines(_Progress(fh, bar), encoding))
        last_line = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if last_line == 0:
                    raise FileProblem(1, f"unreadable CSV header: {exc}") from exc
                reason = f"unreadable CSV ({exc})"
                if "NUL" in str(exc):
                    reason += "; the file looks like UTF-16 — save it as UTF-8"
                raise FileProblem(reader.line_num, reason) from exc
            line = last_line + 1
            last_line = reader.line_num
            yield line, row


# XLSX ---------------------------------------------------------------------------------------------------------


def xlsx_cell_text(value: object) -> str:
    """A worksheet value as the text the CSV contract expects: 12.5 not 12.500000001, ISO dates, 1001 not 1001.0."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value)


def _xlsx_records(path: Path, bar: tqdm | None) -> Iterator[tuple[int, list[str]]]:
    from openpyxl import load_workbook  # only xlsx imports pay for it

    try:
        # read_only streams the sheet XML row by row; data_only gives formulas' cached values, never the formula.
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile/KeyError/InvalidFileException for a broken workbook
        raise FileProblem(0, f"not a readable .xlsx workbook ({exc.__class__.__name__}: {exc})") from exc
    try:
        sheet = workbook.worksheets[0]
        if bar is not None:
            bar.reset(total=sheet.max_row or None)
            bar.unit = "row"
            bar.unit_scale = False
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            if bar is not None:
                bar.update(1)
            cells = [xlsx_cell_text(v).strip() for v in values]
            while cells and not cells[-1]:
                cells.pop()
            if not cells and number > 1:
                continue
            yield number, cells
    finally:
        workbook.close()
