"""Releasing quarantined data: a rejected batch, or single held records, loaded through today's checks.

A release is a load of its own (``sync_runs.kind`` ``release``): it reads what quarantine kept
(the batch's raw pages, or each held record's exact JSON), runs it through the same transform,
checks and upserts as a sync, and records its verdicts next to the sync's.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, update

from intoaec_xero import pipeline, state
from intoaec_xero.errors import IntoAECXeroError
from intoaec_xero.extract import StreamExtract
from intoaec_xero.load import load_records
from intoaec_xero.quality import docs
from intoaec_xero.quality.model import BatchRejected, CheckResult, record_key_text, record_label, storable
from intoaec_xero.quality.quarantine import (
    HELD,
    QUARANTINED,
    RELEASE_KIND,
    RELEASED,
    SUPERSEDED,
    exact_json,
    get_batch,
    get_held,
    held_record_json,
)
from intoaec_xero.quality.record import record_results, record_stream_verdict
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import held_records, quarantine_batches
from intoaec_xero.streams import Stream, get_stream


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
    batch = get_batch(engine, batch_id)
    if batch["status"] != QUARANTINED and not force:
        raise IntoAECXeroError(
            f"Batch #{batch_id} is {batch['status']} (by {batch['released_by_run'] or 'an earlier release'}); "
            "releasing it again would load older versions over newer ones. Use --force if that is intended.")
    # Pages are kept per Xero connection: the batch's may be another's (the organisation moved since).
    raw = raw.holding(batch["run_id"], batch["tenant_id"]) or raw
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
        loaded = pipeline.load_checked(engine, raw, batch["run_id"], tenant_id, stream, StreamExtract(**item),
                                       verdicts_run=run_id, accept=accept)
    except BatchRejected as rejected:
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
    checks = pipeline.check_ledger(engine, raw, manifest, outcomes, verdicts_run=run_id, tables=stream.targets)
    record_stream_verdict(engine, run_id, tenant_id, stream.name, results + checks, status="success",
                          finished_at=now, rows_loaded=sum(loaded.rows.values()),
                          message=f"released quarantined batch #{batch_id} from run {batch['run_id']}"
                          + (f", accepting {', '.join(accept)}" if accept else ""))
    docs.publish(run_id, label, loaded.validations)
    rows = ", ".join(f"{n} {t}" for t, n in loaded.rows.items()) or "no rows"
    return Release(batch_id, True, f"{label}: released batch #{batch_id} ({stream.name}): loaded {rows}.",
                   run_id, loaded.rows, results + checks)


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
