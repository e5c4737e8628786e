"""Backfill progress, kept in ``sync_state.details`` of the stream it concerns.

The row's own columns (watermark, journal_offset) stay the scheduled sync's position; the
backfill writes only its ``details["backfill"]`` entry, so neither can move the other's
cursor. Every write is a read-modify-write under the row's lock (``FOR UPDATE`` on PostgreSQL,
SQLite's ``BEGIN IMMEDIATE``), because the sync's loads, other tenants' tasks and another run's
backfill may all touch ``sync_state`` at the same moment.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from intoaec_xero.db import as_utc, upsert
from intoaec_xero.schema import sync_state, xero_tenants
from intoaec_xero.streams import JOURNALS

KEY = "backfill"


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    return as_utc(datetime.fromisoformat(value))


def _ensure_row(conn: Connection, tenant_id: str, stream: str) -> None:
    """A bare row (no watermark, no offset) reads exactly like no row to the sync."""
    exists = conn.execute(
        select(sync_state.c.stream).where(sync_state.c.tenant_id == tenant_id, sync_state.c.stream == stream)
    ).first()
    if not exists:
        upsert(conn, sync_state, [{"tenant_id": tenant_id, "stream": stream, "updated_at": now()}])


def _locked_details(conn: Connection, tenant_id: str, stream: str) -> dict[str, Any]:
    row = conn.execute(
        select(sync_state.c.details)
        .where(sync_state.c.tenant_id == tenant_id, sync_state.c.stream == stream)
        .with_for_update()
    ).first()
    return dict(row.details or {}) if row else {}


def read(engine: Engine, tenant_id: str, stream: str) -> dict[str, Any]:
    """This stream's backfill entry (empty when none ever ran)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(sync_state.c.details)
            .where(sync_state.c.tenant_id == tenant_id, sync_state.c.stream == stream)
        ).first()
    return copy.deepcopy((row.details or {}).get(KEY) or {}) if row else {}


def update(engine: Engine, tenant_id: str, stream: str,
           change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> dict[str, Any]:
    """Apply ``change`` to the backfill entry atomically; it returns the new entry (None: leave as is)."""
    with engine.begin() as conn:
        _ensure_row(conn, tenant_id, stream)
        details = _locked_details(conn, tenant_id, stream)
        current = copy.deepcopy(details.get(KEY) or {})
        new = change(copy.deepcopy(current))
        if new is None:
            return current
        details[KEY] = new
        conn.execute(
            sync_state.update()
            .where(sync_state.c.tenant_id == tenant_id, sync_state.c.stream == stream)
            .values(details=details, updated_at=now())
        )
        return copy.deepcopy(new)


def claim(engine: Engine, tenant_id: str, stream: str, holder: str, ttl: timedelta) -> str | None:
    """Take the stream's backfill lease for ``holder``; returns who holds it instead, or None.

    Two walkers on one tenant would fetch the same pages twice out of one quota share. The
    lease is renewed at every checkpoint and released at the end of each pass; a killed
    walker's lease lapses after ``ttl``, so a later run takes over without anyone's help.
    """
    other: list[str] = []

    def take(entry: dict[str, Any]) -> dict[str, Any] | None:
        lease = entry.get("lease") or {}
        until = parse_iso(lease.get("until"))
        if lease.get("holder") not in (None, holder) and until and until > now():
            other.append(lease["holder"])
            return None
        entry["lease"] = {"holder": holder, "until": iso(now() + ttl)}
        return entry

    update(engine, tenant_id, stream, take)
    return other[0] if other else None


def release(engine: Engine, tenant_id: str, stream: str, holder: str) -> None:
    def drop(entry: dict[str, Any]) -> dict[str, Any] | None:
        if (entry.get("lease") or {}).get("holder") != holder:
            return None
        entry.pop("lease", None)
        return entry

    update(engine, tenant_id, stream, drop)


def all_entries(engine: Engine) -> list[dict[str, Any]]:
    """Every tenant × stream with a backfill entry, with the tenant's name, for ``backfill status``."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(sync_state.c.tenant_id, sync_state.c.stream, sync_state.c.details,
                   sync_state.c.journal_offset, sync_state.c.last_error, xero_tenants.c.tenant_name)
            .join(xero_tenants, xero_tenants.c.tenant_id == sync_state.c.tenant_id, isouter=True)
            .order_by(xero_tenants.c.tenant_name, sync_state.c.tenant_id, sync_state.c.stream)
        ).mappings().all()
    return [
        {"tenant_id": r["tenant_id"], "tenant_name": r["tenant_name"] or r["tenant_id"], "stream": r["stream"],
         "sync_journal_offset": r["journal_offset"], "sync_last_error": r["last_error"],
         "backfill": copy.deepcopy((r["details"] or {}).get(KEY))}
        for r in rows if (r["details"] or {}).get(KEY)
    ]


def summarise(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One tenant's backfill from its rows of :func:`all_entries`: the journal walk and the windows per stream.

    ``intoaec-xero backfill status``, ``intoaec-xero status`` and the Xero page all read this.
    """
    summary: dict[str, Any] = {"journals": None, "windows": {}}
    for row in entries:
        entry = row["backfill"] or {}
        if row["stream"] == JOURNALS.name and "status" in entry:
            summary["journals"] = journal_summary(entry, row.get("sync_journal_offset"))
        if entry.get("windows"):
            summary["windows"][row["stream"]] = window_summary(entry["windows"])
    return summary


def journal_summary(entry: dict[str, Any], sync_offset: int | None) -> dict[str, Any]:
    target, offset = entry.get("target"), entry.get("offset")
    # The last page may reach past the target (journals posted since the plan): never above 100%.
    percent = (min(100.0, 100.0 * (offset or 0) / target) if target
               else (100.0 if entry.get("status") == "complete" else None))
    per_call = JOURNALS.page_size
    calls_left = -(-(target - (offset or 0)) // per_call) if target is not None and offset is not None else None
    return {
        "status": entry.get("status"), "offset": offset, "target": target,
        "percent": round(percent, 1) if percent is not None else None,
        "journals_loaded": entry.get("journals_loaded", 0), "lines_loaded": entry.get("lines_loaded", 0),
        "calls_total": entry.get("calls_total", 0), "calls_left": calls_left, "eta": entry.get("eta"),
        "last_pass": entry.get("last_pass"), "quota_stopped_at": entry.get("quota_stopped_at"),
        "message": entry.get("message"), "last_error": entry.get("last_error"),
        "lease": entry.get("lease"), "sync_reads_after": sync_offset,
    }


def window_summary(windows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    loaded = sorted(label for label, w in windows.items() if w.get("status") == "loaded")
    failed = sorted(label for label, w in windows.items() if w.get("status") != "loaded")
    return {"loaded": len(loaded), "first": loaded[0].split("..")[0] if loaded else None,
            "last": loaded[-1].split("..")[1] if loaded else None,
            "records": sum(int(w.get("records") or 0) for label, w in windows.items() if label in loaded),
            "not_loaded": {label: windows[label].get("error") or windows[label].get("status") for label in failed}}


def ledger_pending(engine: Engine, tenant_id: str) -> str | None:
    """While the journal backfill walks history, the ledger is knowingly incomplete: why, or None."""
    entry = read(engine, tenant_id, JOURNALS.name)
    if not entry or entry.get("status") in ("complete", "unavailable"):
        return None
    offset, target = entry.get("offset") or 0, entry.get("target")
    where = f" ({int(offset):,} of {int(target):,} journals)" if target else ""
    return f"the journal backfill is still loading the ledger's history{where}"
