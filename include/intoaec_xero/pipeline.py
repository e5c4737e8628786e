"""The sync, end to end for one Xero connection: discover tenants, extract, then load.

These functions are what the Airflow tasks call (one extract and one load per tenant) and
what ``intoaec-xero sync`` runs without Airflow. Their inputs and outputs are plain
JSON-able dicts so they travel by XCom.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from intoaec_xero import state
from intoaec_xero.client import XeroClient
from intoaec_xero.db import upsert
from intoaec_xero.errors import IntoAECXeroError
from intoaec_xero.extract import StreamExtract, extract_stream
from intoaec_xero.load import load_stream
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import xero_tenants
from intoaec_xero.settings import XeroSettings
from intoaec_xero.streams import STREAMS, Stream, get_stream
from intoaec_xero.validate import BatchRejected

log = logging.getLogger(__name__)

CONNECTED = "Connected"


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
    log.info("Xero connection '%s' reaches %d organisation(s): %s", settings.connection_key, len(rows),
             ", ".join(r["tenant_name"] for r in rows) or "none")
    if settings.tenant_filter and not rows:
        log.warning("The tenant filter %s matched none of the %d connected organisations.",
                    list(settings.tenant_filter), len(connections))
    return [{"tenant_id": r["tenant_id"], "tenant_name": r["tenant_name"]} for r in rows]


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
        try:
            stream_state = state.read_state(engine, tenant_id, stream.name)
            result = extract_stream(client, stream, tenant_id, stream_state, raw, run_id, full=full)
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
        state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=stream.name,
                         status="unavailable" if result.unavailable else "extracted",
                         rows_extracted=result.records, api_calls=result.api_calls,
                         message=result.unavailable)
        extracts.append(result.to_dict())
    return {"run_id": run_id, "tenant_id": tenant_id, "tenant_name": tenant["tenant_name"],
            "streams": extracts, "quota": client.stats.quota.get(tenant_id, {})}


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
        state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=stream.name,
                         finished_at=_now(), status="success", rows_loaded=rows,
                         quality_verdict="warn" if loaded.checks else "passed")
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
