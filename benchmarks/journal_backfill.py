"""The journal backfill's use of Xero's daily quota, day after simulated day, beside the sync.

The sandbox's ``large`` organisation (223,481 journals, 619,527 lines) on Xero's Starter-tier
limits (1,000 calls a day) takes several days at the default 60% share, so full days can be
measured. Each simulated day is what Airflow would do in one of the tenant's day windows: the
hourly sync runs, the backfill's pass starts (the sync runs once more beside it), the pass stops
at the sync's reserve, and the sync's remaining runs of the day come out of that reserve. Then
the sandbox clock moves to the next day window.

Minutes are compressed: the sandbox allows ``--minute-limit`` calls a minute (600, ten times
Xero's 60) and both clients pace to it as they would to 60, so a day's share goes through in a
minute or two of wall time instead of 17; the day arithmetic is Xero's.

Calls are the sandbox's own count (server side, quota-consuming answers), split between the
two clients; 429s are every refused answer either client met.

    .venv/bin/python -m benchmarks.journal_backfill [--day-limit 1000] [--share 0.6]
        [--minute-limit 600] [--syncs-per-day 24] [--db postgresql|sqlite] [--no-docs]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.pg import drop_database, fresh_database
from benchmarks.report import write_section

HEADING = "Journal backfill"
CLOCK_START = "2026-11-02T12:00:00Z"  # mid-way through the first tenant's day window


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.journal_backfill", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="large")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--day-limit", type=int, default=1000)
    parser.add_argument("--share", type=float, default=0.6)
    parser.add_argument("--minute-limit", type=int, default=600)
    parser.add_argument("--syncs-per-day", type=int, default=24)
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--max-days", type=int, default=30)
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as scratch, _database(args.db, scratch) as url:
        result = run(args, url, Path(scratch))
    text = render(args, result)
    print(text)
    if not args.no_docs:
        write_section(HEADING, text)
        print(f"\nwrote the \"{HEADING}\" section of docs/benchmarks.md")
    return 0 if result["equal"] and result["sync_failures"] == 0 else 1


class _database:
    def __init__(self, kind: str, scratch: str):
        self.kind, self.scratch, self.name = kind, scratch, f"bench_backfill_{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.scratch}/intoaec.db"
        return fresh_database(self.name)

    def __exit__(self, *exc) -> None:
        if self.kind == "postgresql":
            drop_database(self.name)


def run(args, url: str, scratch: Path) -> dict:
    from cryptography.fernet import Fernet
    from intoaec_xero import db, report
    from intoaec_xero.backfill.journals import COMPLETE, backfill_client, run_pass
    from intoaec_xero.backfill.quota import QuotaShare
    from intoaec_xero.client import XeroClient
    from intoaec_xero.oauth import finish_authorization, start_authorization
    from intoaec_xero.pipeline import run_sync
    from intoaec_xero.rawstore import RawStore
    from intoaec_xero.schema import sync_runs
    from intoaec_xero.settings import XeroSettings
    from intoaec_xero.tokens import TokenCipher, TokenStore
    from sqlalchemy import func, select
    from xero_sandbox.testing import running_sandbox, sign_in_and_consent

    engine = db.create_db_engine(url)
    db.upgrade(engine)
    raw = RawStore(scratch / "raw")
    sandbox_args = ["--day-limit", str(args.day_limit), "--minute-limit", str(args.minute_limit),
                    "--clock-start", CLOCK_START]
    quota = QuotaShare(share=args.share, day_limit=args.day_limit, minute_limit=args.minute_limit)
    days: list[dict] = []
    sync_failures = 0
    started = time.perf_counter()
    with running_sandbox(dataset=args.dataset, seed=args.seed, extra_args=sandbox_args) as sandbox:
        tenant = {"tenant_id": sandbox.health()["tenants"][0]["tenantId"],
                  "tenant_name": sandbox.health()["tenants"][0]["tenantName"]}
        settings = XeroSettings.for_single_host(sandbox.base_url, client_id="sandbox-client",
                                                client_secret="sandbox-secret", calls_per_minute=args.minute_limit,
                                                tenant_filter=(tenant["tenant_id"],))
        store = TokenStore(engine, settings.connection_key, TokenCipher(Fernet.generate_key().decode()))
        request = start_authorization(settings, "http://127.0.0.1:9/cb")
        store.save(finish_authorization(settings, request, sign_in_and_consent(request.url)))

        def sync(run_id: str) -> tuple[int, int]:
            """One xero_sync run; its calls on the tenant's quota (GET /connections is not) and its 429s."""
            nonlocal sync_failures
            summary = run_sync(XeroClient(settings, store), settings, engine, raw, run_id)
            sync_failures += len(summary.failures)
            with engine.connect() as conn:
                calls, limited = conn.execute(
                    select(func.sum(sync_runs.c.api_calls), func.sum(sync_runs.c.rate_limited))
                    .where(sync_runs.c.run_id == run_id)).one()
            return int(calls or 0), int(limited or 0)

        def refresh_tokens() -> None:
            """Access tokens expire on the sandbox's clock, which jumps a day at a time."""
            client = XeroClient(settings, store)
            client.current_tokens()
            client.refresh_tokens(force=True)

        def walk(client, day: int, outcome: dict) -> None:
            outcome["pass"] = run_pass(client, engine, raw, f"backfill-d{day}", tenant, quota)

        sandbox.reset_stats()
        # The team starts the backfill when it connects a large organisation: its plan (finding
        # the ledger's end) starts the sync's journal position there, so the sync's first run
        # does not walk 220,000 journals itself.
        run_pass(backfill_client(settings, store, quota), engine, raw, "backfill-plan", tenant, quota, max_calls=0)
        for day in range(1, args.max_days + 1):
            if day > 1:
                sandbox.reset_stats()
                refresh_tokens()
            sandbox.activity(invoices=20, payments=20, tenant_id=tenant["tenant_id"])
            sync_calls, sync_429 = sync(f"sync-d{day}-00")
            client = backfill_client(settings, store, quota)
            outcome: dict = {}
            pass_started = time.perf_counter()
            walker = threading.Thread(target=walk, args=(client, day, outcome))
            walker.start()
            calls, limited = sync(f"sync-d{day}-01")  # the hourly sync that falls inside the pass
            walker.join()
            pass_seconds = time.perf_counter() - pass_started
            sync_calls, sync_429 = sync_calls + calls, sync_429 + limited
            for hour in range(2, args.syncs_per_day):
                calls, limited = sync(f"sync-d{day}-{hour:02d}")
                sync_calls, sync_429 = sync_calls + calls, sync_429 + limited
            stats = sandbox.stats()
            total = stats["calls_by_tenant"].get(tenant["tenant_id"], 0)
            done = outcome["pass"]
            backfill_server = total - (sync_calls - sync_429)  # includes day 1's planning calls
            days.append({
                "day": day, "status": done.status, "backfill_calls": backfill_server,
                "backfill_client_calls": client.stats.calls, "backfill_429": client.stats.rate_limited,
                "sync_calls": sync_calls - sync_429, "sync_429": sync_429, "total": total,
                "day_429": stats["rate_limited"].get("day", 0), "journals": done.journals, "lines": done.lines,
                "offset": done.offset, "target": done.target, "pass_seconds": pass_seconds,
                "refused": dict(stats["rate_limited"]),
            })
            print(f"day {day}: backfill {backfill_server} calls ({backfill_server / quota.calls_per_day:.0%} of "
                  f"{quota.calls_per_day}), sync {sync_calls - sync_429}, total {total}/{args.day_limit}, "
                  f"429s {dict(stats['rate_limited'])}, offset {done.offset}/{done.target}, {done.status}",
                  flush=True)
            if done.status == COMPLETE:
                break
            sandbox.advance_clock(86400)
            # The backfill's own gate waits 24 h of wall clock or a sync that saw the reset: the
            # hourly sync above already did, so the next day's pass may start.
        # Truth now: the daily activity posted journals after the target, which the sync read.
        truth = sandbox.truth()["tenants"][tenant["tenant_id"]]
        equal = report.compare_with_truth(engine, {"tenants": {tenant["tenant_id"]: truth}},
                                          {"journals", "journal_lines"}) == []
    return {"days": days, "equal": equal, "sync_failures": sync_failures, "tenant": tenant, "quota": quota,
            "journals": truth["journals"]["count"], "lines": truth["journal_lines"]["count"],
            "seconds": time.perf_counter() - started, "db": args.db}


