"""N firms connected through the connect API, then ``xero_sync`` and ``xero_keepalive`` over their grants.

Each firm connects its own Xero the way IntoAEC's web app connects it: a connect session from
the connect API (``/xero/api/v1``, served by the plugin in the Airflow API server, bearer token =
the ``intoaec_app`` connection's password), the firm's accountant at Xero's sign-in (the
sandbox's ``firm{i+1}@intoaec.test``, who sees only organisation i), and the public callback,
which stores the grant as the token-store row ``firm:<firm id>``. The components are the ones
``benchmarks.scale_50_tenants`` starts (api-server, scheduler, dag-processor, triggerer and one
Celery worker on the local Redis, fresh PostgreSQL metadata and IntoAEC databases), with the
connections stored by ``airflow connections add`` as the data team stores them and
``XERO_SYNC_SCHEDULE=none`` (the DAG is created paused; every run here is triggered).

Then, each measured on its own (sandbox stats reset before each):

1. the onboarding run: ``xero_sync`` over every firm's organisation, compared with the sandbox's
   truth afterwards;
2. an hourly run with no changes in Xero: wall time (queued to finished), task instances and
   task-seconds per tenant, API calls per tenant, 429s, token refreshes. The target: 15 minutes,
   no 429;
3. ``xero_keepalive`` over the N firm grants (``--skip-keepalive`` leaves it out).

    .venv/bin/python -m benchmarks.scale_firms [--firms 500] [--write-docs] [--json F] [--skip-keepalive]
        [--pool-slots 4] [--worker-concurrency 6] [--connect-threads 4] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from intoaec_xero.quality.docs import KEEP_RESULTS

from benchmarks.scale_50_tenants import (
    CLIENT_ID,
    CLIENT_SECRET,
    REDIS_URL,
    REPO,
    ScaleConfig,
    StatsSampler,
    _fmt,
    airflow_components,
    airflow_env,
    fresh_databases,
    peak_in_window,
    redis_reachable,
    tail_logs,
)

RETURN_URL = "http://127.0.0.1:9/xero/return"
RETURN_PREFIX = "http://127.0.0.1:9/"
TARGET_SECONDS = 15 * 60  # the hourly run must end well inside its hour
SYNC_DAG, KEEPALIVE_DAG = "xero_sync", "xero_keepalive"


def heading(firms: int) -> str:
    return f"{firms} firms through the connect API"


@dataclass
class FirmsConfig:
    firms: int = 500
    seed: int = 1
    pool_slots: int = 4
    worker_concurrency: int = 6
    connect_threads: int = 4
    keepalive: bool = True
    # INTOAEC_SYNC_BATCH_SIZE for the components; 0 leaves the variable unset (the package's default).
    batch_size: int = 0
    timeout: float = 3600.0
    sample_every: float = 0.0  # 0: every 0.5 s up to 100 firms, every 2 s above


@dataclass
class FirmsResult:
    config: dict[str, Any]
    started_at: str
    connects: dict[str, Any] = field(default_factory=dict)
    onboarding: dict[str, Any] = field(default_factory=dict)
    hourly: dict[str, Any] = field(default_factory=dict)
    keepalive: dict[str, Any] = field(default_factory=dict)
    load_average: dict[str, Any] = field(default_factory=dict)
    logs_dir: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        """The checks (every firm connected, runs succeeded, data equal to the truth), not the target."""
        n = self.config["firms"]
        checks = [not self.error, self.connects.get("connected") == n, self.connects.get("verified") == n,
                  self.onboarding.get("state") == "success", not self.onboarding.get("differences"),
                  self.onboarding.get("tenants_synced") == n, self.hourly.get("state") == "success"]
        if self.config.get("keepalive"):
            checks.append(self.keepalive.get("state") == "success")
        return all(checks)

    @property
    def target_met(self) -> bool:
        return (self.hourly.get("state") == "success" and self.hourly.get("wall_seconds", 1e9) <= TARGET_SECONDS
                and self.hourly.get("rate_limited_total", 1) == 0)


# ----------------------------------------------------------------------------- the Airflow side

class Airflow:
    """The running components as a client sees them: CLI, REST API, metadata database."""

    def __init__(self, env: dict[str, str], api_port: int, username: str, password: str, metadata_url: str,
                 processes, logs: Path):
        self.env, self.base_url = env, f"http://127.0.0.1:{api_port}"
        self.username, self.password = username, password
        self.metadata_url, self.processes, self.logs = metadata_url, processes, logs
        self._token: str | None = None
        from sqlalchemy import create_engine

        self.metadata = create_engine(metadata_url, pool_pre_ping=True)

    def close(self) -> None:
        self.metadata.dispose()

    def check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"airflow {process.args[1]} exited ({process.returncode}):\n{tail_logs(self.logs)}")

    def scalar(self, sql: str, **params) -> Any:
        from sqlalchemy import text

        try:
            with self.metadata.connect() as conn:
                return conn.execute(text(sql), params).scalar()
        except Exception:  # noqa: BLE001 - tables appear once the components have migrated and started
            return None

    def wait_until(self, what: str, probe, timeout: float, log, every: float = 1.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            value = probe()
            if value:
                return value
            time.sleep(every)
        raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}:\n{tail_logs(self.logs)}")

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            answer = requests.post(f"{self.base_url}/auth/token", timeout=30,
                                   json={"username": self.username, "password": self.password})
            answer.raise_for_status()
            self._token = answer.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def unpause(self, dag_id: str) -> None:
        answer = requests.patch(f"{self.base_url}/api/v2/dags/{dag_id}", json={"is_paused": False},
                                headers=self._headers(), timeout=30)
        if answer.status_code != 200:
            raise RuntimeError(f"unpausing {dag_id} answered {answer.status_code}: {answer.text[:500]}")

    def trigger(self, dag_id: str, run_id: str) -> str:
        answer = requests.post(f"{self.base_url}/api/v2/dags/{dag_id}/dagRuns", headers=self._headers(), timeout=30,
                               json={"dag_run_id": run_id, "logical_date": None})
        if answer.status_code not in (200, 201):
            raise RuntimeError(f"triggering {dag_id} answered {answer.status_code}: {answer.text[:500]}")
        return answer.json()["dag_run_id"]

    def run(self, dag_id: str, run_id: str) -> dict[str, Any] | None:
        from sqlalchemy import text

        with self.metadata.connect() as conn:
            row = conn.execute(text(
                "SELECT run_id, state, run_type, queued_at, start_date, end_date FROM dag_run "
                "WHERE dag_id = :d AND run_id = :r"), {"d": dag_id, "r": run_id}).mappings().first()
        return dict(row) if row else None

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float, log) -> dict[str, Any]:
        from sqlalchemy import text

        deadline, last_note = time.monotonic() + timeout, time.monotonic()
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                row = self.run(dag_id, run_id)
            except Exception:  # noqa: BLE001 - a passing hiccup of the metadata database
                row = None
            if row and row["state"] in ("success", "failed"):
                return row
            if time.monotonic() - last_note > 30:
                last_note = time.monotonic()
                with self.metadata.connect() as conn:
                    states = dict(conn.execute(text(
                        "SELECT coalesce(state, 'none'), count(*) FROM task_instance WHERE dag_id = :d AND run_id = :r "
                        "GROUP BY 1"), {"d": dag_id, "r": run_id}).all())
                log(f"  ... {dag_id} {row['state'] if row else 'not created yet'}; task instances: "
                    + (", ".join(f"{v} {k}" for k, v in sorted(states.items())) or "none yet"))
            time.sleep(1)
        raise RuntimeError(f"{dag_id} run {run_id} not finished after {timeout:.0f} s:\n{tail_logs(self.logs)}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every try of every task: the current one and, for retried tasks, the earlier ones."""
        from sqlalchemy import text

        columns = "task_id, map_index, state, try_number, start_date, end_date, queued_dttm"
        with self.metadata.connect() as conn:
            rows = [dict(r) for r in conn.execute(text(
                f"SELECT {columns} FROM task_instance WHERE dag_id = :d AND run_id = :r"),
                {"d": dag_id, "r": run_id}).mappings()]
            rows += [dict(r) for r in conn.execute(text(
                f"SELECT {columns} FROM task_instance_history WHERE dag_id = :d AND run_id = :r"),
                {"d": dag_id, "r": run_id}).mappings()]
        return rows


