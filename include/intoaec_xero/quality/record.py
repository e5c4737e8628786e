"""Where verdicts go: one ``dq_results`` row per check, a summary per stream in ``sync_runs``.

The summary is what the status page and the demo read: the verdict, how many checks ran, how
many records were held back, and the failures and skips spelled out, so nobody has to open
``dq_results`` to know what broke.

A check has one row per run, tenant and table: a retried load task (an Airflow retry, a replay)
replaces the verdicts of its first try rather than adding a second set.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from intoaec_xero import state
from intoaec_xero.db import upsert
from intoaec_xero.quality.model import ERROR, HOLD, SAMPLE_KEYS, CheckResult, storable, verdict
from intoaec_xero.schema import dq_results, sync_runs, xero_tenants

DQ_KEY = ("run_id", "tenant_id", "table_name", "check_name")


def record_results(engine: Engine, run_id: str, tenant_id: str, results: list[CheckResult]) -> None:
    if not results:
        return
    now = datetime.now(UTC)
    rows = [
        {"run_id": run_id, "tenant_id": tenant_id, "table_name": r.table, "check_name": r.check,
         "severity": r.severity, "passed": bool(r.passed), "observed": storable(r.observed[:4000]),
         "expected": storable(r.expected[:4000]),
         "failing_keys": [storable(str(k)) for k in r.failing_keys[:SAMPLE_KEYS]] or None,
         "checked_at": now}
        for r in results
    ]
    with engine.begin() as conn:
        upsert(conn, dq_results, rows, keys=DQ_KEY)


def summarise(results: list[CheckResult]) -> dict[str, Any]:
    """The ``sync_runs.quality_summary`` of one stream."""
    skipped = [r for r in results if r.skipped]
    ran = [r for r in results if not r.skipped]
    return {
        "verdict": verdict(results) if ran else "skipped",
        "checks": len(ran),
        "passed": sum(1 for r in ran if r.passed),
        "held_records": held_count(results),
        "failed": [r.to_dict() for r in ran if not r.passed],
        "skipped": [{"table": r.table, "check": r.check, "reason": r.skipped} for r in skipped],
    }


def held_count(results: list[CheckResult]) -> int:
    """Records held back (each once, however many checks it failed)."""
    return len({key for r in results if r.held for key in r.record_keys})


def record_stream_verdict(engine: Engine, run_id: str, tenant_id: str, stream: str,
                          results: list[CheckResult], **extra: Any) -> str:
    summary = summarise(results)
    state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=stream,
                     quality_verdict=summary["verdict"], quality_summary=summary, **extra)
    return summary["verdict"]


def latest_run(engine: Engine, tenant_id: str | None = None) -> str | None:
    query = select(dq_results.c.run_id).order_by(dq_results.c.checked_at.desc(), dq_results.c.id.desc()).limit(1)
    if tenant_id:
        query = query.where(dq_results.c.tenant_id == tenant_id)
    with engine.connect() as conn:
        return conn.execute(query).scalar()


def run_results(engine: Engine, run_id: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(dq_results, xero_tenants.c.tenant_name)
            .join(xero_tenants, xero_tenants.c.tenant_id == dq_results.c.tenant_id, isouter=True)
            .where(dq_results.c.run_id == run_id)
            .order_by(xero_tenants.c.tenant_name, dq_results.c.tenant_id, dq_results.c.id)
        ).mappings().all()
    return [dict(r) for r in rows]


def format_summary(engine: Engine, run_id: str | None = None, *, details: bool = True) -> str:
    """The checks of one run (the latest by default), per tenant, as the demo and the CLI print it."""
    run_id = run_id or latest_run(engine)
    if not run_id:
        return "Data quality: no checks have run yet."
    rows = run_results(engine, run_id)
    with engine.connect() as conn:
        quarantined = conn.execute(
            select(sync_runs.c.tenant_id, func.count()).where(sync_runs.c.run_id == run_id,
                                                               sync_runs.c.status == "rejected")
            .group_by(sync_runs.c.tenant_id)).all()
    rejected: dict[str, int] = dict(quarantined)
    lines = [f"Data quality, run {run_id}:"]
    tenants: dict[str, list[dict]] = {}
    for row in rows:
        tenants.setdefault(row["tenant_id"], []).append(row)
    for tenant_id, checks in tenants.items():
        name = checks[0]["tenant_name"] or tenant_id
        skipped = [c for c in checks if (c["observed"] or "").startswith("skipped: ")]
        ran = [c for c in checks if c not in skipped]
        errors = [c for c in ran if not c["passed"] and c["severity"] == ERROR]
        holds = [c for c in ran if not c["passed"] and c["severity"] == HOLD]
        warnings = [c for c in ran if not c["passed"] and c["severity"] not in (ERROR, HOLD)]
        state_word = "FAILED" if errors else "records held" if holds else "warnings" if warnings else "passed"
        lines.append(f"  {name}: {state_word} — {len(ran) - len(errors) - len(holds) - len(warnings)} of {len(ran)} "
                     f"checks passed, {len(errors)} error(s), "
                     + (f"{len(holds)} holding records back, " if holds else "")
                     + f"{len(warnings)} warning(s), {len(skipped)} skipped"
                     + (f", {rejected[tenant_id]} batch(es) quarantined" if rejected.get(tenant_id) else ""))
        if details:
            for c in errors + holds + warnings:
                keys = ", ".join((c["failing_keys"] or [])[:3])
                lines.append(f"    {c['severity'].upper():5} {c['table_name']}.{c['check_name']}: {c['observed']}"
                             + (f" [keys: {keys}]" if keys else ""))
            for c in skipped:
                lines.append(f"    SKIP  {c['table_name']}.{c['check_name']}: {c['observed'][len('skipped: '):]}")
    return "\n".join(lines)
