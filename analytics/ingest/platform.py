"""Importing a platform's exported history: members, products, orders and events from CSV (docs/IMPORT.md).

One pass in the default all-or-nothing mode (and with --dry-run): each file is read once, in chunks; every row of a
chunk is validated, and the chunk's valid rows are bulk-upserted at once, keyed by the platform's ids
(`external_id`), so importing the same files twice changes nothing. Everything runs in one transaction: after the
first rejected row nothing more is written but validation goes on, so every bad row is reported, and the
transaction is rolled back at the end. --partial validates everything first (a defect of a whole file must stop
it), then writes with each chunk committing on its own.

Memory is flat in file size: the ids seen so far (duplicate detection) and each member's first activity live in
temporary tables, not in Python sets and dicts; only the catalogue and one chunk are held.

Members own users, courses, tiers and orders, so this module writes them; events belong to analytics and go through
`analytics.ingest.events_bulk_ingest`, the same path the batch API uses, except in all-or-nothing mode, where they are
written from plain values (`analytics.ingest.events.EventValues`: COPY text lines on PostgreSQL, the same tuples on
SQLite), storing the same rows.
"""
from __future__ import annotations

import csv
import gc
import hashlib
import io
import json
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import slugify
from tqdm import tqdm

from analytics.ingest import read_ahead
from analytics.ingest.events import (
    MAX_IDEMPOTENCY_KEY_LENGTH,
    EventRow,
    EventValues,
    copy_event_lines,
    events_bulk_ingest,
    insert_event_rows,
    instant_adapter,
    instant_text_adapter,
    start_copy_of_event_lines,
)
from analytics.ingest.files import FileProblem as _FileProblem
from analytics.ingest.files import is_xlsx, read_records
from analytics.models import Event, ModelVersion
from config.bulk_load import (
    DirectCopy,
    ForeignKeys,
    SecondaryIndexes,
    copy_lines,
    foreign_key_checks_at_the_end,
    sqlite_insert,
    table_rows_at_least,
)
from config.db import refresh_planner_statistics
from config.storable_text import find_unstorable, text_problem
from members.models import (
    BillingPeriod,
    Coupon,
    CouponRedemption,
    Course,
    Currency,
    Enrollment,
    Language,
    MembershipTier,
    Order,
    User,
)

BATCH_SIZE = 2000
EVENT_BATCH_SIZE = 5000
# How many members' database ids the import keeps while it writes orders and events (≈ 200 bytes each): the
# platforms we import hold far fewer members than events, and past this many it looks the rest up chunk by chunk.
MEMBER_CACHE_SIZE = 250_000
ERRORS_KEPT_FOR_CONSOLE = 50
GENERIC_PRODUCT_SLUG = "imported-generic-product"
PLACEHOLDER_EMAIL_DOMAIN = "imported.invalid"
EVENT_SOURCE = "import"
MAX_AMOUNT = Decimal("99999999.99")  # DecimalField(max_digits=10, decimal_places=2)
CENT = Decimal("0.01")

# Processing order matters: orders reference products, members are created from orders and events.
FILE_KINDS = ("products", "members", "orders", "events")
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "members": ("member_id",),
    "products": ("product_id", "title"),
    "orders": ("order_id", "member_id", "ordered_at", "amount"),
    "events": ("member_id", "kind", "occurred_at"),
}
KNOWN_COLUMNS: dict[str, tuple[str, ...]] = {
    "members": ("member_id", "email", "name", "joined_at", "country", "language"),
    "products": ("product_id", "kind", "title", "price", "currency", "tags", "description", "published_at"),
    "orders": ("order_id", "member_id", "product_id", "amount", "currency", "ordered_at", "status", "quantity",
               "coupon_code", "billing_period", "refunded_at"),
    "events": ("event_id", "member_id", "kind", "object_type", "object_id", "occurred_at", "properties", "quantity"),
}
CURRENCIES = {currency.lower(): currency for currency in Currency.values}
ORDER_STATUSES = {"paid": Order.Status.PAID, "refunded": Order.Status.REFUNDED, "failed": Order.Status.FAILED}
LANGUAGE_ALIASES = {"en": Language.EN, "zh": Language.ZH_HANS, "zh-hans": Language.ZH_HANS, "zh-cn": Language.ZH_HANS,
                    "zh_cn": Language.ZH_HANS, "zh-sg": Language.ZH_HANS, "zh_hans": Language.ZH_HANS}
_SAFE_LOCAL_PART = re.compile(r"^[A-Za-z0-9._+-]{1,60}$")
_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")  # as config.storable_text, for a whole-row pre-check


# --------------------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class RowError:
    file: str
    line: int  # 1 is the header; 0 means the file as a whole
    column: str
    reason: str
    raw: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: column '{self.column}': {self.reason}" if self.column else f"{where}: {self.reason}"


@dataclass
class FileReport:
    kind: str
    path: str
    rows: int = 0
    valid: int = 0
    rejected: int = 0
    file_error: bool = False
    created: int = 0
    updated: int = 0
    duplicates: int = 0  # events already stored (re-import)
    seconds: float = 0.0  # validating + writing this file, for the rows/s the command prints

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ImportReport:
    files: dict[str, FileReport]
    error_count: int
    first_errors: list[RowError]
    written: bool
    dry_run: bool
    partial: bool
    members_created_from_activity: int = 0
    index_rebuild_seconds: float = 0.0  # bulk load: rebuilding the dropped secondary indexes before commit
    foreign_key_check_seconds: float = 0.0  # of which PostgreSQL's queued foreign key checks, run first
    foreign_key_seconds: float = 0.0  # PostgreSQL, tables loaded from empty: their foreign keys added again (validated)
    foreign_keys_checked_seconds: float = 0.0  # SQLite bulk load: the written tables' foreign keys checked in one pass
    # The learning sent when nothing had been learned from the platform yet (_send_learning): "" when none was sent,
    # else what became of it, for the report.
    learning: str = ""

    @property
    def ok(self) -> bool:
        return self.error_count == 0


# --------------------------------------------------------------------------------------------------------------
# Typed rows


# The rows built once per CSV line (an order, an event: millions per import) are plain slotted dataclasses, not frozen
# ones: a frozen dataclass's __init__ sets each field through object.__setattr__, 0.87 µs per row against 0.19 µs (8
# fields, bench/bench_import_micro.py), about 5 s of a 5,000,000-event import per row type. Nothing mutates them
# after validation.


@dataclass(frozen=True, slots=True)
class MemberRow:
    member_id: str
    email: str | None
    name: str
    joined_at: datetime | None
    country: str
    language: str | None


@dataclass(frozen=True, slots=True)
class ProductRow:
    product_id: str
    kind: str  # "course" | "tier"
    title: str
    price: Decimal
    currency: str
    tags: tuple[str, ...]
    description: str
    published_at: datetime | None


@dataclass(slots=True)  # not frozen: see the note above MemberRow
class OrderRow:
    order_id: str
    member_id: str
    product_id: str | None
    product_kind: str  # "course" | "tier"
    amount: Decimal
    currency: str
    ordered_at: datetime
    status: str
    quantity: int
    coupon_code: str
    billing_period: str
    refunded_at: datetime | None = None
    ordered_text: str | None = None  # ordered_at as the database stores it, when known from the CSV's text


@dataclass(slots=True)  # not frozen: see the note above MemberRow
class ImportedEvent:
    event_id: str | None
    member_id: str
    kind: str
    object_type: str
    object_id: str
    occurred_at: datetime
    properties: dict[str, Any]
    occurred_text: str | None = None  # occurred_at as the database stores it, when known from the CSV's text


# --------------------------------------------------------------------------------------------------------------
# Reading