def _forget_queue(queue: str) -> None:
    """Drop this run's own Celery queue (and kombu's binding for it) from the shared Redis."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=5).delete(queue, f"_kombu.binding.{queue}")
    except Exception:  # noqa: BLE001 - a leftover key of a unique name harms nothing
        pass


def _airflow_cli(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    airflow = str(Path(sys.executable).with_name("airflow"))
    done = subprocess.run([airflow, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if done.returncode != 0:
        shown = [a if not a.startswith("{") else "<json>" for a in args]  # the token is in the JSON
        raise RuntimeError(f"airflow {' '.join(shown)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done.stdout


def store_connections(env: dict[str, str], *, sandbox_url: str, intoaec_url: str, app_token: str) -> None:
    """As the data team stores them: ``airflow connections add`` into the metadata database."""
    connections = {
        "xero_default": {"conn_type": "xero", "login": CLIENT_ID, "password": CLIENT_SECRET,
                         "extra": {"api_base_url": f"{sandbox_url}/api.xro/2.0", "identity_base_url": sandbox_url,
                                   "sandbox": True}},
        "intoaec_db": {"conn_type": "generic", "extra": {"sqlalchemy_url": intoaec_url}},
        "intoaec_app": {"conn_type": "generic", "password": app_token,
                        "extra": {"return_url_prefixes": [RETURN_PREFIX]}},
    }
    for conn_id, conn in connections.items():
        _airflow_cli(env, "connections", "add", conn_id, "--conn-json", json.dumps(conn))


# ----------------------------------------------------------------------------- connecting firms

def firm_id_of(index: int) -> str:
    return f"firm-{index:03d}"


def connect_firm(api_url: str, token: str, index: int) -> dict[str, Any]:
    """One firm's whole sign-in over HTTP: session, Xero's sign-in and consent, the callback."""
    from xero_sandbox.testing import firm_user, sign_in_and_consent

    firm_id = firm_id_of(index)
    outcome: dict[str, Any] = {"firm_id": firm_id, "index": index, "status": "error"}
    t0 = time.monotonic()
    try:
        started = requests.post(f"{api_url}/firms/{firm_id}/connect-sessions", json={"return_url": RETURN_URL},
                                headers={"Authorization": f"Bearer {token}"}, timeout=60)
        t1 = time.monotonic()
        if started.status_code != 201:
            outcome["error"] = f"connect-sessions answered {started.status_code}: {started.text[:300]}"
            return outcome
        email, password = firm_user(index)
        callback = sign_in_and_consent(started.json()["authorize_url"], email=email, password=password, timeout=60)
        t2 = time.monotonic()
        back = requests.get(callback, allow_redirects=False, timeout=120)
        t3 = time.monotonic()
        outcome.update(session_s=t1 - t0, sign_in_s=t2 - t1, callback_s=t3 - t2)
        location = back.headers.get("location", "")
        query = parse_qs(urlsplit(location).query)
        if back.status_code != 303 or not location.startswith(RETURN_URL + "?"):
            outcome["error"] = f"callback answered {back.status_code} to {location[:200]!r}: {back.text[:300]}"
        elif query.get("status") != ["connected"]:
            outcome["error"] = f"callback returned {query}"
        else:
            outcome["status"] = "connected"
            outcome["organisations"] = int((query.get("organisations") or ["0"])[0])
    except Exception as error:  # noqa: BLE001 - one firm's failure is reported, the others go on
        outcome["error"] = f"{type(error).__name__}: {error}"
    finally:
        outcome["seconds"] = time.monotonic() - t0
    return outcome


def verify_firm(api_url: str, token: str, index: int, tenant: dict[str, str]) -> str | None:
    """None when the connect API reports the firm's one organisation Connected; else what it says."""
    firm_id = firm_id_of(index)
    try:
        answer = requests.get(f"{api_url}/firms/{firm_id}", headers={"Authorization": f"Bearer {token}"}, timeout=60)
        if answer.status_code != 200:
            return f"{firm_id}: GET answered {answer.status_code}: {answer.text[:200]}"
        orgs = answer.json()["organisations"]
        if [(o["tenant_id"], o["status"]) for o in orgs] != [(tenant["tenant_id"], "Connected")]:
            return f"{firm_id}: {[(o['tenant_name'], o['status']) for o in orgs]}"
    except Exception as error:  # noqa: BLE001
        return f"{firm_id}: {type(error).__name__}: {error}"
    return None


