"""The sync, end to end for one Xero connection: discover tenants, extract, then load.

These functions are what the Airflow tasks call (one extract and one load per tenant) and
what ``intoaec-xero sync`` runs without Airflow. Their inputs and outputs are plain
JSON-able dicts so they travel by XCom.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from intoaec_xero import environment, state, trial_balance
from intoaec_xero.backfill import progress
from intoaec_xero.client import XeroClient
from intoaec_xero.db import retry_transient
from intoaec_xero.errors import ConfigurationError, IntoAECXeroError, XeroAuthError, XeroDailyLimitReached
from intoaec_xero.extract import StreamExtract, extract_stream
from intoaec_xero.load import StreamLoad, load_stream
from intoaec_xero.payloads import Manifest, StreamFailure, TenantRef, TenantSummary
from intoaec_xero.quality import docs, quarantine, reconcile
from intoaec_xero.quality.model import ERROR, WARN, CheckResult
from intoaec_xero.quality.record import record_results, record_stream_verdict
from intoaec_xero.rawstore import RawStore
from intoaec_xero.settings import XeroSettings
from intoaec_xero.streams import STREAMS, Paging, Stream, get_stream
from intoaec_xero.tenants import Discovery, record_discovery
from intoaec_xero.validate import BatchRejected

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def discover(client: XeroClient, settings: XeroSettings, engine: Engine) -> Discovery:
    """The organisations to sync: Xero's /connections, narrowed by the connection's tenant filter,
    less any that another Xero connection already syncs (see ``tenants.record_discovery``)."""
    return record_discovery(engine, settings, client.connections())


def discover_tenants(client: XeroClient, settings: XeroSettings, engine: Engine) -> list[TenantRef]:
    """The tenants this connection syncs (see :func:`discover`; the refused are logged there)."""
    return discover(client, settings, engine).tenants


def record_tenant_failure(engine: Engine, run_id: str, tenant: TenantRef, stream_names: list[str],
                          error: Exception) -> None:
    """A tenant that could not even start (its grant or connection failed): every stream failed."""
    if not tenant.get("tenant_id"):
        return
    now = _now()
    for name in stream_names:
        _record_failure(engine, run_id, tenant["tenant_id"], name, str(error), f"not extracted: {error}",
                        started_at=now, api_calls=0)


def _record_failure(engine: Engine, run_id: str, tenant_id: str, stream_name: str, error: str, message: str,
                    **run: Any) -> None:
    """A failed stream where the data team looks: sync_state's last error and its sync_runs row.

    Recording must not hide the failure it records: a database that is down is logged instead.
    """
    try:
        state.record_error(engine, tenant_id, stream_name, error)
        state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=stream_name,
                         finished_at=run.pop("finished_at", None) or _now(), status="failed",
                         message=message[:4000], **run)
    except SQLAlchemyError:
        log.exception("%s: could not record the failure of %s", tenant_id, stream_name)


def selected_streams(names: list[str] | None = None) -> list[Stream]:
    return [get_stream(n) for n in names] if names else list(STREAMS.values())


# After one of these nothing else of the grant or the day can succeed: the tenant's remaining
# streams are not tried (each would fail the same way and spend calls doing it).
TENANT_WIDE_FAILURES = (XeroAuthError, XeroDailyLimitReached, ConfigurationError)


def extract_tenant(
    client: XeroClient,
    engine: Engine,
    raw: RawStore,
    run_id: str,
    tenant: TenantRef,
    streams: list[Stream],
    *,
    full: bool = False,
) -> Manifest:
    """Extract every stream of one tenant into the raw store.

    Streams are independent: one that fails (a 5xx that outlasted the retries, a 404, a body
    that is not Xero's) is recorded as ``failed`` with its reason and the others are still
    extracted and then loaded. A failure of the grant or the day's quota stops the tenant's
    remaining streams, which are recorded as failed for the same reason.

    The manifest lists the failures (with whether a retry could help). Streams an earlier try of
    the same run already extracted are kept, so an Airflow retry only calls Xero for what failed.
    """
    tenant_id = tenant["tenant_id"]
    kept = raw.manifest(run_id, tenant_id)
    earlier = {item["stream"]: item for item in (kept["streams"] if kept else [])}
    extracts: list[dict[str, Any]] = []
    failed: list[StreamFailure] = []
    stopped: Exception | None = None
    for stream in streams:
        if stream.name in earlier:
            log.info("%s: %s already extracted by an earlier try of this run; kept", tenant["tenant_name"],
                     stream.name)
            extracts.append(earlier[stream.name])
            continue
        started = _now()
        abandoned = state.close_abandoned(engine, tenant_id, stream.name, run_id, started)
        if abandoned:
            log.warning("%s: %s of run(s) %s never finished (killed, or the database went away); closed them as "
                        "failed", tenant["tenant_name"], stream.name, ", ".join(abandoned))
        state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=stream.name,
                         started_at=started, status="extracting")
        if stopped is not None:
            failed.append(_stream_failed(engine, run_id, tenant, stream.name, stopped, not_tried=True))
            continue
        limited_before = client.stats.rate_limited
        try:
            stream_state = state.read_state(engine, tenant_id, stream.name)
            reconcile = full or _reconcile_due(stream, stream_state, started)
            result = extract_stream(client, stream, tenant_id, stream_state, raw, run_id, full=reconcile,
                                    tenant_name=tenant["tenant_name"])
            result.extra["reconcile"] = bool(reconcile and stream_state.watermark)
            trial_balance.fetch_with_journals(client, engine, raw, run_id, tenant_id, stream, result)
        except Exception as error:  # noqa: BLE001 - one stream's failure never hides the others'
            failed.append(_stream_failed(engine, run_id, tenant, stream.name, error))
            if isinstance(error, TENANT_WIDE_FAILURES):
                stopped = error
            elif not isinstance(error, IntoAECXeroError | SQLAlchemyError):
                log.exception("%s: %s extract failed unexpectedly", tenant["tenant_name"], stream.name)
            continue
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
        if result.extra.get("needs_consent"):  # a person has to act: say it where last errors are read
            state.record_error(engine, tenant_id, stream.name, result.unavailable or "")
        extracts.append(result.to_dict())
    manifest: Manifest = {"run_id": run_id, "tenant_id": tenant_id, "tenant_name": tenant["tenant_name"],
                "connection_key": raw.connection_key, "streams": extracts, "failed": failed,
                "quota": client.stats.quota.get(tenant_id, {})}
    if stopped is None:
        trial_balance.fetch_for_derived_ledger(client, engine, raw, run_id, tenant_id, extracts)
        manifest["project_pnl"] = (kept.get("project_pnl") if kept else None) or _fetch_project_pnl(
            client, engine, raw, run_id, tenant_id, extracts)
    raw.write_manifest(run_id, tenant_id, manifest)
    return manifest


# The streams whose documents move a project's revenue or costs.
PNL_STREAMS = ("invoices", "credit_notes", "bank_transactions", "manual_journals")


def _fetch_project_pnl(client: XeroClient, engine: Engine, raw: RawStore, run_id: str, tenant_id: str,
                       extracts: list[dict[str, Any]]) -> dict[str, Any]:
    """Xero's P&L by project for the check after the load: one call, and only when a document changed."""
    from intoaec_xero.projects import ProjectConfig
    from intoaec_xero.quality import project_pnl

    changed = [e for e in extracts if e["stream"] in PNL_STREAMS and e.get("records")]
    if not changed:
        return {"skipped": "no document that moves a project's revenue or costs changed since the last run"}
    config = next((ProjectConfig.from_extra(e["extra"]["projects"]) for e in extracts
                   if (e.get("extra") or {}).get("projects")), ProjectConfig())
    try:
        months = None if any(e.get("full") for e in changed) else project_pnl.changed_months(
            raw, run_id, tenant_id, [get_stream(e["stream"]) for e in changed])
        return project_pnl.fetch(client, engine, raw, run_id, tenant_id, config, months)
    except Exception as error:  # noqa: BLE001 - the documents are extracted; the check will say it could not run
        log.exception("Tenant %s: Xero's Profit and Loss by project could not be fetched", tenant_id)
        return {"skipped": f"the Profit and Loss report could not be fetched: {error}"}


def _stream_failed(engine: Engine, run_id: str, tenant: TenantRef, stream_name: str, error: Exception, *,
                   not_tried: bool = False) -> StreamFailure:
    """Record one stream's failed extract where the data team looks: sync_runs, sync_state, the log."""
    reason = f"not extracted: {error}" if not_tried else str(error) or type(error).__name__
    message = f"{tenant['tenant_name']} ({tenant['tenant_id']}): {stream_name} extract failed: {reason}"
    log.error("%s", message)
    _record_failure(engine, run_id, tenant["tenant_id"], stream_name, reason, reason,
                    api_calls=0 if not_tried else None)
    return {"stream": stream_name, "message": message, "retriable": is_retriable(error)}


def is_retriable(error: BaseException) -> bool:
    """Whether trying the same work again could succeed: the error's own flag decides.

    Database errors are taken as passing (a restart, a dropped connection); anything raised on
    purpose says for itself; anything else is a defect that a retry would only repeat.
    """
    if isinstance(error, SQLAlchemyError):
        return isinstance(error, OperationalError | InterfaceError) or getattr(error, "connection_invalidated", False)
    if isinstance(error, IntoAECXeroError):
        return bool(getattr(error, "retriable", False))
    return isinstance(error, OSError)


def skip_extracted(engine: Engine, run_id: str, tenant_id: str, stream_names: list[str], reason: str) -> None:
    """Close the ``extracted`` rows of a run whose load will not happen, so none stays "extracted" forever.

    ``skipped`` is not a failure of its own: the stream that failed carries the reason.
    """
    for name in stream_names:
        state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=name, finished_at=_now(),
                         status="skipped", message=f"not loaded: {reason}")