def _raw_text(row: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(row)
    return buffer.getvalue()[:2000]


_NO_INDEX: dict[str, int] = {}


class _Cells:
    """One CSV record being validated; collects every column error of the row.

    The hot path of the importer (every cell of millions of rows goes through text()): a plain slotted class, and
    the unstorable-character scan runs once over the whole row; only a row that has one is checked cell by cell.
    """

    __slots__ = ("clean", "email", "errors", "file", "index", "key", "line", "row", "zone")

    def __init__(self, file: str, line: int, index: dict[str, int], row: list[str], zone: ZoneInfo | None = None) -> None:
        self.file = file
        self.line = line
        self.index = index
        self.row = row
        self.errors: list[RowError] = []
        joined = "\x1f".join(row)
        # ASCII without NUL is storable: the common row skips the regex (bench/bench_import_micro.py).
        self.clean = (joined.isascii() and "\x00" not in joined) or _UNSTORABLE_TEXT.search(joined) is None
        self.zone = zone
        # The row's id (order_id, event_id, member_id) and a member's email, for the duplicate check that runs per
        # chunk against the ids of earlier chunks (a temporary table, not a Python set of every id).
        self.key = ""
        self.email = ""

    @classmethod
    def validated(cls, file: str, line: int, row: list[str], errors: list[RowError] | None, key: str,
                  email: str) -> _Cells:
        """A record validated in another process (analytics.ingest.read_ahead): what the duplicate check and the
        error report use from here on."""
        cells = cls.__new__(cls)
        cells.file = file
        cells.line = line
        cells.index = _NO_INDEX  # only validation reads it
        cells.row = row
        cells.errors = errors or []
        cells.clean = True
        cells.zone = None
        cells.key = key
        cells.email = email
        return cells

    def texts(self, spec: tuple[tuple[str, bool, int | None], ...]) -> list[str]:
        """text() for several columns in one call: (column, required, max_length) each. The hot path of the
        importer (one call per row instead of one per cell)."""
        if not self.clean:
            return [self.text(column, required=required, max_length=max_length) for column, required, max_length in spec]
        row = self.row
        get = self.index.get
        values = []
        for column, required, max_length in spec:
            position = get(column)
            value = row[position].strip() if position is not None else ""
            if not value:
                if required:
                    self.error(column, "required value is empty")
            elif max_length is not None and len(value) > max_length:
                self.error(column, f"longer than {max_length} characters ({len(value)})")
                value = ""
            values.append(value)
        return values

    def error(self, column: str, reason: str) -> None:
        self.errors.append(RowError(self.file, self.line, column, reason, _raw_text(self.row)))

    def text(self, column: str, *, required: bool = False, max_length: int | None = None) -> str:
        position = self.index.get(column)
        value = self.row[position].strip() if position is not None else ""
        if not self.clean:
            problem = text_problem(value)
            if problem:
                # PostgreSQL would refuse it inside the COPY and fail the whole import; name the cell instead.
                self.error(column, problem)
                return ""
        if not value:
            if required:
                self.error(column, "required value is empty")
        elif max_length is not None and len(value) > max_length:
            self.error(column, f"longer than {max_length} characters ({len(value)})")
            return ""
        return value

    def instant(self, column: str, *, required: bool = False) -> datetime | None:
        return self.instant_of(column, self.text(column, required=required))

    def instant_of(self, column: str, value: str) -> datetime | None:
        if not value:
            return None
        parsed = parse_instant(value, self.zone)
        if parsed is None:
            self.error(column, f"not an ISO 8601 date or timestamp ({value!r})")
        return parsed

    def money(self, column: str, *, required: bool = False, default: Decimal | None = None) -> Decimal | None:
        value = self.text(column, required=required)
        if not value:
            return default
        amount, reason = parse_money(value)
        if reason:
            self.error(column, reason)
        return amount

    def choice(self, column: str, choices: dict[str, str], *, default: str) -> str:
        value = self.text(column)
        if not value:
            return default
        chosen = choices.get(value.lower())
        if chosen is None:
            self.error(column, f"must be one of {', '.join(sorted(set(choices)))} ({value!r})")
            return default
        return chosen


def parse_instant(value: str, zone: ZoneInfo | None = None) -> datetime | None:
    """ISO 8601 date or timestamp. A bare date, or a timestamp without an offset, is read in the site's time zone
    (`zone`, looked up once per import by the caller; else settings.TIME_ZONE)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone or _site_zone())
    return parsed


def _site_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def parse_money(value: str) -> tuple[Decimal | None, str]:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None, f"not a decimal number ({value!r})"
    if not amount.is_finite():
        return None, f"not a decimal number ({value!r})"
    if amount < 0:
        return None, f"negative amount ({value!r})"
    if amount != amount.quantize(CENT):
        return None, f"more than 2 decimal places ({value!r})"
    if amount > MAX_AMOUNT:
        return None, f"larger than {MAX_AMOUNT} ({value!r})"
    return amount.quantize(CENT), ""


def _records(
    path: Path, kind: str, bar: tqdm | None, encoding: str | None = None
) -> Iterator[tuple[int, dict[str, int], list[str], bool]]:
    """Yield (line, header index, fields) for each non-blank record; raise _FileProblem for file-level defects.
    CSV in any supported encoding and .xlsx come through the same records (analytics/ingest/files.py)."""
    records = read_records(path, encoding=encoding, bar=bar)
    try:
        _, header = next(records)
    except StopIteration:
        raise _FileProblem(0, "the file is empty (no header row)") from None
    names = [name.strip().lower() for name in header]
    if not any(names):
        raise _FileProblem(1, "the header row is blank")
    missing = [column for column in REQUIRED_COLUMNS[kind] if column not in names]
    if missing:
        raise _FileProblem(
            1, f"missing required column(s): {', '.join(missing)} (header has: {', '.join(names)})"
        )
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        index.setdefault(name, position)
    width = len(names)
    for line, row in records:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) < width:
            row += [""] * (width - len(row))
        # Trailing empty cells (a stray comma) are harmless; real values beyond the header are not.
        too_wide = len(row) > width and any(cell.strip() for cell in row[width:])
        yield line, index, row, too_wide


_Chunk = list[tuple["_Cells", Any]]


class _EventValues(list):
    """A chunk of events whose valid rows are plain tuples instead of ImportedEvents (_State.event_values): (member_id,
    key, kind, object_type, object_id, occurred_at as the database is given it, properties), what the writing process
    makes each event's stored values of (analytics.ingest.events.EventValues). The key is the one stored (an id-less
    event's content hash is made here, from the parsed instant), and `firsts` holds each member's earliest instant
    in the chunk, as isoformat() text, in the order the members first appear. The firsts stand for every valid row:
    a chunk is written only when all of it is (all-or-nothing stops writing at the first rejected row)."""

    firsts: dict[str, str]


def _firsts(pairs: Iterable[tuple[str, datetime]]) -> dict[str, datetime]:
    """Each member's earliest instant among (member_id, instant) pairs, in the order the members first appear."""
    firsts: dict[str, datetime] = {}
    for member_id, when in pairs:
        first = firsts.get(member_id)
        if first is None or when < first:
            firsts[member_id] = when
    return firsts


def _event_values(chunk: _Chunk, instant: Callable[[datetime], str]) -> _EventValues:
    out = _EventValues(
        (cells, None if event is None else (
            event.member_id, event.event_id or _event_fingerprint(event), event.kind, event.object_type,
            event.object_id, event.occurred_text or instant(event.occurred_at), event.properties))
        for cells, event in chunk
    )
    firsts = _firsts((event.member_id, event.occurred_at) for _, event in chunk if event is not None)
    out.firsts = {member_id: when.isoformat() for member_id, when in firsts.items()}
    return out


# The kinds read ahead, with the row type their validation returns (products: see _validated_chunks).
_ROW_TYPES: dict[str, type] = {"members": MemberRow, "orders": OrderRow, "events": ImportedEvent}


def _validated_chunks(kind: str, path: Path, state: _State, bar: tqdm | None, *,
                      ahead: bool) -> Iterator[tuple[_Chunk, _FileProblem | None]]:
    """The file's records validated, a chunk at a time (EVENT_BATCH_SIZE rows for events, BATCH_SIZE otherwise),
    each with None, or, at a file-level defect, the rows before it with the problem, and nothing after.

    With `ahead` (a pass that writes), a large file of members, orders or events is read ahead in a forked process
    (analytics.ingest.read_ahead) while this one writes the chunk before: their validation reads the state and
    never changes it. Products (whose validation records each product for the orders), small files, workbooks and
    a pass that only validates (nothing to overlap: the child's pickling would only add to its time) are read
    here."""
    row_type = _ROW_TYPES.get(kind)
    if (not ahead or row_type is None or not settings.IMPORT_READ_AHEAD or not read_ahead.available()
            or path.stat().st_size < read_ahead.MIN_BYTES
            or is_xlsx(path)):  # a workbook's bar counts rows, reset once the sheet is open: read here
        return _read_chunks(kind, path, state, bar)
    name = path.name

    def decode(encoded: tuple[Any, ...]) -> tuple[_Chunk, _FileProblem | None]:
        return _decode_chunk(name, row_type, encoded)

    return read_ahead.read_ahead(lambda tally: _read_chunks(kind, path, state, tally), encode=_encode_chunk,
                                 decode=decode, bar=bar)


def _read_chunks(kind: str, path: Path, state: _State, bar: Any) -> Iterator[tuple[_Chunk, _FileProblem | None]]:
    validate = VALIDATORS[kind]
    zone = state.zone
    name = path.name
    size = EVENT_BATCH_SIZE if kind == "events" else BATCH_SIZE
    values = state.event_values if kind == "events" else None

    def out(chunk: _Chunk) -> _Chunk:
        return chunk if values is None else _event_values(chunk, values.instant)

    chunk: _Chunk = []
    try:
        for line, index, row, too_wide in _records(path, kind, bar, state.encoding):
            cells = _Cells(name, line, index, row, zone)
            if too_wide:
                cells.error("", f"has {len(row)} fields, more than the header's {len(index)}")
                chunk.append((cells, None))
            else:
                chunk.append((cells, validate(cells, state)))
            if len(chunk) >= size:
                yield out(chunk), None
                chunk = []
    except _FileProblem as problem:
        yield out(chunk), problem
        return
    if chunk:
        yield out(chunk), None


def _encode_chunk(item: tuple[_Chunk, _FileProblem | None]) -> tuple[Any, ...]:
    """A validated chunk as tuples of plain values for the pipe: pickling the _Cells and row objects themselves
    cost about twice as much on each side (bench/bench_import_micro.py --read-ahead). The record's cells travel
    too, for the message of a duplicate the writing process finds later; they share their strings with the row's
    values in the pickle."""
    chunk, problem = item
    firsts = chunk.firsts if isinstance(chunk, _EventValues) else None
    if firsts is not None:  # the valid rows are tuples already
        rows = [(cells.line, cells.row, cells.errors or None, cells.key, cells.email, typed) for cells, typed in chunk]
    else:
        rows = [
            (cells.line, cells.row, cells.errors or None, cells.key, cells.email,
             None if typed is None else tuple([getattr(typed, name) for name in typed.__match_args__]))
            for cells, typed in chunk
        ]
    return rows, None if problem is None else (problem.line, problem.reason, problem.column), firsts


def _decode_chunk(file: str, row_type: type, encoded: tuple[Any, ...]) -> tuple[_Chunk, _FileProblem | None]:
    rows, problem, firsts = encoded
    chunk: _Chunk
    if firsts is not None:
        chunk = _EventValues([(_Cells.validated(file, line, row, errors, key, email), values)
                             for line, row, errors, key, email, values in rows])
        chunk.firsts = firsts
    else:
        chunk = [(_Cells.validated(file, line, row, errors, key, email), None if values is None else row_type(*values))
                 for line, row, errors, key, email, values in rows]
    return chunk, None if problem is None else _FileProblem(*problem)


# --------------------------------------------------------------------------------------------------------------
# Validation (pure functions of the row and the state built from earlier rows/files)


@dataclass
class _State:
    """What validation learns from earlier rows and files. Only catalogue-sized structures live here; the ids of
    members, orders and events seen so far are in temporary tables (_Ledger), so memory is flat in file size."""

    db_products: dict[str, str]  # external_id -> "course" | "tier" (catalogue: small)
    db_emails: dict[str, str | None]  # lower email -> external_id of its owner
    file_products: dict[str, str] = field(default_factory=dict)
    encoding: str | None = None  # None: detect UTF-8 / GB18030 (analytics/ingest/files.py)
    zone: ZoneInfo | None = None  # the site's time zone, for timestamps without an offset
    # A timestamp's stored text straight from the CSV's text, where the database allows (events.instant_text_adapter)
    instant_text: Callable[[str], str | None] | None = None
    # Set by a writer in all-or-nothing mode: events are read as plain values (_EventValues)
    event_values: EventValues | None = None


def _validate_member(cells: _Cells, state: _State) -> MemberRow | None:
    member_id = cells.text("member_id", required=True, max_length=100)
    email = cells.text("email", max_length=254).lower()
    cells.key = member_id
    if email:
        try:
            validate_email(email)
        except ValidationError:
            cells.error("email", f"not an email address ({email!r})")
        else:
            owner = state.db_emails.get(email, member_id)
            if owner != member_id:
                cells.error("email", f"{email!r} already belongs to another member")
            else:
                cells.email = email  # checked against the earlier rows' emails per chunk
    name = cells.text("name", max_length=120)
    joined_at = cells.instant("joined_at")
    country = cells.text("country").upper()
    if country and not (len(country) == 2 and country.isalpha()):
        cells.error("country", f"not a 2-letter country code ({country!r})")
    language_value = cells.text("language")
    language = None
    if language_value:
        language = LANGUAGE_ALIASES.get(language_value.lower())
        if language is None:
            cells.error("language", f"must be one of en, zh-hans ({language_value!r})")
    if cells.errors:
        return None
    return MemberRow(member_id, email or None, name, joined_at, country, language)


def _validate_product(cells: _Cells, state: _State) -> ProductRow | None:
    product_id = cells.text("product_id", required=True, max_length=100)
    kind = cells.choice("kind", {"course": "course", "tier": "tier"}, default="course")
    title = cells.text("title", required=True, max_length=80 if kind == "tier" else 200)
    price = cells.money("price", default=Decimal("0.00"))
    currency = cells.choice("currency", CURRENCIES, default=Currency.CNY)
    tags = tuple(tag.strip() for tag in cells.text("tags").split(";") if tag.strip())
    description = cells.text("description")
    published_at = cells.instant("published_at")
    if product_id and product_id in state.file_products:
        cells.error("product_id", f"duplicate product_id {product_id!r} (appears earlier in the file)")
    if cells.errors:
        return None
    state.file_products[product_id] = kind
    return ProductRow(product_id, kind, title, price or Decimal("0.00"), currency, tags, description, published_at)


_ORDER_TEXTS = (("order_id", True, 100), ("member_id", True, 100), ("product_id", False, None),
                ("quantity", False, None), ("coupon_code", False, 40), ("ordered_at", True, None))


def _validate_order(cells: _Cells, state: _State) -> OrderRow | None:
    order_id, member_id, product_id, quantity_value, coupon_code, ordered_value = cells.texts(_ORDER_TEXTS)
    cells.key = order_id
    product_id = product_id or None
    product_kind = "course"
    if product_id is not None:
        known = state.file_products.get(product_id) or state.db_products.get(product_id)
        if known is None:
            cells.error("product_id", f"unknown product {product_id!r} (not in the products file nor the database)")
        else:
            product_kind = known
    amount = cells.money("amount", required=True)
    currency = cells.choice("currency", CURRENCIES, default=Currency.CNY)
    ordered_at = cells.instant_of("ordered_at", ordered_value)
    status = cells.choice("status", ORDER_STATUSES, default=Order.Status.PAID)
    quantity = 1
    if quantity_value:
        if quantity_value.isdigit() and 0 < int(quantity_value) < 2**31:
            quantity = int(quantity_value)
        else:
            cells.error("quantity", f"not a positive whole number ({quantity_value!r})")
    billing_period = ""
    if product_kind == "tier":
        billing_period = cells.choice(
            "billing_period", {"month": BillingPeriod.MONTH, "year": BillingPeriod.YEAR}, default=BillingPeriod.MONTH
        )
    # When the refund happened: without it a refund is not known to predate any as_of (see analytics datasets).
    refunded_at = cells.instant("refunded_at") if status == Order.Status.REFUNDED else None
    if refunded_at is not None and ordered_at is not None and refunded_at < ordered_at:
        cells.error("refunded_at", "before ordered_at")
    if cells.errors or amount is None or ordered_at is None:
        return None
    stored = state.instant_text(ordered_value) if state.instant_text is not None else None
    return OrderRow(order_id, member_id, product_id, product_kind, amount, currency, ordered_at, status, quantity,
                    coupon_code, billing_period, refunded_at, stored)


MAX_EVENT_ID_LENGTH = MAX_IDEMPOTENCY_KEY_LENGTH - len(EVENT_SOURCE) - 1


_EVENT_TEXTS = (("event_id", False, MAX_EVENT_ID_LENGTH), ("member_id", True, 100), ("kind", True, 60),
                ("object_type", False, 40), ("object_id", False, 64), ("occurred_at", True, None),
                ("properties", False, None), ("quantity", False, None))


def _validate_event(cells: _Cells, state: _State) -> ImportedEvent | None:
    event_id, member_id, kind, object_type, object_id, occurred_value, properties_value, quantity_value = (
        cells.texts(_EVENT_TEXTS)
    )
    cells.key = event_id
    occurred_at = cells.instant_of("occurred_at", occurred_value)
    properties: dict[str, Any] = {}
    if properties_value:
        try:
            loaded = json.loads(properties_value)
        except ValueError:
            cells.error("properties", f"not valid JSON ({properties_value[:60]!r})")
        else:
            bad = find_unstorable(loaded) if isinstance(loaded, dict) else None
            if bad is not None:
                # e.g. {"note": "\ud800"}: valid JSON, but neither PostgreSQL nor UTF-8 can hold it.
                cells.error("properties", f"{bad[0]}: {bad[1]}")
            elif isinstance(loaded, dict):
                properties = loaded
            else:
                cells.error("properties", "must be a JSON object ({...})")
    if quantity_value:
        try:
            quantity = float(quantity_value)
        except ValueError:
            quantity = float("nan")
        if quantity != quantity or abs(quantity) == float("inf"):
            cells.error("quantity", f"not a number ({quantity_value!r})")
        else:
            properties.setdefault("quantity", quantity)
    if cells.errors or occurred_at is None:
        return None
    stored = state.instant_text(occurred_value) if state.instant_text is not None else None
    return ImportedEvent(event_id or None, member_id, kind, object_type, object_id, occurred_at, properties, stored)


VALIDATORS: dict[str, Callable[[_Cells, _State], Any]] = {
    "members": _validate_member,
    "products": _validate_product,
    "orders": _validate_order,
    "events": _validate_event,
}


# --------------------------------------------------------------------------------------------------------------
# Error sink


class _ErrorSink:
    """Streams every rejected row to the --errors-out CSV and keeps only the first few for the console."""

    def __init__(self, path: Path | None) -> None:
        self.count = 0
        self.first: list[RowError] = []
        self._fh: TextIO | None = None
        self._writer: Any = None
        if path is not None:
            self._fh = path.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._fh)
            self._writer.writerow(["file", "line", "column", "reason", "raw"])

    def add(self, error: RowError) -> None:
        self.count += 1
        if len(self.first) < ERRORS_KEPT_FOR_CONSOLE:
            self.first.append(error)
        if self._writer is not None:
            self._writer.writerow([error.file, error.line, error.column, error.reason, error.raw])

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