def connect_all(api_url: str, token: str, tenants: list[dict[str, str]], threads: int, log) -> dict[str, Any]:
    n = len(tenants)
    done: list[dict[str, Any]] = []
    lock = threading.Lock()
    t0 = time.monotonic()

    def one(index: int) -> dict[str, Any]:
        outcome = connect_firm(api_url, token, index)
        with lock:
            done.append(outcome)
            if len(done) % max(1, n // 10) == 0 or len(done) == n:
                ok = sum(1 for o in done if o["status"] == "connected")
                log(f"  connected {ok} of {len(done)} firms tried ({time.monotonic() - t0:.0f} s)")
        return outcome

    with ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = list(pool.map(one, range(n)))
    total = time.monotonic() - t0
    v0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        problems = [p for p in pool.map(lambda i: verify_firm(api_url, token, i, tenants[i]), range(n)) if p]
    verify_seconds = time.monotonic() - v0
    connected = [o for o in outcomes if o["status"] == "connected"]
    failures = [f"{o['firm_id']}: {o.get('error')}" for o in outcomes if o["status"] != "connected"]

    def spread(key: str) -> list[float]:
        return [round(o[key], 3) for o in connected if key in o]

    tenth = max(1, n // 10)
    first = [o["callback_s"] for o in outcomes[:tenth] if "callback_s" in o]
    last = [o["callback_s"] for o in outcomes[-tenth:] if "callback_s" in o]

    return {
        "firms": n, "threads": threads, "connected": len(connected), "verified": n - len(problems),
        "total_seconds": round(total, 1), "per_minute": round(len(connected) / (total / 60), 1) if total else None,
        "seconds": _quantiles(spread("seconds")), "session_seconds": _quantiles(spread("session_s")),
        "sign_in_seconds": _quantiles(spread("sign_in_s")), "callback_seconds": _quantiles(spread("callback_s")),
        "verify_seconds": round(verify_seconds, 1), "failures": failures[:20], "verify_problems": problems[:20],
        # The same step for the first and the last tenth of the firms: does a connect cost more the
        # more firms connected before it?
        "callback_median_first_tenth": round(statistics.median(first), 3) if first else None,
        "callback_median_last_tenth": round(statistics.median(last), 3) if last else None,
    }


def _quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"min": None, "median": None, "p95": None, "max": None}
    ordered = sorted(values)
    return {"min": round(ordered[0], 3), "median": round(statistics.median(ordered), 3),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3), "max": round(ordered[-1], 3)}


# ----------------------------------------------------------------------------- one measured run

def _seconds(a: datetime | None, b: datetime | None) -> float | None:
    return (b - a).total_seconds() if a and b else None


def measure_run(airflow: Airflow, sandbox, dag_id: str, label: str, tenants: list[dict[str, str]], *,
                timeout: float, sample_every: float, log, data_dir: Path | None = None) -> dict[str, Any]:
    """Trigger ``dag_id`` with the sandbox's stats reset, wait for it, and account for what it did."""
    sandbox.reset_stats()
    sampler = StatsSampler(sandbox.base_url, sample_every)
    sampler.start()
    load_before = os.getloadavg()
    run_id = f"{label}__{datetime.now(UTC):%Y%m%dT%H%M%S}"
    try:
        airflow.trigger(dag_id, run_id)
        log(f"{dag_id}: triggered {run_id}")
        run = airflow.wait_for_run(dag_id, run_id, timeout, log)
    finally:
        sampler.stop()
    load_after = os.getloadavg()
    stats = sandbox.stats()
    rows = airflow.task_instances(dag_id, run_id)
    result = _account(run, rows, stats, sampler, tenants)
    if data_dir is not None:
        # Data Docs: the validation results kept (the index, built once a run, lists them all).
        kept = data_dir / "gx" / "validations"
        result["gx_results_kept"] = sum(1 for p in kept.rglob("*") if p.is_file()) if kept.exists() else 0
    result["load_average"] = {"1min_at_start": round(load_before[0], 2), "5min_at_start": round(load_before[1], 2),
                              "1min_at_end": round(load_after[0], 2), "5min_at_end": round(load_after[1], 2)}
    log(f"{dag_id} {label}: {result['state']} in {result['wall_seconds']} s; {result['task_instances']} task "
        f"instances, {result['task_seconds']} task-seconds; {result['tenant_calls']} tenant API calls, "
        f"{result['rate_limited_total']} 429s, {result['token_refreshes']} token refreshes, "
        f"{result['invalid_grant']} invalid_grant")
    return result


