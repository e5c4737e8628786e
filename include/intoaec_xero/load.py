"""Idempotent loads: one transaction per tenant × stream, the watermark advancing inside it.

Rows come from the raw pages (never straight from the API), so a load and a replay are the
same code path. Killed at any point, the transaction rolls back and the watermark stays put:
the next run reads the same changes again and the upsert makes that harmless.

A record that fails a record-level check (see :mod:`intoaec_xero.quality.suites`) is held back
alone, with its lines, in ``held_records`` (same transaction), and the rest of the batch loads
and advances the watermark; ``intoaec-xero quarantine release`` loads it later through
:func:`load_records`. A batch-level failure still rolls the whole batch back.
"""

from __future__ import annotations

import logging
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete
from sqlalchemy.engine import Connection

from intoaec_xero import collector, projects, state
from intoaec_xero.db import UpsertChanges, upsert
from intoaec_xero.extract import StreamExtract
from intoaec_xero.quality import quarantine
from intoaec_xero.quality.model import HeldRecord, record_key_text, record_label
from intoaec_xero.rawstore import RawStore, kept_pages, read_page
from intoaec_xero.schema import metadata
from intoaec_xero.streams import Stream
from intoaec_xero.transform import transform_record
from intoaec_xero.validate import BatchRejected, CheckResult, StreamValidator

__all__ = ["BatchRejected", "StreamLoad", "load_records", "load_stream"]

log = logging.getLogger(__name__)

# Rows (all tables of a stream) checked and written together. Big enough that the checks' fixed
# cost per chunk is noise, small enough that a large tenant's journals never sit in memory whole.
# Sized for the widest rows (an invoice and its lines: about 2 KB a row in memory, so ~55 MB a
# chunk).
CHUNK_ROWS = 25_000
# Streams whose rows take half that memory (a journal line ~1 KB, a payment ~1.2 KB) take twice
# the rows per chunk: the same memory, and half the validations. Great Expectations spends about
# as long on a suite of 25,000 rows as on one of 50,000, so on a large ledger this halves what the
# journals' checks cost.
CHUNK_SCALE = {"journals": 2, "payments": 2}


def chunk_rows(stream: Stream) -> int:
    """How many rows of the stream are checked and written together."""
    return CHUNK_ROWS * CHUNK_SCALE.get(stream.name, 1)

# Child tables whose rows are replaced whole when their parent arrives again (a line removed
# from an edited invoice must disappear).
CHILD_OF = {
    "invoice_lines": ("invoice_id", "invoices"),
    "credit_note_lines": ("credit_note_id", "credit_notes"),
    "tracking_options": ("tracking_category_id", "tracking_categories"),
    "bank_transaction_lines": ("bank_transaction_id", "bank_transactions"),
    "manual_journal_lines": ("manual_journal_id", "manual_journals"),
    "purchase_order_lines": ("purchase_order_id", "purchase_orders"),
    # An allocation undone at Xero is no longer listed: its deposit's allocations are replaced whole.
    "overpayment_allocations": ("overpayment_id", "overpayments"),
    "prepayment_allocations": ("prepayment_id", "prepayments"),
}


@dataclass
class StreamLoad:
    stream: str
    rows: dict[str, int] = field(default_factory=dict)
    # Records of the stream's main table (targets[0]): keys new to it, and existing rows whose
    # values changed. A record read again unchanged is neither.
    inserted: int = 0
    updated: int = 0
    corrected: int = 0
    checks: list[dict[str, Any]] = field(default_factory=list)
    results: list[CheckResult] = field(default_factory=list, repr=False)
    validations: list[Any] = field(default_factory=list, repr=False)
    # Records held back by record-level checks (the rest loaded).
    held: list[HeldRecord] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"stream": self.stream, "rows": self.rows, "inserted": self.inserted, "updated": self.updated,
                "corrected": self.corrected, "held": len(self.held), "checks": self.checks}


