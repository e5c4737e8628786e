"""Sync health per tenant: the answer to "is this firm's ledger current?" at a glance.

Built from the pipeline's own records (xero_tenants, xero_tokens, sync_state, sync_runs,
dq_results), so the CLI, the Airflow UI page and the freshness check all say the same thing.
Health is the sync's: only the runs of ``xero_sync`` (and ``intoaec-xero sync``) count, so a
finished backfill never turns a failing tenant healthy; its progress is shown beside.
A stream ``skipped`` in a run is neither a success nor a reason of its own.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, case, func, or_, select, true
from sqlalchemy.engine import RowMapping

from intoaec_xero import state
from intoaec_xero.backfill import progress
from intoaec_xero.db import as_utc
from intoaec_xero.environment import RuntimeSettings, current
from intoaec_xero.ledger import JOURNALS_NOT_USED, JOURNALS_REFUSED
from intoaec_xero.schema import dq_results, sync_runs, sync_state, xero_tenants, xero_tokens
from intoaec_xero.tenants import TenantStatus
from intoaec_xero.tokens import STATUS_RECONNECT

HEALTHY = "healthy"
STALE = "stale"
FAILING = "failing"
RECONNECT = "reconnect_needed"
DISCONNECTED = "disconnected"
NEVER_SYNCED = "never_synced"


def stale_after(settings: RuntimeSettings | None = None) -> timedelta:
    """Default: twice the sync schedule's interval (hourly → 2 h); INTOAEC_STALE_AFTER_MINUTES overrides."""
    return (settings or current()).stale_after


@dataclass
class StreamHealth:
    stream: str
    last_success_at: str | None
    age_minutes: float | None
    last_status: str | None
    rows_loaded: int | None
    api_calls: int | None
    last_error: str | None
    quality_verdict: str | None
    last_run_id: str | None = None  # where the UI links to the run behind last_status
    rows_inserted: int | None = None  # of the stream's main table in that run: new keys
    rows_updated: int | None = None  # and existing rows whose values changed


@dataclass
class TenantHealth:
    tenant_id: str
    tenant_name: str
    connection_status: str
    sync_enabled: bool
    verdict: str
    reasons: list[str] = field(default_factory=list)
    last_success_at: str | None = None
    age_minutes: float | None = None
    rows_last_run: int = 0
    api_calls_last_run: int = 0
    quota_day_remaining: int | None = None
    quality_verdict: str | None = None
    journals: str = "unknown"
    # Where the ledger comes from when it is not Xero's Journals: the sentence saying why it is derived.
    ledger_note: str | None = None
    # Accounts the documents cannot explain, with the amount (the latest ledger_matches_trial_balance).
    unexplained: list[str] = field(default_factory=list)
    # Streams Xero refused because the grant lacks their scope ("bank transactions"): a Reconnect fixes them.
    needs_consent: list[str] = field(default_factory=list)
    # The history backfill: {"journals": the walk (status, percent, eta, …) or None,
    # "windows": {stream: windows loaded}}; None when none has run.
    backfill: dict[str, Any] | None = None
    streams: list[StreamHealth] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.verdict == HEALTHY

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PROBLEM_STATUSES = ("failed", "rejected", "quarantined")
UNFINISHED = state.UNFINISHED
SKIPPED = "skipped"
SYNC = "sync"  # sync_runs.kind of xero_sync's runs; backfills and quarantine releases are others


def _older(value: datetime | None, now: datetime, age: timedelta) -> bool:
    moment = as_utc(value)
    return moment is not None and now - moment > age


