"""Quarantine: where a rejected batch waits, with its failing checks and raw records.

A batch is quarantined whole (its load transaction rolled back, its watermark unmoved), so the
next run reads the same changes again: once the cause is fixed in Xero that run loads them and
the quarantined batch is marked ``superseded``. When the fix is on our side instead (a new enum
value, a transform bug), ``release`` re-runs the kept raw pages through today's code; a check
the data team decides to accept can be let through for that one release.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from intoaec_xero import state
from intoaec_xero.errors import IntoAECXeroError
from intoaec_xero.quality.model import BatchRejected, CheckResult
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import quarantine_batches, quarantine_records, xero_tenants
from intoaec_xero.streams import Stream, get_stream

log = logging.getLogger(__name__)

QUARANTINED = "quarantined"
RELEASED = "released"
SUPERSEDED = "superseded"

# Every failing record is kept. Records that passed are kept up to this many per batch: they
# are only context (a release reads the raw pages, which hold them all), and a rejected
# backfill of 100,000s of journals should not double the database.
KEEP_PASSING = 10_000
INSERT_CHUNK = 1_000


def quarantine_batch(engine: Engine, raw: RawStore, run_id: str, tenant_id: str, stream: Stream,
                     rejected: BatchRejected, message: str) -> int:
    """Copy the rejected batch's records, each with the checks it failed, next to its verdicts."""
    from intoaec_xero.load import kept_pages
    from intoaec_xero.validate import record_label

    failures = _failures(rejected.results)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        batch_id = conn.execute(insert(quarantine_batches).values(
            run_id=run_id, tenant_id=tenant_id, stream=stream.name, checks=rejected.check_names,
            message=message, records=0, status=QUARANTINED, quarantined_at=now,
        )).inserted_primary_key[0]
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
                key = record_label(stream, number, position, record)
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
    base = {"batch_id": batch_id, "tenant_id": tenant_id, "record_key": str(key)[:255], "raw_record": record}
    if not failed:
        return [{**base, "table_name": table, "check_name": None, "reason": None}]
    return [{**base, "table_name": t, "check_name": c, "reason": reason} for t, c, reason in failed]


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


def list_batches(engine: Engine, *, include_closed: bool = False, tenant: str | None = None) -> list[dict[str, Any]]:
    query = (select(quarantine_batches, xero_tenants.c.tenant_name)
             .join(xero_tenants, xero_tenants.c.tenant_id == quarantine_batches.c.tenant_id, isouter=True)
             .order_by(quarantine_batches.c.id.desc()))
    if not include_closed:
        query = query.where(quarantine_batches.c.status == QUARANTINED)
    if tenant:
        query = query.where((quarantine_batches.c.tenant_id == tenant) | (xero_tenants.c.tenant_name == tenant))
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def get_batch(engine: Engine, batch_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            select(quarantine_batches, xero_tenants.c.tenant_name)
            .join(xero_tenants, xero_tenants.c.tenant_id == quarantine_batches.c.tenant_id, isouter=True)
            .where(quarantine_batches.c.id == batch_id)
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


@dataclass
class Release:
    batch_id: int
    released: bool
    message: str
    run_id: str
    rows: dict[str, int] = field(default_factory=dict)
    results: list[CheckResult] = field(default_factory=list)


def release(engine: Engine, raw: RawStore, batch_id: int, *, accept: tuple[str, ...] = (),
            force: bool = False) -> Release:
    """Load a quarantined batch from its kept raw pages through today's checks (and code)."""
    from intoaec_xero.extract import StreamExtract
    from intoaec_xero.load import load_stream
    from intoaec_xero.quality import reconcile
    from intoaec_xero.quality.record import record_results, record_stream_verdict

    batch = get_batch(engine, batch_id)
    if batch["status"] != QUARANTINED and not force:
        raise IntoAECXeroError(
            f"Batch #{batch_id} is {batch['status']} (by {batch['released_by_run'] or 'an earlier release'}); "
            "releasing it again would load older versions over newer ones. Use --force if that is intended.")
    manifest = next((m for m in raw.manifests(batch["run_id"]) if m.get("tenant_id") == batch["tenant_id"]), None)
    if manifest is None:
        raise IntoAECXeroError(f"The raw pages of run {batch['run_id']!r} for tenant {batch['tenant_id']} are no "
                               f"longer kept under {raw.root}; batch #{batch_id} cannot be re-loaded. The next sync "
                               "reads the same changes from Xero again (the watermark did not move).")
    item = next((s for s in manifest["streams"] if s["stream"] == batch["stream"]), None)
    if item is None:
        raise IntoAECXeroError(f"Run {batch['run_id']!r} kept no {batch['stream']} pages for this tenant.")
    stream = get_stream(batch["stream"])
    run_id = f"release__{batch_id}__{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
    tenant_id, label = batch["tenant_id"], batch["tenant_name"] or batch["tenant_id"]
    started = datetime.now(UTC)
    state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=stream.name, started_at=started,
                     status="releasing", message=f"release of quarantined batch #{batch_id} from run {batch['run_id']}")
    try:
        loaded = load_stream(engine, raw, batch["run_id"], tenant_id, stream, StreamExtract(**item), accept=accept)
    except BatchRejected as rejected:
        record_results(engine, run_id, tenant_id, rejected.results)
        message = (f"{label}: batch #{batch_id} ({stream.name}) is still rejected by "
                   + "; ".join(r.describe() for r in rejected.failed) + ". It stays quarantined.")
        record_stream_verdict(engine, run_id, tenant_id, stream.name, rejected.results, status="rejected",
                              finished_at=datetime.now(UTC), message=message)
        return Release(batch_id, False, message, run_id, results=rejected.results)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(update(quarantine_batches).where(quarantine_batches.c.id == batch_id)
                     .values(status=RELEASED, released_at=now, released_by_run=run_id))
        # Older quarantined batches of the stream held a subset of these changes.
        conn.execute(update(quarantine_batches)
                     .where(quarantine_batches.c.tenant_id == tenant_id, quarantine_batches.c.stream == stream.name,
                            quarantine_batches.c.status == QUARANTINED, quarantine_batches.c.id < batch_id)
                     .values(status=SUPERSEDED, released_at=now, released_by_run=run_id))
    results = list(loaded.results)
    outcomes = {s["stream"]: "success" for s in manifest["streams"] if not s.get("unavailable")}
    checks = [r for r in reconcile.reconcile_tenant(engine, raw, manifest, outcomes)
              if reconcile.CHECK_TABLES[r.check] in stream.targets]
    record_results(engine, run_id, tenant_id, results + checks)
    record_stream_verdict(engine, run_id, tenant_id, stream.name, results + checks, status="success",
                          finished_at=now, rows_loaded=sum(loaded.rows.values()),
                          message=f"released quarantined batch #{batch_id} from run {batch['run_id']}"
                          + (f", accepting {', '.join(accept)}" if accept else ""))
    from intoaec_xero.quality import docs

    docs.publish(run_id, label, loaded.validations)
    rows = ", ".join(f"{n} {t}" for t, n in loaded.rows.items()) or "no rows"
    return Release(batch_id, True, f"{label}: released batch #{batch_id} ({stream.name}): loaded {rows}.",
                   run_id, loaded.rows, results + checks)
