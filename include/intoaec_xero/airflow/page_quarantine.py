"""The Xero page's quarantine part: what data quality checks held back, and releasing it. No request, no Airflow.

The routes in ``plugins/xero_plugin.py`` render it, as they render ``page_view`` for sync health;
the work is the library's, the same as ``intoaec-xero quarantine list|show|release``. Held
records are named ``R<id>`` (``R12``), quarantined batches by their number (``3``).

Everything is scoped to the organisations of the connection shown: an item of another
connection's organisation is "not found" (not "forbidden", which would say it exists), so the
users of one connection never see or release another connection's data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from intoaec_xero import release as releasing
from intoaec_xero import tenants
from intoaec_xero.errors import IntoAECXeroError
from intoaec_xero.quality import quarantine
from intoaec_xero.quality.model import WARN, CheckResult
from intoaec_xero.quality.quarantine import HELD, QUARANTINED, RELEASE_KIND, RELEASED, SUPERSEDED
from intoaec_xero.rawstore import RawStore
from intoaec_xero.runtime import raw_dir
from intoaec_xero.schema import held_records, quarantine_batches, sync_runs, xero_tenants

# Rows of each list on the page; the CLI lists the rest. A bad day can hold thousands.
LIST_LIMIT = 50
# Failing records of a batch shown with their raw JSON on its page (as `quarantine show`'s --limit).
BATCH_RECORDS = 20
# What the redirect after a release says happened; the page reads the rest from the database.
OUTCOMES = ("released", "held")



class NotFound(IntoAECXeroError):
    """No such item among the organisations of the connection shown (the page answers 404)."""


@dataclass(frozen=True)
class Reason:
    table: str
    check: str
    reason: str


@dataclass(frozen=True)
class HeldRow:
    """A held record as the page lists it."""

    item: str
    tenant_id: str
    organisation: str
    stream: str
    record_key: str
    checks: list[str]
    reasons: list[Reason]
    held_at: datetime | None


@dataclass(frozen=True)
class BatchRow:
    """A quarantined batch as the page lists it."""

    item: str
    tenant_id: str
    organisation: str
    stream: str
    records: int
    checks: list[str]
    message: str
    quarantined_at: datetime | None


@dataclass
class Overview:
    """The open items of the connection's organisations, newest first, at most LIST_LIMIT of each."""

    held: list[HeldRow] = field(default_factory=list)
    held_total: int = 0
    batches: list[BatchRow] = field(default_factory=list)
    batches_total: int = 0

    @property
    def held_more(self) -> int:
        return self.held_total - len(self.held)

    @property
    def batches_more(self) -> int:
        return self.batches_total - len(self.batches)

    @property
    def empty(self) -> bool:
        return not self.held_total and not self.batches_total


@dataclass(frozen=True)
class BatchRecord:
    """One failing record of a quarantined batch: which check, why, and the record as kept."""

    record_key: str
    table: str
    check: str
    reason: str
    raw: str | None


@dataclass
class Detail:
    """One held record or quarantined batch, as its review page shows it."""

    item: str
    kind: str  # "record" or "batch"
    id: int
    tenant_id: str
    organisation: str
    stream: str
    run_id: str
    status: str
    checks: list[str]
    at: datetime | None
    released_at: datetime | None = None
    released_by_run: str | None = None
    # a held record
    record_key: str | None = None
    page: int | None = None
    position: int | None = None
    reasons: list[Reason] = field(default_factory=list)
    raw: str | None = None
    note: str | None = None
    # a quarantined batch
    message: str | None = None
    records: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    failing: list[BatchRecord] = field(default_factory=list)
    failing_more: int = 0
    last_release: str | None = None

    @property
    def open(self) -> bool:
        return self.status in (HELD, QUARANTINED)

    @property
    def title(self) -> str:
        return f"Held record {self.item}" if self.kind == "record" else f"Quarantined batch #{self.item}"


