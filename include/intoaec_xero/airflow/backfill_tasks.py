"""What the ``xero_backfill`` DAG's tasks do. The DAG file only wires these together.

Every task builds its own engine and a client whose limiter holds the backfill to its quota
share (run conf / params ``journal_share`` and ``day_limit``, else INTOAEC_BACKFILL_SHARE and
INTOAEC_XERO_DAY_LIMIT, else 60% of 5,000), so the scheduled sync keeps the rest of the day.
"""

from __future__ import annotations

import logging
from typing import Any

from intoaec_xero.airflow.connections import DB_CONN_ID, XERO_CONN_ID
from intoaec_xero.airflow.tasks import _engine, _fail_clearly, grant_key, raw_store
from intoaec_xero.airflow.tasks import prepare as prepare_tenants
from intoaec_xero.backfill import journals as journal_backfill
from intoaec_xero.backfill import progress, windows
from intoaec_xero.backfill.quota import QuotaShare
from intoaec_xero.errors import ConfigurationError, IntoAECXeroError, XeroDailyLimitReached
from intoaec_xero.payloads import Manifest, MappedTenant, TenantSummary
from intoaec_xero.pipeline import load_tenant
from intoaec_xero.rawstore import RawStore
from intoaec_xero.runtime import raw_dir

log = logging.getLogger(__name__)

BACKFILL_RUN_TYPE = "backfill"


def prepare(db_conn_id: str = DB_CONN_ID) -> list[MappedTenant]:
    """The tenants of every Xero connection and firm, as the sync discovers them, each on its own."""
    return prepare_tenants(db_conn_id, batch=False)


def _require_tenant(tenant: MappedTenant) -> None:
    """An organisation another connection syncs, or a connection that could not be read at
    discovery and had no known organisations."""
    if tenant.get("refused"):
        _fail_clearly(ConfigurationError(tenant["refused"]))
    if not tenant.get("tenant_id"):
        _fail_clearly(ConfigurationError(
            f"The Xero connection '{tenant.get('conn_id')}' could not be read when this run started and no "
            "organisation of it is known yet; the sync's discovery log says why."))


def quota_share(params: dict[str, Any] | None, minute_limit: int | None = None) -> QuotaShare:
    params = params or {}
    try:
        return QuotaShare.from_environment(share=params.get("journal_share"), day_limit=params.get("day_limit"),
                                           minute_limit=minute_limit)
    except ValueError as error:
        _fail_clearly(IntoAECXeroError(str(error)))


def _client(tenant: MappedTenant, params: dict[str, Any] | None, db_conn_id: str = DB_CONN_ID):
    """Through the hook, as the sync's tasks do (token masking, the Fernet key), with the share's limiter."""
    from intoaec_xero.airflow.hooks import XeroHook

    hook = XeroHook(xero_conn_id=tenant.get("conn_id") or XERO_CONN_ID, db_conn_id=db_conn_id,
                    firm_id=tenant.get("firm_id"))
    quota = quota_share(params, hook.settings.calls_per_minute)
    return quota, journal_backfill.backfill_client(hook.settings, hook.get_token_store(), quota)


def extract_window(tenant: MappedTenant, run_id: str, start, end, params: dict[str, Any] | None = None,
                   db_conn_id: str = DB_CONN_ID) -> Manifest:
    """One tenant's documents dated in [start, end), into the raw store."""
    _require_tenant(tenant)
    try:
        streams = windows.window_streams((params or {}).get("streams"))
    except (KeyError, ValueError) as error:
        _fail_clearly(IntoAECXeroError(str(error)))
    try:
        engine = _engine(db_conn_id)
        quota, client = _client(tenant, params, db_conn_id)
        # Airflow names a backfill run after the moment it runs (its window's end): say which month it is.
        log.info("%s: backfill window %s, %s; quota share %s", tenant["tenant_name"], windows.window_month(start, end),
                 windows.window_label(start, end), quota.describe())
        raw = raw_store(grant_key(tenant), run_id)
        return windows.extract_window(client, engine, raw, run_id, tenant, start, end, streams)
    except IntoAECXeroError as error:
        if isinstance(error.__cause__, XeroDailyLimitReached):
            error = IntoAECXeroError(f"{error} The window is retried later; nothing of it was loaded.")
        _fail_clearly(error)


def load_window(manifest: Manifest, db_conn_id: str = DB_CONN_ID) -> TenantSummary:
    """The sync's own load (validation, quarantine, idempotent upsert); then note the window as in."""
    try:
        engine = _engine(db_conn_id)
        summary = load_tenant(engine, RawStore.for_manifest(raw_dir(), manifest), manifest)
        windows.record_loaded(engine, manifest, summary)
    except IntoAECXeroError as error:
        _fail_clearly(error)
    if summary["failed"]:
        _fail_clearly(IntoAECXeroError(" ".join(summary["failed"])), retriable=summary.get("retriable", False))
    return summary


def journals(tenant: MappedTenant, run_id: str, run_type: str | None, params: dict[str, Any] | None = None,
             db_conn_id: str = DB_CONN_ID) -> tuple[bool, dict[str, Any]]:
    """One pass of the tenant's journal walk; returns (done, outcome) for the sensor.

    Scheduled and manual runs keep poking until the ledger is in, waiting out each day's quota
    between pokes without holding a worker; a run of ``airflow backfill create`` makes one pass
    and finishes, so a window backfill never waits days for the ledger (and never blocks the
    next ``backfill create``, Airflow allowing one active backfill per DAG).
    """
    params = params or {}
    if not params.get("journals", True):
        return True, {"tenant_id": tenant["tenant_id"], "status": "skipped", "done": True}
    _require_tenant(tenant)
    one_pass = (run_type or "") == BACKFILL_RUN_TYPE
    try:
        engine = _engine(db_conn_id)
        quota, client = _client(tenant, params, db_conn_id)
        restart = bool(params.get("restart_journals")) and _first_restart(engine, tenant["tenant_id"], run_id,
                                                                         one_pass)
        raw = raw_store(grant_key(tenant), run_id)
        outcome = journal_backfill.run_pass(client, engine, raw, run_id, tenant, quota,
                                            restart=restart, max_calls=params.get("journal_max_calls"))
    except IntoAECXeroError as error:
        _fail_clearly(error)
    result = outcome.to_dict()
    return outcome.done or one_pass, result


def _first_restart(engine, tenant_id: str, run_id: str, one_pass: bool) -> bool:
    """A restart re-reads the ledger once per run that asked for it, not on every poke."""
    if one_pass:
        log.warning("restart_journals is ignored in runs of `airflow backfill create` (each would restart "
                    "the walk); trigger the DAG with it instead.")
        return False
    claimed: list[bool] = []

    def mark(entry: dict[str, Any]) -> dict[str, Any] | None:
        if entry.get("restart_for") == run_id:
            return None
        entry["restart_for"] = run_id
        claimed.append(True)
        return entry

    progress.update(engine, tenant_id, journal_backfill.STREAM, mark)
    return bool(claimed)


def report(run_id: str, db_conn_id: str = DB_CONN_ID) -> list[dict[str, Any]]:
    """This run's windows and journal passes from sync_runs, then every tenant's backfill progress."""
    from intoaec_xero.airflow.tasks import report as run_report
    from intoaec_xero.backfill.cli import collect, format_status

    rows = run_report(run_id, db_conn_id)
    for line in format_status(collect(_engine(db_conn_id))).splitlines():
        log.info("%s", line)
    return rows