def _reconcile_due(stream: Stream, stream_state: state.StreamState, now: datetime) -> bool:
    """Some edits do not bump UpdatedDateUTC, so paged streams are re-read whole now and then.

    Journals are immutable (an edit posts new journals), so their offset never needs a re-walk.
    """
    if stream.paging is Paging.OFFSET or stream_state.watermark is None:
        return False
    last = stream_state.last_full_sync_at
    return last is None or now - last >= full_reconcile_interval()


def full_reconcile_interval() -> timedelta:
    return environment.current().full_reconcile_interval


def replay_run(engine: Engine, raw: RawStore, run_id: str) -> list[TenantSummary]:
    """Transform, validate and load a past run again from its kept raw pages; no API calls."""
    manifests = raw.manifests(run_id)
    if not manifests:
        raise IntoAECXeroError(f"No raw pages of the Xero connection '{raw.connection_key}' kept for run "
                               f"{run_id!r} under {raw.directory}.")
    return [load_tenant(engine, raw, manifest) for manifest in manifests]


def load_tenant(engine: Engine, raw: RawStore, manifest: Manifest, *, docs_index: bool = True) -> TenantSummary:
    """Load what :func:`extract_tenant` kept; each stream commits on its own with its watermark.

    A stream whose batch fails an ``error`` check is quarantined and the others carry on; after
    the streams, the tenant's ledger is reconciled. Every verdict goes to ``dq_results``, each
    stream's summary to its ``sync_runs`` row, and the GX results to Data Docs.
    """
    run_id, tenant_id, name = manifest["run_id"], manifest["tenant_id"], manifest["tenant_name"]
    kind = "backfill" if reconcile.is_backfill(manifest) else "sync"
    summary: TenantSummary = {"tenant_id": tenant_id, "tenant_name": name, "streams": {}, "failed": [],
                               "retriable": False}
    verdicts: dict[str, list[CheckResult]] = {}
    outcomes: dict[str, str] = {}
    validations: list[Any] = []
    for failure in manifest.get("failed", []):
        # Failed at extract: named in the summary, and its checks skipped rather than failed.
        stream = get_stream(failure["stream"])
        summary["streams"][stream.name] = {"status": "failed", "reason": failure["message"]}
        summary["failed"].append(failure["message"])
        outcomes[stream.name] = "failed"
        verdicts[stream.name] = [CheckResult.skip(stream.targets[0], "batch_checks", ERROR,
                                                  "the stream's extract failed in this run")]
        record_results(engine, run_id, tenant_id, verdicts[stream.name])
    for item in manifest["streams"]:
        extracted = StreamExtract(**item)
        stream = get_stream(extracted.stream)
        if extracted.unavailable:
            summary["streams"][stream.name] = {"status": "unavailable", "reason": extracted.unavailable}
            outcomes[stream.name] = "unavailable"
            verdicts[stream.name] = [CheckResult.skip(stream.targets[0], "batch_checks", ERROR, extracted.unavailable)]
            record_results(engine, run_id, tenant_id, verdicts[stream.name])
            continue
        try:
            # One transaction per stream: a dropped connection or a restart mid-way is tried again from its start.
            loaded = retry_transient(partial(load_checked, engine, raw, run_id, tenant_id, stream, extracted),
                                     f"{name} ({tenant_id}): {stream.name} load")
        except (BatchRejected, IntoAECXeroError, SQLAlchemyError) as error:
            if not isinstance(error, BatchRejected):
                message = _load_failed(engine, run_id, tenant_id, name, stream, error, kind)
                summary["streams"][stream.name] = {"status": "failed", "reason": message}
                summary["failed"].append(message)
                summary["retriable"] = summary["retriable"] or is_retriable(error)
                outcomes[stream.name] = "failed"
                verdicts[stream.name] = [CheckResult.skip(stream.targets[0], "batch_checks", ERROR,
                                                          "the stream's load failed in this run")]
                continue
            validations.extend(getattr(error, "validations", []))
            message = _quarantine(engine, raw, run_id, tenant_id, name, stream, error, kind)
            summary["streams"][stream.name] = {"status": "rejected", "reason": message}
            summary["failed"].append(message)
            outcomes[stream.name] = "rejected"
            verdicts[stream.name] = error.results
            continue
        validations.extend(loaded.validations)
        outcomes[stream.name] = "success"
        verdicts[stream.name] = list(loaded.results)
        superseded = quarantine.supersede(engine, tenant_id, stream.name, run_id)
        rows = sum(loaded.rows.values())
        notes = []
        if extracted.extra.get("reconcile"):
            notes.append(f"full reconcile corrected {loaded.corrected} row(s) whose edits did not bump "
                         "UpdatedDateUTC")
        if superseded:
            notes.append(f"loaded the changes of {superseded} quarantined batch(es), now superseded")
        if loaded.held:
            notes.append(f"held back {len(loaded.held)} record(s) in quarantine (`intoaec-xero quarantine list "
                         f"--stream {stream.name}`): " + ", ".join(h.label for h in loaded.held[:5])
                         + (" …" if len(loaded.held) > 5 else ""))
        for note in notes:
            log.info("%s: %s %s", name, stream.name, note)
        state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=stream.name,
                         finished_at=_now(), status="success", rows_loaded=rows, rows_inserted=loaded.inserted,
                         rows_updated=loaded.updated, message="; ".join(notes) or None, kind=kind)
        warnings = [c for c in loaded.results if not c.passed]
        if warnings:
            log.warning("%s: %s loaded with %d warning(s): %s", name, stream.name, len(warnings),
                        "; ".join(f"{c.label()} {c.observed}" for c in warnings))
        summary["streams"][stream.name] = {"status": "success", "rows": loaded.rows, "inserted": loaded.inserted,
                                           "updated": loaded.updated, "held": len(loaded.held)}
        log.info("%s: %s loaded %s (%s: %d new, %d changed)", name, stream.name,
                 ", ".join(f"{n} {t}" for t, n in loaded.rows.items()) or "no rows", stream.targets[0],
                 loaded.inserted, loaded.updated)

    if kind == "sync":
        _derive_ledger(engine, manifest, summary, outcomes)
        summary["projects"] = _rebuild_projects(engine, name, tenant_id, outcomes)
        if summary["projects"]["status"] == "failed":
            summary["failed"].append(f"{name} ({tenant_id}): {summary['projects']['reason']}")
    changed = {stream_name for stream_name, outcome in summary["streams"].items()
               if outcome.get("inserted") or outcome.get("updated")}
    ledger = check_ledger(engine, raw, manifest, outcomes, changed=changed)
    table_streams = {t: s.name for s in STREAMS.values() for t in s.targets}
    for check in ledger:
        stream_name = table_streams.get(check.table)
        if stream_name in verdicts:
            verdicts[stream_name].append(check)
        if check.failed_error:
            message = f"{name} ({tenant_id}): reconciliation {check.describe()}"
            summary["failed"].append(message)
            log.error("%s", message)
        elif not check.passed:
            log.warning("%s: reconciliation %s", name, check.describe())
        elif check.skipped:
            log.info("%s: %s skipped: %s", name, check.label(), check.skipped)
    summary["quality"] = {
        stream_name: record_stream_verdict(engine, run_id, tenant_id, stream_name, checks)
        for stream_name, checks in verdicts.items()
    }
    # A backfill loads history a page at a time; its verdicts are in dq_results, the docs show the syncs.
    index = None if reconcile.is_backfill(manifest) else docs.publish(run_id, name, validations,
                                                                      build_index=docs_index)
    if index:
        log.info("%s: data quality %s; Data Docs: %s", name,
                 ", ".join(f"{s} {v}" for s, v in summary["quality"].items()), docs.describe(index))
    return summary