@dataclass(frozen=True)
class Status:
    """The banner of an item's page: what state it is in now, and why."""

    tone: str  # the banner's class: notice, warn or info
    text: str
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    """What a release from the page did: a sentence for the page, and what still fails."""

    item: str
    released: bool
    message: str
    failing: list[str] = field(default_factory=list)
    failing_checks: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return "released" if self.released else "held"


# -- which items ------------------------------------------------------------------------------

def connection_tenants(engine: Engine, connection_key: str) -> set[str]:
    """The organisations of the connection shown, disconnected ones included: their items stay its own."""
    return {org.tenant_id for org in tenants.organisations(engine, connection_key, None)}


def parse_item(text: str) -> tuple[str, int]:
    """As ``intoaec-xero quarantine`` reads an item; a name that is no item's is "not found"."""
    try:
        return quarantine.parse_item(text)
    except IntoAECXeroError as refused:
        raise NotFound(str(refused)) from None


def overview(engine: Engine, tenant_ids: Collection[str], limit: int = LIST_LIMIT) -> Overview:
    """The connection's open held records and quarantined batches, without their raw records."""
    ids = sorted(tenant_ids)
    if not ids:
        return Overview()
    held_open = (held_records.c.status == HELD, held_records.c.tenant_id.in_(ids))
    batches_open = (quarantine_batches.c.status == QUARANTINED, quarantine_batches.c.tenant_id.in_(ids))
    with engine.connect() as conn:
        held = conn.execute(
            select(held_records.c.id, held_records.c.tenant_id, held_records.c.stream, held_records.c.record_key,
                   held_records.c.checks, held_records.c.reasons, held_records.c.held_at, xero_tenants.c.tenant_name)
            .join(xero_tenants, xero_tenants.c.tenant_id == held_records.c.tenant_id, isouter=True)
            .where(*held_open).order_by(held_records.c.id.desc()).limit(limit)
        ).mappings().all()
        held_total = conn.execute(select(func.count()).select_from(held_records).where(*held_open)).scalar_one()
        batches = conn.execute(
            select(quarantine_batches, xero_tenants.c.tenant_name)
            .join(xero_tenants, xero_tenants.c.tenant_id == quarantine_batches.c.tenant_id, isouter=True)
            .where(*batches_open).order_by(quarantine_batches.c.id.desc()).limit(limit)
        ).mappings().all()
        batches_total = conn.execute(
            select(func.count()).select_from(quarantine_batches).where(*batches_open)).scalar_one()
    return Overview(
        held=[HeldRow(item=f"R{r['id']}", tenant_id=r["tenant_id"], organisation=r["tenant_name"] or r["tenant_id"],
                      stream=r["stream"], record_key=r["record_key"], checks=list(r["checks"] or []),
                      reasons=_reasons(r["reasons"]), held_at=r["held_at"]) for r in held],
        held_total=int(held_total),
        batches=[BatchRow(item=str(b["id"]), tenant_id=b["tenant_id"], organisation=b["tenant_name"] or b["tenant_id"],
                          stream=b["stream"], records=b["records"] or 0, checks=list(b["checks"] or []),
                          message=b["message"] or "", quarantined_at=b["quarantined_at"]) for b in batches],
        batches_total=int(batches_total),
    )