def tenant_health(engine: Engine, *, now: datetime | None = None, threshold: timedelta | None = None,
                  tenant_ids: Collection[str] | None = None) -> list[TenantHealth]:
    """Every tenant's health, or only ``tenant_ids``' (one firm's, read per request of the connect API)."""
    now = now or datetime.now(UTC)
    threshold = threshold or stale_after()
    wanted = list(tenant_ids) if tenant_ids is not None else None

    def only(column):
        return column.in_(wanted) if wanted is not None else true()

    with engine.connect() as conn:
        tenants = conn.execute(select(xero_tenants).where(only(xero_tenants.c.tenant_id))
                               .order_by(xero_tenants.c.tenant_name)).mappings().all()
        grants = dict(conn.execute(select(xero_tokens.c.connection_key, xero_tokens.c.status)).all())
        states = conn.execute(select(sync_state).where(only(sync_state.c.tenant_id))).mappings().all()
        # Health is the sync's: a backfill's or a release's runs never stand in for it.
        syncs = or_(sync_runs.c.kind.is_(None), sync_runs.c.kind == SYNC)
        latest_run = (
            select(sync_runs.c.tenant_id, sync_runs.c.stream, func.max(sync_runs.c.started_at).label("started_at"))
            .where(syncs, only(sync_runs.c.tenant_id))
            .group_by(sync_runs.c.tenant_id, sync_runs.c.stream)
            .subquery()
        )
        runs = conn.execute(
            select(sync_runs).where(syncs).join(
                latest_run,
                (sync_runs.c.tenant_id == latest_run.c.tenant_id)
                & (sync_runs.c.stream == latest_run.c.stream)
                & (sync_runs.c.started_at == latest_run.c.started_at),
            )
        ).mappings().all()
        last_success = func.max(sync_runs.c.finished_at).label("finished_at")
        successes = dict(
            ((r.tenant_id, r.stream), r.finished_at) for r in conn.execute(
                select(sync_runs.c.tenant_id, sync_runs.c.stream, last_success)
                .where(syncs, sync_runs.c.status == "success", only(sync_runs.c.tenant_id))
                .group_by(sync_runs.c.tenant_id, sync_runs.c.stream)
            )
        )
        unexplained: dict[str, Any] = {}
        for row in conn.execute(select(dq_results.c.tenant_id, dq_results.c.passed, dq_results.c.failing_keys)
                                .where(dq_results.c.check_name == "ledger_matches_trial_balance",
                                       only(dq_results.c.tenant_id))
                                .order_by(dq_results.c.id.desc())):
            unexplained.setdefault(row.tenant_id, row)
    state_by = {(s["tenant_id"], s["stream"]): s for s in states}
    runs_by = {(r["tenant_id"], r["stream"]): r for r in runs}
    backfills: dict[str, list[dict[str, Any]]] = {}
    for s in states:
        entry = (s["details"] or {}).get(progress.KEY)
        if entry:
            backfills.setdefault(s["tenant_id"], []).append(
                {"stream": s["stream"], "backfill": entry, "sync_journal_offset": s["journal_offset"]})
    result = []
    for tenant in tenants:
        tid = tenant["tenant_id"]
        status = tenant["connection_status"]
        if grants.get(tenant["connection_key"]) == STATUS_RECONNECT:
            status = TenantStatus.RECONNECT_NEEDED.value
        health = TenantHealth(tenant_id=tid, tenant_name=tenant["tenant_name"], connection_status=status,
                              sync_enabled=bool(tenant["sync_enabled"]), verdict=HEALTHY)
        if tid in backfills:
            health.backfill = progress.summarise(backfills[tid])
        streams = sorted({s for (t, s) in list(state_by) + list(runs_by) if t == tid})
        oldest: datetime | None = None
        quota_seen: tuple[datetime, int] | None = None
        for name in streams:
            if name.startswith("_"):  # bookkeeping rows (open alert incidents), not data streams
                continue
            st: RowMapping | dict[str, Any] = state_by.get((tid, name)) or {}
            run: RowMapping | dict[str, Any] = runs_by.get((tid, name)) or {}
            success = as_utc(successes.get((tid, name)))
            age = (now - success).total_seconds() / 60 if success else None
            health.streams.append(StreamHealth(
                stream=name, last_success_at=success.isoformat() if success else None,
                age_minutes=round(age, 1) if age is not None else None, last_status=run.get("status"),
                rows_loaded=run.get("rows_loaded"), api_calls=run.get("api_calls"),
                last_error=st.get("last_error"), quality_verdict=run.get("quality_verdict"),
                last_run_id=run.get("run_id"), rows_inserted=run.get("rows_inserted"),
                rows_updated=run.get("rows_updated")))
            if run.get("status") == "unavailable" and "needs re-consent" in (
                    run.get("message") or st.get("last_error") or ""):
                health.needs_consent.append(name.replace("_", " "))
                continue
            if name == "journals" and run.get("status") in ("unavailable", "derived"):
                health.journals = "derived"
                health.ledger_note = JOURNALS_NOT_USED if JOURNALS_NOT_USED in (run.get("message") or "") \
                    else JOURNALS_REFUSED
                continue
            if name == "journals" and success:
                health.journals = "available"
            if success and (oldest is None or success < oldest):
                oldest = success
            health.rows_last_run += run.get("rows_loaded") or 0
            health.api_calls_last_run += run.get("api_calls") or 0
            if run.get("quota_day_remaining") is not None:
                # The newest reading; within one run, the lowest (Xero counts down as the run calls).
                reading = (as_utc(run.get("started_at")) or datetime.min.replace(tzinfo=UTC),
                           -run["quota_day_remaining"])
                if quota_seen is None or reading > quota_seen:
                    quota_seen = reading
                    health.quota_day_remaining = run["quota_day_remaining"]
            if run.get("quality_verdict") and health.quality_verdict != "failed":
                health.quality_verdict = run["quality_verdict"]
            if run.get("status") in PROBLEM_STATUSES:
                health.reasons.append(f"{name}: {st.get('last_error') or run.get('message') or run['status']}")
            elif run.get("status") in UNFINISHED and _older(run.get("started_at"), now, threshold):
                health.reasons.append(f"{name}: run {run['run_id']} stopped before it finished "
                                      f"(left {run['status']})")
        if oldest:
            health.last_success_at = oldest.isoformat()
            health.age_minutes = round((now - oldest).total_seconds() / 60, 1)
        ledger_check = unexplained.get(tid)
        if ledger_check is not None and not ledger_check.passed:
            health.unexplained = list(ledger_check.failing_keys or [])
        health.verdict = _verdict(health, oldest, now, threshold)
        result.append(health)
    return result


