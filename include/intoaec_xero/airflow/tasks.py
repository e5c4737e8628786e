"""What the ``xero_sync`` DAG's tasks do. The DAG file only wires these together.

Every task builds its own engine and client: tasks may run in different processes or on
different Celery workers, and the SDK's client is not thread-safe.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from sqlalchemy.exc import SQLAlchemyError

from intoaec_xero import db, firms
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


def _client(conn_id: str, db_conn_id: str = DB_CONN_ID, firm_id: str | None = None,
            apps: dict[tuple[str, str], Any] | None = None):
    """Through the hook: tokens are registered with Airflow's log maskers, and the Fernet key is
    found however Airflow is configured.

    ``apps`` keeps the app connection's hook across the firms of one task (discovery, a batch):
    hundreds of firms share it, and each lookup of a connection is a call to Airflow's API server.
    """
    from intoaec_xero.airflow.hooks import XeroHook

    if firm_id is None or apps is None:
        hook = XeroHook(xero_conn_id=conn_id, db_conn_id=db_conn_id, firm_id=firm_id)
        return hook.settings, hook.get_client()
    app = apps.get((conn_id, db_conn_id))
    if app is None:
        app = apps[(conn_id, db_conn_id)] = XeroHook(xero_conn_id=conn_id, db_conn_id=db_conn_id)
    settings = firms.firm_settings(app.settings, firm_id)
    return settings, app.client_for(settings)


def grants(engine, runtime: RuntimeSettings | None = None) -> list[tuple[str, str | None]]:
    """Every grant to sync, as (Xero connection, firm): each configured connection's own grant,
    then each firm's grant (connected through the connect API) on the ``xero_default`` app."""
    return ([(conn_id, None) for conn_id in xero_conn_ids(runtime)]
            + [(XERO_CONN_ID, firm_id) for firm_id in firms.firm_ids(engine)])


def keepalive_grants(db_conn_id: str = DB_CONN_ID) -> list[str]:
    """What ``xero_keepalive`` renews: each connection id, then each firm's grant as ``firm:<firm id>``
    (a colon never appears in an Airflow connection id). Without IntoAEC's database there are no firms."""
    try:
        firm_grants = [firms.grant_key(firm_id) for firm_id in firms.firm_ids(_engine(db_conn_id))]
    except (IntoAECXeroError, SQLAlchemyError) as error:
        log.warning("Firms' grants are not listed: %s", error)
        firm_grants = []
    return xero_conn_ids() + firm_grants


def keepalive_hook(grant: str, db_conn_id: str = DB_CONN_ID):
    """The hook for one of :func:`keepalive_grants`' entries."""
    from intoaec_xero.airflow.hooks import XeroHook

    firm_id = firms.firm_of(grant)
    return XeroHook(xero_conn_id=XERO_CONN_ID if firm_id else grant, db_conn_id=db_conn_id, firm_id=firm_id)


def grant_key(tenant: MappedTenant) -> str:
    """The token-store key (and raw-page folder) of the grant that reaches a mapped tenant."""
    firm_id = tenant.get("firm_id")
    return firms.grant_key(firm_id) if firm_id else (tenant.get("conn_id") or XERO_CONN_ID)


def grant_label(conn_id: str, firm_id: str | None) -> str:
    return f"firm {firm_id}" if firm_id else conn_id


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