def load_stream(
    engine: Engine,
    raw: RawStore,
    run_id: str,
    tenant_id: str,
    stream: Stream,
    extracted: StreamExtract,
    *,
    accept: tuple[str, ...] = (),
) -> StreamLoad:
    """Read the kept pages, transform, check a chunk at a time, write what passed, advance.

    Records failing a record-level check are held back in quarantine and the rest is written.
    Raises :class:`BatchRejected` when a batch-level (``error``) check fails: the transaction
    rolls back, so no row of the batch stays, nothing is held and the watermark does not move.
    """
    result = StreamLoad(stream=stream.name)
    counts: dict[str, int] = defaultdict(int)
    # A journal backfill loads many separately extracted pages under one run: positions need their origin.
    origin = f"{extracted.extra['backfill']}, " if (extracted.extra or {}).get("backfill") else ""
    with engine.begin() as conn, _Writer(conn) as writer, collector.paused():
        validator = StreamValidator(conn, tenant_id, stream, expected_pages=extracted.pages or None,
                                    expected_records=extracted.records, accept=accept)
        batch = _Batch(conn, writer, validator, stream, tenant_id, result, counts,
                       reconcile=bool(extracted.extra.get("reconcile")),
                       dimension=projects.for_stream(conn, run_id, tenant_id, stream, extracted.extra))
        limit = chunk_rows(stream)
        for page_number, body in kept_pages(raw, run_id, tenant_id, stream.name):
            records = validator.read_page(page_number, body)
            for position, record in enumerate(records or ()):
                batch.add(record_label(stream, page_number, position, record, origin), page_number, position, record)
            if batch.pending_rows >= limit:
                batch.flush()
        batch.flush()
        writer.wait()
        result.validations = validator.validations
        try:
            result.results = validator.finish()
        except BatchRejected as rejected:
            rejected.origin = origin  # so the quarantined batch names keyless records as the checks did
            raise
        result.held = batch.held_records(lambda wanted: _raw_records(raw, run_id, tenant_id, stream, wanted))
        # Loaded now (Xero corrected them, or a retry of this run no longer fails them): not held any more.
        quarantine.supersede_records(conn, tenant_id, stream.name,
                                     batch.superseding - {h.label for h in result.held}, run_id)
        quarantine.hold_records(conn, run_id, tenant_id, stream.name, result.held)
        state.advance(
            conn,
            tenant_id,
            stream.name,
            watermark=datetime.fromisoformat(extracted.max_cursor) if extracted.max_cursor else None,
            journal_offset=extracted.last_offset,
            full=extracted.full,
        )
    result.rows = dict(counts)
    result.checks = [c.to_dict() for c in result.results if not c.passed]
    if result.held:
        log.warning("Tenant %s, %s: %d record(s) held back in quarantine (%s); the rest loaded.", tenant_id,
                    stream.name, len(result.held), ", ".join(h.label for h in result.held[:5])
                    + (" …" if len(result.held) > 5 else ""))
    return result


def load_records(
    conn: Connection,
    run_id: str,
    tenant_id: str,
    stream: Stream,
    records: Iterable[tuple[str, int, int, Any]],
    *,
    accept: tuple[str, ...] = (),
) -> StreamLoad:
    """Load records picked one by one (a release of held records) through a batch's own path.

    ``records`` are (label, page, position, record). Same transform, checks and upsert as
    :func:`load_stream`, in the caller's transaction; the watermark is not touched (the batch
    they came from moved it). Records that still fail are returned in ``held``, not written;
    raises :class:`BatchRejected` when a batch-level check fails.
    """
    result = StreamLoad(stream=stream.name)
    counts: dict[str, int] = defaultdict(int)
    kept: dict[tuple[int, int], Any] = {}
    with _Writer(conn) as writer, collector.paused():
        validator = StreamValidator(conn, tenant_id, stream, accept=accept)
        batch = _Batch(conn, writer, validator, stream, tenant_id, result, counts, reconcile=False,
                       dimension=projects.for_stream(conn, run_id, tenant_id, stream, None))
        for label, page, position, record in records:
            validator.records += 1
            kept[(page, position)] = record
            batch.add(label, page, position, record)
        batch.flush()
        writer.wait()
        result.validations = validator.validations
        result.results = validator.finish()
        result.held = batch.held_records(lambda wanted: kept)
        quarantine.supersede_records(conn, tenant_id, stream.name, batch.superseding, run_id)
    result.rows = dict(counts)
    result.checks = [c.to_dict() for c in result.results if not c.passed]
    return result


