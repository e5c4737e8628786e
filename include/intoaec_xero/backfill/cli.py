"""``intoaec-xero backfill status``: where each tenant's history backfill stands.

Reads only the IntoAEC database (``sync_state.details``), so it answers while a backfill runs
and costs no Xero calls.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from intoaec_xero.backfill import progress


def register(subparsers) -> None:
    backfill = subparsers.add_parser("backfill", help="history backfill (month windows and the journal walk)")
    commands = backfill.add_subparsers(dest="backfill_command", required=True)
    status = commands.add_parser("status", help="progress per tenant: journals walked, windows loaded, ETA")
    status.add_argument("--tenant", default="", help="only this tenant (id or name)")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)


def cmd_status(args) -> int:
    from intoaec_xero.cli import _engine

    rows = collect(_engine(args), args.tenant)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        print(format_status(rows))
    return 0


def collect(engine, tenant: str = "") -> list[dict[str, Any]]:
    """One summary per tenant: the journal walk and the windows loaded per stream."""
    wanted = tenant.strip().lower()
    tenants: dict[str, dict[str, Any]] = {}
    for row in progress.all_entries(engine):
        if wanted and wanted not in (row["tenant_id"].lower(), row["tenant_name"].lower()):
            continue
        tenants.setdefault(row["tenant_id"], {"tenant_id": row["tenant_id"], "tenant_name": row["tenant_name"],
                                              "entries": []})["entries"].append(row)
    items = [{"tenant_id": t["tenant_id"], "tenant_name": t["tenant_name"], **progress.summarise(t["entries"])}
             for t in tenants.values()]
    return sorted(items, key=lambda t: t["tenant_name"].lower())


def format_status(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No backfill has run yet (run the xero_backfill DAG: see README, \"Backfill history\")."
    lines: list[str] = []
    for tenant in rows:
        named = tenant["tenant_name"] != tenant["tenant_id"]
        lines.append(tenant["tenant_name"] + (f"  ({tenant['tenant_id']})" if named else ""))
        journals = tenant["journals"]
        if journals:
            lines.append("  journals     " + _journal_line(journals))
            last = journals.get("last_pass")
            if last:
                at = str(last.get("at"))[:16].replace("T", " ")
                lines.append(f"               last pass {at} UTC: {last.get('status')}, "
                             f"{last.get('calls', 0):,} calls, {last.get('journals', 0):,} journals")
            if journals.get("message") and journals["status"] not in ("running",):
                lines.append(f"               {journals['message']}")
            if journals.get("last_error"):
                lines.append(f"               last error: {journals['last_error']}")
        else:
            lines.append("  journals     not started")
        by_stream: dict[str, dict[str, Any]] = defaultdict(dict, tenant["windows"])
        if by_stream:
            for stream, summary in sorted(by_stream.items()):
                span = f" ({summary['first']} … {summary['last']})" if summary["first"] else ""
                text = f"{summary['loaded']} window(s) loaded{span}, {summary['records']:,} records"
                if summary["not_loaded"]:
                    text += "; not loaded: " + "; ".join(f"{k} ({v})" for k, v in sorted(summary["not_loaded"].items()))
                lines.append(f"  {stream:<12} {text}")
        else:
            lines.append("  windows      none loaded")
    return "\n".join(lines)


def _journal_line(j: dict[str, Any]) -> str:
    if j["target"] is None:
        return f"{j['status']} (ledger end not found yet)"
    text = (f"{j['status']}: offset {j['offset'] or 0:,} of {j['target']:,} ({j['percent'] or 0:.1f}%), "
            f"{j['journals_loaded']:,} journals / {j['lines_loaded']:,} lines loaded, {j['calls_total']:,} calls")
    if j["status"] not in ("complete", "unavailable") and j.get("calls_left"):
        text += f", ~{j['calls_left']:,} calls left"
        if j.get("eta"):
            text += f", ETA {j['eta'][:16].replace('T', ' ')} UTC"
    if j.get("sync_reads_after") is not None and j["status"] != "unavailable":
        text += f"; the sync reads journals after {j['sync_reads_after']:,}"
    return text
