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
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from intoaec_xero import state
from intoaec_xero.errors import IntoAECXeroError
from intoaec_xero.quality.model import BatchRejected, CheckResult, HeldRecord, storable
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import held_records, quarantine_batches, quarantine_records, xero_tenants
from intoaec_xero.streams import Stream, get_stream

log = logging.getLogger(__name__)

QUARANTINED = "quarantined"
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
    from intoaec_xero.load import kept_pages
    from intoaec_xero.validate import record_label

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
            batch_id = conn.execute(insert(quarantine_batches).values(
                run_id=run_id, tenant_id=tenant_id, stream=stream.name, **values)).inserted_primary_key[0]
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
                     status="releasing", message=f"release of quarantined batch #{batch_id} from run {batch['run_id']}",
                     kind=RELEASE_KIND)
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
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    statement = dialect_insert(held_records)
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
    from intoaec_xero.parsing import loads

    return None if row.get("raw_record") is None else loads(row["raw_record"])


@dataclass
class RecordRelease:
    """What releasing some held records of one tenant × stream did."""

    tenant_id: str
    stream: str
    run_id: str
    released: list[int] = field(default_factory=list)
    still_held: list[int] = field(default_factory=list)
    message: str = ""
    rows: dict[str, int] = field(default_factory=dict)
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.still_held and bool(self.released)


def release_records(engine: Engine, record_ids: list[int], *, accept: tuple[str, ...] = (), force: bool = False,
                    corrected: Any = None) -> list[RecordRelease]:
    """Load held records by id through today's transform and checks; one transaction per tenant × stream.

    ``accept`` lets named record-level checks through for this release (recorded as warnings);
    ``corrected`` is a fixed copy of the record to load instead (one id only), for when Xero's
    copy cannot be loaded as it is and will not be corrected there. A record that still fails
    stays held with its new reasons.
    """
    rows = [get_held(engine, record_id) for record_id in dict.fromkeys(record_ids)]
    if corrected is not None and len(rows) != 1:
        raise IntoAECXeroError("A corrected record replaces one held record: give exactly one id with it.")
    closed = [r for r in rows if r["status"] != HELD]
    if closed and not force:
        described = ", ".join(f"R{r['id']} is {r['status']} (by {r['released_by_run'] or 'an earlier release'})"
                              for r in closed)
        raise IntoAECXeroError(f"{described}; releasing it again would load an older version over a newer one. "
                               "Use --force if that is intended.")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["tenant_id"], row["stream"])].append(row)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    name = "R" + "-".join(str(r["id"]) for r in rows[:5]) + ("-more" if len(rows) > 5 else "")
    run_id = f"release__{name}__{stamp}"
    return [_release_group(engine, run_id, tenant_id, get_stream(stream), group, accept, corrected)
            for (tenant_id, stream), group in groups.items()]


def _release_group(engine: Engine, run_id: str, tenant_id: str, stream: Stream, rows: list[dict[str, Any]],
                   accept: tuple[str, ...], corrected: Any) -> RecordRelease:
    from intoaec_xero.load import load_records
    from intoaec_xero.quality.record import record_results, record_stream_verdict
    from intoaec_xero.validate import record_key_text, record_label

    outcome = RecordRelease(tenant_id, stream.name, run_id)
    label = rows[0]["tenant_name"] or tenant_id
    ids = ", ".join(f"R{r['id']}" for r in rows)
    items: list[tuple[str, int, int, Any]] = []
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for index, row in enumerate(rows):
        original = held_record_json(row)
        record = original if corrected is None else corrected
        if record is None:
            raise IntoAECXeroError(f"R{row['id']}: its raw record was not kept, so it cannot be loaded from "
                                   "quarantine; give a corrected copy with --corrected FILE.")
        if corrected is not None:
            was = record_key_text(stream, original)
            if was is not None and record_key_text(stream, corrected) != was:
                raise IntoAECXeroError(f"R{row['id']}: the corrected record must keep its {stream.primary_key} "
                                       f"{was!r}.")
        name = record_label(stream, row["page"] or 0, (row["position"] or 1) - 1, record, f"R{row['id']} ")
        items.append((name, 0, index, record))  # records of several runs may share a page and position
        by_label[name].append(row)  # two versions of one record (a forced release): the later one loads
    started = datetime.now(UTC)
    note = (f"released by {run_id}" + (f", accepting {', '.join(accept)}" if accept else "")
            + (", as a corrected copy: " + exact_json(corrected)[:2000] if corrected is not None else ""))
    state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=stream.name, started_at=started,
                     status="releasing", message=f"release of held record(s) {ids}", kind=RELEASE_KIND)
    try:
        with engine.begin() as conn:
            loaded = load_records(conn, run_id, tenant_id, stream, items, accept=accept)
            still = {h.label: h for h in loaded.held}
            now = datetime.now(UTC)
            for name, row in ((n, r) for n, group in by_label.items() for r in group):
                if name in still:
                    held = still[name]
                    conn.execute(update(held_records).where(held_records.c.id == row["id"]).values(
                        checks=held.checks,
                        reasons=[{"table": t, "check": c, "reason": storable(r)} for t, c, r in held.reasons]))
                    outcome.still_held.append(row["id"])
                else:
                    conn.execute(update(held_records).where(held_records.c.id == row["id"]).values(
                        status=RELEASED, released_at=now, released_by_run=run_id, note=note))
                    outcome.released.append(row["id"])
    except BatchRejected as rejected:
        outcome.results = rejected.results
        outcome.still_held = [r["id"] for r in rows]
        outcome.message = (f"{label}: {stream.name} record(s) {ids} still rejected by "
                           + "; ".join(r.describe() for r in rejected.failed) + ". They stay held.")
        record_results(engine, run_id, tenant_id, rejected.results)
        record_stream_verdict(engine, run_id, tenant_id, stream.name, rejected.results, status="rejected",
                              finished_at=datetime.now(UTC), message=outcome.message)
        return outcome
    outcome.results, outcome.rows = loaded.results, loaded.rows
    loaded_text = ", ".join(f"{n} {t}" for t, n in loaded.rows.items() if n) or "no rows"
    parts = []
    if outcome.released:
        parts.append(f"released {', '.join(f'R{i}' for i in outcome.released)} ({stream.name}): loaded {loaded_text}")
    if outcome.still_held:
        failing = {c for h in loaded.held for c in h.checks}
        verb = "fails" if len(outcome.still_held) == 1 else "fail"
        parts.append(f"{', '.join(f'R{i}' for i in outcome.still_held)} still {verb} {', '.join(sorted(failing))} "
                     "and stay held (after a fix, release again; or --accept CHECK, or --corrected FILE)")
    outcome.message = f"{label}: " + "; ".join(parts) + "."
    record_results(engine, run_id, tenant_id, loaded.results)
    record_stream_verdict(engine, run_id, tenant_id, stream.name, loaded.results,
                          status="success" if outcome.released else "rejected", finished_at=datetime.now(UTC),
                          rows_loaded=sum(loaded.rows.values()), message=outcome.message)
    return outcome