# --------------------------------------------------------------------------------------------------------------
# Passes


class _Ledger:
    """The ids seen so far in one file, in a temporary table whose primary key finds repeats: duplicate detection
    with memory flat in file size (a Python set of 5,000,000 event ids was ≈ 425 MB). Each id is stored with the
    chunk that claimed it; a chunk's ids go in with one bulk INSERT ... ON CONFLICT DO NOTHING, and only when fewer
    rows went in than were offered (a duplicate: rare) does a SELECT find which."""

    def __init__(self, name: str) -> None:
        self.table = f"import_seen_{name}"
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
            cursor.execute(f"CREATE TEMPORARY TABLE {self.table} (item TEXT{_bytewise()} PRIMARY KEY, chunk INTEGER NOT NULL)"
                           + _keyed_only())
        _create_staging(self.table)
        self.direct = DirectCopy()

    def seen(self, keys: list[str], *, before_chunk: int | None = None) -> set[str]:
        """Which of these keys earlier chunks claimed (all chunks so far when before_chunk is None)."""
        if not keys:
            return set()
        where = "" if before_chunk is None else f" AND chunk <> {int(before_chunk)}"
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"SELECT item FROM {self.table} WHERE item = ANY(%s){where}", [keys])
            else:
                cursor.execute(f"SELECT item FROM {self.table} WHERE item IN ({', '.join(['%s'] * len(keys))}){where}",
                               keys)
            return {key for (key,) in cursor.fetchall()}

    def claim(self, keys: list[str], chunk: int) -> set[str]:
        """Record the keys for this chunk; return those an earlier chunk already holds (not recorded again)."""
        if not keys:
            return set()
        with connection.cursor() as cursor:
            # PostgreSQL: COPY straight into the ledger (the keys of one chunk are distinct); the first repeat of an
            # earlier chunk's id makes its primary key refuse the batch, and from then on the path below runs.
            if self.direct.enabled and self.direct.copy(cursor, self.table, "item, chunk", keys,
                                                        text=copy_lines(keys, f"\t{int(chunk)}")):
                return set()
        rows = [(key, chunk) for key in keys]
        inserted = _bulk_insert(self.table, ("item", "chunk"), rows, " ON CONFLICT (item) DO NOTHING")
        return set() if inserted == len(keys) else self.seen(keys, before_chunk=chunk)

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}_staging")


