"""What the ``xero_sync`` DAG's tasks do. The DAG file only wires these together.

Every task builds its own engine and client: tasks may run in different processes or on
different Celery workers, and the SDK's client is not thread-safe.
"""

from __future__ import annotations

import logging
from typing import Any

from intoaec_xero import db
from intoaec_xero.airflow.connections import DB_CONN_ID, XERO_CONN_ID, db_url, get_connection, xero_settings
from intoaec_xero.client import build_client
from intoaec_xero.errors import IntoAECXeroError
from intoaec_xero.pipeline import discover_tenants, extract_tenant, load_tenant, selected_streams
from intoaec_xero.rawstore import RawStore
from intoaec_xero.runtime import raw_dir
from intoaec_xero.tokens import TokenStore

log = logging.getLogger(__name__)


class _Context:
    def __init__(self, xero_conn_id: str = XERO_CONN_ID, db_conn_id: str = DB_CONN_ID):
        self.settings = xero_settings(get_connection(xero_conn_id), xero_conn_id)
        self.engine = db.create_db_engine(db_url(get_connection(db_conn_id)))
        self.raw = RawStore(raw_dir())

    def client(self):
        return build_client(self.settings, TokenStore(self.engine, self.settings.connection_key))


def _fail_clearly(error: IntoAECXeroError):
    """Airflow shows the exception's message; make it the one sentence that matters."""
    from airflow.sdk.exceptions import AirflowException

    raise AirflowException(str(error)) from None


def prepare(xero_conn_id: str = XERO_CONN_ID, db_conn_id: str = DB_CONN_ID) -> list[dict[str, str]]:
    """Bring the schema up to date and list the tenants to sync."""
    try:
        ctx = _Context(xero_conn_id, db_conn_id)
        db.upgrade(ctx.engine)
        tenants = discover_tenants(ctx.client(), ctx.settings, ctx.engine)
    except IntoAECXeroError as error:
        _fail_clearly(error)
    log.info("Syncing %d tenant(s) into %s", len(tenants), db.describe(ctx.engine))
    return tenants


def extract(tenant: dict[str, str], run_id: str, streams: list[str] | None = None, full: bool = False,
            xero_conn_id: str = XERO_CONN_ID, db_conn_id: str = DB_CONN_ID) -> dict[str, Any]:
    try:
        ctx = _Context(xero_conn_id, db_conn_id)
        client = ctx.client()
        return extract_tenant(client, ctx.engine, ctx.raw, run_id, tenant, selected_streams(streams), full=full)
    except IntoAECXeroError as error:
        _fail_clearly(error)


def load(manifest: dict[str, Any], xero_conn_id: str = XERO_CONN_ID,
         db_conn_id: str = DB_CONN_ID) -> dict[str, Any]:
    try:
        ctx = _Context(xero_conn_id, db_conn_id)
        summary = load_tenant(ctx.engine, ctx.raw, manifest)
    except IntoAECXeroError as error:
        _fail_clearly(error)
    if summary["failed"]:
        from airflow.sdk.exceptions import AirflowException

        raise AirflowException(" ".join(summary["failed"]))
    return summary


def report(run_id: str, db_conn_id: str = DB_CONN_ID) -> list[dict[str, Any]]:
    """Log this run's outcome per tenant and stream, from sync_runs."""
    from sqlalchemy import select

    from intoaec_xero.schema import sync_runs, xero_tenants

    engine = db.create_db_engine(db_url(get_connection(db_conn_id)))
    with engine.connect() as conn:
        rows = conn.execute(
            select(xero_tenants.c.tenant_name, sync_runs)
            .join(xero_tenants, xero_tenants.c.tenant_id == sync_runs.c.tenant_id, isouter=True)
            .where(sync_runs.c.run_id == run_id)
            .order_by(xero_tenants.c.tenant_name, sync_runs.c.stream)
        ).mappings().all()
    for row in rows:
        log.info("%-30s %-14s %-11s extracted=%s loaded=%s calls=%s %s", row["tenant_name"], row["stream"],
                 row["status"], row["rows_extracted"], row["rows_loaded"], row["api_calls"], row["message"] or "")
    return [{k: (str(v) if v is not None else None) for k, v in row.items()} for row in rows]