def _account(run: dict[str, Any], rows: list[dict[str, Any]], stats: dict[str, Any], sampler: StatsSampler,
             tenants: list[dict[str, str]]) -> dict[str, Any]:
    n = max(1, len(tenants))
    start, end, queued = run["start_date"], run["end_date"], run["queued_at"]
    wall = _seconds(queued or start, end) or 0.0
    timed = [r for r in rows if r["start_date"] and r["end_date"]]
    by_task: dict[str, dict[str, Any]] = {}
    for r in rows:
        entry = by_task.setdefault(r["task_id"], {"instances": 0, "tries": 0, "seconds": 0.0, "durations": [],
                                                  "timeline": [],
                                                  "queue_waits": [], "states": {}, "first_start_s": None,
                                                  "last_end_s": None})
        entry["tries"] += 1
        entry["states"][str(r["state"])] = entry["states"].get(str(r["state"]), 0) + 1
        if r["start_date"] and r["end_date"]:
            d = _seconds(r["start_date"], r["end_date"]) or 0.0
            entry["seconds"] += d
            entry["durations"].append(d)
            entry["timeline"].append((r["start_date"], d))
            s, e = _seconds(start, r["start_date"]), _seconds(start, r["end_date"])
            entry["first_start_s"] = s if entry["first_start_s"] is None else min(entry["first_start_s"], s)
            entry["last_end_s"] = e if entry["last_end_s"] is None else max(entry["last_end_s"], e)
        if r["queued_dttm"] and r["start_date"]:
            entry["queue_waits"].append(_seconds(r["queued_dttm"], r["start_date"]) or 0.0)
    current = {(r["task_id"], r["map_index"]) for r in rows}
    for task_id, entry in by_task.items():
        entry["instances"] = sum(1 for t, _ in current if t == task_id)
        durations, waits, timeline = entry.pop("durations"), entry.pop("queue_waits"), sorted(entry.pop("timeline"))
        if len(timeline) >= 10:  # does an instance cost more the later it runs in the run?
            tenth = len(timeline) // 10
            entry["first_tenth_median_s"] = round(statistics.median(d for _, d in timeline[:tenth]), 1)
            entry["last_tenth_median_s"] = round(statistics.median(d for _, d in timeline[-tenth:]), 1)
        entry["seconds"] = round(entry["seconds"], 1)
        entry["median_seconds"] = round(statistics.median(durations), 1) if durations else None
        entry["max_seconds"] = round(max(durations), 1) if durations else None
        entry["median_queue_wait_s"] = round(statistics.median(waits), 1) if waits else None
        for key in ("first_start_s", "last_end_s"):
            entry[key] = round(entry[key], 1) if entry[key] is not None else None

    # Task instances running at once, from their start and end times.
    events = sorted([(r["start_date"], 1) for r in timed] + [(r["end_date"], -1) for r in timed],
                    key=lambda x: (x[0], x[1]))
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)

    ids = [t["tenant_id"] for t in tenants]
    calls = {tid: int(stats["calls_by_tenant"].get(tid, 0)) for tid in ids}
    samples = sampler.samples
    t0 = samples[0][0] if samples else 0.0
    per_tenant_peak = [peak_in_window([(t - t0, c.get(tid, 0)) for t, c, _ in samples]) for tid in ids[:50]]
    app_series = [(t - t0, sum(c.values())) for t, c, _ in samples]
    requests_by_label = {label: sum(v.values()) for label, v in stats.get("requests", {}).items()}
    rate_limited = stats.get("rate_limited", {}) or {}
    task_seconds = sum(e["seconds"] for e in by_task.values())
    return {
        "run_id": run["run_id"], "state": run["state"],
        "queued_at": queued.isoformat() if queued else None,
        "wall_seconds": round(wall, 1),
        "queued_to_start_seconds": round(_seconds(queued, start) or 0.0, 1),
        "task_instances": len(current), "tries": len(rows),
        "task_instances_per_tenant": round(len(current) / n, 2),
        "task_seconds": round(task_seconds, 1), "task_seconds_per_tenant": round(task_seconds / n, 2),
        "task_instances_running_peak": peak,
        "by_task": by_task,
        "tenant_calls": sum(calls.values()),
        "calls_per_tenant": round(sum(calls.values()) / n, 2),
        "calls_per_tenant_spread": [min(calls.values(), default=0), statistics.median(calls.values()) if calls else 0,
                                    max(calls.values(), default=0)],
        "tenants_called": sum(1 for v in calls.values() if v),
        "requests_total": sum(requests_by_label.values()),
        "requests_by_label": dict(sorted(requests_by_label.items(), key=lambda kv: -kv[1])[:15]),
        "rate_limited": rate_limited, "rate_limited_total": sum(rate_limited.values()),
        "token_refreshes": stats.get("token_refreshes"), "invalid_grant": stats.get("invalid_grant"),
        "tokens_issued": stats.get("tokens_issued"),
        "app_peak_calls_per_minute": peak_in_window(app_series),
        "tenant_peak_calls_per_minute_max": max(per_tenant_peak, default=0),
        "tenant_minute_window_peak": max(sampler.minute_used_peak.values(), default=0),
    }