def _derive_ledger(engine: Engine, manifest: Manifest, summary: TenantSummary, outcomes: dict[str, str]) -> None:
    """Where Journals were refused, the ledger from the documents; its failure fails the tenant's run.

    Rebuilt only when a document it is built from changed (or it was never built): the journals'
    outcome becomes "derived", which the ledger checks read as a complete ledger.
    """
    from intoaec_xero import ledger

    item = next((s for s in manifest["streams"] if s["stream"] == "journals"), None)
    name, tenant_id = manifest["tenant_name"], manifest["tenant_id"]
    if item is None or (item.get("extra") or {}).get("ledger") != ledger.DERIVED:
        if outcomes.get("journals") == "success" and ledger.has_derived(engine, tenant_id, with_balancing=True):
            dropped = ledger.drop_derived(engine, tenant_id)
            log.warning("%s (%s): Xero serves Journals to this app again; the %d journals derived from documents "
                        "are replaced by Xero's", name, tenant_id, dropped)
        return
    reason = item.get("unavailable") or ledger.JOURNALS_REFUSED
    not_loaded = [s for s in trial_balance.LEDGER_STREAMS
                  if s in outcomes and outcomes[s] not in ("success", "unavailable")]
    if not_loaded:
        message = (f"{name} ({tenant_id}): the ledger was not derived from documents in this run: "
                   f"{', '.join(not_loaded)} did not load, so it keeps its last build")
        summary["streams"]["journals"] = {"status": "failed", "reason": message}
        summary["failed"].append(message)
        state.record_run(engine, run_id=manifest["run_id"], tenant_id=tenant_id, stream="journals",
                         finished_at=_now(), status="failed", message=message)
        return
    changed = any((summary["streams"].get(s) or {}).get("inserted") or (summary["streams"].get(s) or {}).get("updated")
                  for s in trial_balance.LEDGER_STREAMS)
    try:
        if changed or ledger.is_stale(engine, tenant_id) or not ledger.has_derived(engine, tenant_id):
            built = retry_transient(partial(ledger.rebuild, engine, tenant_id),
                                    f"{name} ({tenant_id}): derived ledger")
            ledger.mark_built(engine, tenant_id)
            note = f"{reason} ({built.journals} journals, {built.lines} lines derived in {built.seconds:.1f} s)"
            rows, seconds = built.lines, built.seconds
        else:
            note, rows, seconds = f"{reason} (no document changed: the derived ledger is as it was)", 0, 0.0
    except Exception as error:  # noqa: BLE001 - the documents are loaded; the ledger keeps its last build
        log.exception("%s (%s): the ledger could not be derived from documents", name, tenant_id)
        message = f"{name} ({tenant_id}): the ledger could not be derived from documents: {error}"
        summary["streams"]["journals"] = {"status": "failed", "reason": message}
        summary["failed"].append(message)
        state.record_run(engine, run_id=manifest["run_id"], tenant_id=tenant_id, stream="journals",
                         finished_at=_now(), status="failed", message=message[:4000])
        return
    outcomes["journals"] = "derived"
    summary["streams"]["journals"] = {"status": "derived", "reason": note, "rows": {"journal_lines": rows},
                                      "seconds": round(seconds, 3)}
    state.record_run(engine, run_id=manifest["run_id"], tenant_id=tenant_id, stream="journals", finished_at=_now(),
                     status="derived", rows_loaded=rows, message=note[:4000])
    log.info("%s: %s", name, note)


