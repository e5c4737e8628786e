"""Quarantine: where held records and rejected batches wait, with their failing checks and raw JSON.

Two kinds of thing wait here:

- **held records** (``held_records``): a record that failed a record-level check, held back
  alone with its lines while the rest of its batch loaded and the watermark moved on. If Xero's
  copy is corrected, the next run reads it again (its UpdatedDateUTC moved), loads it and marks
  the held one ``superseded``. Otherwise ``release`` loads it by id through today's code and
  checks, after a fix on our side (a new enum value, a transform bug), with a check the data
  team decides to accept, or as a corrected copy of the record they supply;
- **rejected batches** (``quarantine_batches`` / ``quarantine_records``): a batch-level check
  failed, so the batch is quarantined whole (its load transaction rolled back, its watermark
  unmoved) and the next run reads the same changes again: once the cause is fixed in Xero that
  run loads them and the batch is marked ``superseded``. ``release`` re-runs the kept raw pages
  through today's code.

Both are written idempotently: a retried load task finds its run's held records and rejected
batch again instead of adding copies.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from intoaec_xero.errors import IntoAECXeroError
from intoaec_xero.parsing import loads
from intoaec_xero.quality.model import BatchRejected, CheckResult, HeldRecord, record_label, storable
from intoaec_xero.rawstore import RawStore, kept_pages
from intoaec_xero.schema import held_records, quarantine_batches, quarantine_records, xero_tenants
from intoaec_xero.streams import Stream

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

log = logging.getLogger(__name__)

QUARANTINED = "quarantined"
# How people name items: R12 (or R#12) for a held record, 3 (or #3) for a batch; ids fit the table's integers.
_ITEM = re.compile(r"^(?:(?P<record>[Rr])#?|#?)(?P<id>\d{1,9})$")


def parse_item(text: str) -> tuple[str, int]:
    """("record", 12) for R12, ("batch", 3) for 3; anything else is refused with what to write."""
    match = _ITEM.match(text.strip())
    if match is None:
        raise IntoAECXeroError(f"{text!r} is neither a held record (R12) nor a batch number (3).")
    return ("record" if match["record"] else "batch"), int(match["id"])


HELD = "held"
RELEASED = "released"
SUPERSEDED = "superseded"
# sync_runs.kind of a release: it loads what an earlier run held back; it is not a sync of its own.
RELEASE_KIND = "release"

# Every failing record is kept. Records that passed are kept up to this many per batch: they
# are only context (a release reads the raw pages, which hold them all), and a rejected
# backfill of 100,000s of journals should not double the database.
KEEP_PASSING = 10_000
INSERT_CHUNK = 1_000


def quarantine_batch(engine: Engine, raw: RawStore, run_id: str, tenant_id: str, stream: Stream,
                     rejected: BatchRejected, message: str) -> int:
    """Copy the rejected batch's records, each with the checks it failed, next to its verdicts."""
    failures = _failures(rejected.results)
    origin = getattr(rejected, "origin", "")
    now = datetime.now(UTC)
    values = {"checks": rejected.check_names, "message": storable(message), "records": 0, "status": QUARANTINED,
              "quarantined_at": now, "released_at": None, "released_by_run": None}
    with engine.begin() as conn:
        # A retried load task quarantines the same batch again: it takes the place of the first copy.
        batch_id = conn.execute(
            select(func.max(quarantine_batches.c.id)).where(quarantine_batches.c.run_id == run_id,
                                                            quarantine_batches.c.tenant_id == tenant_id,
                                                            quarantine_batches.c.stream == stream.name)
        ).scalar()
        if batch_id is None:
            inserted = conn.execute(insert(quarantine_batches).values(
                run_id=run_id, tenant_id=tenant_id, stream=stream.name, **values)).inserted_primary_key
            if inserted is None:  # pragma: no cover - a single-row INSERT always reports its key
                raise RuntimeError("the database reported no id for the new quarantine batch")
            batch_id = inserted[0]
        else:
            conn.execute(update(quarantine_batches).where(quarantine_batches.c.id == batch_id).values(**values))
            conn.execute(delete(quarantine_records).where(quarantine_records.c.batch_id == batch_id))
        pending: list[dict[str, Any]] = []
        total = passing_kept = 0
        for number, body in kept_pages(raw, run_id, tenant_id, stream.name):
            records = _records(stream, body)
            if records is None:
                key = f"page {number}"
                pending.extend(_rows(batch_id, tenant_id, stream.targets[0], key, failures.pop(key, None),
                                     _page_copy(number, body)))
                continue
            for position, record in enumerate(records):
                total += 1
                key = record_label(stream, number, position, record, origin)
                failed = failures.pop(key, None)
                if failed is None:
                    if passing_kept >= KEEP_PASSING:
                        continue
                    passing_kept += 1
                pending.extend(_rows(batch_id, tenant_id, stream.targets[0], key, failed, record))
            if len(pending) >= INSERT_CHUNK:
                conn.execute(insert(quarantine_records), pending)
                pending = []
        # Failures with no record of their own (a page that is missing altogether, say).
        for key, failed in failures.items():
            pending.extend(_rows(batch_id, tenant_id, stream.targets[0], key, failed, None))
        if pending:
            conn.execute(insert(quarantine_records), pending)
        conn.execute(update(quarantine_batches).where(quarantine_batches.c.id == batch_id).values(records=total))
    return batch_id