def _bytewise() -> str:
    """The collation for the temporary tables' keys: only ever compared for equality, so PostgreSQL's "C" (memcmp)
    instead of the database's locale (strcoll per comparison). SQLite compares bytes already."""
    return ' COLLATE "C"' if connection.vendor == "postgresql" else ""


def _keyed_only() -> str:
    """SQLite: store a temporary table's rows in its primary key's B-tree (WITHOUT ROWID) instead of a rowid table
    plus a separate index on the key: one tree to insert into per id instead of two."""
    return " WITHOUT ROWID" if connection.vendor == "sqlite" else ""


def _create_staging(table: str) -> None:
    """PostgreSQL: the table _bulk_insert COPYs into, created once per import (emptied before each use)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {table}_staging")
            cursor.execute(f"CREATE TEMPORARY TABLE {table}_staging (LIKE {table})")


def _bulk_insert(table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]], conflict: str) -> int:
    """INSERT many rows into a temporary table; the number inserted. Many rows per statement on SQLite
    (config.bulk_load.sqlite_insert); on PostgreSQL COPY into a staging table (kept for the import, emptied each
    time) and one INSERT ... SELECT."""
    names = ", ".join(columns)
    if connection.vendor != "postgresql":
        return sqlite_insert(f"INSERT INTO {table} ({names})", len(columns), rows, conflict)
    with connection.cursor() as cursor:
        staging = f"{table}_staging"
        cursor.execute(f"TRUNCATE {staging}")
        with cursor.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} WHERE true{conflict}")
        return cursor.rowcount


class _FirstActivity:
    """The first order/event of this import of each member whose date_joined follows it (adjust = 1: created here
    from orders/events, or in the members file without joined_at), in a temporary table (member_id, first_at,
    adjust) rather than a Python dict of every member. Applied set-based at the end by one UPDATE (docs/IMPORT.md)."""

    table = "import_first_activity"

    def __init__(self) -> None:
        self.when_type = User._meta.get_field("date_joined").db_type(connection)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
            cursor.execute(f"CREATE TEMPORARY TABLE {self.table} "
                           f"(member_id TEXT PRIMARY KEY, first_at {self.when_type} NULL, adjust INTEGER NOT NULL)"
                           + _keyed_only())
        _create_staging(self.table)

    def flag(self, member_ids: list[str]) -> None:
        """These members' date_joined is their first activity of this import."""
        _bulk_insert(self.table, ("member_id", "first_at", "adjust"), [(member_id, None, 1) for member_id in member_ids],
                     " ON CONFLICT (member_id) DO UPDATE SET adjust = 1")

    def saw(self, firsts: dict[str, Any]) -> None:
        """firsts: member_id -> the earliest adapted instant in one chunk."""
        _bulk_insert(
            self.table, ("member_id", "first_at", "adjust"), [(member_id, when, 0) for member_id, when in firsts.items()],
            f" ON CONFLICT (member_id) DO UPDATE SET first_at = CASE WHEN {self.table}.first_at IS NULL"
            f" OR excluded.first_at < {self.table}.first_at THEN excluded.first_at ELSE {self.table}.first_at END",
        )

    def apply(self) -> int:
        users = connection.ops.quote_name(User._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {users} SET date_joined = (SELECT first_at FROM {self.table} a WHERE a.member_id = {users}.external_id)"
                f" WHERE external_id IN (SELECT member_id FROM {self.table} WHERE adjust = 1 AND first_at IS NOT NULL)"
            )
            return cursor.rowcount

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}_staging")


DUPLICATE_KEY_COLUMN = {"members": "member_id", "orders": "order_id", "events": "event_id"}


class _Pass:
    """One pass over the files: validate every row, and (write=True) write each chunk's good rows as it is read.

    All-or-nothing runs one such pass inside one transaction: writing stops at the first rejected row but validation
    goes on to the end, so every bad row is reported; the caller then rolls everything back. --partial runs a
    validating pass first (a file-level problem must stop everything) and a writing pass whose chunks commit on
    their own.
    """

    def __init__(self, *, state: _State, reports: dict[str, FileReport] | None, sink: _ErrorSink | None,
                 writer: _Writer | None, progress: bool, say: Callable[[str], None]) -> None:
        self.state = state
        self.reports = reports
        self.sink = sink
        self.writer = writer
        self.progress = progress
        self.say = say
        self.ledgers: dict[str, _Ledger] = {}
        self.chunks = 0

    def ledger(self, name: str) -> _Ledger:
        if name not in self.ledgers:
            self.ledgers[name] = _Ledger(name)
        return self.ledgers[name]

    def close(self) -> None:
        for ledger in self.ledgers.values():
            ledger.drop()

    def writing(self) -> bool:
        # All-or-nothing: once a row is rejected nothing will be kept, so stop writing (and keep validating).
        return self.writer is not None and (self.writer.partial or self.sink is None or self.sink.count == 0)

    def run(self, kind: str, path: Path) -> bool:
        """Validate (and write) one file; False if the file as a whole was rejected."""
        name = path.name
        report = self.reports[kind] if self.reports is not None else None
        bar = _bar(self.progress, f"import {name}", path)
        started, rows = time.perf_counter(), 0
        chunks = _validated_chunks(kind, path, self.state, bar, ahead=self.writing())
        try:
            for chunk, problem in chunks:
                if problem is not None:
                    # The rows before the defect are still checked and reported (never written: the file is
                    # rejected).
                    self._chunk(kind, chunk, report, write=False)
                    if report is not None:
                        report.file_error = True
                    if self.sink is not None:
                        self.sink.add(RowError(name, problem.line, problem.column, problem.reason))
                    return False
                self._chunk(kind, chunk, report)
                rows += len(chunk)
                if bar is not None:  # the bar counts bytes (with an ETA); the rate in rows is what people know
                    bar.set_postfix_str(f"{rows / (time.perf_counter() - started):,.0f} rows/s", refresh=False)
        finally:
            chunks.close()  # a file read ahead: its process is stopped if this one stopped early
            if self.writer is not None:
                self.writer.settle()
            if bar is not None:
                bar.close()
        return True

    def _chunk(self, kind: str, chunk: list[tuple[_Cells, Any]], report: FileReport | None, *,
               write: bool = True) -> None:
        if self.writer is not None:
            self.writer.settle()  # before the duplicate ledger's queries: the connection is the writer's again
        key_column = DUPLICATE_KEY_COLUMN.get(kind)
        if key_column is not None:
            self._duplicates(kind, key_column, chunk)
        good = []
        for cells, typed in chunk:
            if cells.errors:
                if self.sink is not None:
                    for error in cells.errors:
                        self.sink.add(error)
                if report is not None:
                    report.rejected += 1
            else:
                good.append(typed)
        if report is not None:
            report.rows += len(chunk)
            report.valid += len(good)
        if good and write and self.writing():
            assert self.writer is not None
            file_report = self.reports[kind] if self.reports is not None else None
            if isinstance(chunk, _EventValues):
                self.writer.event_values(good, chunk.firsts, file_report)
            else:
                getattr(self.writer, kind)(good, file_report)

    def _duplicates(self, kind: str, key_column: str, chunk: list[tuple[_Cells, Any]]) -> None:
        """The first occurrence of an id is kept, later ones are rejected: against the earlier chunks (the ledger) and
        within this one. A rejected row does not claim its id, as before."""
        self.chunks += 1
        ledger = self.ledger(kind)
        message = f"duplicate {key_column} {{!r}} (appears earlier in the file)"
        if kind == "members":
            self._member_duplicates(ledger, message, chunk)
            return
        claimed: dict[str, _Cells] = {}
        rejected: list[_Cells] = []  # rejected for another reason: still told if the id is a repeat
        for cells, _ in chunk:
            key = cells.key
            if not key:
                continue
            if key in claimed:
                cells.error(key_column, message.format(key))
            elif cells.errors:
                rejected.append(cells)
            else:
                claimed[key] = cells
        for key in ledger.claim(list(claimed), self.chunks):
            claimed[key].error(key_column, message.format(key))
        if rejected:
            earlier = ledger.seen([cells.key for cells in rejected], before_chunk=self.chunks)
            for cells in rejected:
                if cells.key in earlier:
                    cells.error(key_column, message.format(cells.key))

    def _member_duplicates(self, ledger: _Ledger, message: str, chunk: list[tuple[_Cells, Any]]) -> None:
        # Two keys per row (member_id and email), each claimed only if the row has no error at all: look up first.
        emails = self.ledger("emails")
        earlier = ledger.seen(list({cells.key for cells, _ in chunk if cells.key}))
        earlier_emails = emails.seen(list({cells.email for cells, _ in chunk if cells.email}))
        claimed: dict[str, None] = {}
        claimed_emails: dict[str, None] = {}
        for cells, _ in chunk:
            key = cells.key
            if cells.email and (cells.email in earlier_emails or cells.email in claimed_emails):
                cells.error("email", f"duplicate email {cells.email!r} (appears earlier in the file)")
            if key and (key in earlier or key in claimed):
                cells.error("member_id", message.format(key))
            elif key and not cells.errors:
                claimed[key] = None
                if cells.email:
                    claimed_emails[cells.email] = None
        ledger.claim(list(claimed), self.chunks)
        emails.claim(list(claimed_emails), self.chunks)