def _rebuild_projects(engine: Engine, name: str, tenant_id: str, outcomes: dict[str, str]) -> dict[str, Any]:
    """IntoAEC's project tables from what the tenant's documents now are; a failure is reported, never hidden."""
    from intoaec_xero import project_finance

    if not any(status == "success" for status in outcomes.values()):
        return {"status": "skipped", "reason": "no stream was loaded in this run"}
    try:
        counts = retry_transient(partial(project_finance.rebuild, engine, tenant_id),
                                 f"{name} ({tenant_id}): project tables")
    except Exception as error:  # noqa: BLE001 - the streams are loaded; the tables keep their last build
        log.exception("%s (%s): the project tables could not be rebuilt; they keep their last build", name, tenant_id)
        return {"status": "failed", "reason": f"the project tables could not be rebuilt: {error}"}
    return {"status": "success", **counts}


def load_checked(engine: Engine, raw: RawStore, run_id: str, tenant_id: str, stream: Stream,
                 extracted: StreamExtract, *, verdicts_run: str | None = None,
                 accept: tuple[str, ...] = ()) -> StreamLoad:
    """One stream's kept pages through transform, checks and upserts, its verdicts in ``dq_results``.

    The sync, a backfill and a quarantine release all load a stream this way; a release reads an
    earlier run's pages (``run_id``) and files its verdicts under its own run (``verdicts_run``).
    Raises :class:`BatchRejected` once the rejecting verdicts are recorded.
    """
    try:
        loaded = load_stream(engine, raw, run_id, tenant_id, stream, extracted, accept=accept)
    except BatchRejected as rejected:
        record_results(engine, verdicts_run or run_id, tenant_id, rejected.results)
        raise
    record_results(engine, verdicts_run or run_id, tenant_id, loaded.results)
    return loaded


