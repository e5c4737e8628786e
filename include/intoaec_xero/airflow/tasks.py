"""What the ``xero_sync`` DAG's tasks do. The DAG file only wires these together.

Every task builds its own engine and client: tasks may run in different processes or on
different Celery workers, and the SDK's client is not thread-safe.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from intoaec_xero import db
from intoaec_xero.airflow.connections import DB_CONN_ID, XERO_CONN_ID
from intoaec_xero.errors import IntoAECXeroError
from intoaec_xero.pipeline import (
    discover_tenants,
    extract_tenant,
    known_tenants,
    load_tenant,
    mark_connection_failed,
    selected_streams,
)
from intoaec_xero.rawstore import RawStore
from intoaec_xero.runtime import raw_dir

log = logging.getLogger(__name__)

CONN_IDS_VARIABLE = "intoaec_xero_conn_ids"


def xero_conn_ids() -> list[str]:
    """The Xero connections to sync: Variable ``intoaec_xero_conn_ids`` or INTOAEC_XERO_CONN_IDS
    (comma separated), else ``xero_default``."""
    value = os.environ.get("INTOAEC_XERO_CONN_IDS")
    if not value:
        try:
            from airflow.sdk import Variable

            value = Variable.get(CONN_IDS_VARIABLE, default=None)
        except Exception:  # noqa: BLE001 - no Variable store reachable: use the default
            value = None
    ids = [v.strip() for v in (value or XERO_CONN_ID).split(",") if v.strip()]
    return ids or [XERO_CONN_ID]


def _engine(db_conn_id: str = DB_CONN_ID):
    from intoaec_xero.airflow.hooks import engine_for

    return engine_for(db_conn_id)


def _client(conn_id: str, db_conn_id: str = DB_CONN_ID):
    """Through the hook: tokens are registered with Airflow's log maskers, and the Fernet key is
    found however Airflow is configured."""
    from intoaec_xero.airflow.hooks import XeroHook

    hook = XeroHook(xero_conn_id=conn_id, db_conn_id=db_conn_id)
    return hook.settings, hook.get_client()


def _fail_clearly(error: Exception):
    """Airflow shows the exception's message; make it the one sentence that matters."""
    from airflow.sdk.exceptions import AirflowException

    raise AirflowException(str(error)) from None


def prepare(db_conn_id: str = DB_CONN_ID) -> list[dict[str, str]]:
    """Bring the schema up to date and list the tenants of every Xero connection.

    A connection that cannot be read (revoked grant, wrong secret) does not stop the others:
    its known tenants are still listed, carrying the reason, so each fails on its own in the
    grid with that reason.
    """
    try:
        engine = _engine(db_conn_id)  # brings the schema up to date
    except IntoAECXeroError as error:
        _fail_clearly(error)
    tenants: list[dict[str, str]] = []
    for conn_id in xero_conn_ids():
        try:
            settings, client = _client(conn_id, db_conn_id)
            found = discover_tenants(client, settings, engine)
        except IntoAECXeroError as error:
            log.error("Xero connection '%s': %s", conn_id, error)
            mark_connection_failed(engine, conn_id, error)
            found = known_tenants(engine, conn_id) or [
                {"tenant_id": "", "tenant_name": f"connection {conn_id}"}
            ]
            for tenant in found:
                tenant["error"] = str(error)
        tenants.extend({**t, "conn_id": conn_id} for t in found)
    log.info("Syncing %d tenant(s) into %s", len(tenants), db.describe(engine))
    return tenants


def extract(tenant: dict[str, str], run_id: str, streams: list[str] | None = None, full: bool = False,
            db_conn_id: str = DB_CONN_ID) -> dict[str, Any]:
    if tenant.get("error"):
        _fail_clearly(IntoAECXeroError(f"{tenant['tenant_name']}: {tenant['error']}"))
    try:
        engine = _engine(db_conn_id)
        _settings, client = _client(tenant.get("conn_id") or XERO_CONN_ID, db_conn_id)
        return extract_tenant(client, engine, RawStore(raw_dir()), run_id, tenant, selected_streams(streams),
                              full=full)
    except IntoAECXeroError as error:
        _fail_clearly(error)


def load(manifest: dict[str, Any], db_conn_id: str = DB_CONN_ID) -> dict[str, Any]:
    try:
        summary = load_tenant(_engine(db_conn_id), RawStore(raw_dir()), manifest)
    except IntoAECXeroError as error:
        _fail_clearly(error)
    if summary["failed"]:
        _fail_clearly(IntoAECXeroError(" ".join(summary["failed"])))
    return summary


def report(run_id: str, db_conn_id: str = DB_CONN_ID) -> list[dict[str, Any]]:
    """Log this run's outcome per tenant and stream, from sync_runs."""
    from sqlalchemy import select

    from intoaec_xero.schema import sync_runs, xero_tenants

    engine = _engine(db_conn_id)
    with engine.connect() as conn:
        rows = conn.execute(
            select(xero_tenants.c.tenant_name, sync_runs)
            .join(xero_tenants, xero_tenants.c.tenant_id == sync_runs.c.tenant_id, isouter=True)
            .where(sync_runs.c.run_id == run_id)
            .order_by(xero_tenants.c.tenant_name, sync_runs.c.stream)
        ).mappings().all()
    for row in rows:
        log.info("%-30s %-20s %-11s extracted=%s loaded=%s calls=%s %s", row["tenant_name"], row["stream"],
                 row["status"], row["rows_extracted"], row["rows_loaded"], row["api_calls"], row["message"] or "")
    return [{k: (str(v) if v is not None else None) for k, v in row.items()} for row in rows]


def check_freshness(db_conn_id: str = DB_CONN_ID) -> list[dict[str, Any]]:
    """Fail when any tenant is stale, failing or needs reconnecting; alert once per incident."""
    from intoaec_xero import freshness
    from intoaec_xero.airflow.alerts import deliver

    outcome = freshness.check(_engine(db_conn_id))
    for incident in outcome["new_incidents"]:
        deliver(f"Xero sync: {incident['tenant']} needs attention", incident["incident"])
    if outcome["unhealthy"]:
        names = ", ".join(f"{u['tenant']} ({u['verdict']})" for u in outcome["unhealthy"])
        _fail_clearly(IntoAECXeroError(f"Tenants needing attention: {names}. See intoaec-xero status."))
    return outcome["unhealthy"]
