"""What the ``xero_sync`` DAG's tasks do. The DAG file only wires these together.

Every task builds its own engine and client: tasks may run in different processes or on
different Celery workers, and the SDK's client is not thread-safe.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from sqlalchemy.exc import SQLAlchemyError

from intoaec_xero import db
from intoaec_xero.airflow.connections import CONN_IDS_VARIABLE, DB_CONN_ID, XERO_CONN_ID, configured_conn_ids
from intoaec_xero.environment import RuntimeSettings, current
from intoaec_xero.errors import ConfigurationError, IntoAECXeroError
from intoaec_xero.payloads import Manifest, MappedTenant, TenantRef, TenantSummary
from intoaec_xero.pipeline import (
    discover,
    discover_tenants,
    extract_tenant,
    is_retriable,
    load_tenant,
    record_tenant_failure,
    selected_streams,
)
from intoaec_xero.rawstore import RawStore
from intoaec_xero.runtime import raw_dir
from intoaec_xero.tenants import known_tenants, mark_connection_failed, mark_connection_ok

log = logging.getLogger(__name__)



def xero_conn_ids(settings: RuntimeSettings | None = None) -> list[str]:
    """The Xero connections to sync: INTOAEC_XERO_CONN_IDS (``settings``, else this process's) or the
    Variable ``intoaec_xero_conn_ids`` (comma separated), else ``xero_default``."""
    return configured_conn_ids(_conn_ids_variable, settings) or [XERO_CONN_ID]


def _conn_ids_variable() -> str | None:
    try:
        from airflow.sdk import Variable

        return Variable.get(CONN_IDS_VARIABLE, default=None)
    except Exception:  # noqa: BLE001 - no Variable store reachable: use the default
        return None


def _engine(db_conn_id: str = DB_CONN_ID):
    from intoaec_xero.airflow.hooks import engine_for

    return engine_for(db_conn_id)


def _client(conn_id: str, db_conn_id: str = DB_CONN_ID):
    """Through the hook: tokens are registered with Airflow's log maskers, and the Fernet key is
    found however Airflow is configured."""
    from intoaec_xero.airflow.hooks import XeroHook

    hook = XeroHook(xero_conn_id=conn_id, db_conn_id=db_conn_id)
    return hook.settings, hook.get_client()


def _fail_clearly(error: Exception, *, retriable: bool | None = None) -> NoReturn:
    """Airflow shows the exception's message; make it the one sentence that matters.

    The error's own ``retriable`` flag decides whether Airflow tries again: a quality
    rejection, a revoked grant or a configuration error fails at once, since another try
    would only repeat it (and spend Xero calls doing so).
    """
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    if retriable is None:
        retriable = is_retriable(error)
    raise (AirflowException if retriable else AirflowFailException)(str(error)) from None


def _last_try() -> bool:
    """Whether this is the task's last try (then whatever can still be loaded is passed on)."""
    try:
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
        return ti.try_number > ti.max_tries
    except Exception:  # noqa: BLE001 - outside a task (tests, the CLI): there is no other try
        return True


def prepare(db_conn_id: str = DB_CONN_ID) -> list[MappedTenant]:
    """Bring the schema up to date and list the tenants of every Xero connection.

    A connection that cannot be read (revoked grant, wrong secret, Xero down) does not stop the
    others: its known tenants are still listed, so each fails on its own in the grid. Nothing
    of that failure goes into the mapped input: each try of a tenant's extract reads the grant
    afresh, so a retry after Xero recovers, or after the user reconnected, succeeds.

    An organisation that another connection already syncs is listed with no tenant id and the
    reason (``refused``): its extract fails with that sentence and touches nothing, while the
    connection holding it syncs it as before.
    """
    try:
        runtime = current()
        engine = _engine(db_conn_id)  # brings the schema up to date
    except IntoAECXeroError as error:
        _fail_clearly(error)
    tenants: list[MappedTenant] = []
    for conn_id in xero_conn_ids(runtime):
        try:
            settings, client = _client(conn_id, db_conn_id)
            discovery = discover(client, settings, engine)
            found = _mapped(discovery.tenants)
            # No tenant id: nothing downstream can sync it by mistake, whatever it checks.
            found += [{"tenant_id": "", "tenant_name": f"{r['tenant_name']} (refused for {conn_id})",
                       "refused": r["message"]} for r in discovery.refused]
        except IntoAECXeroError as error:
            log.error("Xero connection '%s': %s", conn_id, error)
            mark_connection_failed(engine, conn_id, error)
            found = (_mapped(known_tenants(engine, conn_id))
                     or [{"tenant_id": "", "tenant_name": f"connection {conn_id}"}])
        tenants.extend({**t, "conn_id": conn_id} for t in found)
    log.info("Syncing %d tenant(s) into %s", len(tenants), db.describe(engine))
    return tenants


def _mapped(tenants: list[TenantRef]) -> list[MappedTenant]:
    return [{"tenant_id": t["tenant_id"], "tenant_name": t["tenant_name"]} for t in tenants]


def extract(tenant: MappedTenant, run_id: str, streams: list[str] | None = None, full: bool = False,
            db_conn_id: str = DB_CONN_ID) -> Manifest:
    """One tenant's streams into the raw store; failed streams travel on in the manifest.

    While a retry could still help (a stream hit a 5xx or a timeout) and tries are left, the
    task fails so that Airflow tries again; the streams already extracted are kept. On the last
    try, or when no retry could help, the streams that did extract go on to the load.
    """
    if tenant.get("refused"):
        _fail_clearly(ConfigurationError(tenant["refused"]))
    conn_id = tenant.get("conn_id") or XERO_CONN_ID
    selected = selected_streams(streams)
    try:
        engine = _engine(db_conn_id)
        raw = raw_store(conn_id, run_id)
    except IntoAECXeroError as error:
        _fail_clearly(error)
    try:
        settings, client = _client(conn_id, db_conn_id)
        if not tenant.get("tenant_id"):
            _rediscover(client, settings, engine, tenant)
        client.current_tokens()  # the grant as it is now, not as it was at discovery
        client.refresh_tokens(force=False)
    except IntoAECXeroError as error:
        mark_connection_failed(engine, conn_id, error)
        record_tenant_failure(engine, run_id, tenant, [s.name for s in selected], error)
        _fail_clearly(IntoAECXeroError(f"{tenant['tenant_name']}: {error}"), retriable=is_retriable(error))
    mark_connection_ok(engine, conn_id)
    manifest = extract_tenant(client, engine, raw, run_id, tenant, selected, full=full)
    passing = [f for f in manifest["failed"] if f["retriable"]]
    if passing and not _last_try():
        _fail_clearly(IntoAECXeroError(" ".join(f["message"] for f in passing) + " Retrying the failed stream(s)."),
                      retriable=True)
    return manifest


def raw_store(conn_id: str, run_id: str) -> RawStore:
    """The connection's raw pages, refusing up front a connection or run id that cannot name a directory."""
    raw = RawStore(raw_dir(), conn_id)
    raw.run_dir(run_id)
    return raw


def _rediscover(client, settings, engine, tenant: MappedTenant) -> None:
    """A connection that could not be read at discovery and had no known tenants: try it again."""
    found = discover_tenants(client, settings, engine)
    names = ", ".join(t["tenant_name"] for t in found) or "no organisation"
    raise ConfigurationError(
        f"The Xero connection '{tenant.get('conn_id')}' could not be read when this run started; it reaches "
        f"{names} now, which the next run syncs."
    )


def load(manifest: Manifest, db_conn_id: str = DB_CONN_ID) -> TenantSummary:
    """Load what was extracted; fail, naming every stream that did not land, if any did not."""
    try:
        summary = load_tenant(_engine(db_conn_id), RawStore.for_manifest(raw_dir(), manifest), manifest)
    except (IntoAECXeroError, SQLAlchemyError) as error:
        _fail_clearly(IntoAECXeroError(f"{manifest['tenant_name']} ({manifest['tenant_id']}): load failed: {error}"),
                      retriable=is_retriable(error))
    if summary["failed"]:
        _fail_clearly(IntoAECXeroError(" ".join(summary["failed"])), retriable=summary["retriable"])
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


PROBLEMS = ("failed", "rejected", "quarantined", "extracting", "extracted")


def run_verdict(run_id: str, dag: str = "xero_sync", db_conn_id: str = DB_CONN_ID) -> None:
    """Runs only when a task of the run failed: fail the run too, naming whom it failed for."""
    from sqlalchemy import select

    from intoaec_xero.schema import sync_runs, xero_tenants

    named = ""
    try:
        with _engine(db_conn_id).connect() as conn:
            rows = conn.execute(
                select(xero_tenants.c.tenant_name, sync_runs.c.tenant_id, sync_runs.c.stream)
                .join(xero_tenants, xero_tenants.c.tenant_id == sync_runs.c.tenant_id, isouter=True)
                .where(sync_runs.c.run_id == run_id, sync_runs.c.status.in_(PROBLEMS))
                .order_by(xero_tenants.c.tenant_name, sync_runs.c.stream)
            ).all()
        by_tenant: dict[str, list[str]] = {}
        for row in rows:
            by_tenant.setdefault(row.tenant_name or row.tenant_id, []).append(row.stream)
        named = "; ".join(f"{tenant} ({', '.join(streams)})" for tenant, streams in by_tenant.items())
    except (IntoAECXeroError, SQLAlchemyError) as error:  # the verdict stands; only the names are missing
        log.error("Could not read this run's outcome from the IntoAEC database: %s", error)
    detail = f" Failed so far: {named}." if named else ""
    _fail_clearly(IntoAECXeroError(
        f"{dag} run {run_id} failed: a task of it failed.{detail} The failed task's log says why; "
        "`intoaec-xero status` shows every tenant's health."), retriable=False)


def check_freshness(db_conn_id: str = DB_CONN_ID) -> list[dict[str, Any]]:
    """Fail when any tenant is stale, failing or needs reconnecting; alert once per incident."""
    from intoaec_xero import freshness
    from intoaec_xero.airflow.alerts import deliver

    runtime = current()
    outcome = freshness.check(_engine(db_conn_id), threshold=runtime.stale_after)
    for incident in outcome["new_incidents"]:
        deliver(f"Xero sync: {incident['tenant']} needs attention", incident["incident"], runtime)
    if outcome["unhealthy"]:
        names = ", ".join(f"{u['tenant']} ({u['verdict']})" for u in outcome["unhealthy"])
        _fail_clearly(IntoAECXeroError(f"Tenants needing attention: {names}. See intoaec-xero status."))
    return outcome["unhealthy"]