def check_ledger(engine: Engine, raw: RawStore, manifest: Manifest, outcomes: dict[str, str],
                 *, verdicts_run: str | None = None, tables: tuple[str, ...] = (),
                 changed: set[str] | None = None) -> list[CheckResult]:
    """The tenant's ledger reconciled after its streams loaded, the verdicts recorded.

    ``tables`` keeps only the checks filed under those tables (a release checks what it loaded);
    ``changed``, the streams whose load wrote rows (None: not known, every extracted record counts).
    Never raises: the streams are loaded whatever the checks say, so a check that cannot run
    is itself a (warning) verdict.
    """
    tenant_id = manifest["tenant_id"]
    try:
        # A backfill page skips the ledger checks anyway: no need to read the backfill's progress for it.
        pending = None if reconcile.is_backfill(manifest) else progress.ledger_pending(engine, tenant_id)
        ledger = reconcile.reconcile_tenant(engine, raw, manifest, outcomes, pending, changed=changed)
    except Exception as error:  # noqa: BLE001 - the streams are loaded; say the ledger went unchecked
        log.exception("%s: the reconciliation could not run", manifest.get("tenant_name") or tenant_id)
        ledger = [CheckResult("journal_lines", "reconciliation_ran", WARN, False,
                              observed=f"the reconciliation could not run: {error}", expected="it runs")]
    if tables:
        ledger = [check for check in ledger if check.table in tables]
    record_results(engine, verdicts_run or manifest["run_id"], tenant_id, ledger)
    return ledger