class _Batch:
    """Records gathered per record (not per page: journals come 100 to a page), then checked and
    written a chunk at a time; those a record-level check fails are held back instead.

    A record listed twice (edited while Xero paged) keeps only its later version, lines
    included, as it would had each page been written on its own.
    """

    def __init__(self, conn, writer: _Writer, validator: StreamValidator, stream: Stream, tenant_id: str,
                 result: StreamLoad, counts: dict[str, int], *, reconcile: bool,
                 dimension: projects.ProjectDimension | None = None):
        self.conn, self.writer, self.validator = conn, writer, validator
        self.stream, self.tenant_id, self.result, self.counts, self.reconcile = stream, tenant_id, result, counts, \
            reconcile
        self.pending: dict[str, tuple[int, int, dict[str, list[dict[str, Any]]]]] = {}
        self.pending_rows = 0
        self.held: dict[str, HeldRecord] = {}
        # Keys earlier runs hold back: loading a record of one of them supersedes the held version.
        self.open_held = quarantine.open_keys(conn, tenant_id, stream.name)
        self.superseding: set[str] = set()
        self.dimension = dimension  # the tenant's project dimension, resolved once for the stream

    def add(self, label: str, page: int, position: int, record: Any) -> None:
        try:
            record_rows = transform_record(self.stream.name, self.tenant_id, record, self.dimension)
        except Exception as error:  # noqa: BLE001 - hostile input is a finding, never a crash
            self._drop(label)
            reason = self.validator.unreadable(label, error)
            self._hold(label, page, position, record, [(self.stream.targets[0], "record_readable", reason)])
            return
        self._drop(label)
        self.pending[label] = (page, position, record_rows)
        self.pending_rows += sum(map(len, record_rows.values()))

    def _drop(self, label: str) -> None:
        earlier = self.pending.pop(label, None)
        if earlier:
            self.pending_rows -= sum(map(len, earlier[2].values()))

    def _hold(self, label: str, page: int, position: int, record: Any, reasons: list[tuple[str, str, str]]) -> None:
        self.held[label] = HeldRecord(label, page, position, reasons)

    def flush(self) -> None:
        if self.pending_rows:
            rows, labels = self._rows()
            held = self.validator.check(rows, labels)
            if held:
                for label, reasons in held.items():
                    page, position, _rows = self.pending.pop(label)
                    self._hold(label, page, position, None, reasons)
                rows, labels = self._rows()
            if self.pending and not self.validator.failed:
                self.writer.submit(_write, self.conn, self.stream, self.tenant_id, rows, self.counts, self.result,
                                   self.reconcile)
                for label in self.pending:
                    if self.held.pop(label, None) is not None:  # its later version was read after all
                        self.validator.readable_after_all(label)
                self.superseding.update(self.open_held.intersection(self.pending))
        self.pending = {}
        self.pending_rows = 0
        collector.collect_young()  # the cycles a chunk's checks leave behind

    def _rows(self) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[str]]]:
        rows: dict[str, list[dict[str, Any]]] = {t: [] for t in self.stream.targets}
        labels: dict[str, list[str]] = {t: [] for t in self.stream.targets}
        for label, (_page, _position, record_rows) in self.pending.items():
            for table, table_rows in record_rows.items():
                rows[table].extend(table_rows)
                labels[table].extend([label] * len(table_rows))
        return rows, labels

    def held_records(self, fetch: Callable[[dict[int, set[int]]], dict[tuple[int, int], Any]]) -> list[HeldRecord]:
        """The held records with their raw JSON, read back only now (held records are rare)."""
        if not self.held:
            return []
        wanted: dict[int, set[int]] = defaultdict(set)
        for item in self.held.values():
            wanted[item.page].add(item.position)
        records = fetch(wanted)
        held = sorted(self.held.values(), key=lambda h: (h.page, h.position))
        for item in held:
            item.record = records.get((item.page, item.position))
            item.keyed = record_key_text(self.stream, item.record) == item.label
        return held


def _raw_records(raw: RawStore, run_id: str, tenant_id: str, stream: Stream,
                 wanted: dict[int, set[int]]) -> dict[tuple[int, int], Any]:
    """Records by (page, position) from the kept pages, numbers exact."""
    from intoaec_xero.parsing import loads

    paths = raw.page_paths(run_id, tenant_id, stream.name)
    found: dict[tuple[int, int], Any] = {}
    for number, positions in wanted.items():
        if not 0 < number <= len(paths):
            continue
        try:
            payload = loads(read_page(paths[number - 1]))
        except (OSError, EOFError, zlib.error, ValueError):
            continue
        records = payload.get(stream.records_key) if isinstance(payload, dict) else None
        if isinstance(records, list):
            found.update({(number, p): records[p] for p in positions if p < len(records)})
    return found


class _Writer:
    """Writes a checked chunk while the next one is read, transformed and checked.

    On PostgreSQL the database's share of a write (COPY, the upsert, index upkeep) runs in the
    server while this process prepares the next chunk; the connection is used by one thread at
    a time, since the reader needs it only before the first write. SQLite connections belong
    to the thread that opened them, so there each write runs in place.
    """

    def __init__(self, conn):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-writer") \
            if conn.dialect.name == "postgresql" else None
        self._pending: Future | None = None

    def submit(self, write, *args) -> None:
        if self._pool is None:
            write(*args)
            return
        self.wait()
        self._pending = self._pool.submit(write, *args)

    def wait(self) -> None:
        """Block until the last write is done; its failure is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        # Never leave a write running on a connection whose transaction is about to end.
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def _write(conn, stream: Stream, tenant_id: str, rows_by_table: dict[str, list[dict[str, Any]]],
           counts: dict[str, int], result: StreamLoad, reconcile: bool) -> None:
    for table_name in stream.targets:
        rows = rows_by_table[table_name]
        if table_name in CHILD_OF:
            _drop_children(conn, table_name, tenant_id, rows_by_table)
        # Children replaced whole would count as new every time: only the main table is counted.
        changes = UpsertChanges() if table_name == stream.targets[0] else None
        counts[table_name] += upsert(conn, metadata.tables[table_name], rows, changes=changes)
        if changes is not None:
            result.inserted += changes.inserted
            result.updated += changes.updated
            if reconcile:  # what a full re-read changed: the edits an incremental read could not see
                result.corrected += changes.updated


def _drop_children(conn, table_name: str, tenant_id: str, rows_by_table) -> None:
    parent_key, parent_table = CHILD_OF[table_name]
    parent_ids = [row[parent_key] for row in rows_by_table.get(parent_table, ())]
    table = metadata.tables[table_name]
    for start in range(0, len(parent_ids), 500):
        chunk = parent_ids[start : start + 500]
        conn.execute(
            delete(table).where(table.c.tenant_id == tenant_id, table.c[parent_key].in_(chunk))
        )



