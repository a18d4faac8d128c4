"""Bulk event ingestion: one write path for imported histories and for client batches (the REST batch endpoint).

`record_event` writes one row on commit and suits a service recording what just happened. A platform's history
or a mobile client's offline batch arrives as thousands of rows at once; writing them one INSERT at a time would
take hours for 5,000,000 events, so they go through `events_bulk_ingest`, which inserts in batches and lets the
unique index on `Event.idempotency_key` drop rows that were already stored (a retried batch, a re-import).

Idempotency keys are namespaced by `source` ("import:e-17", "mobile:abc"): two systems that both number their
events from 1 must not swallow each other's rows. `record_event` keys are not namespaced (server code chooses
them, e.g. "order-paid:42"), so they cannot collide with these either as long as no source is named like a prefix
server code uses.

Each batch is written in its own atomic block (a savepoint when the caller already holds a transaction): the
importer wraps everything in one outer transaction for all-or-nothing, the API view lets each batch commit.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from django.conf import settings
from django.db import connections, router, transaction
from django.utils import timezone

from analytics.models import Event
from analytics.tracking import event_quantity
from config.bulk_load import CopyInBackground, DirectCopy, copy_text, sqlite_insert

DEFAULT_BATCH_SIZE = 5000

# Field limits callers validate against before building rows (a too-long value would fail the whole batch).
MAX_KIND_LENGTH = Event._meta.get_field("kind").max_length
MAX_OBJECT_TYPE_LENGTH = Event._meta.get_field("object_type").max_length
MAX_OBJECT_ID_LENGTH = Event._meta.get_field("object_id").max_length
MAX_IDEMPOTENCY_KEY_LENGTH = Event._meta.get_field("idempotency_key").max_length
SOURCES = frozenset(Event.Source.values)


@dataclass(slots=True)  # not frozen: built once per event; a frozen __init__ costs 5x (note in ingest.platform)
class EventRow:
    """One event to store. `member_id` is the database pk of the member (None for an anonymous event).

    `idempotency_key` is the caller's own id for the event (the platform's event_id, a client's UUID); it is stored
    as f"{source}:{idempotency_key}". None means the row is always inserted.
    """

    member_id: int | None
    kind: str
    object_type: str
    object_id: str
    occurred_at: datetime
    properties: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    quantity: float | None = None  # None: a numeric properties["quantity"], if any
    # occurred_at as the text the database is given, when the caller already has it (the importer reads it from the
    # CSV's text: instant_text_adapter); None: adapted here.
    stored_occurred_at: str | None = None


@dataclass(frozen=True)
class IngestResult:
    created: int
    duplicates: int
    # Positions (0-based, in input order) of the rows that were dropped as duplicates; only filled when the caller
    # asks for it, since a re-import of 5,000,000 events would otherwise hold 5,000,000 ints.
    duplicate_positions: tuple[int, ...] = ()

    @property
    def received(self) -> int:
        return self.created + self.duplicates


def stored_key(source: str, idempotency_key: str | None) -> str | None:
    """The key as stored on Event, so callers can look rows up again."""
    return None if idempotency_key is None else f"{source}:{idempotency_key}"


_COLUMNS = ("member_id", "kind", "object_type", "object_id", "occurred_at", "received_at", "properties", "source",
            "idempotency_key", "quantity")


def _insert(connection: Any, rows: list[tuple[Any, ...]], direct: DirectCopy | None = None, *,
            text: str | None = None, names: tuple[str, ...] = _COLUMNS) -> int:
    """Insert rows, skipping stored keys; return how many went in.

    ON CONFLICT on the key column only (not SQLite's INSERT OR IGNORE, which would also swallow NOT NULL/CHECK
    failures); works on SQLite >= 3.24 and PostgreSQL. `text` (PostgreSQL only): the rows already as COPY's text
    lines of the columns `names` (EventValues), instead of `rows`.
    """
    quote = connection.ops.quote_name
    table = quote(Event._meta.db_table)
    columns = ", ".join(quote(column) for column in names)
    conflict = f" ON CONFLICT ({quote('idempotency_key')}) DO NOTHING"
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            # In-process SQLite: many rows per statement, no round trips to save.
            return sqlite_insert(f"INSERT INTO {table} ({columns})", len(names), rows, conflict)
        # PostgreSQL, a table bulk-loaded from empty whose keys the caller made unique (the importer's ledger): COPY
        # straight into it; if the unique index refuses a key, `direct` falls back (for good) to the path below.
        if direct is not None and direct.copy(cursor, table, columns, rows, text=text):
            return len(rows)
        # PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT ... ON CONFLICT. A round trip per row
        # (even pipelined) was ~10x slower, and a multi-row VALUES list is re-parsed and quoted by psycopg per call.
        fields = {field.column: field for field in Event._meta.concrete_fields}
        cursor.execute("DROP TABLE IF EXISTS event_ingest_staging")
        cursor.execute(
            "CREATE TEMPORARY TABLE event_ingest_staging ("
            + ", ".join(f"{quote(column)} {fields[column].db_type(connection)}" for column in names) + ")"
        )
        with cursor.copy(f"COPY event_ingest_staging ({columns}) FROM STDIN") as copy:
            if text is not None:
                copy.write(text)
            else:
                for row in rows:
                    copy.write_row(row)
        # WHERE true keeps PostgreSQL's grammar from reading ON CONFLICT as part of the FROM clause.
        cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM event_ingest_staging WHERE true"
                       + conflict)
        inserted = cursor.rowcount
        cursor.execute("DROP TABLE event_ingest_staging")
        return inserted


_COPY_NULL = "\t\\N\n"  # a last column that is NULL (COPY's \N), and the line's end


class EventValues:
    """The importer's events without EventRows: the values events_bulk_ingest stores for the same rows, made straight
    from the plain values the reading side hands over (the instant already as the database is given it, the key
    already made).

    Per event, the importer's writing process built an EventRow, then a tuple of values, and (on PostgreSQL) had
    psycopg format each value for COPY; that process was the import's slowest. Here it makes, for each event, a line
    of COPY's text format on PostgreSQL (`tail()` and `line()`; a batch's lines go in as one text: copy_event_lines,
    or start_copy_of_event_lines in the background), or on SQLite the tuple events_bulk_ingest inserts (`row()`;
    insert_event_rows); `stored()` makes the one its database takes. The values are events_bulk_ingest's:

    - properties as the JSON text the field's encoder gives (the field's own preparation on SQLite), "{}" when empty;
    - quantity as events_bulk_ingest derives it (a finite number in properties["quantity"]), in a COPY line repr();
    - occurred_at as the stored text the caller parsed it from, or `instant()` of the parsed datetime: its isoformat()
      for COPY, the adapted text on SQLite;
    - idempotency_key namespaced by the source, as stored_key() does;
    - received_at the batch's time (`received_at()`), as events_bulk_ingest takes it per batch.
    """

    # A COPY line's columns, in its order (PostgreSQL); row() follows _COLUMNS, events_bulk_ingest's.
    COLUMNS = ("member_id", "received_at", "kind", "object_type", "object_id", "occurred_at", "properties",
               "source", "idempotency_key", "quantity")

    def __init__(self, source: str, connection: Any) -> None:
        if source not in SOURCES:
            raise ValueError(f"Unknown event source {source!r}; expected one of {sorted(SOURCES)}.")
        self.source = source
        self.prefix = stored_key(source, "")
        field = Event._meta.get_field("properties")
        self.postgres = connection.vendor == "postgresql"
        self.adapt = instant_adapter(connection)
        self.connection = connection
        self.prepare_properties = _properties_preparer(connection, field)
        self.no_properties = self.prepare_properties({}, connection)

    def instant(self, value: datetime) -> str:
        """A parsed instant as the database is given it, where the caller has no stored text for it."""
        return value.isoformat() if self.postgres else self.adapt(value)

    def received_at(self) -> str:
        return self.instant(timezone.now())

    def _properties(self, properties: dict[str, Any]) -> str:
        return self.prepare_properties(properties, self.connection) if properties else self.no_properties

    def stored(self, member_pk: int, received_at: str, kind: str, object_type: str, object_id: str, occurred: str,
               properties: dict[str, Any], key: str) -> str | tuple[Any, ...]:
        """What is written for one event: its COPY line on PostgreSQL (copy_event_lines), its row on SQLite
        (insert_event_rows)."""
        if self.postgres:
            return self.line(member_pk, received_at, self.tail(kind, object_type, object_id, occurred, properties, key))
        return self.row(member_pk, received_at, kind, object_type, object_id, occurred, properties, key)

    def row(self, member_pk: int, received_at: str, kind: str, object_type: str, object_id: str, occurred: str,
            properties: dict[str, Any], key: str) -> tuple[Any, ...]:
        """SQLite: the tuple events_bulk_ingest inserts for this event (its _COLUMNS)."""
        return (member_pk, kind, object_type, object_id, occurred, received_at,
                self._properties(properties), self.source, self.prefix + key,
                event_quantity(properties) if properties else None)

    def tail(self, kind: str, object_type: str, object_id: str, occurred: str, properties: dict[str, Any],
             key: str) -> str:
        """The line's columns after member_id and received_at, with its newline. `key` is the caller's key for
        the event (not namespaced)."""
        text = self._properties(properties)
        fields = (kind, object_type, object_id, occurred, text, self.source, self.prefix + key)
        joined = "\t".join(fields)
        # Most lines hold nothing to escape: one scan of the joined text instead of one per value.
        if "\\" in joined or "\n" in joined or "\r" in joined or joined.count("\t") != len(fields) - 1:
            joined = "\t".join([copy_text(value) for value in fields])
        quantity = event_quantity(properties) if properties else None
        return joined + (_COPY_NULL if quantity is None else f"\t{quantity!r}\n")

    @staticmethod
    def line(member_pk: int, received_at: str, tail: str) -> str:
        return f"{member_pk}\t{received_at}\t{tail}"


def start_copy_of_event_lines(lines: list[str], direct: DirectCopy) -> CopyInBackground:
    """copy_event_lines' direct COPY, in the background (config.bulk_load.CopyInBackground): wait() says whether the
    rows went in; if not (a key was stored already), write the same lines with copy_event_lines."""
    connection = connections[router.db_for_write(Event)]
    quote = connection.ops.quote_name
    return CopyInBackground(direct, quote(Event._meta.db_table),
                            ", ".join(quote(column) for column in EventValues.COLUMNS), "".join(lines))


def insert_event_rows(rows: list[tuple[Any, ...]]) -> int:
    """SQLite: insert EventValues' rows (their keys distinct) as events_bulk_ingest inserts a batch; the number of rows
    inserted (a key already stored is skipped)."""
    if not rows:
        return 0
    alias = router.db_for_write(Event)
    with transaction.atomic(using=alias):
        return _insert(connections[alias], rows)


def copy_event_lines(lines: list[str], *, direct: DirectCopy | None = None) -> int:
    """PostgreSQL: write EventValues' lines (their keys distinct) in one COPY; the number of rows inserted. A key
    already stored is skipped, as events_bulk_ingest skips it: `direct` COPYs straight into the table and falls back
    (for good) to a staging table and INSERT ... ON CONFLICT DO NOTHING when the unique index refuses a key."""
    if not lines:
        return 0
    alias = router.db_for_write(Event)
    connection = connections[alias]
    if connection.vendor != "postgresql":
        raise ValueError("COPY lines are PostgreSQL's; elsewhere write EventRows with events_bulk_ingest")
    with transaction.atomic(using=alias):
        return _insert(connection, lines, direct, text="".join(lines), names=EventValues.COLUMNS)


def _stores_utc_text(connection: Any) -> bool:
    """SQLite with time zones on and the connection in UTC (the default): instants are stored as UTC text."""
    return connection.vendor == "sqlite" and settings.USE_TZ and connection.settings_dict.get("TIME_ZONE") in (
        None, "UTC",
    )


def instant_adapter(connection: Any) -> Callable[[datetime | None], Any]:
    """connection.ops.adapt_datetimefield_value, with a fast path for SQLite in UTC (the default): the same text
    ('YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC) without Django's per-call checks, called once per imported row."""
    adapt = connection.ops.adapt_datetimefield_value
    if not _stores_utc_text(connection):
        return adapt

    def adapt_utc(value: datetime | None) -> Any:
        if value is None or value.tzinfo is None:
            return adapt(value)
        if value.tzinfo is UTC:  # what parsing "...+00:00" or "...Z" gives: drop the "+00:00" isoformat ends with
            return value.isoformat(" ")[:-6]
        return str(value.astimezone(UTC).replace(tzinfo=None))

    return adapt_utc


def instant_text_adapter(connection: Any) -> Callable[[str], str | None] | None:
    """The text to write for a timestamp straight from the text it was parsed from, for the one common form, UTC to
    the second ('2025-10-20T03:15:17+00:00', a space for the T, or 'Z'); None for any other form, whose datetime is
    then adapted. Only for text that parse_instant has accepted.

    - SQLite storing UTC text (where instant_adapter's fast path applies): the stored text, 'YYYY-MM-DD HH:MM:SS'.
      Formatting 5,000,000 parsed datetimes back to text was the largest single item of an event import's Python.
    - PostgreSQL, where the importer writes every row through COPY: 'YYYY-MM-DD HH:MM:SS+00', which COPY's text
      input reads as that UTC instant whatever the session's time zone. psycopg formatting a datetime for COPY was
      most of COPY's client time per event row (bench/bench_import_micro.py).
    - Elsewhere None: the datetime is adapted."""
    if _stores_utc_text(connection):
        offset = ""
    elif connection.vendor == "postgresql":
        offset = "+00"
    else:
        return None

    def stored_text(value: str) -> str | None:
        size = len(value)
        if not ((size == 25 and value.endswith("+00:00")) or (size == 20 and value[19] == "Z")):
            return None
        if value[4] != "-" or value[7] != "-" or value[10] not in "T " or value[13] != ":" or value[16] != ":":
            return None
        return value[:10] + " " + value[11:19] + offset

    return stored_text


def _properties_preparer(connection: Any, properties_field: Any) -> Callable[[dict[str, Any], Any], Any]:
    """How a row's properties become a value: the field's own preparation, except on PostgreSQL, where every batch
    goes in through COPY: there it is the JSON text itself (the server parses it into jsonb), the same text the
    field's Jsonb adapter writes. The "{}" of the many events without properties is then made once, where the
    adapter, prepared once, was still dumped by psycopg for every row (5% of an import's time)."""
    if connection.vendor != "postgresql":
        return properties_field.get_db_prep_save
    encoder = properties_field.encoder

    def as_json_text(value: dict[str, Any], connection: Any) -> str:
        return json.dumps(value, cls=encoder)

    return as_json_text


def _batches(rows: Iterable[EventRow], size: int) -> Iterator[list[EventRow]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def events_bulk_ingest(
    rows: Iterable[EventRow],
    *,
    source: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    report_positions: bool = False,
    direct: DirectCopy | None = None,
) -> IngestResult:
    """Insert events in batches; rows whose (namespaced) idempotency key is already stored are counted, not stored.

    Streams `rows` (a generator of millions is fine: only one batch is held at a time). The unique index drops keys
    already stored (INSERT ... ON CONFLICT DO NOTHING) and the INSERT's rowcount says how many went in, so the
    counts stay exact even when another writer inserts the same keys concurrently. Repeats within the input are
    dropped before the INSERT. With report_positions, one extra indexed SELECT per batch finds which rows were
    already stored (positions may miss a row a concurrent writer stored between that SELECT and the INSERT; the
    counts never do).

    direct (the importer's bulk load into an empty table, PostgreSQL): COPY each batch straight into the table
    (config.bulk_load.DirectCopy), falling back to the ON CONFLICT path if a key turns out to be stored already.
    """
    if source not in SOURCES:
        raise ValueError(f"Unknown event source {source!r}; expected one of {sorted(SOURCES)}.")
    alias = router.db_for_write(Event)
    connection = connections[alias]
    adapt_instant = instant_adapter(connection)
    properties_field = Event._meta.get_field("properties")
    prepare_properties = _properties_preparer(connection, properties_field)
    no_properties = prepare_properties({}, connection)  # most events: prepared once
    now = timezone.now()
    # PostgreSQL writes every batch through COPY, whose text input reads the ISO text as this instant: formatted once
    # here, where psycopg would format the same datetime again for every row.
    received_at = now.isoformat() if connection.vendor == "postgresql" else adapt_instant(now)
    created = 0
    duplicates = 0
    positions: list[int] = []
    offset = 0
    prefix = stored_key(source, "")  # stored_key's namespace, added below without a call per row
    for batch in _batches(rows, batch_size):
        keys = [None if row.idempotency_key is None else prefix + row.idempotency_key for row in batch]
        existing: set[str] = set()
        if report_positions:
            # Only to say *which* rows were duplicates; the counts come from the INSERT's own rowcount.
            wanted = {key for key in keys if key is not None}
            existing = set(
                Event.objects.using(alias).filter(idempotency_key__in=wanted).values_list("idempotency_key", flat=True)
            )
        seen_in_batch: set[str] = set()
        values: list[tuple[Any, ...]] = []
        for index, (row, key) in enumerate(zip(batch, keys, strict=True)):
            if key is not None:
                if key in existing or key in seen_in_batch:
                    duplicates += 1
                    if report_positions:
                        positions.append(offset + index)
                    continue
                seen_in_batch.add(key)
            # Raw SQL instead of bulk_create: building SQL through the ORM cost ~4x the insert itself at millions
            # of rows (bench/bench_import.py). Values are adapted by the same backend hooks the ORM uses.
            values.append((
                row.member_id, row.kind, row.object_type, row.object_id,
                row.stored_occurred_at if row.stored_occurred_at is not None else adapt_instant(row.occurred_at),
                received_at,
                prepare_properties(row.properties, connection) if row.properties else no_properties, source, key,
                row.quantity if row.quantity is not None else event_quantity(row.properties) if row.properties else None,
            ))
        if values:
            # One transaction per batch (a savepoint inside the caller's): in autocommit, SQLite would otherwise
            # commit, and fsync, after every row.
            with transaction.atomic(using=alias):
                inserted = _insert(connection, values, direct)
            # The rows the unique index dropped (stored earlier, or concurrently by another writer) are duplicates.
            created += inserted
            duplicates += len(values) - inserted
        offset += len(batch)
    return IngestResult(created=created, duplicates=duplicates, duplicate_positions=tuple(positions))