def _quarantine(engine: Engine, raw: RawStore, run_id: str, tenant_id: str, name: str, stream: Stream,
                error: BatchRejected, kind: str = "sync") -> str:
    """Keep the rejected batch aside and say, in one message, what failed where and what to do."""
    failed = "; ".join(r.describe() for r in error.failed)
    message = (f"{name} ({tenant_id}): {stream.name} batch of run {run_id} rejected and quarantined: {failed}. "
               "Nothing of it was loaded and the watermark did not move.")
    try:
        batch_id = quarantine.quarantine_batch(engine, raw, run_id, tenant_id, stream, error, message)
        message += (f" Inspect it with `intoaec-xero quarantine show {batch_id}`; after a fix, "
                    f"`intoaec-xero quarantine release {batch_id}`.")
    except Exception as failure:  # noqa: BLE001 - the rejection must still be reported
        log.exception("Could not copy the rejected batch to quarantine")
        message += f" (Copying it to quarantine failed too: {failure}.)"
    state.record_error(engine, tenant_id, stream.name, message)
    state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=stream.name,
                     finished_at=_now(), status="rejected", message=message, kind=kind)
    log.error("%s", message)
    return message


def _load_failed(engine: Engine, run_id: str, tenant_id: str, name: str, stream: Stream, error: Exception,
                 kind: str = "sync") -> str:
    """A load that broke (not a quality verdict): its transaction rolled back, the watermark stayed."""
    message = (f"{name} ({tenant_id}): {stream.name} load failed: {error}. Nothing of it was loaded and "
               "the watermark did not move.")
    log.error("%s", message)
    _record_failure(engine, run_id, tenant_id, stream.name, message, message, kind=kind)
    return message