def prepare(db_conn_id: str = DB_CONN_ID, batch: bool = True) -> list[MappedTenant]:
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
    every = grants(engine, runtime)
    apps: dict[tuple[str, str], Any] = {}
    for number, (conn_id, firm_id) in enumerate(every, 1):
        label = grant_label(conn_id, firm_id)
        key = firms.grant_key(firm_id) if firm_id else conn_id
        try:
            settings, client = _client(conn_id, db_conn_id, firm_id, apps)
            if conn_id == XERO_CONN_ID and not firm_id and any(f for _, f in every) and client.store.status() is None \
                    and not known_tenants(engine, key):
                # The data team's connection carries the Xero app for the firms and was never connected itself.
                log.info("Xero connection '%s' holds no grant of its own and reaches no organisation: only its "
                         "app is used, for the firms' grants.", conn_id)
                continue
            discovery = discover(client, settings, engine)
            found = _mapped(discovery.tenants)
            if firm_id:
                # The firm was told at sign-in that another grant syncs these; it syncs them as before.
                for refusal in discovery.refused:
                    log.warning("Firm %s: %s", firm_id, refusal["message"])
            else:
                # No tenant id: nothing downstream can sync it by mistake, whatever it checks.
                found += [{"tenant_id": "", "tenant_name": f"{r['tenant_name']} (refused for {conn_id})",
                           "refused": r["message"]} for r in discovery.refused]
        except IntoAECXeroError as error:
            log.error("Xero %s: %s", f"grant of firm {firm_id}" if firm_id else f"connection '{conn_id}'", error)
            mark_connection_failed(engine, key, error)
            found = (_mapped(known_tenants(engine, key))
                     or [{"tenant_id": "", "tenant_name": label if firm_id else f"connection {conn_id}"}])
        for found_tenant in found:
            found_tenant["conn_id"] = conn_id
            if firm_id:
                found_tenant["firm_id"] = firm_id
            tenants.append(found_tenant)
        if number % 50 == 0:
            log.info("Discovered %d of %d grants (%d tenants so far).", number, len(every), len(tenants))
    log.info("Syncing %d tenant(s) of %d grant(s) into %s", len(tenants), len(every), db.describe(engine))
    return batched(engine, tenants, runtime) if batch else tenants


def batched(engine, tenants: list[MappedTenant], runtime: RuntimeSettings) -> list[MappedTenant]:
    """Small organisations of firms' grants in batches of ``INTOAEC_SYNC_BATCH_SIZE``, one task each.

    Hundreds of firms with one small organisation each would otherwise cost hundreds of task
    instances an hour, each seconds of Airflow overhead for a fraction of a second of work. An
    organisation whose previous sync made more than ``INTOAEC_SYNC_BATCH_MAX_CALLS`` calls keeps a
    task of its own, as do the connections' own organisations. A new one is batched: most firms are
    small, and a large one's first sync only holds its batch's loads until it is read (the run
    waits for it anyway); from its next run on it has a task of its own. Within a batch each
    organisation is synced on its own, and one that fails fails the batch's task naming it, with
    the others loaded.
    """
    size = runtime.sync_batch_size
    candidates = [t for t in tenants if t.get("firm_id") and t.get("tenant_id") and not t.get("refused")]
    if size <= 1 or len(candidates) < 2:
        return tenants
    calls = previous_sync_calls(engine, [t["tenant_id"] for t in candidates])
    small = [t for t in candidates if calls.get(t["tenant_id"], 0) <= runtime.sync_batch_max_calls]
    if len(small) < 2:
        return tenants
    chosen = {id(t) for t in small}
    alone = [t for t in tenants if id(t) not in chosen]
    batches: list[MappedTenant] = []
    for start in range(0, len(small), size):
        members = small[start:start + size]
        label = (f"{len(members)} firm organisations: {members[0]['tenant_name']} … {members[-1]['tenant_name']}"
                 if len(members) > 1 else members[0]["tenant_name"])
        batches.append({"tenant_id": "", "tenant_name": label, "conn_id": XERO_CONN_ID, "batch": members})
    log.info("Batched %d small organisation(s) of firms into %d task(s) of up to %d; %d organisation(s) get a task "
             "of their own.", len(small), len(batches), size, len(alone))
    return alone + batches