def render(args, result: dict) -> str:
    quota, days = result["quota"], result["days"]
    # Day 1 shares its window with the sync's first full read of the organisation; the last day
    # ends the ledger. The days between are the steady state.
    steady = [d for d in days[1:] if d["status"] != "complete"]
    used = [d["backfill_calls"] / quota.calls_per_day for d in steady]
    first = days[0]
    backfill_calls = sum(d["backfill_client_calls"] for d in days)
    refused = sum(d["backfill_429"] for d in days)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Run {now}: `.venv/bin/python -m benchmarks.journal_backfill`, sandbox `{args.dataset}` (seed {args.seed}), "
        f"{result['tenant']['tenant_name']}: {result['journals']:,} journals / {result['lines']:,} lines, into "
        f"{'PostgreSQL' if result['db'] == 'postgresql' else 'SQLite'}. Xero limits of the Starter tier "
        f"({args.day_limit:,} calls/day; minutes compressed tenfold: {args.minute_limit} calls/min), "
        f"share {quota.share:.0%} = **{quota.calls_per_day:,} calls/day** for the backfill, "
        f"{quota.day_reserve:,} reserved for `xero_sync`, which ran {args.syncs_per_day}× per simulated day "
        "beside it (all streams; the first run a full read).",
        "",
        f"- simulated days: **{len(days)}** (the last one finishes the ledger)",
        (f"- calls/day used by the backfill on full days (days 2–{len(days) - 1}): **{min(used):.1%}–{max(used):.1%} "
         f"of the share** (mean {sum(used) / len(used):.1%}; target ≥ 90%)") if used
        else "- no full day between the first and the last",
        f"- day 1: {first['backfill_calls']:,} calls = "
        f"{first['backfill_calls'] / quota.calls_per_day:.0%} of the share "
        f"(including finding the ledger's end), because the sync's first full read of the organisation "
        f"({first['sync_calls']:,} calls that day) came first out of the same day window",
        f"- 429 answers to the backfill: **{refused} of {backfill_calls:,} calls "
        f"({refused / max(1, backfill_calls):.2%})** "
        f"(target < 1%); day-limit 429s to anyone: {sum(d['day_429'] for d in days)}",
        f"- `xero_sync` runs: {len(days) * args.syncs_per_day}, failed: {result['sync_failures']}; "
        f"its calls per day {min(d['sync_calls'] for d in days)}–{max(d['sync_calls'] for d in days)} "
        f"(reserve {quota.day_reserve:,}); 429s it met: {sum(d['sync_429'] for d in days)}",
        f"- day total never above the limit: {'yes' if all(d['total'] <= args.day_limit for d in days) else 'NO'} "
        f"(max {max(d['total'] for d in days):,} of {args.day_limit:,})",
        f"- ledger equal to the sandbox's truth (counts, net by account code): {'yes' if result['equal'] else 'NO'}",
        f"- wall time {result['seconds'] / 60:.1f} min; backfill passes loaded "
        f"{sum(d['journals'] for d in days) / max(1e-9, sum(d['pass_seconds'] for d in days)):,.0f} journals/s",
        "",
        "| day | backfill calls | of share | sync calls | day total | 429s (backfill) | journals loaded "
        "| offset / target |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for d in days:
        lines.append(f"| {d['day']} | {d['backfill_calls']:,} | {d['backfill_calls'] / quota.calls_per_day:.0%} | "
                     f"{d['sync_calls']:,} | {d['total']:,} | {d['backfill_429']} | {d['journals']:,} | "
                     f"{d['offset']:,} / {d['target']:,} |")
    lines += ["", "The share is a ceiling, not a quota the backfill is owed: it stops when "
              "`X-DayLimit-Remaining` reaches the sync's reserve, so calls the sync made earlier in the day "
              "window come out of the backfill's part, and the sync always has the whole reserve left."]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