class TenantSyncFailed(IntoAECXeroError):
    """One tenant could not be synced; the others carry on."""


@dataclass
class SyncSummary:
    run_id: str
    tenants: list[TenantSummary] = field(default_factory=list)
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
    """Every tenant, one after the other, in this process (the Airflow DAG runs them in parallel).

    One tenant's failure, whatever it is, is reported and the next tenant is still synced.
    """
    summary = SyncSummary(run_id=run_id)
    streams = selected_streams(stream_names)
    raw = raw.for_connection(settings.connection_key)  # each connection keeps (and resets) only its own pages
    found = discover(client, settings, engine)
    summary.failures.extend(refusal["message"] for refusal in found.refused)
    for tenant in found.tenants:
        try:
            manifest = extract_tenant(client, engine, raw, run_id, tenant, streams, full=full)
            loaded = load_tenant(engine, raw, manifest, docs_index=False)
        except Exception as error:  # noqa: BLE001 - one tenant's failure, whatever it is, never stops the others
            message = f"{tenant['tenant_name']} ({tenant['tenant_id']}): sync failed: {error or type(error).__name__}"
            summary.failures.append(message)
            if isinstance(error, IntoAECXeroError | SQLAlchemyError):
                log.error("%s", message)
            else:  # a defect: its traceback is what fixes it
                log.exception("%s", message)
            continue
        summary.tenants.append(loaded)
        summary.failures.extend(loaded["failed"])
    if summary.tenants:
        docs.rebuild_index()
    return summary