def previous_sync_calls(engine, tenant_ids: list[str], days: int = 3) -> dict[str, int]:
    """Tenant id → the Xero calls of its latest ``xero_sync`` run within ``days`` (absent: none)."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func, or_, select

    from intoaec_xero.schema import sync_runs

    since = datetime.now(UTC) - timedelta(days=days)
    latest: dict[str, tuple[Any, int]] = {}
    with engine.connect() as conn:
        for start in range(0, len(tenant_ids), 500):
            rows = conn.execute(
                select(sync_runs.c.tenant_id, sync_runs.c.run_id, func.max(sync_runs.c.started_at).label("started"),
                       func.coalesce(func.sum(sync_runs.c.api_calls), 0).label("calls"))
                .where(sync_runs.c.tenant_id.in_(tenant_ids[start:start + 500]), sync_runs.c.started_at >= since,
                       or_(sync_runs.c.kind.is_(None), sync_runs.c.kind == "sync"))
                .group_by(sync_runs.c.tenant_id, sync_runs.c.run_id)).all()
            for row in rows:
                seen = latest.get(row.tenant_id)
                if seen is None or row.started > seen[0]:
                    latest[row.tenant_id] = (row.started, int(row.calls))
    return {tenant_id: calls for tenant_id, (_, calls) in latest.items()}


def _mapped(tenants: list[TenantRef]) -> list[MappedTenant]:
    return [{"tenant_id": t["tenant_id"], "tenant_name": t["tenant_name"]} for t in tenants]


def extract(tenant: MappedTenant, run_id: str, streams: list[str] | None = None, full: bool = False,
            db_conn_id: str = DB_CONN_ID, in_batch: bool = False,
            apps: dict[tuple[str, str], Any] | None = None) -> Manifest:
    """One tenant's streams into the raw store; failed streams travel on in the manifest.

    While a retry could still help (a stream hit a 5xx or a timeout) and tries are left, the
    task fails so that Airflow tries again; the streams already extracted are kept. On the last
    try, or when no retry could help, the streams that did extract go on to the load.
    """
    if tenant.get("batch"):
        return _extract_batch(tenant, run_id, streams, full, db_conn_id)
    if tenant.get("refused"):
        _fail_clearly(ConfigurationError(tenant["refused"]))
    conn_id = tenant.get("conn_id") or XERO_CONN_ID
    key = grant_key(tenant)
    selected = selected_streams(streams)
    try:
        engine = _engine(db_conn_id)
        raw = raw_store(key, run_id)
    except IntoAECXeroError as error:
        _fail_clearly(error)
    try:
        settings, client = _client(conn_id, db_conn_id, tenant.get("firm_id"), apps)
        if not tenant.get("tenant_id"):
            _rediscover(client, settings, engine, tenant)
        client.current_tokens()  # the grant as it is now, not as it was at discovery
        client.refresh_tokens(force=False)
    except IntoAECXeroError as error:
        mark_connection_failed(engine, key, error)
        record_tenant_failure(engine, run_id, tenant, [s.name for s in selected], error)
        _fail_clearly(IntoAECXeroError(f"{tenant['tenant_name']}: {error}"), retriable=is_retriable(error))
    mark_connection_ok(engine, key)
    manifest = extract_tenant(client, engine, raw, run_id, tenant, selected, full=full)
    passing = [f for f in manifest["failed"] if f["retriable"]]
    if passing and not in_batch and not _last_try():
        _fail_clearly(IntoAECXeroError(" ".join(f["message"] for f in passing) + " Retrying the failed stream(s)."),
                      retriable=True)
    return manifest


def _extract_batch(batch: MappedTenant, run_id: str, streams: list[str] | None, full: bool,
                   db_conn_id: str) -> Manifest:
    """Each organisation of a batch in turn; one that fails outright is named and the rest go on."""
    from airflow.sdk.exceptions import AirflowException

    members = batch.get("batch") or []
    apps: dict[tuple[str, str], Any] = {}
    manifests: list[Manifest] = []
    failed: list[str] = []
    retriable = False
    for number, tenant in enumerate(members, 1):
        try:
            manifest = extract(tenant, run_id, streams, full, db_conn_id, in_batch=True, apps=apps)
        except AirflowException as error:  # already one sentence naming the organisation
            failed.append(str(error))
            retriable = retriable or type(error) is AirflowException  # not AirflowFailException
            continue
        manifests.append(manifest)
        retriable = retriable or any(f["retriable"] for f in manifest["failed"])
        log.info("Batch: %d of %d organisations extracted (%s).", number, len(members), tenant["tenant_name"])
    if retriable and not _last_try():
        _fail_clearly(IntoAECXeroError(f"{batch['tenant_name']}: a retry may help: "
                                       + " ".join(failed + [f["message"] for m in manifests for f in m["failed"]
                                                            if f["retriable"]])), retriable=True)
    return {"run_id": run_id, "tenant_id": "", "tenant_name": batch["tenant_name"], "streams": [],
            "batch": manifests, "batch_failed": failed}


def raw_store(conn_id: str, run_id: str) -> RawStore:
    """The connection's raw pages, refusing up front a connection or run id that cannot name a directory."""
    raw = RawStore(raw_dir(), conn_id)
    raw.run_dir(run_id)
    return raw