def _bar(enabled: bool, label: str, path: Path) -> tqdm | None:
    if not enabled:
        return None
    return tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=label, file=sys.stderr, leave=False)


def _initial_state(encoding: str | None) -> _State:
    db_products: dict[str, str] = {}
    for external_id in MembershipTier.objects.filter(external_id__isnull=False).values_list("external_id", flat=True):
        db_products[external_id] = "tier"
    for external_id in Course.objects.filter(external_id__isnull=False).values_list("external_id", flat=True):
        db_products[external_id] = "course"
    db_emails = dict(User.objects.values_list("email", "external_id").iterator(chunk_size=10000))
    return _State(db_products=db_products, db_emails=db_emails, encoding=encoding, zone=_site_zone(),
                  instant_text=instant_text_adapter(connection))


class _RollBack(Exception):
    """Raised inside the import's transaction to undo it (dry run, rejected rows, a rejected file)."""


def import_platform_data(
    *,
    members: Path | None = None,
    products: Path | None = None,
    orders: Path | None = None,
    events: Path | None = None,
    dry_run: bool = False,
    partial: bool = False,
    errors_out: Path | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    encoding: str | None = None,
    bulk_load: str | None = None,
) -> ImportReport:
    """Validate every given file and (unless dry_run, or rows were rejected in all-or-nothing mode) upsert the valid
    rows. All-or-nothing and --dry-run read each file once; --partial reads it twice (validate, then write).

    bulk_load (auto / always / never; default settings.IMPORT_BULK_LOAD): whether the all-or-nothing import drops
    the secondary indexes of the tables it loads and rebuilds them before committing (_bulk_load_models)."""
    mode = bulk_load or settings.IMPORT_BULK_LOAD
    if mode not in BULK_LOAD_MODES:
        raise ValueError(f"bulk_load={mode!r}: use one of {', '.join(BULK_LOAD_MODES)}")
    with _fewer_collections():
        report = _import(members=members, products=products, orders=orders, events=events, dry_run=dry_run,
                         partial=partial, errors_out=errors_out, progress=progress, log=log, encoding=encoding,
                         bulk_load=mode)
    if _nothing_learned_from(report):
        report.learning = "to be sent when the import commits"
        transaction.on_commit(lambda: _send_learning(report))
    return report


def _nothing_learned_from(report: ImportReport) -> bool:
    """Whether the import wrote orders or events to a platform no repurchase model serves yet (ANALYTICS_LEARN_AFTER_
    IMPORT). Then the first night would have everything to learn: the model, the engagement weights, the
    recommendation blend, on the history just imported. Once a model serves, beat's weekly learning takes the
    new rows in on its day, as it does every week's."""
    wrote_history = report.written and any(
        f.valid and not f.file_error for kind, f in report.files.items() if kind in ("orders", "events"))
    return (wrote_history and getattr(settings, "ANALYTICS_LEARN_AFTER_IMPORT", True)
            and not ModelVersion.objects.filter(kind="repurchase", is_serving=True).exists())


def _send_learning(report: ImportReport) -> None:
    """Send beat's weekly learning now (analytics.scoring.tasks.send_learning). A broker that does not answer loses
    nothing: the rows are committed, and the night trains what it finds missing."""
    from analytics.scoring.tasks import send_learning

    try:
        send_learning()
    except Exception as exc:  # the broker's errors vary by transport; the import itself has succeeded
        report.learning = (f"not sent ({type(exc).__name__}: {exc}); the next nightly pipeline will learn "
                           f"the model, the engagement weights and the recommendation blend itself")
    else:
        report.learning = ("sent to the worker: the repurchase model with the engagement weights, and the "
                           "recommendation blend (beat's weekly learning), learned now from the imported history")


BULK_LOAD_MODES = ("auto", "always", "never")
# The tables each file loads in bulk (orders also write one enrolment per paid course order). Users, products and
# coupon redemptions are small next to these; their indexes are maintained row by row as before.
BULK_LOAD_TABLES: dict[str, tuple[Any, ...]] = {"orders": (Order, Enrollment), "events": (Event,)}
# Every table an import writes to: on SQLite, a bulk load checks their foreign keys once, before commit.
IMPORTED_MODELS = [MembershipTier, Course, User, Order, Enrollment, CouponRedemption, Event]


def estimated_rows(path: Path) -> int:
    """About how many rows a file holds, without reading it: the CSV's size over the mean line length of its first
    megabyte (a multi-line quoted cell only makes the estimate larger); an .xlsx sheet's recorded dimension."""
    if is_xlsx(path):
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(path, read_only=True, data_only=True)
        except Exception:  # the import itself reports an unreadable workbook
            return 0
        try:
            return max((workbook.worksheets[0].max_row or 1) - 1, 0)
        finally:
            workbook.close()
    size = path.stat().st_size
    with path.open("rb") as fh:
        sample = fh.read(1 << 20)
    lines = sample.count(b"\n") + (0 if sample.endswith(b"\n") else 1)
    if len(sample) >= size:
        return max(lines - 1, 0)
    return int(size * lines / len(sample))


def _bulk_load_models(given: dict[str, Path], mode: str, say: Callable[[str], None]) -> list[Any]:
    """The tables whose secondary indexes this import drops and rebuilds.

    "auto" (the default): a table qualifies when the file that loads it holds at least IMPORT_BULK_LOAD_MIN_ROWS
    rows and at least as many rows as the table holds now. Rebuilding an index sorts every row of the table once,
    existing ones included, while maintaining it costs a random B-tree descent per incoming row and index; once the
    incoming rows are as many as the existing ones the rebuild is the cheaper (a first import into an empty table
    most of all). Below the minimum the difference is under a second and not worth a table lock. "always" drops
    them for any loaded table, "never" keeps them.
    """
    if mode == "never":
        return []
    models = []
    for kind, targets in BULK_LOAD_TABLES.items():
        if kind not in given:
            continue
        incoming = estimated_rows(given[kind])
        for model in targets:
            if mode == "always":
                models.append(model)
                continue
            if incoming < settings.IMPORT_BULK_LOAD_MIN_ROWS:
                continue
            existing = table_rows_at_least(model, incoming + 1)
            if existing <= incoming:
                say(f"bulk load into {model._meta.db_table}: about {incoming:,} incoming rows, {existing:,} stored")
                models.append(model)
    return models


