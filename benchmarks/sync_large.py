"""Full sync of the sandbox's ``large`` dataset (limits off) into PostgreSQL and SQLite.

Reports rows/s per stream, peak memory of the syncing process, API calls against the minimum
Xero allows, and the end-to-end rate against PostgreSQL ``COPY`` of the same rows into the
same tables. Writes the "Full sync (large)" section of docs/benchmarks.md.

    .venv/bin/python -m benchmarks.sync_large [--dataset large] [--seed 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.pg import drop_database, fresh_database
from benchmarks.report import write_section

HEADING = "Full sync (large)"
HEADING_DERIVED = "Full sync (large), ledger derived from documents"

# Runs in a child process so its peak RSS is the sync's alone. Each tenant is extracted and
# loaded in a process of its own, as xero_sync's mapped tasks are, `workers` at a time.
CHILD = r'''
import json, multiprocessing, os, resource, sys, time
from datetime import datetime
from cryptography.fernet import Fernet
from sqlalchemy import select
from intoaec_xero import db
from intoaec_xero.client import XeroClient
from intoaec_xero.oauth import finish_authorization, start_authorization
from intoaec_xero.pipeline import discover_tenants, extract_tenant, load_tenant, selected_streams
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import sync_runs
from intoaec_xero.settings import XeroSettings
from intoaec_xero.tokens import TokenCipher, TokenStore
from xero_sandbox.testing import sign_in_and_consent

base_url, db_url, raw_root, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
# Tokens are stored only encrypted; the spawned per-tenant workers inherit this key.
os.environ.setdefault("INTOAEC_FERNET_KEY", Fernet.generate_key().decode())
settings = XeroSettings.for_single_host(base_url, client_id="sandbox-client", client_secret="sandbox-secret",
                                        calls_per_minute=0)


def client_for(engine):
    return XeroClient(settings, TokenStore(engine, settings.connection_key, TokenCipher.from_environment()))


def sync_tenant(tenant):
    engine = db.create_db_engine(db_url)
    client = client_for(engine)
    raw = RawStore(raw_root)
    manifest = extract_tenant(client, engine, raw, "bench", tenant, selected_streams())
    load_started = datetime.fromisoformat(manifest["streams"][-1]["finished_at"])
    loaded = load_tenant(engine, raw, manifest)
    with engine.connect() as conn:
        runs = {r.stream: r for r in conn.execute(
            select(sync_runs.c.stream, sync_runs.c.finished_at, sync_runs.c.rows_loaded)
            .where(sync_runs.c.run_id == "bench", sync_runs.c.tenant_id == tenant["tenant_id"]))}
    streams = {}
    previous = load_started
    for item in manifest["streams"]:
        name = item["stream"]
        extract_seconds = (datetime.fromisoformat(item["finished_at"])
                           - datetime.fromisoformat(item["started_at"])).total_seconds()
        run = runs.get(name)
        done = run.finished_at if run else None
        load_seconds = 0.0
        if done is not None and not item["unavailable"]:
            done = done.replace(tzinfo=previous.tzinfo) if done.tzinfo is None else done
            load_seconds = max(0.0, (done - previous).total_seconds())
            previous = done
        n = item["records"]
        # Journals (100 a call) and LinkedTransactions (100 a page) come without a pagination object, so
        # only a short or empty answer ends them: one call more than the full ones. Paged streams say
        # their last page, 1,000 records a page.
        unpaged_walk = name in ("journals", "linked_transactions")
        paged = name not in ("accounts", "tracking_categories")
        minimum = n // 100 + 1 if unpaged_walk else (max(1, -(-n // 1000)) if paged else 1)
        streams[name] = {"records": n, "rows": (run.rows_loaded if run else 0) or 0, "calls": item["api_calls"],
                         "seconds": extract_seconds + load_seconds,
                         "minimum_calls": minimum if not item["unavailable"] else 1}
    projects = loaded.get("projects") or {}
    pnl = manifest.get("project_pnl") or {}
    streams["project tables"] = {"records": 0, "calls": 1 if "from" in pnl else 0, "minimum_calls": 1,
                                 "rows": sum(projects.get(k, 0) for k in ("projects", "project_months",
                                                                        "aging_contacts")),
                                 "seconds": projects.get("seconds", 0.0)}
    ledger = loaded["streams"].get("journals") or {}
    if ledger.get("status") == "derived":
        streams["derived ledger"] = {"records": 0, "calls": 0, "minimum_calls": 0,
                                     "rows": sum((ledger.get("rows") or {}).values()),
                                     "seconds": ledger.get("seconds", 0.0)}
    engine.dispose()
    return {"streams": streams, "tenant": tenant["tenant_name"],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


if __name__ == "__main__":
    engine = db.create_db_engine(db_url)
    db.upgrade(engine)
    store = TokenStore(engine, settings.connection_key, TokenCipher.from_environment())
    request = start_authorization(settings, "http://127.0.0.1:9/cb")
    store.save(finish_authorization(settings, request, sign_in_and_consent(request.url)))
    started = time.perf_counter()
    tenants = discover_tenants(client_for(engine), settings, engine)
    engine.dispose()
    # A fresh process per tenant (maxtasksperchild=1), like a task: peaks are per task.
    with multiprocessing.get_context("spawn").Pool(workers, maxtasksperchild=1) as pool:
        done = pool.map(sync_tenant, tenants, chunksize=1)
    out = {"streams": {}, "tenants": len(tenants), "workers": workers,
           "seconds": time.perf_counter() - started,
           "peak_rss_mb": max(d["peak_rss_mb"] for d in done),
           "per_tenant": [{"tenant": d["tenant"], "peak_rss_mb": d["peak_rss_mb"],
                           "rows": sum(s["rows"] for s in d["streams"].values())} for d in done]}
    for tenant in done:
        for name, item in tenant["streams"].items():
            entry = out["streams"].setdefault(name, {"records": 0, "rows": 0, "calls": 0, "seconds": 0.0,
                                                     "minimum_calls": 0})
            for key, value in item.items():
                entry[key] += value
    print(json.dumps(out))
'''


def run_sync(base_url: str, db_url: str, workers: int) -> dict:
    # spawn re-imports the main module, so the child runs from a file rather than `-c`.
    with tempfile.TemporaryDirectory() as raw_root:
        script = Path(raw_root) / "bench_child.py"
        script.write_text(CHILD)
        result = subprocess.run([sys.executable, str(script), base_url, db_url, str(Path(raw_root) / "raw"),
                                 str(workers)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"sync failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def copy_rate(db_url: str) -> tuple[int, float]:
    """Rows and seconds for COPY of the loaded rows back into the same tables, emptied first.

    The tables keep their indexes, constraints and write-ahead logging, as the sync had them,
    and each COPY commits, so the baseline pays what the sync pays for durability.
    """
    import psycopg2
    from intoaec_xero.schema import TARGET_TABLES

    conn = psycopg2.connect(db_url.replace("postgresql+psycopg2://", "postgresql://"))
    conn.autocommit = True
    total_rows, total_seconds = 0, 0.0
    with conn.cursor() as cur:
        dumps = {}
        for table in TARGET_TABLES:
            buffer = io.StringIO()
            cur.copy_expert(f"COPY {table} TO STDOUT", buffer)
            dumps[table] = buffer
        cur.execute(f"TRUNCATE {', '.join(TARGET_TABLES)}")
        # Start from a clean slate: no dirty pages of the sync left for the COPY to flush.
        cur.execute("CHECKPOINT")
        for table, buffer in dumps.items():
            rows = buffer.getvalue().count("\n")
            if not rows:
                continue
            buffer.seek(0)
            started = time.perf_counter()
            cur.copy_expert(f"COPY {table} FROM STDIN", buffer)
            total_seconds += time.perf_counter() - started
            total_rows += rows
    conn.close()
    return total_rows, total_seconds


def _checked(result: dict, url: str, truth: dict) -> dict:
    from intoaec_xero import db, report

    engine = db.create_db_engine(url)
    result["differences"] = report.compare_with_truth(engine, truth)
    engine.dispose()
    result["rows_total"] = sum(s["rows"] for s in result["streams"].values())
    print(f"  {result['seconds']:.0f} s, peak {result['peak_rss_mb']:.0f} MB, "
          f"{'equal to' if not result['differences'] else 'DIFFERENT from'} the truth", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="large")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="tenants synced at once on PostgreSQL (SQLite takes one writer at a time)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="PostgreSQL runs, each into a fresh database; the median is reported")
    parser.add_argument("--app-without-journals", action="store_true",
                        help="the sandbox refuses Journals to the app (Xero below its Advanced tier): the ledger "
                             "is derived from the documents; written under its own heading")
    args = parser.parse_args()
    from xero_sandbox.testing import running_sandbox

    name = "intoaec_bench"
    pg_runs = []
    with tempfile.TemporaryDirectory() as scratch, \
            running_sandbox(dataset=args.dataset, seed=args.seed, limits=False, startup_timeout=300,
                            app_without_journals=args.app_without_journals) as sandbox:
        truth = sandbox.truth()
        for attempt in range(1, args.repeat + 1):
            pg_url = fresh_database(name)
            print(f"syncing {args.dataset} into PostgreSQL ({attempt}/{args.repeat}), "
                  f"{args.workers} tenant(s) at a time ...", flush=True)
            run = _checked(run_sync(sandbox.base_url, pg_url, args.workers), pg_url, truth)
            run["copy_rows"], run["copy_seconds"] = copy_rate(pg_url)
            run["ratio"] = (run["rows_total"] / run["seconds"]) / (run["copy_rows"] / run["copy_seconds"])
            print(f"  COPY of the same rows: {run['copy_seconds']:.0f} s; ratio {100 * run['ratio']:.0f}%", flush=True)
            pg_runs.append(run)
            # A new day for the sandbox's quota headers: each run starts with Xero's full allowance.
            sandbox.advance_clock(86_400)
        print(f"syncing {args.dataset} into SQLite, one tenant at a time ...", flush=True)
        sqlite_url = f"sqlite:///{Path(scratch) / 'bench.db'}"
        sqlite_run = _checked(run_sync(sandbox.base_url, sqlite_url, 1), sqlite_url, truth)
    drop_database(name)
    write_report(args, pg_runs, sqlite_run)


def _project_share(result: dict) -> str:
    """What building the project tables adds to the sync, in task-seconds (target: at most 10%)."""
    streams = result["streams"]
    project = streams.get("project tables", {}).get("seconds", 0.0)
    rest = sum(s["seconds"] for name, s in streams.items() if name not in ("project tables", "derived ledger"))
    share = 100 * project / rest if rest else 0.0
    return (f"- project tables (project_financials, project_summary, ar_aging): {project:.1f} s over "
            f"{rest:.1f} s of streams, **+{share:.1f}%** (target: at most +10%)")


def _ledger_share(result: dict) -> str:
    """What deriving the ledger from the documents adds to the sync, in task-seconds (target: at most 15%)."""
    streams = result["streams"]
    if "derived ledger" not in streams:
        return "- ledger: Xero's Journals (the app may read them)"
    derived = streams["derived ledger"]["seconds"]
    rest = sum(s["seconds"] for name, s in streams.items() if name not in ("derived ledger", "project tables"))
    share = 100 * derived / rest if rest else 0.0
    return (f"- ledger derived from documents ({streams['derived ledger']['rows']:,} lines): {derived:.1f} s over "
            f"{rest:.1f} s of streams, **+{share:.1f}%** (target: at most +15%)")


def write_report(args, pg_runs: list[dict], sqlite_run: dict) -> None:
    median = sorted(pg_runs, key=lambda r: r["ratio"])[len(pg_runs) // 2]
    results = {"PostgreSQL": median, "SQLite": sqlite_run}
    gate = (" The app is refused Journals (`--app-without-journals`, Xero below its Advanced tier): the "
            "ledger is derived from the documents, and equality with the truth is its net by account."
            if args.app_without_journals else "")
    lines = [f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: `make bench`, sandbox `{args.dataset}` "
             f"(seed {args.seed}, limits off), {median['tenants']} tenants. The sandbox, PostgreSQL and "
             f"the sync share this machine's cores.{gate}", ""]
    for backend, result in results.items():
        rows = result["rows_total"]
        calls = sum(s["calls"] for s in result["streams"].values())
        minimum = sum(s["minimum_calls"] for s in result["streams"].values())
        which = (f" (the median of {len(pg_runs)} runs by COPY ratio)" if backend == "PostgreSQL" and len(pg_runs) > 1
                 else "")
        lines += [f"### {backend}", "",
                  f"- {rows:,} rows in {result['seconds']:.1f} s: "
                  f"**{rows / result['seconds']:,.0f} rows/s** end to end{which}",
                  f"- tenants synced at once: {result['workers']} (each tenant's extract and load in a "
                  "process of its own, as `xero_sync`'s mapped tasks)",
                  f"- peak memory of a tenant's process: **{result['peak_rss_mb']:.0f} MB**",
                  f"- API calls: {calls:,} (minimum Xero allows: {minimum:,})",
                  _project_share(result),
                  _ledger_share(result),
                  "- equal to the sandbox's truth: " + ("yes" if not result["differences"] else
                                                        "NO: " + "; ".join(result["differences"][:5])),
                  "", "| stream | records | rows loaded | seconds (all tenants) | rows/s | API calls | minimum |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for name, s in result["streams"].items():
            rate = s["rows"] / s["seconds"] if s["seconds"] else 0
            lines.append(f"| {name} | {s['records']:,} | {s['rows']:,} | {s['seconds']:.1f} | {rate:,.0f} | "
                         f"{s['calls']:,} | {s['minimum_calls']:,} |")
        lines += ["", "Peak memory against the size of the tenant (each in a process of its own):", "",
                  "| tenant | rows loaded | peak memory |", "|---|---:|---:|"]
        for tenant in sorted(result["per_tenant"], key=lambda t: -t["rows"]):
            lines.append(f"| {tenant['tenant']} | {tenant['rows']:,} | {tenant['peak_rss_mb']:.0f} MB |")
        lines.append("")
    lines += ["### Against PostgreSQL COPY", "",
              "After each run, the loaded rows are dumped, the tables emptied (indexes, constraints and "
              "write-ahead logging kept) and the rows `COPY`'d back in, one committed `COPY` per table. "
              "The ratio is the sync's end-to-end rate (API, parsing, checks, upsert) over that rate.", "",
              "| run | sync seconds | sync rows/s | COPY seconds | COPY rows/s | ratio | equal to the truth |",
              "|---:|---:|---:|---:|---:|---:|---|"]
    for number, run in enumerate(pg_runs, start=1):
        lines.append(f"| {number} | {run['seconds']:.1f} | {run['rows_total'] / run['seconds']:,.0f} | "
                     f"{run['copy_seconds']:.1f} | {run['copy_rows'] / run['copy_seconds']:,.0f} | "
                     f"{100 * run['ratio']:.0f}% | {'yes' if not run['differences'] else 'NO'} |")
    ratios = sorted(100 * r["ratio"] for r in pg_runs)
    lines += ["", f"Median: **{100 * median['ratio']:.0f}% of the COPY rate** (target ≥ 30%); "
                  f"lowest {ratios[0]:.0f}%, highest {ratios[-1]:.0f}%.", ""]
    write_section(HEADING_DERIVED if args.app_without_journals else HEADING, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