def _failures(results: list[CheckResult]) -> dict[str, list[tuple[str, str, str]]]:
    """record key -> [(table, check, reason)] for every check that failed, errors first."""
    found: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for result in sorted(results, key=lambda r: r.severity != "error"):
        if result.passed:
            continue
        for key, reason in result.record_keys.items():
            found[key].append((result.table, result.check, reason))
    return found


def _rows(batch_id: int, tenant_id: str, table: str, key: str, failed: list | None, record: Any) -> list[dict]:
    base = {"batch_id": batch_id, "tenant_id": tenant_id, "record_key": storable(str(key))[:255], "raw_record": record}
    if not failed:
        return [{**base, "table_name": table, "check_name": None, "reason": None}]
    return [{**base, "table_name": t, "check_name": c, "reason": storable(reason)} for t, c, reason in failed]


def _records(stream: Stream, body: bytes | Exception) -> list | None:
    """The page's records as plain JSON (floats are fine here: the raw pages keep the exact text)."""
    if isinstance(body, Exception):
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    records = payload.get(stream.records_key) if isinstance(payload, dict) else None
    return records if isinstance(records, list) else None


def _page_copy(number: int, body: bytes | Exception) -> dict[str, Any]:
    if isinstance(body, Exception):
        return {"page": number, "error": str(body)}
    return {"page": number, "bytes": len(body), "start": body[:2000].decode("utf-8", "replace"),
            "end": body[-500:].decode("utf-8", "replace")}


def supersede(engine: Engine, tenant_id: str, stream: str, by_run: str) -> int:
    """A later successful load re-read what the quarantined batches held (the watermark had not moved)."""
    with engine.begin() as conn:
        result = conn.execute(
            update(quarantine_batches)
            .where(quarantine_batches.c.tenant_id == tenant_id, quarantine_batches.c.stream == stream,
                   quarantine_batches.c.status == QUARANTINED, quarantine_batches.c.run_id != by_run)
            .values(status=SUPERSEDED, released_by_run=by_run, released_at=datetime.now(UTC))
        )
    return result.rowcount or 0


def _named(table):
    """A quarantine table's rows with their organisation's name (kept even if the tenant is gone)."""
    return (select(table, xero_tenants.c.tenant_name)
            .join(xero_tenants, xero_tenants.c.tenant_id == table.c.tenant_id, isouter=True))


def list_batches(engine: Engine, *, include_closed: bool = False, tenant: str | None = None) -> list[dict[str, Any]]:
    query = _named(quarantine_batches).order_by(quarantine_batches.c.id.desc())
    if not include_closed:
        query = query.where(quarantine_batches.c.status == QUARANTINED)
    if tenant:
        query = query.where((quarantine_batches.c.tenant_id == tenant) | (xero_tenants.c.tenant_name == tenant))
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def get_batch(engine: Engine, batch_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            _named(quarantine_batches).where(quarantine_batches.c.id == batch_id)
        ).mappings().first()
    if row is None:
        raise IntoAECXeroError(f"There is no quarantined batch #{batch_id}; `intoaec-xero quarantine list --all` "
                               "lists them.")
    return dict(row)


def batch_records(engine: Engine, batch_id: int, *, failing_only: bool = True, limit: int | None = 50) -> list[dict]:
    query = select(quarantine_records).where(quarantine_records.c.batch_id == batch_id).order_by(
        quarantine_records.c.id)
    if failing_only:
        query = query.where(quarantine_records.c.check_name.is_not(None))
    if limit:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def count_records(engine: Engine, batch_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(quarantine_records.c.check_name, func.count())
                            .where(quarantine_records.c.batch_id == batch_id)
                            .group_by(quarantine_records.c.check_name)).all()
    return {name or "(passed)": int(n) for name, n in rows}


# -- held records ------------------------------------------------------------------------------

# Keys per IN (...) list: well under every backend's limit on bound parameters.
KEYS_PER_STATEMENT = 500


def exact_json(value: Any) -> str:
    """JSON text of a record as parsed from Xero's page, every amount exactly as sent.

    Non-ASCII is escaped, so the text holds no NUL and no unpaired surrogate however hostile the
    record (both backends store it; the record itself goes back through the checks on release).
    """
    parts: list[str] = []
    _encode(value, parts.append)
    return "".join(parts)