def _empty_on_postgres(models: list[Any]) -> list[Any]:
    """Of the bulk-loaded tables, those empty now, on PostgreSQL: their foreign keys are dropped and added again
    (config.bulk_load.ForeignKeys) and their rows COPYed straight in. Only for empty tables: dropping a foreign key
    locks the referenced table (members_user) until the import commits, a price for a first import only."""
    if connection.vendor != "postgresql":
        return []
    return [model for model in models if table_rows_at_least(model, 1) == 0]


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """The import allocates millions of short-lived rows; the cyclic garbage collector's full passes over the
    process's long-lived objects (Django, the catalogue) cost a third of the validation CPU. Freeze what exists
    before the import and collect the young generation less often; undone afterwards (a Celery worker lives on)."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, threshold[1], threshold[2])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _import(
    *,
    members: Path | None,
    products: Path | None,
    orders: Path | None,
    events: Path | None,
    dry_run: bool,
    partial: bool,
    errors_out: Path | None,
    progress: bool,
    log: Callable[[str], None] | None,
    encoding: str | None,
    bulk_load: str,
) -> ImportReport:
    paths = {"members": members, "products": products, "orders": orders, "events": events}
    given = {kind: Path(path) for kind, path in paths.items() if path is not None}
    say = log or (lambda message: None)
    reports = {kind: FileReport(kind=kind, path=str(path)) for kind, path in given.items()}
    sink = _ErrorSink(errors_out)
    if connection.vendor == "sqlite":
        # The default 2 MB page cache thrashes once the event and order indexes outgrow it (~1M rows); 256 MB keeps
        # index pages in memory for the import. Per connection, so it only affects this process.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size = -262144")
            # The duplicate-id ledgers are temporary tables: SQLite keeps them in a temporary file behind a bounded
            # page cache (temp_store = MEMORY would hold every id in memory again).
            cursor.execute("PRAGMA temp.cache_size = -65536")
    report = ImportReport(files=reports, error_count=0, first_errors=sink.first, written=False, dry_run=dry_run,
                          partial=partial)
    broken: set[str] = set()

    def run_pass(pass_: _Pass, *, counted: bool) -> None:
        for kind in FILE_KINDS:
            if kind not in given:
                continue
            started = time.perf_counter()
            if not pass_.run(kind, given[kind]):
                broken.add(kind)
            if counted:
                file_report = reports[kind]
                file_report.seconds += time.perf_counter() - started
                verb = "imported" if pass_.writing() else "validated"
                say(f"{verb} {given[kind].name}: {file_report.valid} valid, {file_report.rejected} rejected"
                    + (" (file rejected)" if kind in broken else "")
                    + f" ({file_report.rows_per_second:,.0f} rows/s)")
        # Not in a finally: after a database error the transaction is aborted, and its rollback drops them anyway.
        pass_.close()

    try:
        if partial and not dry_run:
            # A file-level problem (encoding, header) must stop everything even with --partial, and may sit at the
            # end of a file: validate everything first (temporary tables only, rolled back), then write.
            try:
                with transaction.atomic():
                    run_pass(_Pass(state=_initial_state(encoding), reports=reports, sink=sink, writer=None,
                                   progress=progress, say=say), counted=True)
                    raise _RollBack
            except _RollBack:
                pass
            if not broken:
                state = _initial_state(encoding)
                writer = _Writer(state=state, partial=True, say=say)
                started = time.perf_counter()
                run_pass(_Pass(state=state, reports=None, sink=None, writer=writer, progress=progress, say=say),
                         counted=False)
                writer.finish()
                _record_writes(writer, reports, report, time.perf_counter() - started)
        else:
            # Which tables are bulk-loaded is decided before the transaction: on SQLite, foreign key enforcement can
            # only be switched off outside one (config.bulk_load.foreign_key_checks_at_the_end).
            bulk = [] if dry_run else _bulk_load_models(given, bulk_load, say)
            try:
                with foreign_key_checks_at_the_end(IMPORTED_MODELS if bulk else []) as check_foreign_keys, \
                        transaction.atomic():
                    state = _initial_state(encoding)
                    writer = None if dry_run else _Writer(state=state, partial=False, say=say)
                    indexes = SecondaryIndexes()
                    keys = ForeignKeys()
                    if writer is not None:
                        # Inside the import's transaction: if it fails or is rolled back, so is the DROP INDEX.
                        empty = _empty_on_postgres(bulk)
                        for model in bulk:
                            indexes.drop(model)
                        for model in empty:
                            keys.drop(model)
                        writer.load_directly(empty)
                    run_pass(_Pass(state=state, reports=reports, sink=sink, writer=writer, progress=progress, say=say),
                             counted=True)
                    if writer is None or broken or sink.count:
                        raise _RollBack
                    writer.finish()
                    if indexes.dropped:
                        started = time.perf_counter()
                        tables = indexes.tables
                        report.foreign_key_check_seconds = indexes.rebuild()
                        report.index_rebuild_seconds = time.perf_counter() - started
                        say(f"rebuilt the secondary indexes of {', '.join(tables)}")
                    if keys.dropped:
                        report.foreign_key_seconds = keys.restore()
                        say(f"added the foreign keys again, each validated in one pass ({report.foreign_key_seconds:.1f} s)")
                    if check_foreign_keys is not None:
                        report.foreign_keys_checked_seconds = check_foreign_keys()
                        say(f"checked the written tables' foreign keys ({report.foreign_keys_checked_seconds:.1f} s)")
                    _record_writes(writer, reports, report, 0.0)
            except _RollBack:
                report.written = False
    finally:
        sink.close()
    report.error_count = sink.count
    if report.written:
        refresh_planner_statistics()
        say("refreshed the database's planner statistics (ANALYZE)")
    return report


def _record_writes(writer: _Writer, reports: dict[str, FileReport], report: ImportReport, seconds: float) -> None:
    for kind, file_report in reports.items():
        counts = writer.counts.get(kind)
        if counts is not None:
            file_report.created, file_report.updated, file_report.duplicates = counts
    if seconds:
        # --partial: the writing pass's time, shared out by rows (the command prints each file's rows/s).
        total = sum(file_report.rows for file_report in reports.values()) or 1
        for file_report in reports.values():
            file_report.seconds += seconds * file_report.rows / total
    report.members_created_from_activity = writer.implicit_members_created
    report.written = True


def _placeholder_email(member_id: str) -> str:
    local = member_id if _SAFE_LOCAL_PART.match(member_id) else "m-" + hashlib.sha1(member_id.encode()).hexdigest()[:20]
    return f"{local.lower()}@{PLACEHOLDER_EMAIL_DOMAIN}"


def _product_slug(prefix: str, product_id: str, max_length: int) -> str:
    digest = hashlib.sha1(product_id.encode()).hexdigest()[:8]
    base = slugify(product_id)[: max_length - len(prefix) - len(digest) - 2] or "p"
    return f"{prefix}-{base}-{digest}"


def _chunks(iterable: Any, size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in iterable:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class _RawUpsert:
    """INSERT ... ON CONFLICT (...) DO UPDATE / DO NOTHING in bulk, for a million rows.

    bulk_create(update_conflicts=True) builds its SQL per row through the ORM, which cost ~4x the database work at
    this volume and, on SQLite, splits into 55-row statements. Columns the importer does not set get the model
    field's default, computed once. Values must already be adapted (connection.ops.adapt_datetimefield_value).
    Works on SQLite >= 3.24 and PostgreSQL.
    """

    def __init__(self, model: Any, columns: tuple[str, ...] | list[str], *, conflict: list[str],
                 update: list[str] | None) -> None:
        fields = {field.attname: field for field in model._meta.concrete_fields if not field.primary_key}
        quote = connection.ops.quote_name
        rest = [attname for attname in fields if attname not in columns]
        self.tail = tuple(fields[attname].get_db_prep_save(fields[attname].get_default(), connection) for attname in rest)
        names = [quote(fields[attname].column) for attname in [*columns, *rest]]
        target = ", ".join(quote(fields[attname].column) for attname in conflict)
        if update:
            table = quote(model._meta.db_table)
            columns_to_update = [quote(fields[attname].column) for attname in update]
            differs = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
            # Re-importing the same file is the common case; skipping rows whose values are unchanged avoids
            # rewriting every row and its indexes (3x slower than the first import on SQLite without this).
            action = (
                "DO UPDATE SET " + ", ".join(f"{column} = excluded.{column}" for column in columns_to_update)
                + " WHERE " + " OR ".join(f"{table}.{column} {differs} excluded.{column}" for column in columns_to_update)
            )
        else:
            action = "DO NOTHING"
        self.table = quote(model._meta.db_table)
        self.names = names
        self.key = quote(fields[conflict[0]].column)
        self.key_position = [*columns, *rest].index(conflict[0])
        types = [fields[attname].db_type(connection) for attname in [*columns, *rest]]
        # The columns of a temporary table holding these rows (the per-batch staging table, defer()'s table).
        self.column_definitions = ", ".join(f"{name} {kind}" for name, kind in zip(names, types, strict=True))
        self.db_table = model._meta.db_table
        self.conflict = f" ON CONFLICT ({target}) {action}"
        self.target = target
        self.count_existing = update is not None
        # Set by defer(): rows collected in a temporary table and written by one statement in flush().
        self.deferred: str | None = None
        # Set by the writer for a table bulk-loaded from empty (PostgreSQL): rows COPYed straight into it.
        self.direct: DirectCopy | None = None

    def defer(self) -> None:
        """PostgreSQL, all-or-nothing, DO NOTHING on conflict (the enrolments: a member's second order of a course
        names the same pair): instead of a staging table and an INSERT ... SELECT ... ON CONFLICT per batch (a
        quarter of the orders file's time), every batch is COPYed into one temporary table, in file order, and
        flush() writes the first row of each key with one INSERT ... SELECT DISTINCT ON ... ON CONFLICT DO NOTHING:
        the rows the per-batch writes would have kept (the first in the file, or the one already stored)."""
        if connection.vendor != "postgresql" or self.count_existing:
            return
        self.deferred = f"import_deferred_{self.db_table}"
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.deferred}")
            cursor.execute(f"CREATE TEMPORARY TABLE {self.deferred} (import_seq BIGSERIAL, {self.column_definitions})")

    def flush(self) -> int:
        """Write what defer() collected; the number of rows written."""
        if self.deferred is None:
            return 0
        columns = ", ".join(self.names)
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {self.table} ({columns}) SELECT DISTINCT ON ({self.target}) {columns} "
                           f"FROM {self.deferred} ORDER BY {self.target}, import_seq" + self.conflict)
            written = cursor.rowcount
            cursor.execute(f"DROP TABLE {self.deferred}")
        self.deferred = None
        return written

    def write(self, rows: list[tuple[Any, ...]]) -> tuple[int, int]:
        """Write the rows; return (rowcount, how many keys already existed before the write).

        rowcount is inserted rows plus rows actually changed (unchanged rows are skipped by the WHERE). Deferred
        (defer()): the rows are only collected, (0, 0) is returned, and flush() writes them.
        """
        if not rows:
            return 0, 0
        tail = self.tail
        rows = [row + tail for row in rows]
        if self.deferred is not None:
            with connection.cursor() as cursor, cursor.copy(
                f"COPY {self.deferred} ({', '.join(self.names)}) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
            return 0, 0
        keys = [row[self.key_position] for row in rows]
        columns = ", ".join(self.names)
        with connection.cursor() as cursor:
            if connection.vendor != "postgresql":
                # In-process SQLite: many rows per statement (config.bulk_load.sqlite_insert), no round trips to save.
                existing = 0
                if self.count_existing:
                    cursor.execute(
                        f"SELECT COUNT(*) FROM {self.table} WHERE {self.key} IN ({', '.join(['%s'] * len(keys))})",
                        keys,
                    )
                    existing = cursor.fetchone()[0]
                return sqlite_insert(f"INSERT INTO {self.table} ({columns})", len(self.names), rows,
                                     self.conflict), existing
            # PostgreSQL, a table bulk-loaded from empty whose keys the duplicate ledger made unique: COPY straight
            # into it. It succeeded, so no key existed (the unique index would have refused the batch).
            if self.direct is not None and self.direct.copy(cursor, self.table, columns, rows):
                return len(rows), 0
            # PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT ... ON CONFLICT. A round trip per
            # row (even pipelined) was 10x slower, and a 20,000-placeholder VALUES list is re-parsed and quoted by
            # psycopg on every call (as slow again).
            staging = "import_staging"
            cursor.execute(f"DROP TABLE IF EXISTS {staging}")
            cursor.execute(f"CREATE TEMPORARY TABLE {staging} ({self.column_definitions})")
            with cursor.copy(f"COPY {staging} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            existing = 0
            if self.count_existing:
                cursor.execute(f"SELECT COUNT(*) FROM {staging} JOIN {self.table} USING ({self.key})")
                existing = cursor.fetchone()[0]
            # The WHERE true is required by PostgreSQL's grammar to tell ON CONFLICT from a join's ON.
            cursor.execute(f"INSERT INTO {self.table} ({columns}) SELECT {columns} FROM {staging} WHERE true"
                           + self.conflict)
            written = cursor.rowcount
            cursor.execute(f"DROP TABLE {staging}")
            return written, existing


def _write_batch(partial: bool) -> Any:
    # In --partial mode each batch commits on its own; otherwise the caller's single transaction holds everything.
    return transaction.atomic() if partial else nullcontext()


class _Writer:
    """Writes one chunk of valid rows at a time (products, members, orders, events), as the pass reads them."""

    def __init__(self, *, state: _State, partial: bool, say: Callable[[str], None]) -> None:
        self.state = state
        self.partial = partial
        self.say = say
        self.implicit_members_created = 0
        self.now = timezone.now()
        self.adapt_instant = instant_adapter(connection)
        self.counts: dict[str, list[int]] = {}  # kind -> [created, updated, already imported]
        self.first_activity = _FirstActivity()
        self.insert_new_member = _RawUpsert(User, self.USER_VALUES, conflict=["external_id"], update=None)
        update = ["email", "display_name", "country", "preferred_language", "acquisition_source"]
        # joined_at from the file wins; otherwise first activity (set at the end); otherwise the first import's time,
        # kept on re-import (so re-importing changes nothing) by leaving date_joined out of that update.
        self.dated_upsert = _RawUpsert(User, self.USER_VALUES, conflict=["external_id"], update=[*update, "date_joined"])
        self.undated_upsert = _RawUpsert(User, self.USER_VALUES, conflict=["external_id"], update=update)
        self.order_upsert = _RawUpsert(Order, self.ORDER_VALUES, conflict=["external_id"],
                                       update=list(self.ORDER_VALUES[1:]))
        self.enroll = _RawUpsert(Enrollment, ("member_id", "course_id", "source", "enrolled_at", "last_activity_at"),
                                 conflict=["member_id", "course_id"], update=None)
        if not partial:  # one transaction: nothing reads the enrolments before finish() writes them
            self.enroll.defer()
        self.catalogue: tuple[dict[str, int], dict[str, int]] | None = None
        self.generic_pk: int | None = None
        self.event_copy: DirectCopy | None = None
        # The members already looked up by _member_pks: external_id -> pk, and those whose first activity is tracked.
        # Orders and events name the same members chunk after chunk; bounded (MEMBER_CACHE_SIZE) so memory stays
        # flat in file size.
        self.member_cache: dict[str, int] = {}
        self.following: set[str] = set()
        # The events' COPY running in the background (event_values): (its CopyInBackground, its lines, rows received)
        self.copying: tuple[Any, list[str], int] | None = None
        if not partial:
            # The events file is read as plain values (_EventValues; event_values() writes them). Not with --partial,
            # whose writing pass skips rows its ledger rejects while writing the rest of their chunk: a chunk's
            # `firsts` stand for all of its valid rows.
            state.event_values = EventValues(EVENT_SOURCE, connection)

    def load_directly(self, models: list[Any]) -> None:
        """PostgreSQL, all-or-nothing: these tables were empty when the import began, so their batches are COPYed
        straight into them (config.bulk_load.DirectCopy). Orders and events only: their keys are made unique by
        the duplicate ledger (a repeated order_id/event_id is a rejected row, and nothing is written once a row is
        rejected); enrolments repeat (member, course) across orders and keep the ON CONFLICT path."""
        if Order in models:
            self.order_upsert.direct = DirectCopy()
        if Event in models:
            self.event_copy = DirectCopy()

    def _count(self, kind: str, created: int = 0, updated: int = 0, duplicates: int = 0) -> None:
        counts = self.counts.setdefault(kind, [0, 0, 0])
        counts[0] += created
        counts[1] += updated
        counts[2] += duplicates

    def _existing(self, model: Any, external_ids: list[str]) -> set[str]:
        return set(model.objects.filter(external_id__in=external_ids).values_list("external_id", flat=True))

    def finish(self) -> None:
        """Set-based, once: the enrolments collected (PostgreSQL, all-or-nothing); date_joined of the members created
        from activity (or without joined_at) = their first order/event of this import."""
        self.settle()
        with _write_batch(self.partial):
            self.enroll.flush()
            self.first_activity.apply()
            self.first_activity.drop()
        if self.implicit_members_created:
            self.say(f"created {self.implicit_members_created} members known only from orders/events")

    # Products ----------------------------------------------------------------------------------------------------
    def products(self, batch: list[ProductRow], report: FileReport | None) -> None:
        tiers = [row for row in batch if row.kind == "tier"]
        courses = [row for row in batch if row.kind == "course"]
        with _write_batch(self.partial):
            if tiers:
                existing = self._existing(MembershipTier, [row.product_id for row in tiers])
                MembershipTier.objects.bulk_create(
                    [
                        MembershipTier(
                            external_id=row.product_id, name=row.title,
                            slug=_product_slug("imported-tier", row.product_id, 50),
                            description=row.description, monthly_price=row.price,
                            yearly_price=row.price * 12, currency=row.currency,
                        )
                        for row in tiers
                    ],
                    batch_size=BATCH_SIZE, update_conflicts=True, unique_fields=["external_id"],
                    # name_en/description_en: the English columns pages read (modeltranslation) follow a re-import.
                    update_fields=["name", "description", "name_en", "description_en", "monthly_price",
                                   "yearly_price", "currency"],
                )
                self._count("products", len(tiers) - len(existing), len(existing))
            if courses:
                existing = self._existing(Course, [row.product_id for row in courses])
                Course.objects.bulk_create(
                    [
                        Course(
                            external_id=row.product_id, title=row.title,
                            slug=_product_slug("imported", row.product_id, 200),
                            description=row.description, tags=list(row.tags),
                            topic=(row.tags[0] if row.tags else "")[:60], price=row.price,
                            currency=row.currency, is_published=True, published_at=row.published_at,
                        )
                        for row in courses
                    ],
                    batch_size=BATCH_SIZE, update_conflicts=True, unique_fields=["external_id"],
                    update_fields=["title", "description", "title_en", "description_en", "tags", "topic",
                                   "price", "currency", "is_published", "published_at"],
                )
                self._count("products", len(courses) - len(existing), len(existing))
        self.catalogue = None  # reloaded by the first orders chunk

    # Members -----------------------------------------------------------------------------------------------------
    USER_VALUES = ("external_id", "email", "display_name", "country", "preferred_language", "acquisition_source",
                   "date_joined", "password")

    def _user(self, member_id: str, email: str | None, name: str, joined: datetime, country: str,
              language: str | None) -> tuple[Any, ...]:
        # A unique unusable password per member, as make_password(None) makes, without its per-call cost.
        password = UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30)
        return (member_id, email or _placeholder_email(member_id), name, country, language or Language.EN,
                User.AcquisitionSource.IMPORT, self.adapt_instant(joined), password)

    def members(self, batch: list[MemberRow], report: FileReport | None) -> None:
        dated, undated = [], []
        for row in batch:
            target = dated if row.joined_at else undated
            target.append(self._user(row.member_id, row.email, row.name, row.joined_at or self.now, row.country,
                                     row.language))
        with _write_batch(self.partial):
            existing = self.dated_upsert.write(dated)[1] + self.undated_upsert.write(undated)[1]
            self.first_activity.flag([row.member_id for row in batch if row.joined_at is None])
        self._count("members", len(batch) - existing, existing)

    def _member_pks(self, firsts: dict[str, Any], instant: Callable[[Any], datetime] | None = None) -> dict[str, int]:
        """The database pks of one chunk's members; members known only from orders/events are created here (once,
        never overwritten by a later import), joined at their first activity (finish() lowers it to the file's).
        `firsts` maps each member to their earliest instant in the chunk: a datetime, or what `instant` makes one
        from (only the members created or followed here are converted).

        One raw query per chunk (the ORM's `__in` prepared each of the thousands of ids on its own: 2 s of CPU at
        250,000 events), which also says which members' date_joined follows their first activity, so only those
        are tracked. Members met in earlier chunks come from the writer's bounded cache instead: at 100,000 members
        that query was 7% of a PostgreSQL import's wall time (bench/bench_import_split.py)."""
        cache, following = self.member_cache, self.following
        pks: dict[str, int] = {}
        follow: list[str] = []
        wanted = []
        for member_id in firsts:
            pk = cache.get(member_id)
            if pk is None:
                wanted.append(member_id)
            else:
                pks[member_id] = pk
                if member_id in following:
                    follow.append(member_id)
        quote = connection.ops.quote_name
        users, pk_column = quote(User._meta.db_table), quote(User._meta.pk.column)
        activity = self.first_activity.table
        with connection.cursor() as cursor:
            for start in range(0, len(wanted), 5000):
                part = wanted[start:start + 5000]
                if connection.vendor == "postgresql":
                    where, params = "u.external_id = ANY(%s)", [part]
                else:
                    where, params = f"u.external_id IN ({', '.join(['%s'] * len(part))})", part
                cursor.execute(f"SELECT u.external_id, u.{pk_column}, a.adjust FROM {users} u LEFT JOIN {activity} a "
                               f"ON a.member_id = u.external_id WHERE {where}", params)
                for member_id, pk, adjust in cursor.fetchall():
                    pks[member_id] = pk
                    if adjust:
                        follow.append(member_id)
        when = firsts.__getitem__ if instant is None else (lambda member_id: instant(firsts[member_id]))
        missing = [member_id for member_id in wanted if member_id not in pks]
        if missing:
            self.implicit_members_created += self.insert_new_member.write(
                [self._user(member_id, None, "", when(member_id), "", None) for member_id in missing]
            )[0]
            self.first_activity.flag(missing)
            follow.extend(missing)
            pks.update(User.objects.filter(external_id__in=missing).values_list("external_id", "pk"))
        if wanted and len(cache) < MEMBER_CACHE_SIZE:
            # Every member not cached before this chunk; their follow state changes only here (flag(missing) above).
            fresh = {member_id: pks[member_id] for member_id in wanted if member_id in pks}
            cache.update(fresh)
            following.update(member_id for member_id in follow if member_id in fresh)
        if follow:
            adapt = self.adapt_instant
            self.first_activity.saw({member_id: adapt(when(member_id)) for member_id in follow})
        return pks

    # Orders ------------------------------------------------------------------------------------------------------
    ORDER_VALUES = ("external_id", "member_id", "kind", "course_id", "tier_id", "billing_period", "list_price",
                    "discount", "amount_paid", "currency", "quantity", "coupon_id", "status", "created_at", "paid_at",
                    "refunded_at", "failure_reason", "provider")

    def orders(self, batch: list[OrderRow], report: FileReport | None) -> None:
        if self.catalogue is None:
            self.catalogue = (
                dict(Course.objects.filter(external_id__isnull=False).values_list("external_id", "pk")),
                dict(MembershipTier.objects.filter(external_id__isnull=False).values_list("external_id", "pk")),
            )
        courses, tiers = self.catalogue
        adapt = self.adapt_instant
        paid, refunded, failed = Order.Status.PAID, Order.Status.REFUNDED, Order.Status.FAILED
        zero = Decimal("0.00")
        with _write_batch(self.partial):
            if self.generic_pk is None and any(row.product_id is None for row in batch):
                generic, _ = Course.objects.get_or_create(
                    slug=GENERIC_PRODUCT_SLUG,
                    defaults={"title": "Imported order without a product", "is_generic": True, "is_published": False},
                )
                self.generic_pk = generic.pk
            codes = {row.coupon_code for row in batch if row.coupon_code}
            coupons = dict(Coupon.objects.filter(code__in=codes).values_list("code", "pk")) if codes else {}
            member_pks = self._member_pks(_firsts((row.member_id, row.ordered_at) for row in batch))
            values = []
            enrollments = []
            redemptions = []
            for row in batch:
                member_pk = member_pks[row.member_id]
                ordered_at = row.ordered_text if row.ordered_text is not None else adapt(row.ordered_at)
                paid_at = ordered_at if row.status in (paid, refunded) else None
                if row.product_kind == "course":
                    kind, course_pk, tier_pk = (Order.Kind.COURSE, courses[row.product_id] if row.product_id
                                                else self.generic_pk, None)
                    # Owned courses must be excluded from recommendations, and recommendations read enrollments.
                    # A refunded order was an enrolment until its refund: the row exists, and the analytics drop
                    # it from the refund's time on (analytics.ml.datasets.enrollments), so a refund recorded
                    # after a cutoff changes nothing at that cutoff.
                    if row.status in (paid, refunded) and row.product_id:
                        enrollments.append((member_pk, course_pk, Enrollment.Source.PURCHASE, ordered_at, ordered_at))
                else:
                    kind, course_pk, tier_pk = Order.Kind.SUBSCRIPTION, None, tiers[row.product_id]
                coupon_pk = coupons.get(row.coupon_code) if row.coupon_code else None
                if coupon_pk is not None and row.status != failed:
                    redemptions.append((row.order_id, coupon_pk, member_pk, ordered_at))
                values.append((
                    row.order_id, member_pk, kind, course_pk, tier_pk, row.billing_period, row.amount, zero,
                    row.amount, row.currency, row.quantity, coupon_pk, row.status, ordered_at, paid_at,
                    adapt(row.refunded_at) if row.refunded_at else None,
                    "imported as failed" if row.status == failed else "", "import",
                ))
            existing = self.order_upsert.write(values)[1]
            self.enroll.write(enrollments)
            self._redemptions(redemptions)
        self._count("orders", len(batch) - existing, existing)

    def _redemptions(self, redemptions: list[tuple[str, int, int, Any]]) -> None:
        if not redemptions:
            return
        pks = dict(
            Order.objects.filter(external_id__in=[order_id for order_id, *_ in redemptions])
            .values_list("external_id", "pk")
        )
        # Imported redemptions do not bump Coupon.times_redeemed: the history happened on another system, and its
        # limits were enforced there.
        _RawUpsert(CouponRedemption, ("order_id", "coupon_id", "member_id", "redeemed_at"), conflict=["order_id"],
                   update=None).write([(pks[order_id], *rest) for order_id, *rest in redemptions])

    # Events ------------------------------------------------------------------------------------------------------
    def events(self, batch: list[ImportedEvent], report: FileReport | None) -> None:
        with _write_batch(self.partial):
            member_pks = self._member_pks(_firsts((event.member_id, event.occurred_at) for event in batch))
            result = events_bulk_ingest(
                [
                    EventRow(
                        member_id=member_pks[event.member_id], kind=event.kind, object_type=event.object_type,
                        object_id=event.object_id, occurred_at=event.occurred_at, properties=event.properties,
                        idempotency_key=event.event_id or _event_fingerprint(event),
                        stored_occurred_at=event.occurred_text,
                    )
                    for event in batch
                ],
                source=EVENT_SOURCE, batch_size=EVENT_BATCH_SIZE, direct=self.event_copy,
            )
        self._count("events", result.created, 0, result.duplicates)

    def event_values(self, batch: list[tuple[Any, ...]], firsts: dict[str, str], report: FileReport | None) -> None:
        """events() for a chunk read as plain values (_EventValues): the same rows, counts and members. A key repeated
        within the batch (identical events without an event_id) is a duplicate, as in events_bulk_ingest.

        PostgreSQL writes COPY text lines; into a table bulk-loaded from empty, the batch's COPY runs in the
        background while the pass reads the next chunk (config.bulk_load.CopyInBackground), and settle() waits for
        it before the connection is used again. SQLite inserts the same values as tuples."""
        self.settle()
        values = self.state.event_values
        assert values is not None
        with _write_batch(self.partial):
            member_pks = self._member_pks(firsts, datetime.fromisoformat)
            received_at = values.received_at()
            stored = values.stored
            keys: set[str] = set()
            made = []
            for member_id, key, kind, object_type, object_id, occurred, properties in batch:
                if key in keys:
                    continue
                keys.add(key)
                made.append(stored(member_pks[member_id], received_at, kind, object_type, object_id, occurred,
                                   properties, key))
            if not values.postgres:
                created = insert_event_rows(made)
            elif self.event_copy is not None and self.event_copy.enabled and made:
                self.copying = (start_copy_of_event_lines(made, self.event_copy), made, len(batch))
                return
            else:
                created = copy_event_lines(made, direct=self.event_copy)
        self._count("events", created, 0, len(batch) - created)

    def settle(self) -> None:
        """Wait for the events' COPY running in the background, if any, and count its rows; if the unique index
        refused a key, the same lines go in through the ON CONFLICT path instead."""
        if self.copying is None:
            return
        copying, lines, received = self.copying
        self.copying = None
        created = len(lines) if copying.wait() else copy_event_lines(lines)
        self._count("events", created, 0, received - created)


def _event_fingerprint(event: ImportedEvent) -> str:
    """Events without an event_id are keyed by their content, so re-importing the file does not double them."""
    payload = json.dumps(
        [event.member_id, event.kind, event.object_type, event.object_id, event.occurred_at.isoformat(),
         event.properties],
        sort_keys=True, ensure_ascii=False, default=str,
    )
    return "row-" + hashlib.sha1(payload.encode()).hexdigest()


def render_report(report: ImportReport) -> str:
    lines = []
    for kind in FILE_KINDS:
        file_report = report.files.get(kind)
        if file_report is None:
            continue
        status = "file rejected" if file_report.file_error else f"{file_report.valid} valid, {file_report.rejected} rejected"
        line = f"{kind:<9} {Path(file_report.path).name}: {file_report.rows} rows, {status}"
        if report.written:
            line += f"; {file_report.created} created, {file_report.updated} updated"
            if kind == "events":
                line += f", {file_report.duplicates} already imported"
        if file_report.seconds and not file_report.file_error:
            line += f" ({file_report.seconds:.1f} s, {file_report.rows_per_second:,.0f} rows/s)"
        lines.append(line)
    if report.members_created_from_activity:
        lines.append(f"members created from orders/events: {report.members_created_from_activity}")
    if report.index_rebuild_seconds:
        checks = (f", of which {report.foreign_key_check_seconds:.1f} s the queued foreign key checks"
                  if report.foreign_key_check_seconds else "")
        lines.append(f"secondary indexes rebuilt after the bulk load ({report.index_rebuild_seconds:.1f} s{checks})")
    if report.foreign_key_seconds:
        lines.append(f"foreign keys added again after the bulk load, each validated in one pass "
                     f"({report.foreign_key_seconds:.1f} s)")
    if report.foreign_keys_checked_seconds:
        lines.append(f"foreign keys of the written tables checked after the bulk load, once per column "
                     f"({report.foreign_keys_checked_seconds:.1f} s)")
    if report.learning:
        lines.append(f"learning: {report.learning}")
    return "\n".join(lines)


__all__ = [
    "GENERIC_PRODUCT_SLUG",
    "FileReport",
    "ImportReport",
    "RowError",
    "import_platform_data",
    "parse_instant",
    "parse_money",
    "render_report",
]
