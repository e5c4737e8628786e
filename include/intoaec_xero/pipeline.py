"""The sync, end to end for one Xero connection: discover tenants, extract, then load.

These functions are what the Airflow tasks call (one extract and one load per tenant) and
what ``intoaec-xero sync`` runs without Airflow. Their inputs and outputs are plain
JSON-able dicts so they travel by XCom.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from intoaec_xero import state
from intoaec_xero.client import XeroClient
from intoaec_xero.db import upsert
from intoaec_xero.errors import IntoAECXeroError, XeroAuthError
from intoaec_xero.extract import StreamExtract, extract_stream
from intoaec_xero.load import load_stream
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import xero_tenants
from intoaec_xero.settings import XeroSettings
from intoaec_xero.streams import STREAMS, Paging, Stream, get_stream
from intoaec_xero.validate import BatchRejected

log = logging.getLogger(__name__)

CONNECTED = "Connected"
DISCONNECTED = "Disconnected"
RECONNECT_NEEDED = "Reconnect needed"
CONNECTION_ERROR = "Connection error"


def _now() -> datetime:
    return datetime.now(UTC)


def discover_tenants(client: XeroClient, settings: XeroSettings, engine: Engine) -> list[dict[str, str]]:
    """The organisations to sync: Xero's /connections, narrowed by the connection's tenant filter."""
    connections = client.connections()
    wanted = [
        c for c in connections
        if c.get("tenantType", "ORGANISATION") == "ORGANISATION"
        and settings.wants_tenant(c["tenantId"], c.get("tenantName") or "")
    ]
    now = _now()
    rows = [
        {
            "tenant_id": c["tenantId"],
            "tenant_name": c.get("tenantName") or c["tenantId"],
            "tenant_type": c.get("tenantType"),
            "connection_id": c.get("id"),
            "connection_key": settings.connection_key,
            "connection_status": CONNECTED,
            "sync_enabled": True,
            "connected_at": _created(c) or now,
            "updated_at": now,
        }
        for c in wanted
    ]
    with engine.begin() as conn:
        upsert(conn, xero_tenants, rows)
        # Organisations no longer in /connections were disconnected in Xero: keep their data, say so.
        conn.execute(
            xero_tenants.update()
            .where(xero_tenants.c.connection_key == settings.connection_key,
                   xero_tenants.c.tenant_id.not_in([c["tenantId"] for c in connections] or [""]))
            .values(connection_status=DISCONNECTED, sync_enabled=False, updated_at=now)
        )
        # Still connected but left out by the tenant filter: not synced, not disconnected.
        conn.execute(
            xero_tenants.update()
            .where(xero_tenants.c.connection_key == settings.connection_key,
                   xero_tenants.c.tenant_id.in_([c["tenantId"] for c in connections] or [""]),
                   xero_tenants.c.tenant_id.not_in([r["tenant_id"] for r in rows] or [""]))
            .values(connection_status=CONNECTED, sync_enabled=False, updated_at=now)
        )
    log.info("Xero connection '%s' reaches %d organisation(s): %s", settings.connection_key, len(rows),
             ", ".join(r["tenant_name"] for r in rows) or "none")
    if settings.tenant_filter and not rows:
        log.warning("The tenant filter %s matched none of the %d connected organisations.",
                    list(settings.tenant_filter), len(connections))
    return [{"tenant_id": r["tenant_id"], "tenant_name": r["tenant_name"]} for r in rows]


def known_tenants(engine: Engine, connection_key: str) -> list[dict[str, str]]:
    """Tenants this connection reached before, for when it cannot be read now."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(xero_tenants.c.tenant_id, xero_tenants.c.tenant_name)
            .where(xero_tenants.c.connection_key == connection_key)
            .order_by(xero_tenants.c.tenant_name)
        ).all()
    return [{"tenant_id": r.tenant_id, "tenant_name": r.tenant_name} for r in rows]


def mark_connection_failed(engine: Engine, connection_key: str, error: Exception) -> None:
    status = RECONNECT_NEEDED if isinstance(error, XeroAuthError) else CONNECTION_ERROR
    with engine.begin() as conn:
        conn.execute(
            xero_tenants.update()
            .where(xero_tenants.c.connection_key == connection_key)
            .values(connection_status=status, updated_at=_now())
        )


def _created(connection: dict[str, Any]) -> datetime | None:
    value = connection.get("createdDateUtc")
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def selected_streams(names: list[str] | None = None) -> list[Stream]:
    return [get_stream(n) for n in names] if names else list(STREAMS.values())