def _encode(value: Any, out) -> None:
    if isinstance(value, dict):
        out("{")
        for n, (key, item) in enumerate(value.items()):
            out(("," if n else "") + json.dumps(str(key)) + ":")
            _encode(item, out)
        out("}")
    elif isinstance(value, (list, tuple)):
        out("[")
        for n, item in enumerate(value):
            if n:
                out(",")
            _encode(item, out)
        out("]")
    elif isinstance(value, Decimal):
        out(str(value) if value.is_finite() else json.dumps(str(value)))
    else:
        out(json.dumps(value, default=str))


def open_keys(conn: Connection, tenant_id: str, stream: str) -> set[str]:
    """Keys of the stream's records that are held back now."""
    return set(conn.execute(select(held_records.c.record_key).where(
        held_records.c.tenant_id == tenant_id, held_records.c.stream == stream, held_records.c.status == HELD)
    ).scalars())


def hold_records(conn: Connection, run_id: str, tenant_id: str, stream: str, held: list[HeldRecord]) -> None:
    """Keep the held records of one load, in its transaction; a retry of the load updates the same rows.

    A record held again by a later run replaces the version an earlier run held (releasing that
    one would load an older version of it).
    """
    if not held:
        return
    now = datetime.now(UTC)
    rows = [{"run_id": run_id, "tenant_id": tenant_id, "stream": stream, "record_key": h.label,
             "page": h.page, "position": h.position + 1, "checks": h.checks,
             "reasons": [{"table": t, "check": c, "reason": storable(r)} for t, c, r in h.reasons],
             "raw_record": None if h.record is None else exact_json(h.record), "status": HELD, "held_at": now}
            for h in held]
    statement: PostgresInsert | SqliteInsert
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgres_insert
        statement = postgres_insert(held_records)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        statement = sqlite_insert(held_records)
    changing = ("page", "position", "checks", "reasons", "raw_record", "held_at")
    statement = statement.on_conflict_do_update(
        index_elements=["run_id", "tenant_id", "stream", "record_key"],
        set_={c: statement.excluded[c] for c in changing},
        # A record released or superseded since stays so: a retry never re-opens it.
        where=held_records.c.status == HELD)
    conn.execute(statement, rows)
    keyed = [h.label for h in held if h.keyed]
    for start in range(0, len(keyed), KEYS_PER_STATEMENT):
        conn.execute(update(held_records).where(
            held_records.c.tenant_id == tenant_id, held_records.c.stream == stream, held_records.c.status == HELD,
            held_records.c.run_id != run_id, held_records.c.record_key.in_(keyed[start:start + KEYS_PER_STATEMENT])
        ).values(status=SUPERSEDED, released_at=now, released_by_run=run_id,
                 note=f"run {run_id} held a later version of the record"))


def supersede_records(conn: Connection, tenant_id: str, stream: str, keys: Iterable[str], by_run: str) -> int:
    """Records held earlier whose key was loaded since (Xero corrected them): not held any more."""
    keys = sorted(keys)
    now, done = datetime.now(UTC), 0
    for start in range(0, len(keys), KEYS_PER_STATEMENT):
        done += conn.execute(update(held_records).where(
            held_records.c.tenant_id == tenant_id, held_records.c.stream == stream, held_records.c.status == HELD,
            held_records.c.record_key.in_(keys[start:start + KEYS_PER_STATEMENT])
        ).values(status=SUPERSEDED, released_at=now, released_by_run=by_run,
                 note=f"run {by_run} loaded the record (a later version of it)")).rowcount or 0
    return done


def list_held(engine: Engine, *, include_closed: bool = False, tenant: str | None = None,
              stream: str | None = None) -> list[dict[str, Any]]:
    """Held records, newest first (``include_closed``: released and superseded ones too)."""
    query = _named(held_records).order_by(held_records.c.id.desc())
    if not include_closed:
        query = query.where(held_records.c.status == HELD)
    if tenant:
        query = query.where((held_records.c.tenant_id == tenant) | (xero_tenants.c.tenant_name == tenant))
    if stream:
        query = query.where(held_records.c.stream == stream)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def get_held(engine: Engine, record_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            _named(held_records).where(held_records.c.id == record_id)
        ).mappings().first()
    if row is None:
        raise IntoAECXeroError(f"There is no held record R{record_id}; `intoaec-xero quarantine list --all` "
                               "lists them.")
    return dict(row)


def held_record_json(row: dict[str, Any]) -> Any:
    """The held record as parsed from Xero's page (amounts as exact decimals), or None if it was not kept."""
    return None if row.get("raw_record") is None else loads(row["raw_record"])