def detail(engine: Engine, tenant_ids: Collection[str], item: str, records: int = BATCH_RECORDS) -> Detail:
    """One item of the connection's organisations, with why it was held and the raw JSON it was held as."""
    kind, number = parse_item(item)
    if kind == "record":
        return _record_detail(_held(engine, tenant_ids, number))
    batch = _batch(engine, tenant_ids, number)
    counts = quarantine.count_records(engine, number)
    failing = quarantine.batch_records(engine, number, limit=records) if records else []
    found = Detail(
        item=str(number), kind="batch", id=number, tenant_id=batch["tenant_id"],
        organisation=batch["tenant_name"] or batch["tenant_id"], stream=batch["stream"], run_id=batch["run_id"],
        status=batch["status"], checks=_batch_checks(batch, counts), at=batch["quarantined_at"],
        released_at=batch["released_at"], released_by_run=batch["released_by_run"], message=batch["message"],
        records=batch["records"] or 0, counts=dict(sorted(counts.items())),
        failing=[BatchRecord(record_key=r["record_key"] or "", table=r["table_name"] or "", check=r["check_name"],
                             reason=r["reason"] or "", raw=_raw(r["raw_record"])) for r in failing],
    )
    found.failing_more = max(0, sum(n for name, n in counts.items() if name != "(passed)") - len(failing))
    found.last_release = _last_release(engine, found)
    return found


def _held(engine: Engine, tenant_ids: Collection[str], record_id: int) -> dict[str, Any]:
    return _owned(quarantine.get_held, engine, tenant_ids, record_id,
                  f"There is no held record R{record_id} of this connection's organisations.")


def _batch(engine: Engine, tenant_ids: Collection[str], batch_id: int) -> dict[str, Any]:
    return _owned(quarantine.get_batch, engine, tenant_ids, batch_id,
                  f"There is no quarantined batch #{batch_id} of this connection's organisations.")


def _owned(fetch: Callable[[Engine, int], dict[str, Any]], engine: Engine, tenant_ids: Collection[str],
           item_id: int, missing: str) -> dict[str, Any]:
    """The item, if it exists and belongs to one of ``tenant_ids``; another connection's is "not found"."""
    try:
        found: dict[str, Any] | None = fetch(engine, item_id)
    except IntoAECXeroError:
        found = None
    if found is None or found["tenant_id"] not in tenant_ids:
        raise NotFound(missing)
    return found


def _record_detail(row: dict[str, Any]) -> Detail:
    record = quarantine.held_record_json(row)
    return Detail(
        item=f"R{row['id']}", kind="record", id=row["id"], tenant_id=row["tenant_id"],
        organisation=row["tenant_name"] or row["tenant_id"], stream=row["stream"], run_id=row["run_id"],
        status=row["status"], checks=list(row["checks"] or []), at=row["held_at"], released_at=row["released_at"],
        released_by_run=row["released_by_run"], record_key=row["record_key"], page=row["page"],
        position=row["position"], reasons=_reasons(row["reasons"]), note=row["note"],
        raw=_raw(record),
    )


def _raw(record: Any) -> str | None:
    return None if record is None else pretty_json(record)


def _batch_checks(batch: dict[str, Any], counts: dict[str, int]) -> list[str]:
    """The checks a batch's release may let through: those that rejected it, then its records' own.

    A batch keeps its checks as labels (``invoices.total_equals_parts``); a release accepts names.
    """
    rejected = [label.partition(".")[2] or label for label in batch["checks"] or []]
    return list(dict.fromkeys([*rejected, *sorted(name for name in counts if name != "(passed)")]))


def _reasons(stored: Any) -> list[Reason]:
    return [Reason(str(r.get("table") or ""), str(r.get("check") or ""), str(r.get("reason") or ""))
            for r in stored or [] if isinstance(r, dict)]


def _last_release(engine: Engine, batch: Detail) -> str | None:
    """What the latest release of the batch said (a release that did not load it is known only there)."""
    with engine.connect() as conn:
        return conn.execute(
            select(sync_runs.c.message)
            .where(sync_runs.c.kind == RELEASE_KIND, sync_runs.c.tenant_id == batch.tenant_id,
                   sync_runs.c.stream == batch.stream,
                   sync_runs.c.run_id.startswith(f"release__{batch.id}__", autoescape=True))
            .order_by(sync_runs.c.started_at.desc()).limit(1)
        ).scalar()