def _rediscover(client, settings, engine, tenant: MappedTenant) -> None:
    """A connection that could not be read at discovery and had no known tenants: try it again."""
    found = discover_tenants(client, settings, engine)
    names = ", ".join(t["tenant_name"] for t in found) or "no organisation"
    grant = (f"grant of firm {tenant['firm_id']}" if tenant.get("firm_id")
             else f"connection '{tenant.get('conn_id')}'")
    raise ConfigurationError(
        f"The Xero {grant} could not be read when this run started; it reaches "
        f"{names} now, which the next run syncs."
    )


def load(manifest: Manifest, db_conn_id: str = DB_CONN_ID) -> TenantSummary:
    """Load what was extracted; fail, naming every stream that did not land, if any did not."""
    if manifest.get("batch") is not None:
        return _load_batch(manifest, db_conn_id)
    try:
        # The Data Docs home page is built once, by the run's report, not once per tenant.
        summary = load_tenant(_engine(db_conn_id), RawStore.for_manifest(raw_dir(), manifest), manifest,
                              docs_index=False)
    except (IntoAECXeroError, SQLAlchemyError) as error:
        _fail_clearly(IntoAECXeroError(f"{manifest['tenant_name']} ({manifest['tenant_id']}): load failed: {error}"),
                      retriable=is_retriable(error))
    if summary["failed"]:
        _fail_clearly(IntoAECXeroError(" ".join(summary["failed"])), retriable=summary["retriable"])
    return summary


def _load_batch(manifest: Manifest, db_conn_id: str) -> TenantSummary:
    """Each organisation of a batch loaded on its own; the task fails naming those that did not land."""
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    summaries: list[TenantSummary] = []
    failed = list(manifest.get("batch_failed") or [])
    retriable = False
    for number, member in enumerate(manifest.get("batch") or [], 1):
        try:
            summaries.append(load(member, db_conn_id))
        except AirflowException as error:
            failed.append(str(error))
            retriable = retriable or not isinstance(error, AirflowFailException)
        if number % 10 == 0:
            log.info("Batch: %d of %d organisations loaded.", number, len(manifest.get("batch") or []))
    if failed:
        _name_failures_in_the_grid(manifest["tenant_name"], len(failed))
        _fail_clearly(IntoAECXeroError(f"{len(failed)} organisation(s) of {manifest['tenant_name']} did not sync; "
                                       f"the others did. " + " ".join(failed)), retriable=retriable)
    return {"tenant_id": "", "tenant_name": manifest["tenant_name"], "streams": {}, "failed": [],
            "retriable": False, "batch": summaries}


def _name_failures_in_the_grid(label: str, failed: int) -> None:
    """The mapped task's label (rendered again after it fails) says that, and how many, did not sync."""
    try:
        from airflow.sdk import get_current_context

        get_current_context()["tenant_name"] = f"{label} ({failed} failed)"  # type: ignore[typeddict-unknown-key]
    except Exception:  # noqa: BLE001 - outside a task (tests, the CLI): no grid to name it in
        pass


def report(run_id: str, db_conn_id: str = DB_CONN_ID) -> list[dict[str, Any]]:
    """Log this run's outcome per tenant and stream, from sync_runs; build the Data Docs home page."""
    from sqlalchemy import select

    from intoaec_xero.quality import docs
    from intoaec_xero.schema import sync_runs, xero_tenants

    index = docs.rebuild_index()
    log.info("Data Docs: %s", docs.describe(index))
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