def _verdict(health: TenantHealth, oldest: datetime | None, now: datetime, threshold: timedelta) -> str:
    if health.connection_status == TenantStatus.RECONNECT_NEEDED:
        health.reasons.insert(0, "the Xero grant expired or was revoked: reconnect Xero")
        return RECONNECT
    if health.connection_status == TenantStatus.DISCONNECTED:
        health.reasons.insert(0, "the organisation was disconnected (on the Xero page, with `intoaec-xero "
                                 "disconnect`, or at Xero): Reconnect and tick it at Xero to sync it again")
        return DISCONNECTED
    if health.connection_status == TenantStatus.CONNECTION_ERROR:
        health.reasons.insert(0, "the last run could not read the Xero connection (see its discover_tenants "
                                 "or extract log)")
        return FAILING
    if health.reasons:
        return FAILING
    if oldest is None:
        health.reasons.append("no successful sync yet")
        return NEVER_SYNCED
    if now - oldest > threshold:
        health.reasons.append(f"last successful sync {health.age_minutes:.0f} min ago "
                              f"(threshold {threshold.total_seconds() / 60:.0f} min)")
        return STALE
    return HEALTHY


@dataclass
class RunSummary:
    """One run of one tenant summed over its streams: how big and how costly each sync was."""

    run_id: str
    started_at: str | None
    finished_at: str | None
    streams: int
    problem_streams: int
    rows_loaded: int
    api_calls: int
    rate_limited: int
    quota_day_remaining: int | None
    skipped_streams: int = 0  # not loaded because another stream of the tenant failed
    unfinished_streams: int = 0  # still running, or left open by a run that never finished

    @property
    def status(self) -> str:
        if self.unfinished_streams:
            # Never "success" before every stream ended; the next run closes an abandoned one as failed.
            return "running"
        if self.problem_streams:
            # Nothing loaded when every other stream was skipped for the failure.
            return "failed" if self.problem_streams + self.skipped_streams >= self.streams else "partial"
        return "success"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"status": self.status}