def pretty_json(value: Any, indent: int = 0) -> str:
    """The record indented for reading, every value written as ``quarantine.exact_json`` writes it.

    ``json.dumps`` would print an amount held as a Decimal through a float, or refuse it; a
    reviewer comparing with Xero needs the digits Xero sent.
    """
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, dict) and value:
        items = (f"{inner}{json.dumps(str(key))}: {pretty_json(item, indent + 2)}" for key, item in value.items())
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, (list, tuple)) and value:
        return "[\n" + ",\n".join(f"{inner}{pretty_json(item, indent + 2)}" for item in value) + f"\n{pad}]"
    return quarantine.exact_json(value)


# -- its state, and releasing it --------------------------------------------------------------

def item_status(found: Detail, outcome: str | None = None) -> Status:
    """The banner: released, superseded, or still held (``outcome`` "held": a release just tried and failed)."""
    what = "record" if found.kind == "record" else "batch"
    if found.status == RELEASED:
        return Status("notice", f"Released: this {what} was loaded into IntoAEC's tables by {found.released_by_run}.",
                      [found.note] if found.note else [])
    if found.status == SUPERSEDED:
        return Status("info", f"Superseded: a later run ({found.released_by_run}) loaded a newer version of this "
                              f"{what}; there is nothing to release.", [found.note] if found.note else [])
    if found.kind == "record":
        if outcome == "held":
            return Status("warn", f"Still held: the release ran {found.item} through today's checks and it still "
                                  f"fails {', '.join(found.checks)}.",
                          [f"{r.table}.{r.check}: {r.reason}" for r in found.reasons])
        return Status("warn", f"Held back: it fails {', '.join(found.checks)}; the rest of its batch loaded.")
    if outcome == "held":
        return Status("warn", f"Still quarantined: the release ran batch #{found.item} through today's checks and "
                              "it was rejected again.", [found.last_release] if found.last_release else [])
    return Status("warn", f"Quarantined: {', '.join(found.checks)} failed, so nothing of this batch loaded.")


def release_item(engine: Engine, tenant_ids: Collection[str], item: str, *, accept: Sequence[str] = (),
                 connection_key: str) -> Outcome:
    """Load a held record, or re-load a quarantined batch from the connection's raw pages, through today's checks.

    ``accept``: the item's failing checks to let through for this release only (recorded as warnings).
    """
    found = detail(engine, tenant_ids, item, records=0)
    if not found.open:
        by = found.released_by_run or "an earlier release"
        raise IntoAECXeroError(f"{found.title} is {found.status} already (by {by}); there is nothing to release.")
    unknown = [check for check in accept if check not in found.checks]
    if unknown:
        raise IntoAECXeroError(f"Only {found.item}'s own failing checks can be let through, not "
                               f"{', '.join(unknown)}.")
    accepted = tuple(dict.fromkeys(accept))
    if found.kind == "batch":
        raw = RawStore(raw_dir(), connection_key)
        batch = releasing.release(engine, raw, found.id, accept=accepted)
        failing = [] if batch.released else _failing(batch.results)
        return Outcome(found.item, batch.released, batch.message, [r.describe() for r in failing],
                       _names(failing))
    (record,) = releasing.release_records(engine, [found.id], accept=accepted)
    if record.ok:
        return Outcome(found.item, True, record.message)
    failing = _failing(record.results)
    names = _names(failing) or quarantine.get_held(engine, found.id)["checks"] or []
    return Outcome(found.item, False, f"{found.organisation}: {found.item} ({found.stream}) is still held: it fails "
                                      f"{', '.join(names)}.", [r.describe() for r in failing], names)


def _failing(results: list[CheckResult]) -> list[CheckResult]:
    """The failures that kept it back (accepted checks come back as warnings, and warnings load)."""
    return [r for r in results if not r.passed and r.severity != WARN]


def _names(results: list[CheckResult]) -> list[str]:
    return list(dict.fromkeys(r.check for r in results))
