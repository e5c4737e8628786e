"""History by date window: the documents dated inside [start, end) — invoices, credit notes, payments, bank
transactions and transfers, manual journals, prepayments and overpayments (all a derived ledger is built from).

Each window is read with Xero's ``where`` on ``Date`` (one of the filters Xero serves
efficiently on large organisations) and loaded through the sync's own load, so it passes the
same validation and quarantine and upserts by key: re-running a window changes nothing.

A window never moves the sync's cursors. Its extract is a full read of the window, but the
sync's watermark says "everything changed before this moment is loaded", which a window of
2019 cannot vouch for; so the window's result is handed to the load with no cursor, no offset
and ``full=False``, and the load leaves the sync's watermark, journal offset and last full
reconcile as they were.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from intoaec_xero import ledger, state
from intoaec_xero.backfill import progress
from intoaec_xero.client import XeroClient
from intoaec_xero.errors import IntoAECXeroError
from intoaec_xero.extract import extract_stream
from intoaec_xero.payloads import Manifest, TenantRef, TenantSummary
from intoaec_xero.pipeline import skip_extracted
from intoaec_xero.rawstore import RawStore
from intoaec_xero.state import StreamState
from intoaec_xero.streams import (
    BANK_TRANSACTIONS,
    BANK_TRANSFERS,
    CREDIT_NOTES,
    INVOICES,
    MANUAL_JOURNALS,
    OVERPAYMENTS,
    PAYMENTS,
    PREPAYMENTS,
    Stream,
    get_stream,
)

log = logging.getLogger(__name__)

#: The streams whose records carry a document ``Date`` that windows can filter on.
WINDOW_STREAMS: tuple[Stream, ...] = (INVOICES, CREDIT_NOTES, PAYMENTS, BANK_TRANSACTIONS, BANK_TRANSFERS,
                                      MANUAL_JOURNALS, PREPAYMENTS, OVERPAYMENTS)


class WindowFailed(IntoAECXeroError):
    """A window could not be read; nothing of it was loaded, and re-running it is safe."""


def as_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    return as_date(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def where_clause(start: date | datetime | str, end: date | datetime | str) -> str:
    """Xero's filter for ``start <= Date < end`` (dates are org-local days, compared as days)."""
    first, stop = as_date(start), as_date(end)
    if stop <= first:
        raise ValueError(f"A backfill window must end after it starts ({first} → {stop}).")
    return (f"Date >= DateTime({first.year},{first.month:02d},{first.day:02d}) && "
            f"Date < DateTime({stop.year},{stop.month:02d},{stop.day:02d})")


def window_label(start: date | datetime | str, end: date | datetime | str) -> str:
    first, stop = as_date(start), as_date(end)
    return f"{first.isoformat()}..{stop.isoformat()}"


def window_month(start: date | datetime | str, end: date | datetime | str) -> str:
    """"August 2025" for a window that is one calendar month, else the dates it covers."""
    first, stop = as_date(start), as_date(end)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    if first.day == 1 and stop == following:
        return first.strftime("%B %Y")
    return f"{first.isoformat()} to {(stop - timedelta(days=1)).isoformat()}"


def window_streams(names: list[str] | None = None) -> list[Stream]:
    if not names:
        return list(WINDOW_STREAMS)
    streams = [get_stream(n) for n in names]
    unsupported = [s.name for s in streams if s not in WINDOW_STREAMS]
    if unsupported:
        raise ValueError(f"Backfill windows cover {', '.join(s.name for s in WINDOW_STREAMS)}; "
                         f"not {', '.join(unsupported)}.")
    return streams


def extract_window(
    client: XeroClient,
    engine: Engine,
    raw: RawStore,
    run_id: str,
    tenant: TenantRef,
    start: date | datetime | str,
    end: date | datetime | str,
    streams: list[Stream] | None = None,
) -> Manifest:
    """Read one window of every stream into the raw store; returns the manifest the load takes.

    Any stream failing fails the window before anything of it is loaded, as in the sync.
    """
    tenant_id, name = tenant["tenant_id"], tenant["tenant_name"]
    where = where_clause(start, end)
    label = window_label(start, end)
    extracts: list[dict[str, Any]] = []
    for stream in streams or WINDOW_STREAMS:
        started = progress.now()
        state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=stream.name,
                         started_at=started, status="extracting", message=f"backfill window {label}",
                         kind="backfill")
        limited_before = client.stats.rate_limited
        try:
            result = extract_stream(client, stream, tenant_id, StreamState(), raw, run_id, full=True, where=where)
        except IntoAECXeroError as error:
            state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=stream.name,
                             finished_at=progress.now(), status="failed", message=f"window {label}: {error}")
            _note_window(engine, tenant_id, stream.name, label, {"status": "failed", "error": str(error),
                                                                   "run_id": run_id})
            skip_extracted(engine, run_id, tenant_id, [e["stream"] for e in extracts],
                           f"{stream.name} failed for window {label}")
            raise WindowFailed(f"{name}: {stream.name} for window {label} failed: {error}") from error
        # Hand the load rows only: no cursor, offset or full-read claim to move the sync's state.
        result.full = False
        result.max_cursor = None
        result.last_offset = None
        # "backfill": the load checks every row, but leaves whole-ledger reconciliation of a
        # partly loaded history to the scheduled sync.
        result.extra.update({"reconcile": False, "window": label, "backfill": f"window {label}"})
        result.started_at = started.isoformat()
        result.finished_at = progress.now().isoformat()
        quota = client.stats.quota.get(tenant_id, {})
        state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=stream.name, status="extracted",
                         rows_extracted=result.records, api_calls=result.api_calls,
                         rate_limited=client.stats.rate_limited - limited_before,
                         quota_day_remaining=quota.get("day_remaining"),
                         quota_minute_remaining=quota.get("minute_remaining"))
        log.info("%s: %s window %s: %d records in %d pages, %d API calls", name, stream.name, label,
                 result.records, result.pages, result.api_calls)
        extracts.append(result.to_dict())
    manifest: Manifest = {"run_id": run_id, "tenant_id": tenant_id, "tenant_name": name,
                          "connection_key": raw.connection_key,
                "streams": extracts, "window": label, "quota": client.stats.quota.get(tenant_id, {})}
    raw.write_manifest(run_id, tenant_id, manifest)
    return manifest


def record_loaded(engine: Engine, manifest: Manifest, summary: TenantSummary) -> None:
    """Note per stream which windows are in, for ``backfill status``."""
    by_stream = {item["stream"]: item for item in manifest["streams"]}
    for stream_name, outcome in summary["streams"].items():
        item = by_stream.get(stream_name, {})
        entry = {"status": "loaded" if outcome["status"] == "success" else outcome["status"],
                 "records": item.get("records"), "calls": item.get("api_calls"), "run_id": manifest["run_id"]}
        if outcome.get("reason"):
            entry["error"] = outcome["reason"]
        _note_window(engine, manifest["tenant_id"], stream_name, manifest["window"], entry)
    loaded = any(o["status"] == "success" and sum((o.get("rows") or {}).values()) for o in summary["streams"].values())
    if loaded and ledger.has_derived(engine, manifest["tenant_id"], with_balancing=True):
        ledger.mark_stale(engine, manifest["tenant_id"])  # a derived ledger takes the history in at the next sync


def _note_window(engine: Engine, tenant_id: str, stream: str, label: str, entry: dict[str, Any]) -> None:
    def change(current: dict[str, Any]) -> dict[str, Any]:
        windows = current.setdefault("windows", {})
        windows[label] = {**entry, "at": progress.iso(progress.now())}
        return current

    progress.update(engine, tenant_id, stream, change)