def run_history(engine: Engine, *, days: int = 30, now: datetime | None = None) -> dict[str, list[RunSummary]]:
    """Each tenant's runs since ``days`` ago, oldest first, summed in the database.

    An hourly schedule makes ~720 runs × 10 streams a month per tenant, so the sums are left to
    SQL rather than pulling every ``sync_runs`` row into the API server for one page view.
    """
    now = now or datetime.now(UTC)
    since = now - timedelta(days=days)
    problem = case((sync_runs.c.status.in_(PROBLEM_STATUSES), 1), else_=0)
    skipped = case((sync_runs.c.status == SKIPPED, 1), else_=0)
    unfinished = case((sync_runs.c.status.in_(UNFINISHED), 1), else_=0)
    started = func.min(sync_runs.c.started_at).label("started_at")
    query = (
        select(sync_runs.c.tenant_id, sync_runs.c.run_id, started,
               func.max(sync_runs.c.finished_at).label("finished_at"),
               func.count().label("streams"), func.sum(problem).label("problem_streams"),
               func.sum(skipped).label("skipped_streams"), func.sum(unfinished).label("unfinished_streams"),
               func.sum(func.coalesce(sync_runs.c.rows_loaded, 0)).label("rows_loaded"),
               func.sum(func.coalesce(sync_runs.c.api_calls, 0)).label("api_calls"),
               func.sum(func.coalesce(sync_runs.c.rate_limited, 0)).label("rate_limited"),
               func.min(sync_runs.c.quota_day_remaining).label("quota_day_remaining"))
        .where(sync_runs.c.started_at >= since, or_(sync_runs.c.kind.is_(None), sync_runs.c.kind == SYNC))
        .group_by(sync_runs.c.tenant_id, sync_runs.c.run_id)
        .order_by(started, sync_runs.c.run_id)
    )
    history: dict[str, list[RunSummary]] = {}
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            begun, ended = as_utc(row["started_at"]), as_utc(row["finished_at"])
            history.setdefault(row["tenant_id"], []).append(RunSummary(
                run_id=row["run_id"], started_at=begun.isoformat() if begun else None,
                finished_at=ended.isoformat() if ended else None, streams=int(row["streams"]),
                problem_streams=int(row["problem_streams"] or 0), rows_loaded=int(row["rows_loaded"] or 0),
                api_calls=int(row["api_calls"] or 0), rate_limited=int(row["rate_limited"] or 0),
                quota_day_remaining=row["quota_day_remaining"], skipped_streams=int(row["skipped_streams"] or 0),
                unfinished_streams=int(row["unfinished_streams"] or 0)))
    return history


def format_table(healths: list[TenantHealth]) -> str:
    header = ["tenant", "connection", "sync", "verdict", "last success", "age", "rows", "calls", "quota left",
              "quality", "journals", "backfill"]
    rows = []
    for h in healths:
        rows.append([
            h.tenant_name, h.connection_status, "enabled" if h.sync_enabled else "off", h.verdict.upper(),
            (h.last_success_at or "-")[:16].replace("T", " "),
            f"{h.age_minutes:.0f} min" if h.age_minutes is not None else "-",
            str(h.rows_last_run), str(h.api_calls_last_run),
            str(h.quota_day_remaining) if h.quota_day_remaining is not None else "-",
            h.quality_verdict or "-", h.journals, backfill_label(h.backfill),
        ])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for h in healths:
        for reason in h.reasons:
            lines.append(f"  {h.tenant_name}: {reason}")
        if h.needs_consent:
            lines.append(f"  {h.tenant_name}: {reconsent_note(h.needs_consent)}")
        if h.ledger_note:
            lines.append(f"  {h.tenant_name}: {h.ledger_note}")
        if h.unexplained:
            lines.append(f"  {h.tenant_name}: not explained by any document (a balancing line ties each to Xero): "
                         + "; ".join(h.unexplained))
    return "\n".join(lines)


def reconsent_note(streams: list[str]) -> str:
    """What the data team reads for a grant that lacks a stream's scope, and what fixes it."""
    return (f"needs re-consent for {', '.join(streams)}: the grant predates the scope Xero requires for "
            f"{'them' if len(streams) > 1 else 'it'}; Reconnect Xero for this organisation (the Xero page's "
            "Reconnect, or `intoaec-xero connect`) and the next sync loads it; every other stream syncs meanwhile")


def backfill_label(backfill: dict[str, Any] | None) -> str:
    """A few words for the status table: "journals 42%", "complete", "3 windows", or "-"."""
    if not backfill:
        return "-"
    parts = []
    journals = backfill.get("journals")
    if journals:
        status, percent = journals.get("status"), journals.get("percent")
        if status == "complete":
            parts.append("complete")
        elif status == "unavailable":
            parts.append("no journals")
        else:
            parts.append(f"journals {percent:.0f}%" if percent is not None else "journals planned")
            if status == "failed":
                parts[-1] += " failed"
    windows = backfill.get("windows") or {}
    loaded = sum(w.get("loaded", 0) for w in windows.values())
    not_loaded = sum(len(w.get("not_loaded") or ()) for w in windows.values())
    if loaded:
        parts.append(f"{loaded} window{'s' if loaded != 1 else ''}")
    if not_loaded:
        parts.append(f"{not_loaded} window{'s' if not_loaded != 1 else ''} failed")
    return ", ".join(parts) or "-"