def extract_tenant(
    client: XeroClient,
    engine: Engine,
    raw: RawStore,
    run_id: str,
    tenant: dict[str, str],
    streams: list[Stream],
    *,
    full: bool = False,
) -> dict[str, Any]:
    """Extract every stream of one tenant into the raw store.

    If any stream fails, the whole tenant fails here and nothing of it is loaded, so the
    tenant's tables never mix this run's data for some streams with last run's for others
    because of a half-finished extract.
    """
    tenant_id = tenant["tenant_id"]
    extracts: list[dict[str, Any]] = []
    for stream in streams:
        started = _now()
        state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=stream.name,
                         started_at=started, status="extracting")
        limited_before = client.stats.rate_limited
        try:
            stream_state = state.read_state(engine, tenant_id, stream.name)
            reconcile = full or _reconcile_due(stream, stream_state, started)
            result = extract_stream(client, stream, tenant_id, stream_state, raw, run_id, full=reconcile)
            result.extra["reconcile"] = bool(reconcile and stream_state.watermark)
        except IntoAECXeroError as error:
            message = f"{tenant['tenant_name']}: {stream.name} extract failed: {error}"
            state.record_error(engine, tenant_id, stream.name, str(error))
            state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=stream.name,
                             finished_at=_now(), status="failed", message=str(error),
                             api_calls=client.stats.calls)
            raise TenantSyncFailed(message) from error
        result.started_at = started.isoformat()
        result.finished_at = _now().isoformat()
        if result.unavailable:
            log.warning("%s: %s", tenant["tenant_name"], result.unavailable)
        log.info("%s: %s extracted %d records in %d pages with %d API calls%s", tenant["tenant_name"],
                 stream.name, result.records, result.pages, result.api_calls,
                 f" (changes since {result.if_modified_since})" if result.if_modified_since else " (full)")
        quota = client.stats.quota.get(tenant_id, {})
        state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=stream.name,
                         status="unavailable" if result.unavailable else "extracted",
                         rows_extracted=result.records, api_calls=result.api_calls,
                         rate_limited=client.stats.rate_limited - limited_before,
                         quota_day_remaining=quota.get("day_remaining"),
                         quota_minute_remaining=quota.get("minute_remaining"),
                         message=result.unavailable)
        extracts.append(result.to_dict())
    manifest = {"run_id": run_id, "tenant_id": tenant_id, "tenant_name": tenant["tenant_name"],
                "streams": extracts, "quota": client.stats.quota.get(tenant_id, {})}
    raw.write_manifest(run_id, tenant_id, manifest)
    return manifest


def _reconcile_due(stream: Stream, stream_state: state.StreamState, now: datetime) -> bool:
    """Some edits do not bump UpdatedDateUTC, so paged streams are re-read whole now and then.

    Journals are immutable (an edit posts new journals), so their offset never needs a re-walk.
    """
    if stream.paging is Paging.OFFSET or stream_state.watermark is None:
        return False
    last = stream_state.last_full_sync_at
    return last is None or now - last >= full_reconcile_interval()


def full_reconcile_interval() -> timedelta:
    return timedelta(days=float(os.environ.get("INTOAEC_FULL_RECONCILE_DAYS", "7")))


def replay_run(engine: Engine, raw: RawStore, run_id: str) -> list[dict[str, Any]]:
    """Transform, validate and load a past run again from its kept raw pages; no API calls."""
    manifests = raw.manifests(run_id)
    if not manifests:
        raise IntoAECXeroError(f"No raw pages kept for run {run_id!r} under {raw.root}.")
    return [load_tenant(engine, raw, manifest) for manifest in manifests]


def load_tenant(engine: Engine, raw: RawStore, manifest: dict[str, Any]) -> dict[str, Any]:
    """Load what :func:`extract_tenant` kept; each stream commits on its own with its watermark."""
    run_id, tenant_id = manifest["run_id"], manifest["tenant_id"]
    summary: dict[str, Any] = {"tenant_id": tenant_id, "tenant_name": manifest["tenant_name"],
                               "streams": {}, "failed": []}
    for item in manifest["streams"]:
        extracted = StreamExtract(**item)
        stream = get_stream(extracted.stream)
        if extracted.unavailable:
            summary["streams"][stream.name] = {"status": "unavailable", "reason": extracted.unavailable}
            continue
        try:
            loaded = load_stream(engine, raw, run_id, tenant_id, stream, extracted)
        except BatchRejected as error:
            state.record_error(engine, tenant_id, stream.name, str(error))
            state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=stream.name,
                             finished_at=_now(), status="rejected", quality_verdict="failed",
                             message=str(error))
            summary["streams"][stream.name] = {"status": "rejected", "reason": str(error)}
            summary["failed"].append(str(error))
            log.error("%s", error)
            continue
        rows = sum(loaded.rows.values())
        note = (f"full reconcile corrected {loaded.corrected} row(s) whose edits did not bump UpdatedDateUTC"
                if extracted.extra.get("reconcile") else None)
        if note:
            log.info("%s: %s %s", manifest["tenant_name"], stream.name, note)
        state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=stream.name,
                         finished_at=_now(), status="success", rows_loaded=rows,
                         quality_verdict="warn" if loaded.checks else "passed", message=note)
        summary["streams"][stream.name] = {"status": "success", "rows": loaded.rows}
        log.info("%s: %s loaded %s", manifest["tenant_name"], stream.name,
                 ", ".join(f"{n} {t}" for t, n in loaded.rows.items()) or "no changes")
    return summary


class TenantSyncFailed(IntoAECXeroError):
    """One tenant could not be synced; the others carry on."""


@dataclass
class SyncSummary:
    run_id: str
    tenants: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def run_sync(
    client: XeroClient,
    settings: XeroSettings,
    engine: Engine,
    raw: RawStore,
    run_id: str,
    *,
    stream_names: list[str] | None = None,
    full: bool = False,
) -> SyncSummary:
    """Every tenant, one after the other, in this process (the Airflow DAG runs them in parallel)."""
    summary = SyncSummary(run_id=run_id)
    streams = selected_streams(stream_names)
    for tenant in discover_tenants(client, settings, engine):
        try:
            manifest = extract_tenant(client, engine, raw, run_id, tenant, streams, full=full)
        except TenantSyncFailed as error:
            summary.failures.append(str(error))
            log.error("%s", error)
            continue
        loaded = load_tenant(engine, raw, manifest)
        summary.tenants.append(loaded)
        summary.failures.extend(loaded["failed"])
    return summary
