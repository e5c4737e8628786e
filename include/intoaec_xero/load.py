"""Idempotent loads: one transaction per tenant × stream, the watermark advancing inside it.

Rows come from the raw pages (never straight from the API), so a load and a replay are the
same code path. Killed at any point, the transaction rolls back and the watermark stays put:
the next run reads the same changes again and the upsert makes that harmless.
"""

from __future__ import annotations

import logging
import zlib
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete

from intoaec_xero import collector, state
from intoaec_xero.db import UpsertChanges, upsert
from intoaec_xero.extract import StreamExtract
from intoaec_xero.rawstore import RawStore, read_page
from intoaec_xero.schema import metadata
from intoaec_xero.streams import Stream
from intoaec_xero.transform import transform_record
from intoaec_xero.validate import BatchRejected, CheckResult, StreamValidator

__all__ = ["BatchRejected", "StreamLoad", "kept_pages", "load_stream"]

log = logging.getLogger(__name__)

# Rows (all tables of a stream) checked and written together. Big enough that the checks' fixed
# cost per chunk is noise, small enough that a large tenant's journals never sit in memory whole.
CHUNK_ROWS = 25_000

# Child tables whose rows are replaced whole when their parent arrives again (a line removed
# from an edited invoice must disappear).
CHILD_OF = {
    "invoice_lines": ("invoice_id", "invoices"),
    "tracking_options": ("tracking_category_id", "tracking_categories"),
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

    def to_dict(self) -> dict[str, Any]:
        return {"stream": self.stream, "rows": self.rows, "inserted": self.inserted, "updated": self.updated,
                "corrected": self.corrected, "checks": self.checks}


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

    Raises :class:`BatchRejected` when an ``error`` check fails: the transaction rolls back, so
    no row of the batch stays and the watermark does not move.
    """
    result = StreamLoad(stream=stream.name)
    counts: dict[str, int] = defaultdict(int)
    with engine.begin() as conn, _Writer(conn) as writer, collector.paused():
        validator = StreamValidator(conn, tenant_id, stream, expected_pages=extracted.pages or None,
                                    expected_records=extracted.records, accept=accept)
        # Rows gathered per record (not per page: journals come 100 to a page) and checked and
        # written a chunk at a time. A record listed twice (edited while Xero paged) keeps only its
        # later version, lines included, as it would had each page been written on its own.
        pending: dict[Any, dict[str, list[dict[str, Any]]]] = {}
        pending_rows = 0

        def flush() -> None:
            nonlocal pending, pending_rows
            if pending_rows:
                rows_by_table: dict[str, list[dict[str, Any]]] = {t: [] for t in stream.targets}
                for record_rows in pending.values():
                    for table, rows in record_rows.items():
                        rows_by_table[table].extend(rows)
                if validator.check(rows_by_table):
                    writer.submit(_write, conn, stream, tenant_id, rows_by_table, counts, result,
                                  bool(extracted.extra.get("reconcile")))
            pending = {}
            pending_rows = 0
            collector.collect_young()  # the cycles a chunk's checks leave behind

        for page_number, body in kept_pages(raw, run_id, tenant_id, stream.name):
            records = validator.read_page(page_number, body)
            for position, record in enumerate(records or ()):
                try:
                    record_rows = transform_record(stream.name, tenant_id, record)
                except Exception as error:  # noqa: BLE001 - hostile input is a finding, never a crash
                    validator.unreadable(page_number, position, record, error)
                    continue
                key = record.get(stream.primary_key)
                key = key if isinstance(key, str) else (page_number, position)
                earlier = pending.pop(key, None)
                if earlier:
                    pending_rows -= sum(map(len, earlier.values()))
                pending[key] = record_rows
                pending_rows += sum(map(len, record_rows.values()))
            if pending_rows >= CHUNK_ROWS:
                flush()
        flush()
        writer.wait()
        result.validations = validator.validations
        result.results = validator.finish()
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
    return result


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


def kept_pages(raw: RawStore, run_id: str, tenant_id: str, stream: str) -> Iterator[tuple[int, bytes | Exception]]:
    """Each kept page, or the error reading it: a damaged file is a finding for the checks, not a crash."""
    for number, path in enumerate(raw.page_paths(run_id, tenant_id, stream), start=1):
        try:
            yield number, read_page(path)
        except (OSError, EOFError, zlib.error) as error:
            yield number, error


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