def sync_outcome(engine, run_id: str) -> dict[str, Any]:
    """What the sync recorded for the run: streams by status, tenants with every stream succeeded."""
    from intoaec_xero.schema import sync_runs
    from sqlalchemy import func, select

    with engine.connect() as conn:
        statuses = dict(conn.execute(select(sync_runs.c.status, func.count()).where(sync_runs.c.run_id == run_id)
                                     .group_by(sync_runs.c.status)).all())
        tenants = conn.execute(select(func.count(func.distinct(sync_runs.c.tenant_id)))
                               .where(sync_runs.c.run_id == run_id)).scalar()
        api_calls = conn.execute(select(func.sum(sync_runs.c.api_calls)).where(sync_runs.c.run_id == run_id)).scalar()
    return {"stream_statuses": statuses, "tenants_recorded": int(tenants or 0),
            "client_counted_calls": int(api_calls or 0)}


# ----------------------------------------------------------------------------- the benchmark

def run_firms(config: FirmsConfig, result: FirmsResult | None = None, workdir: Path | None = None,
              log=print) -> FirmsResult:
    """Everything, filling ``result`` as it goes (so a failure still leaves what was measured)."""
    from cryptography.fernet import Fernet
    from intoaec_xero import db, report
    from intoaec_xero.streams import STREAMS
    from xero_sandbox.testing import free_port, running_sandbox

    if not redis_reachable():
        raise RuntimeError(f"CeleryExecutor needs the local Redis at {REDIS_URL}; it does not answer PING.")
    n = config.firms
    sample_every = config.sample_every or (0.5 if n <= 100 else 2.0)
    if result is None:
        result = FirmsResult(config=asdict(config), started_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    result.load_average = {"cores": os.cpu_count() or 0, "at_start": [round(x, 2) for x in os.getloadavg()]}
    with ExitStack() as stack:
        work = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="intoaec-firms-")))
        logs = work / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        result.logs_dir = str(logs) if workdir else ""
        metadata_url, intoaec_url = stack.enter_context(fresh_databases("airflow", "intoaec"))
        fernet_key = Fernet.generate_key().decode()
        engine = db.create_db_engine(intoaec_url)
        stack.callback(engine.dispose)
        db.upgrade(engine)

        t = time.monotonic()
        sandbox = stack.enter_context(running_sandbox(dataset="many", seed=config.seed, limits=True,
                                                      extra_args=["--tenants", str(n)], startup_timeout=900))
        tenants = [{"tenant_id": x["tenantId"], "tenant_name": x["tenantName"]} for x in sandbox.health()["tenants"]]
        if len(tenants) != n:
            raise RuntimeError(f"the sandbox serves {len(tenants)} organisations, not {n}")
        log(f"sandbox many with {n} organisations on {sandbox.base_url} ({time.monotonic() - t:.0f} s to start)")

        dags, home = work / "dags", work / "home"
        for d in (dags, home):
            d.mkdir(exist_ok=True)
        for name in ("xero_sync.py", "xero_keepalive.py"):
            link = dags / name
            if not link.exists():
                link.symlink_to(REPO / "dags" / name)
        api_port = free_port()
        queue = f"intoaec_firms_{uuid.uuid4().hex[:8]}"
        username, password = "admin", uuid.uuid4().hex
        passwords_file = home / "simple_auth_manager_passwords.json"
        passwords_file.write_text(json.dumps({username: password}))
        scale = ScaleConfig(tenants=n, seed=config.seed, pool_slots=config.pool_slots,
                            worker_concurrency=config.worker_concurrency, timeout=config.timeout)
        env = airflow_env(home=home, metadata_url=metadata_url, intoaec_url=intoaec_url,
                          sandbox_url=sandbox.base_url, api_port=api_port, fernet_key=fernet_key, queue=queue,
                          config=scale, data_dir=work / "var", dags=dags, plugins=REPO / "plugins",
                          passwords_file=passwords_file, username=username)
        # The connections live in the metadata database (airflow connections add), not the environment.
        for name in ("AIRFLOW_CONN_XERO_DEFAULT", "AIRFLOW_CONN_INTOAEC_DB", "AIRFLOW_CONN_INTOAEC_APP"):
            env.pop(name, None)
        # Nothing runs by itself: xero_sync has no schedule and is created paused.
        env.update(XERO_SYNC_SCHEDULE="none", AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True")
        for name in ("INTOAEC_SYNC_BATCH_SIZE", "INTOAEC_SYNC_BATCH_MAX_CALLS"):
            env.pop(name, None)
        if config.batch_size:
            env["INTOAEC_SYNC_BATCH_SIZE"] = str(config.batch_size)
        app_token = "bench-" + uuid.uuid4().hex
        stack.callback(_forget_queue, queue)  # runs once the components below have stopped

        t = time.monotonic()
        _airflow_cli(env, "db", "migrate")
        _airflow_cli(env, "pools", "set", "xero_api", str(config.pool_slots), "Xero API: tenants extracted at once")
        store_connections(env, sandbox_url=sandbox.base_url, intoaec_url=intoaec_url, app_token=app_token)
        log(f"metadata migrated, pool xero_api = {config.pool_slots}, connections xero_default, intoaec_db and "
            f"intoaec_app stored ({time.monotonic() - t:.0f} s)")

        commands = [["api-server", "--host", "127.0.0.1", "--port", str(api_port)], ["dag-processor"], ["scheduler"],
                    ["triggerer"],
                    ["celery", "worker", "--queues", queue, "--concurrency", str(config.worker_concurrency),
                     "--celery-hostname", f"celery@{queue}", "--skip-serve-logs", "--without-gossip",
                     "--without-mingle"]]
        with airflow_components(env, logs, commands) as processes:
            airflow = Airflow(env, api_port, username, password, metadata_url, processes, logs)
            stack.callback(airflow.close)
            t = time.monotonic()
            airflow.wait_until("the API server", airflow.healthy, 300, log)
            airflow.wait_until("both DAGs to be parsed", lambda: airflow.scalar(
                "SELECT count(*) FROM dag WHERE dag_id IN ('xero_sync', 'xero_keepalive')") == 2, 300, log)
            # xero_keepalive is created unpaused and starts its latest daily run at once; with no firm
            # yet it has nothing to renew. Let it end, so the measured keep-alive is the only one.
            airflow.wait_until("xero_keepalive's first scheduled run to end", lambda: airflow.scalar(
                "SELECT count(*) FROM dag_run WHERE dag_id = 'xero_keepalive' "
                "AND state IN ('success', 'failed')"), 300, log)
            log(f"CeleryExecutor: api-server on :{api_port}, dag-processor, scheduler, triggerer, celery worker "
                f"(concurrency {config.worker_concurrency}) up ({time.monotonic() - t:.0f} s)")

            api_url = f"{airflow.base_url}/xero/api/v1"
            log(f"connecting {n} firms through {api_url} ({config.connect_threads} at a time) ...")
            result.connects = connect_all(api_url, app_token, tenants, config.connect_threads, log)
            c = result.connects
            log(f"connects: {c['connected']} of {n} connected in {c['total_seconds']} s "
                f"(median {c['seconds']['median']} s each); {c['verified']} verified Connected via GET")
            if c["failures"] or c["verify_problems"]:
                log(f"connect problems: {c['failures'][:5]} {c['verify_problems'][:5]}")
            if c["connected"] == 0:
                raise RuntimeError("no firm connected")

            airflow.unpause(SYNC_DAG)
            result.onboarding = measure_run(airflow, sandbox, SYNC_DAG, "onboarding", tenants, data_dir=work / "var",
                                            timeout=config.timeout, sample_every=sample_every, log=log)
            truth = sandbox.truth()
            tables = {t for s in STREAMS.values() for t in s.targets}
            differences = report.compare_with_truth(engine, truth, tables)
            result.onboarding["differences"] = differences[:50]
            result.onboarding["differences_count"] = len(differences)
            result.onboarding["tenants_synced"] = len(set(report.row_counts(engine)) & set(truth["tenants"]))
            result.onboarding.update(sync_outcome(engine, result.onboarding["run_id"]))
            log(f"onboarding: {result.onboarding['tenants_synced']} of {n} tenants synced, "
                f"{len(differences)} difference(s) from the truth")

            result.hourly = measure_run(airflow, sandbox, SYNC_DAG, "hourly", tenants, data_dir=work / "var",
                                        timeout=config.timeout, sample_every=sample_every, log=log)
            result.hourly.update(sync_outcome(engine, result.hourly["run_id"]))

            if config.keepalive:
                result.keepalive = measure_run(airflow, sandbox, KEEPALIVE_DAG, "keepalive", tenants,
                                               timeout=config.timeout, sample_every=sample_every, log=log)
        result.load_average["at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


# ----------------------------------------------------------------------------- report

def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f}"


def _q(d: dict[str, Any]) -> str:
    """min / median / p95 / max of a connect step, in milliseconds (a step can take a few)."""
    return f"{_ms(d.get('min'))} / {_ms(d.get('median'))} / {_ms(d.get('p95'))} / {_ms(d.get('max'))} ms"


def _batch_size(config: dict[str, Any]) -> str:
    if config.get("batch_size"):
        return str(config["batch_size"])
    from intoaec_xero.environment import RuntimeSettings

    default = getattr(RuntimeSettings(), "sync_batch_size", None)
    return f"unset (default {default})" if default is not None else "unset"


def _tasks_line(run: dict[str, Any]) -> str:
    parts = []
    for task_id, e in sorted(run.get("by_task", {}).items(), key=lambda kv: kv[1]["first_start_s"] or 0):
        states = ", ".join(f"{v} {k}" for k, v in sorted(e["states"].items()))
        parts.append(f"`{task_id}` ×{e['instances']} ({states}; {_fmt(e['seconds'])} task-s, median "
                     f"{_fmt(e['median_seconds'])} s, max {_fmt(e['max_seconds'])} s; {_fmt(e['first_start_s'])}–"
                     f"{_fmt(e['last_end_s'])} s after the run started; median wait queued→running "
                     f"{_fmt(e['median_queue_wait_s'])} s"
                     + (f"; median of the first tenth to start {_fmt(e['first_tenth_median_s'])} s, of the last "
                        f"tenth {_fmt(e['last_tenth_median_s'])} s" if e.get("first_tenth_median_s") is not None
                        else "") + ")")
    return "; ".join(parts)


def _run_lines(run: dict[str, Any], n: int) -> list[str]:
    spread = run.get("calls_per_tenant_spread") or [0, 0, 0]
    return [
        f"- state **{run['state']}**; wall time, queued to finished: **{_fmt(run['wall_seconds'])} s** "
        f"({_fmt(run['wall_seconds'] / 60)} min; queued→running {_fmt(run['queued_to_start_seconds'])} s)",
        f"- task instances: {run['task_instances']} ({_fmt(run['task_instances_per_tenant'])} per tenant; "
        f"{run['tries']} tries), at most {run['task_instances_running_peak']} running at once; task-seconds: "
        f"{_fmt(run['task_seconds'])} ({_fmt(run['task_seconds_per_tenant'])} per tenant)",
        f"- API calls to organisations: {_fmt(run['tenant_calls'])} ({_fmt(run['calls_per_tenant'])} per tenant; "
        f"min / median / max {spread[0]} / {_fmt(spread[1])} / {spread[2]}; {run['tenants_called']} of {n} "
        f"tenants called); all requests to the sandbox, identity and /connections included: "
        f"{_fmt(run['requests_total'])}",
        f"- 429s: **{run['rate_limited_total']}**; token refreshes: {run['token_refreshes']}; invalid_grant: "
        f"{run['invalid_grant']}; busiest 60 s across the app: {_fmt(run['app_peak_calls_per_minute'])} calls "
        f"(Xero's app limit 10,000), most calls one tenant had in one of the sandbox's minute windows: "
        f"{run['tenant_minute_window_peak']} (limit 60)",
        f"- by task: {_tasks_line(run)}",
        *([f"- Data Docs: {_fmt(run['gx_results_kept'])} validation results kept after the run (each tenant's load "
           "renders its own pages; the site's index, built once at the run's end, lists every kept result; "
           f"older runs are pruned past {KEEP_RESULTS:,}, the latest run always stays)"]
          if run.get("gx_results_kept") is not None else []),
    ]


def markdown(r: FirmsResult) -> str:
    c, n = r.config, r.config["firms"]
    k = r.connects
    flags = "" if c.get("keepalive") else " --skip-keepalive"
    flags += f" --batch-size {c['batch_size']}" if c.get("batch_size") else ""
    hourly, onboarding = r.hourly, r.onboarding
    verdict = "met" if r.target_met else "NOT met"
    lines = [
        f"Run {r.started_at}: `.venv/bin/python -m benchmarks.scale_firms --firms {n}{flags} --write-docs`; "
        f"sandbox `many` (seed {c['seed']}, Xero's limits on) with {n} organisations and one Xero user per "
        f"organisation. The real components on this {r.load_average.get('cores')}-core machine: api-server (the "
        f"connect API in it), dag-processor, scheduler, triggerer and one Celery worker (concurrency "
        f"{c['worker_concurrency']}) on the local Redis, metadata and IntoAEC data in two fresh PostgreSQL "
        f"databases; pool `xero_api` = {c['pool_slots']} slots; "
        f"`INTOAEC_SYNC_BATCH_SIZE` {_batch_size(c)}; connections stored with "
        "`airflow connections add`; `XERO_SYNC_SCHEDULE=none`, every run triggered through the REST API. "
        f"Load averages (1/5/15 min) at the start {r.load_average.get('at_start')}, at the end "
        f"{r.load_average.get('at_end')}.",
        "",
        f"**Target, the hourly no-change run within 15 minutes with no 429: {verdict}** "
        f"({_fmt(hourly.get('wall_seconds'))} s, {hourly.get('rate_limited_total')} 429s, state "
        f"{hourly.get('state')}).",
        "",
        "### Connecting the firms",
        "",
        f"- {k['connected']} of {n} firms connected through the connect API ({k['threads']} at a time: connect "
        f"session, the firm's accountant at Xero's sign-in and consent, the callback, 303 to the return URL with "
        f"`status=connected`) in **{_fmt(k['total_seconds'])} s** ({_fmt(k['per_minute'])} a minute); "
        f"`GET /firms/{{id}}` says Connected for {k['verified']} of {n} (checked in {_fmt(k['verify_seconds'])} s)",
        f"- per connect (min / median / p95 / max): whole {_q(k['seconds'])}; connect session "
        f"{_q(k['session_seconds'])}; sign-in and consent at the sandbox {_q(k['sign_in_seconds'])}; callback "
        f"(code exchange, /connections, grant and organisation stored) {_q(k['callback_seconds'])}; the "
        f"callback's median for the first tenth of the firms {_ms(k.get('callback_median_first_tenth'))} ms, for the "
        f"last tenth {_ms(k.get('callback_median_last_tenth'))} ms",
    ]
    if k.get("failures") or k.get("verify_problems"):
        lines.append(f"- problems: {'; '.join((k.get('failures') or []) + (k.get('verify_problems') or []))[:600]}")
    lines += ["", "### Onboarding run (first sync of every firm's organisation)", "",
              f"- equal to the sandbox's truth (counts, money totals, net by account) for "
              f"{onboarding.get('tenants_synced')} of {n} tenants: "
              f"**{'yes' if not onboarding.get('differences_count') else 'NO'}** "
              f"({onboarding.get('differences_count')} difference(s))",
              *_run_lines(onboarding, n),
              "", "### Hourly run, nothing changed in Xero", "",
              *_run_lines(hourly, n),
              f"- stream records of the run: {hourly.get('stream_statuses')} over {hourly.get('tenants_recorded')} "
              "tenants",
              _token_note(hourly, n)]
    if r.keepalive:
        ka = r.keepalive
        lines += ["", f"### Keep-alive over the {n} firm grants", "", *_run_lines(ka, n)[:2],
                  f"- token refreshes: **{ka['token_refreshes']}** (one per firm grant expected: {n}); invalid_grant: "
                  f"**{ka['invalid_grant']}**; 429s: {ka['rate_limited_total']}; all requests to the sandbox: "
                  f"{_fmt(ka['requests_total'])} ("
                  + ", ".join(f"{a}: {b}" for a, b in ka["requests_by_label"].items()) + ")",
                  f"- by task: {_tasks_line(ka)}"]
    lines += ["", "Where the time goes:", "", *_where_time_goes(r)]
    return "\n".join(lines)


def _token_note(run: dict[str, Any], n: int) -> str:
    refreshed = run.get("token_refreshes") or 0
    if refreshed >= n:
        return f"- every grant refreshed its access token ({refreshed} refreshes), as each does once an hour"
    return (f"- {refreshed} of the {n} grants refreshed their access token: the others were issued (at the connect "
            "or the onboarding run) under 30 minutes before, so they were reused; an hour later each grant refreshes "
            "once (one call to the token endpoint each, counted against no organisation's limits)")


def _where_time_goes(r: FirmsResult) -> list[str]:
    n, k, h = r.config["firms"], r.connects, r.hourly
    steps = {"the callback (code exchange, /connections, grant stored)": k["callback_seconds"]["median"],
             "the sign-in and consent pages": k["sign_in_seconds"]["median"],
             "creating the connect session": k["session_seconds"]["median"]}
    ranked = sorted(((v or 0.0, name) for name, v in steps.items()), reverse=True)
    out = [f"- connects: {_fmt(k['total_seconds'])} s for {n} firms, {k['threads']} at a time; of the median "
           f"connect ({_ms(k['seconds']['median'])} ms) most goes to "
           + ", then ".join(f"{name} ({_ms(v)} ms)" for v, name in ranked)]
    first, last = k.get("callback_median_first_tenth"), k.get("callback_median_last_tenth")
    if first and last and last > 2 * first:
        out.append(f"- **a connect costs more the more firms connected before it**: the callback's median went from "
                   f"{_ms(first)} ms (first tenth of the firms) to {_ms(last)} ms (last tenth): the time to connect "
                   "them all grows faster than the number of firms one API-server process has served")
    tasks = h.get("by_task", {})
    discover = tasks.get("discover_tenants")
    if discover:
        out.append(f"- discovery (hourly run): `discover_tenants` took {_fmt(discover['seconds'])} s for {n} firm "
                   f"grants (one /connections call each, one task), {_fmt(discover['seconds'] / max(1, n) * 1000)} ms "
                   "a grant")
    wall = h.get("wall_seconds") or 0.0
    total = h.get("task_seconds") or 0.0
    per_task = [f"`{t}` {_fmt(e['seconds'])} task-s ({_fmt(e['seconds'] / max(1, n))} per tenant, "
                f"{e['instances']} instance(s), median {_fmt(e['median_seconds'])} s each)"
                for t, e in sorted(tasks.items(), key=lambda kv: -kv[1]["seconds"]) if e["seconds"]]
    out.append(f"- the hourly run's {_fmt(total)} task-seconds over {_fmt(wall)} s of wall time (at most "
               f"{h.get('task_instances_running_peak')} task instances at once on {r.load_average.get('cores')} "
               f"cores): " + "; ".join(per_task))
    for run_name, run in (("onboarding", r.onboarding), ("hourly", h)):
        for task_id, e in run.get("by_task", {}).items():
            a, b = e.get("first_tenth_median_s"), e.get("last_tenth_median_s")
            if a and b and b > 2 * a:
                out.append(f"- **`{task_id}` costs more the later it runs** ({run_name} run): median {_fmt(a)} s for "
                           f"the first tenth of its instances to start, {_fmt(b)} s for the last tenth")
    timed = [(e["median_seconds"], t) for t, e in tasks.items() if e.get("median_seconds")]
    if timed:
        floor, shortest = min(timed)
        out.append(f"- a task instance's fixed cost (a process started by the worker, the package imported, state "
                   f"reported to the API server) is at most {_fmt(floor)} s, the median of the shortest task "
                   f"(`{shortest}`); {h.get('task_instances')} task instances for {n} tenants make at most "
                   f"{_fmt(floor * (h.get('task_instances') or 0))} task-seconds of it, the rest "
                   f"({_fmt(total - floor * (h.get('task_instances') or 0))} task-s, "
                   f"{_fmt((total - floor * (h.get('task_instances') or 0)) / max(1, n))} per tenant) is the work: "
                   f"{_fmt(h.get('calls_per_tenant'))} Xero calls per tenant, loading and data quality")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_firms", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firms", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pool-slots", type=int, default=4)
    parser.add_argument("--worker-concurrency", type=int, default=6)
    parser.add_argument("--connect-threads", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=0,
                        help="INTOAEC_SYNC_BATCH_SIZE for the components (default: leave it unset)")
    parser.add_argument("--skip-keepalive", action="store_true", help="leave out the xero_keepalive run")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds each run may take")
    parser.add_argument("--write-docs", action="store_true",
                        help="rewrite the '<N> firms through the connect API' section of docs/benchmarks.md")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--workdir", type=Path, help="keep Airflow's home and logs here")
    parser.add_argument("--render", type=Path, help="run nothing: report the results saved by --json")
    args = parser.parse_args(argv)

    def say(message: str) -> None:
        print(f"[firms] {message}", flush=True)

    if args.render:
        result = FirmsResult(**json.loads(args.render.read_text()))
    else:
        config = FirmsConfig(firms=args.firms, seed=args.seed, pool_slots=args.pool_slots,
                             worker_concurrency=args.worker_concurrency, connect_threads=args.connect_threads,
                             keepalive=not args.skip_keepalive, batch_size=args.batch_size, timeout=args.timeout)
        result = FirmsResult(config=asdict(config), started_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
        try:
            run_firms(config, result, workdir=args.workdir, log=say)
        except Exception as error:  # noqa: BLE001 - reported below, and in the JSON, with what was measured
            say(f"FAILED: {type(error).__name__}: {str(error)[:6000]}")
            result.error = f"{type(error).__name__}: {str(error)[:6000]}"
            if args.json:
                args.json.write_text(json.dumps(asdict(result), indent=2, default=str))
            return 1
        if args.json:
            args.json.write_text(json.dumps(asdict(result), indent=2, default=str))
    text = markdown(result)
    print()
    print(text)
    print()
    say(f"checks {'passed' if result.ok else 'FAILED'}; target (hourly run ≤ 15 min, 0 429s) "
        f"{'met' if result.target_met else 'NOT met'}")
    if args.write_docs:
        if result.ok:
            from benchmarks.report import write_section

            write_section(heading(result.config["firms"]), text)
            say(f"wrote the '{heading(result.config['firms'])}' section of docs/benchmarks.md")
        else:
            say("not writing docs/benchmarks.md: a check failed")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
