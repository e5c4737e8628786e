"""A Celery worker lost whole (``kill -9``) while tenants' loads are inside their transactions.

The stack of ``benchmarks.scale_50_tenants`` runs with docker-compose.yaml's heartbeat and retry
timings. To make "mid-load" certain rather than lucky, IntoAEC's database holds a lock on
``invoice_lines`` from the start: every tenant's load commits its earlier streams, writes its
invoices and then waits, inside the invoices transaction, for the lines. Once a load waits,
the worker's process group (the worker, its pool and every task process) is killed with
SIGKILL, the lock is let go, and a new worker starts under the same name, as compose's
``restart: always`` would start it. Airflow then has to notice the tasks whose heartbeats
stopped, fail them and retry them; the run must still end equal to the sandbox's truth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
HEARTBEAT_PREFIX = "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT"
# The issue this answers asks for a lost worker's tasks to be retried within 2 minutes.
RETRY_WITHIN_SECONDS = 120


def compose_worker_timings(compose: Path = REPO / "docker-compose.yaml",
                           env_example: Path = REPO / ".env.example") -> dict[str, str]:
    """The heartbeat and retry settings the compose deployment gives every Airflow container."""
    common = yaml.safe_load(compose.read_text())["x-airflow-common"]["environment"]
    example = dict(line.split("=", 1) for line in env_example.read_text().splitlines()
                   if "=" in line and not line.lstrip().startswith("#"))
    timings: dict[str, str] = {}
    for name, value in common.items():
        if not (name.startswith(HEARTBEAT_PREFIX) or name == "INTOAEC_RETRY_DELAY_SECONDS") or value is None:
            continue
        # ${NAME:-default}: .env's value when .env (from .env.example) sets it, else the default.
        match = re.fullmatch(r"\$\{(\w+):-([^}]*)\}", str(value))
        timings[name] = (example.get(match.group(1)) or match.group(2)) if match else str(value)
    return timings


@dataclass
class WorkerLoss:
    """Called once a second while the run lasts; kills the worker once a load waits mid-transaction."""

    intoaec_url: str
    kill_and_restart_worker: Any  # () -> None
    log: Any = print
    killed_at: datetime | None = None
    loads_waiting: list[dict[str, Any]] = field(default_factory=list)
    _lock: Any = None
    _watch: Any = None

    def tick(self) -> None:
        if self.killed_at is not None:
            return
        if self._lock is None:
            self._lock = self._connect()
            # Opens the transaction that holds the lock until the worker is gone.
            self._lock.cursor().execute("LOCK TABLE invoice_lines IN SHARE ROW EXCLUSIVE MODE")
            # pg_stat_activity is a snapshot per transaction: the watch needs a fresh one per look.
            self._watch = self._connect()
            self._watch.autocommit = True
            return
        with self._watch.cursor() as cur:
            cur.execute("SELECT pid, xact_start, query FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND query ILIKE '%%invoice_lines%%'")
            waiting = cur.fetchall()
        if not waiting:
            return
        self.loads_waiting = [{"pid": pid, "transaction_open_s": round((datetime.now(UTC) - start).total_seconds(), 1),
                               "statement": query[:80]} for pid, start, query in waiting]
        self.log(f"{len(waiting)} load(s) waiting inside their invoices transaction: killing the Celery worker "
                 "(SIGKILL to its process group) and starting a new one")
        self.killed_at = datetime.now(UTC)
        self.kill_and_restart_worker()
        self._release()

    def _connect(self):
        import psycopg2
        from sqlalchemy.engine import make_url

        url = make_url(self.intoaec_url)
        return psycopg2.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                                dbname=url.database)

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.rollback()
            self._lock.close()
            self._watch.close()
            self._lock = self._watch = None

    def close(self) -> None:
        self._release()

    def outcome(self, task_rows: list[dict[str, Any]]) -> dict[str, Any]:
        """For each task try the kill ended: when Airflow failed it and when its retry started."""
        if self.killed_at is None:
            return {"killed": False}
        killed_at = self.killed_at
        tries: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for row in task_rows:
            tries.setdefault((row["task_id"], row["map_index"]), []).append(row)
        lost = []
        for (task_id, map_index), rows in sorted(tries.items()):
            rows.sort(key=lambda r: r["try_number"])
            for earlier, later in zip(rows, rows[1:], strict=False):
                if earlier["start_date"] and earlier["start_date"] < killed_at and (
                        earlier["end_date"] is None or earlier["end_date"] >= killed_at):
                    lost.append({
                        "task": task_id, "map_index": map_index, "label": later["rendered_map_index"],
                        "try": earlier["try_number"], "ended_as": earlier["state"],
                        "failed_after_s": _after(killed_at, earlier["end_date"]),
                        "retry_started_after_s": _after(killed_at, later["start_date"]),
                        "retry_state": later["state"]})
        retried = [t["retry_started_after_s"] for t in lost if t["retry_started_after_s"] is not None]
        return {"killed": True, "killed_at": killed_at.isoformat(), "loads_waiting": self.loads_waiting,
                "tries_lost": lost, "slowest_retry_s": max(retried, default=None)}


def _after(start: datetime, moment: datetime | None) -> float | None:
    return round((moment - start).total_seconds(), 1) if moment else None


def worker_recovered(loss: dict[str, Any]) -> bool:
    """The worker was killed mid-load, and every try it ended was retried within the target."""
    lost = loss.get("tries_lost") or []
    return bool(loss.get("killed") and loss.get("loads_waiting") and lost
                and any(t["task"] == "tenant.load" for t in lost)
                and all(t["retry_started_after_s"] is not None and t["retry_started_after_s"] <= RETRY_WITHIN_SECONDS
                        for t in lost))


HEADING = "A Celery worker lost mid-load"


def markdown(result) -> str:
    loss, c = result.worker_loss, result.config
    timings = compose_worker_timings()
    lost = loss.get("tries_lost", [])
    lines = [
        f"Run {result.started_at}: `.venv/bin/python -m benchmarks.worker_loss --write-docs`; sandbox "
        f"`{c['dataset']}` (seed {c['seed']}), {c['tenants']} tenants, the stack of \"50 tenants under the "
        f"scheduler\" (one Celery worker, concurrency {c['worker_concurrency']}; pool `xero_api` = "
        f"{c['pool_slots']}) with docker-compose.yaml's timings: "
        + ", ".join(f"`{k}={v}`" for k, v in sorted(timings.items())) + ".",
        "",
        f"- {len(loss.get('loads_waiting', []))} load(s) were inside their invoices transaction (invoices written, "
        "waiting on a lock the benchmark held on `invoice_lines`) when the worker's process group got SIGKILL; "
        "a new worker started at once under the same name",
        f"- task tries the kill ended: {len(lost)} "
        f"({', '.join(sorted({t['task'] for t in lost}))}); each was failed by the scheduler after "
        f"{_span([t['failed_after_s'] for t in lost])} s without a heartbeat and retried "
        f"{_span([t['retry_started_after_s'] for t in lost])} s after the kill "
        f"(target: within {RETRY_WITHIN_SECONDS} s): **{'met' if worker_recovered(loss) else 'NOT met'}**",
        f"- run state: **{result.run['state']}**; wall time {result.wall_seconds:.0f} s; equal to the sandbox's "
        f"truth for {result.tenants_synced} of {c['tenants']} tenants: "
        f"**{'yes' if not result.differences else 'NO'}**; 429s: "
        f"{sum(result.stats['rate_limited'].values()) if result.stats['rate_limited'] else 0}",
    ]
    return "\n".join(lines)


def _span(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "-"
    low, high = f"{min(known):.0f}", f"{max(known):.0f}"
    return low if low == high else f"{low}–{high}"


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import sys

    from benchmarks.scale_50_tenants import ScaleConfig, run_scale

    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker_loss", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=5)
    parser.add_argument("--dataset", default="many")
    parser.add_argument("--pool-slots", type=int, default=2)
    parser.add_argument("--worker-concurrency", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--write-docs", action="store_true", help=f"rewrite the '{HEADING}' section of "
                        "docs/benchmarks.md")
    parser.add_argument("--json", type=Path, help="also write the raw result here")
    args = parser.parse_args(argv)
    result = run_scale(ScaleConfig(tenants=args.tenants, dataset=args.dataset, pool_slots=args.pool_slots,
                                   worker_concurrency=args.worker_concurrency, timeout=args.timeout,
                                   lose_worker=True),
                       log=lambda message: print(f"[worker-loss] {message}", flush=True))
    text = markdown(result)
    print(text)
    if args.json:
        from dataclasses import asdict

        args.json.write_text(json.dumps(asdict(result), indent=2, default=str))
    if args.write_docs and result.ok:
        from benchmarks.report import write_section

        write_section(HEADING, text)
    elif args.write_docs:
        print("not writing docs/benchmarks.md: the run failed its checks", file=sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
