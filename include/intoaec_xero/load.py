"""Idempotent loads: one transaction per tenant × stream, the watermark advancing inside it.

Rows come from the raw pages (never straight from the API), so a load and a replay are the
same code path. Killed at any point, the transaction rolls back and the watermark stays put:
the next run reads the same changes again and the upsert makes that harmless.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, select

from intoaec_xero import state
from intoaec_xero.db import upsert
from intoaec_xero.extract import StreamExtract
from intoaec_xero.parsing import loads
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import metadata
from intoaec_xero.streams import Stream
from intoaec_xero.transform import RecordError, transform_record
from intoaec_xero.validate import BatchRejected, CheckResult, check_batch

log = logging.getLogger(__name__)

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
    corrected: int = 0
    checks: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_stream(
    engine: Engine,
    raw: RawStore,
    run_id: str,
    tenant_id: str,
    stream: Stream,
    extracted: StreamExtract,
) -> StreamLoad:
    result = StreamLoad(stream=stream.name)
    counts: dict[str, int] = defaultdict(int)
    checks: list[CheckResult] = []
    with engine.begin() as conn:
        for page_number, body in enumerate(raw.pages(run_id, tenant_id, stream.name), start=1):
            payload = loads(body)
            rows_by_table: dict[str, list[dict[str, Any]]] = {t: [] for t in stream.targets}
            for position, record in enumerate(payload.get(stream.records_key) or ()):
                try:
                    for table, rows in transform_record(stream.name, tenant_id, record).items():
                        rows_by_table[table].extend(rows)
                except RecordError as error:
                    key = record.get(stream.primary_key) if isinstance(record, dict) else None
                    checks.append(CheckResult(stream.name, "record_readable", "error", False,
                                              observed=str(error), expected="a readable record",
                                              failing_keys=[key or f"page {page_number} #{position}"]))
                    raise BatchRejected(tenant_id, stream.name, checks) from error
            checks.extend(check_batch(tenant_id, stream.name, rows_by_table))
            for table_name in stream.targets:
                rows = rows_by_table[table_name]
                if extracted.extra.get("reconcile") and table_name == stream.targets[0]:
                    result.corrected += _count_changed(conn, metadata.tables[table_name], rows)
                if table_name in CHILD_OF:
                    _drop_children(conn, table_name, tenant_id, rows_by_table)
                counts[table_name] += upsert(conn, metadata.tables[table_name], rows)
        state.advance(
            conn,
            tenant_id,
            stream.name,
            watermark=datetime.fromisoformat(extracted.max_cursor) if extracted.max_cursor else None,
            journal_offset=extracted.last_offset,
            full=extracted.full,
        )
    result.rows = dict(counts)
    result.checks = [asdict(c) for c in checks if not c.passed]
    return result


def _count_changed(conn, table, rows: list[dict[str, Any]]) -> int:
    """Rows a full reconcile is about to change: the edits an incremental read could not see."""
    if not rows:
        return 0
    keys = [c.name for c in table.primary_key.columns]
    tenant_key, id_key = keys
    tenant_id = rows[0][tenant_key]
    existing = {}
    for start in range(0, len(rows), 500):
        ids = [row[id_key] for row in rows[start : start + 500]]
        for row in conn.execute(select(table).where(table.c[tenant_key] == tenant_id, table.c[id_key].in_(ids))):
            existing[row._mapping[id_key]] = row._mapping
    changed = 0
    for row in rows:
        before = existing.get(row[id_key])
        if before is not None and any(_differs(before[c], v) for c, v in row.items() if c in before):
            changed += 1
    return changed


def _differs(stored: Any, incoming: Any) -> bool:
    if isinstance(stored, datetime) and isinstance(incoming, datetime):
        # SQLite hands back naive UTC
        return stored.replace(tzinfo=None) != incoming.astimezone(UTC).replace(tzinfo=None)
    return stored != incoming


def _drop_children(conn, table_name: str, tenant_id: str, rows_by_table) -> None:
    parent_key, parent_table = CHILD_OF[table_name]
    parent_ids = [row[parent_key] for row in rows_by_table.get(parent_table, ())]
    table = metadata.tables[table_name]
    for start in range(0, len(parent_ids), 500):
        chunk = parent_ids[start : start + 500]
        conn.execute(
            delete(table).where(table.c.tenant_id == tenant_id, table.c[parent_key].in_(chunk))
        )



