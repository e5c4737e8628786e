"""``xero_sync`` over 50 tenants under the real Airflow components, CeleryExecutor on the local Redis.

``airflow dags test`` runs every task in one process, which says nothing about pools, executors
or how tenants share workers. So this starts what docker-compose.yaml starts (api-server,
scheduler, dag-processor, triggerer, a Celery worker) on a fresh PostgreSQL metadata database,
with the compose file's auth and health settings, connects a
50-tenant sandbox through the OAuth flow, lets the scheduler run ``xero_sync`` by itself (the DAG
is created unpaused; nobody triggers it) into a fresh PostgreSQL IntoAEC database, and compares
what landed with the sandbox's truth.

Xero's limits are measured where they are enforced: a thread samples the sandbox's
``/_sandbox/stats`` twice a second (calls per tenant, calls in flight per tenant, 429s by
problem), so "no tenant above 5 concurrent or 60 a minute, the app under 10,000 a minute"
is the server's account, not the client's. The sandbox refuses with 429 whatever exceeds a
limit, so zero 429s is the exact proof; the sampled peaks show the margin.

``--faults`` also makes one tenant slow (every accounting call delayed) and one failing (its
first extract attempt exhausts the client's retries on 500s, Airflow retries the task later),
and reports what the healthy tenants did meanwhile, to show the two only ever held their own
slot. ``--paced N`` also runs with every tenant held to N calls a minute (sandbox and connection
alike), so the per-tenant limiter sets the pace while many tenants are extracted at once.

    .venv/bin/python -m benchmarks.scale_50_tenants [--tenants 50] [--pool-slots 4]
        [--worker-concurrency 6] [--faults] [--paced 5] [--write-docs] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from benchmarks.worker_loss import WorkerLoss, compose_worker_timings, worker_recovered

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("INTOAEC_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("INTOAEC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
HEADING = "50 tenants under the scheduler"
CLIENT_ID, CLIENT_SECRET = "sandbox-client", "sandbox-secret"  # the sandbox's public demo app
# Xero's limits, as the sandbox enforces them by default.
TENANT_CONCURRENT, TENANT_PER_MINUTE, APP_PER_MINUTE = 5, 60, 10_000
RESOURCES = ("Contacts", "Invoices", "Payments", "CreditNotes", "Accounts", "TrackingCategories", "Journals")


@dataclass
class ScaleConfig:
    tenants: int = 50
    dataset: str = "many"
    seed: int = 1
    executor: str = "CeleryExecutor"
    pool_slots: int = 4
    # Celery worker processes (or LocalExecutor parallelism). Kept above pool_slots so loads
    # always find a free worker while every extract slot is busy.
    worker_concurrency: int = 6
    slow_tenant_latency_ms: int = 0
    failing_tenant: bool = False
    # Shrinks Xero's per-tenant minute limit in the sandbox and in the connection alike, so every
    # tenant has to be paced by the limiter while many are extracted at once.
    tenant_minute_limit: int = 0
    timeout: float = 1200.0
    sample_every: float = 0.5
    # Kill -9 the Celery worker while loads are inside their transactions, then start a new one
    # (benchmarks.worker_loss).
    lose_worker: bool = False


@dataclass
class RunningStack:
    """What a probe needs to reach the running components, as docker-compose.yaml names them."""

    env: dict[str, str]
    api_port: int
    scheduler_health_port: int
    worker_name: str
    username: str
    password: str


@dataclass
class ScaleResult:
    config: dict[str, Any]
    started_at: str
    run: dict[str, Any]
    wall_seconds: float
    differences: list[str]
    tenants_synced: int
    stats: dict[str, Any]
    tenants: list[dict[str, Any]] = field(default_factory=list)
    extract_concurrency_peak: int = 0
    faults: dict[str, Any] = field(default_factory=dict)
    load_average: dict[str, float] = field(default_factory=dict)
    logs_dir: str = ""
    worker_loss: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        if self.config.get("lose_worker") and not worker_recovered(self.worker_loss):
            return False
        return (self.run.get("state") == "success" and not self.differences
                and not self.stats["rate_limited"] and self.tenants_synced == self.config["tenants"])


# ----------------------------------------------------------------------------- databases

@contextmanager
def fresh_databases(*kinds: str):
    """One fresh PostgreSQL database per kind, dropped afterwards even if the run fails."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    names = [f"scale_{kind}_{uuid.uuid4().hex[:8]}" for kind in kinds]
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield [make_url(PG_ADMIN_URL).set(database=n).render_as_string(hide_password=False) for n in names]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def redis_reachable(url: str = REDIS_URL) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except Exception:  # noqa: BLE001 - any failure means: no broker here
        return False


# ----------------------------------------------------------------------------- components

def _stop_group(process: subprocess.Popen, grace: float = 30) -> None:
    """Each component runs in its own process group: stop that group only (it and its children)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if process.poll() is None:
        process.wait(timeout=10)


class Components(list):
    """The running components (a list of their processes), each of which can be killed and started again."""

    def __init__(self, env: dict[str, str], logs: Path):
        super().__init__()
        self.env, self.logs = env, logs
        self.logs_open: list[Any] = []

    def start(self, command: list[str]) -> subprocess.Popen:
        airflow = str(Path(sys.executable).with_name("airflow"))
        log = open(self.logs / f"{command[0]}.log", "ab")  # noqa: SIM115 - closed with the components
        self.logs_open.append(log)
        process = subprocess.Popen([airflow, *command], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=REPO, start_new_session=True)
        self.append(process)
        return process

    def kill_and_restart(self, name: str) -> subprocess.Popen:
        """SIGKILL the component's whole process group (nothing gets to clean up), then start it again."""
        [process] = [p for p in self if p.args[1] == name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        self.remove(process)
        return self.start(process.args[1:])


@contextmanager
def airflow_components(env: dict[str, str], logs: Path, commands: list[list[str]]):
    components = Components(env, logs)
    try:
        for command in commands:
            components.start(command)
        yield components
    finally:
        for process in reversed(components):
            _stop_group(process)
        for log in components.logs_open:
            log.close()


def airflow_env(*, home: Path, metadata_url: str, intoaec_url: str, sandbox_url: str, api_port: int,
                fernet_key: str, queue: str, config: ScaleConfig, data_dir: Path, dags: Path,
                plugins: Path, passwords_file: Path, username: str) -> dict[str, str]:
    """The settings docker-compose.yaml gives its containers, with local hosts and free ports."""
    from sqlalchemy.engine import make_url
    from xero_sandbox.testing import free_port

    result_backend = make_url(metadata_url).set(drivername="postgresql").render_as_string(hide_password=False)
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=metadata_url,
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(plugins),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR=config.executor,
        AIRFLOW__CORE__PARALLELISM=str(config.worker_concurrency),
        AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG=str(max(16, config.worker_concurrency)),
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__CORE__FERNET_KEY=fernet_key,
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{api_port}/execution/",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{username}:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords_file),
        AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK="True",
        AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT=str(free_port()),
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API__SECRET_KEY=uuid.uuid4().hex,
        AIRFLOW__API_AUTH__JWT_SECRET=uuid.uuid4().hex,
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT="30",
        AIRFLOW__CELERY__BROKER_URL=REDIS_URL,
        AIRFLOW__CELERY__RESULT_BACKEND=f"db+{result_backend}",
        # A queue of its own: nothing else on this machine's Redis picks up these tasks.
        AIRFLOW__OPERATORS__DEFAULT_QUEUE=queue,
        AIRFLOW_CONN_XERO_DEFAULT=json.dumps({
            "conn_type": "xero", "login": CLIENT_ID, "password": CLIENT_SECRET,
            "extra": {"api_base_url": f"{sandbox_url}/api.xro/2.0", "identity_base_url": sandbox_url, "sandbox": True,
                      **({"calls_per_minute": str(config.tenant_minute_limit)} if config.tenant_minute_limit else {})},
        }),
        AIRFLOW_CONN_INTOAEC_DB=json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": intoaec_url}}),
        INTOAEC_DATA_DIR=str(data_dir),
        # How fast a lost worker's tasks are failed and retried, as the compose deployment sets it.
        **(compose_worker_timings() if config.executor == "CeleryExecutor" else {}),
        # The scheduler starts the latest daily run as soon as the DAG is unpaused, and no
        # second run is due while the benchmark lasts.
        XERO_SYNC_SCHEDULE="@daily",
        TZ="UTC",
        GX_ANALYTICS_ENABLED="false",
    )
    for name in ("INTOAEC_FERNET_KEY", "INTOAEC_XERO_CONN_IDS", "INTOAEC_DB_URL", "AIRFLOW_CONFIG"):
        env.pop(name, None)
    return env


# ----------------------------------------------------------------------------- sampling

class StatsSampler(threading.Thread):
    """Polls /_sandbox/stats: cumulative calls per tenant and calls in flight, over time."""

    def __init__(self, base_url: str, every: float):
        super().__init__(daemon=True)
        self.base_url, self.every = base_url, every
        self.samples: list[tuple[float, dict[str, int], dict[str, int]]] = []
        # The sandbox's own fixed-window count per tenant, as Xero would count the minute.
        self.minute_used_peak: dict[str, int] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        while not self._stop_event.is_set():
            try:
                stats = session.get(f"{self.base_url}/_sandbox/stats", timeout=5).json()
                limits = stats.get("limits", {})
                in_flight = {t: v.get("in_flight", 0) for t, v in limits.items()}
                self.samples.append((time.monotonic(), dict(stats["calls_by_tenant"]), in_flight))
                for tenant, v in limits.items():
                    used = v.get("minute_used", 0)
                    if used > self.minute_used_peak.get(tenant, 0):
                        self.minute_used_peak[tenant] = used
            except (requests.RequestException, ValueError, KeyError):
                pass
            self._stop_event.wait(self.every)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def peak_in_window(samples: list[tuple[float, int]], window: float = 60.0) -> int:
    """Most calls in any ``window`` seconds, from cumulative counts sampled over time.

    Each window is measured from the last sample at or before its start, so it spans a little
    more than ``window`` seconds: the figure can only err high, never hide a breach.
    """
    peak, start = 0, 0
    for i, (t, count) in enumerate(samples):
        while start + 1 < i and samples[start + 1][0] <= t - window:
            start += 1
        base = samples[start][1] if samples[start][0] <= t - window else 0
        peak = max(peak, count - base)
    return peak


# ----------------------------------------------------------------------------- the run

def run_scale(config: ScaleConfig, workdir: Path | None = None, log=print,
              probe: Callable[[RunningStack], None] | None = None) -> ScaleResult:
    """Run ``xero_sync`` once under the scheduler; ``probe`` runs while the components are still up."""
    from cryptography.fernet import Fernet
    from intoaec_xero import db, report
    from intoaec_xero.demo import connect
    from intoaec_xero.settings import XeroSettings
    from intoaec_xero.streams import STREAMS
    from intoaec_xero.tokens import TokenCipher, TokenStore
    from xero_sandbox.testing import free_port, running_sandbox

    if config.executor == "CeleryExecutor" and not redis_reachable():
        raise RuntimeError(f"CeleryExecutor needs the local Redis at {REDIS_URL}; it does not answer PING.")
    started_at = datetime.now(UTC)
    with ExitStack() as stack:
        work = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="intoaec-scale-")))
        logs = work / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        metadata_url, intoaec_url = stack.enter_context(fresh_databases("airflow", "intoaec"))
        fernet_key = Fernet.generate_key().decode()
        engine = db.create_db_engine(intoaec_url)
        stack.callback(engine.dispose)
        db.upgrade(engine)

        extra = ["--tenants", str(config.tenants)]
        if config.tenant_minute_limit:
            extra += ["--minute-limit", str(config.tenant_minute_limit)]
        sandbox = stack.enter_context(running_sandbox(dataset=config.dataset, seed=config.seed, extra_args=extra))
        tenants = [{"tenant_id": t["tenantId"], "tenant_name": t["tenantName"]} for t in sandbox.health()["tenants"]]
        settings = XeroSettings.for_single_host(sandbox.base_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        connect(settings, TokenStore(engine, settings.connection_key, TokenCipher(fernet_key)))
        log(f"sandbox {config.dataset} with {len(tenants)} tenants on {sandbox.base_url}; connected via OAuth")
        faults = _inject_faults(sandbox, tenants, config)
        sandbox.reset_stats()

        dags, plugins, home = work / "dags", work / "plugins", work / "home"
        for d in (dags, plugins, home):
            d.mkdir(exist_ok=True)
        link = dags / "xero_sync.py"
        if not link.exists():
            link.symlink_to(REPO / "dags" / "xero_sync.py")
        api_port = free_port()
        queue = f"intoaec_scale_{uuid.uuid4().hex[:8]}"
        # As airflow-init writes it from .env: the UI user's password, known before the api-server starts.
        username, password = "admin", uuid.uuid4().hex
        passwords_file = home / "simple_auth_manager_passwords.json"
        passwords_file.write_text(json.dumps({username: password}))
        env = airflow_env(home=home, metadata_url=metadata_url, intoaec_url=intoaec_url,
                          sandbox_url=sandbox.base_url, api_port=api_port, fernet_key=fernet_key, queue=queue,
                          config=config, data_dir=work / "var", dags=dags, plugins=plugins,
                          passwords_file=passwords_file, username=username)
        airflow = str(Path(sys.executable).with_name("airflow"))
        for args in (["db", "migrate"],
                     ["pools", "set", "xero_api", str(config.pool_slots), "Xero API: tenants extracted at once"]):
            done = subprocess.run([airflow, *args], env=env, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")

        commands = [["api-server", "--host", "127.0.0.1", "--port", str(api_port)], ["dag-processor"], ["scheduler"],
                    ["triggerer"]]
        worker_name = f"celery@{queue}"
        if config.executor == "CeleryExecutor":
            commands.append(["celery", "worker", "--queues", queue, "--concurrency", str(config.worker_concurrency),
                             "--celery-hostname", worker_name, "--skip-serve-logs", "--without-gossip",
                             "--without-mingle"])
        sampler = StatsSampler(sandbox.base_url, config.sample_every)
        sampler.start()
        clock0 = time.monotonic()
        load_before = os.getloadavg()[1]
        with airflow_components(env, logs, commands) as processes:
            log(f"{config.executor}: api-server, dag-processor, scheduler, triggerer"
                + (f", celery worker (concurrency {config.worker_concurrency})"
                   if config.executor == "CeleryExecutor" else "")
                + f"; pool xero_api = {config.pool_slots} slots; waiting for the scheduled run ...")
            loss = (WorkerLoss(intoaec_url, lambda: processes.kill_and_restart("celery"), log)
                    if config.lose_worker else None)
            try:
                run = _wait_for_run(metadata_url, processes, logs, config.timeout, log,
                                    on_tick=loss.tick if loss else None)
            finally:
                if loss:
                    loss.close()
            load_after = os.getloadavg()
            if probe:
                probe(RunningStack(env=env, api_port=api_port,
                                   scheduler_health_port=int(env["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT"]),
                                   worker_name=worker_name, username=username, password=password))
        sampler.stop()
        stats = sandbox.stats()
        truth = sandbox.truth()
        task_rows = _task_instances(metadata_url, run["run_id"])

        tables = {t for s in STREAMS.values() for t in s.targets}
        differences = report.compare_with_truth(engine, truth, tables)
        synced = set(report.row_counts(engine)) & set(truth["tenants"])
        result = _analyse(config, started_at, run, clock0, sampler, stats, task_rows, tenants, engine, faults)
        result.differences = differences
        result.tenants_synced = len(synced)
        result.logs_dir = str(logs) if workdir else ""
        if loss:
            result.worker_loss = loss.outcome(task_rows)
        # Two cores shared with other work: the load says how much of the machine the run had.
        result.load_average = {"5min_at_start": round(load_before, 1), "5min_at_end": round(load_after[1], 1),
                               "cores": os.cpu_count() or 0}
        return result


def _inject_faults(sandbox, tenants: list[dict[str, str]], config: ScaleConfig) -> dict[str, Any]:
    """Accounting endpoints only: a tenant-scoped fault on ``*`` would also hit /connections and the token."""
    faults: dict[str, Any] = {}
    if config.slow_tenant_latency_ms:
        slow = tenants[0]
        for resource in RESOURCES:
            sandbox.faults(endpoint=resource, latency_ms=config.slow_tenant_latency_ms, tenant_id=slow["tenant_id"])
        faults["slow"] = {**slow, "latency_ms": config.slow_tenant_latency_ms}
    if config.failing_tenant:
        failing = tenants[2 if len(tenants) > 2 else -1]
        # As many 500s as the client makes attempts: the first Airflow try fails, the retry succeeds.
        from intoaec_xero.settings import XeroSettings

        attempts = XeroSettings(client_id="x", client_secret="x").max_attempts
        sandbox.faults(endpoint="Contacts", status=500, count=attempts, tenant_id=failing["tenant_id"])
        faults["failing"] = {**failing, "http_500s": attempts}
    return faults


def _wait_for_run(metadata_url: str, processes, logs: Path, timeout: float, log,
                  on_tick: Callable[[], None] | None = None) -> dict[str, Any]:
    from sqlalchemy import create_engine, text

    metadata = create_engine(metadata_url)
    deadline = time.monotonic() + timeout
    last_note = 0.0
    try:
        while time.monotonic() < deadline:
            if on_tick:
                on_tick()
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"airflow {process.args[1]} exited ({process.returncode}):\n{tail_logs(logs)}")
            try:
                with metadata.connect() as conn:
                    row = conn.execute(text(
                        "SELECT run_id, state, run_type, queued_at, start_date, end_date FROM dag_run "
                        "WHERE dag_id = 'xero_sync' ORDER BY id LIMIT 1")).mappings().first()
                    done = conn.execute(text(
                        "SELECT count(*) FROM task_instance WHERE dag_id = 'xero_sync' AND state = 'success'"
                    )).scalar()
            except Exception:  # noqa: BLE001 - tables appear once the components have started
                row, done = None, 0
            if row and row["state"] in ("success", "failed"):
                return dict(row)
            if time.monotonic() - last_note > 30:
                last_note = time.monotonic()
                log(f"  ... run {row['state'] if row else 'not created yet'}, {done} task instance(s) succeeded")
            time.sleep(1)
    finally:
        metadata.dispose()
    raise RuntimeError(f"no finished xero_sync run after {timeout:.0f} s:\n{tail_logs(logs)}")


def _task_instances(metadata_url: str, run_id: str) -> list[dict[str, Any]]:
    """Every try of every task: the current one and, for retried tasks, the earlier ones."""
    from sqlalchemy import create_engine, text

    metadata = create_engine(metadata_url)
    columns = "task_id, map_index, rendered_map_index, state, try_number, start_date, end_date, queued_dttm, pool"
    try:
        with metadata.connect() as conn:
            rows = [dict(r) for r in conn.execute(text(
                f"SELECT {columns} FROM task_instance WHERE dag_id = 'xero_sync' AND run_id = :r"),
                {"r": run_id}).mappings()]
            rows += [dict(r) for r in conn.execute(text(
                f"SELECT {columns} FROM task_instance_history WHERE dag_id = 'xero_sync' AND run_id = :r"),
                {"r": run_id}).mappings()]
    finally:
        metadata.dispose()
    return rows


def tail_logs(logs: Path, chars: int = 3000) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in sorted(logs.glob("*.log")))


# ----------------------------------------------------------------------------- analysis

def _seconds(a: datetime | None, b: datetime | None) -> float | None:
    return (b - a).total_seconds() if a and b else None


def _analyse(config: ScaleConfig, started_at: datetime, run: dict[str, Any], clock0: float, sampler: StatsSampler,
             stats: dict[str, Any], task_rows: list[dict[str, Any]], tenants: list[dict[str, str]], engine,
             faults: dict[str, Any]) -> ScaleResult:
    from intoaec_xero.schema import sync_runs
    from sqlalchemy import func, select

    names = {t["tenant_id"]: t["tenant_name"] for t in tenants}
    samples = sampler.samples
    t0 = samples[0][0] if samples else clock0
    per_tenant_series = {tid: [(t - t0, calls.get(tid, 0)) for t, calls, _ in samples] for tid in names}
    app_series = [(t - t0, sum(calls.values())) for t, calls, _ in samples]
    in_flight_peak = {tid: max((f.get(tid, 0) for _, _, f in samples), default=0) for tid in names}
    app_in_flight_peak = max((sum(f.values()) for _, _, f in samples), default=0)

    with engine.connect() as conn:
        api_calls = dict(conn.execute(
            select(sync_runs.c.tenant_id, func.sum(sync_runs.c.api_calls))
            .where(sync_runs.c.run_id == run["run_id"]).group_by(sync_runs.c.tenant_id)).all())

    run_start, run_end = run["start_date"], run["end_date"]
    by_tenant: dict[str, dict[str, Any]] = {tid: {"tenant_id": tid, "tenant_name": n, "extract_tries": []}
                                            for tid, n in names.items()}
    label_to_id = {n: tid for tid, n in names.items()}
    # A failed try may not carry its rendered label; the map index it shares with the retry does.
    index_to_id = {row["map_index"]: label_to_id[row["rendered_map_index"]] for row in task_rows
                   if row["task_id"].startswith("tenant.") and row["rendered_map_index"] in label_to_id}
    extracts: list[tuple[datetime, datetime]] = []
    for row in task_rows:
        tid = label_to_id.get(row["rendered_map_index"] or "") or (
            index_to_id.get(row["map_index"]) if row["task_id"].startswith("tenant.") else None)
        if tid is None or not row["start_date"] or not row["end_date"]:
            continue
        if row["task_id"] == "tenant.extract":
            extracts.append((row["start_date"], row["end_date"]))
            by_tenant[tid]["extract_tries"].append({
                "try": row["try_number"], "state": row["state"],
                "start_s": round(_seconds(run_start, row["start_date"]), 1),
                "end_s": round(_seconds(run_start, row["end_date"]), 1),
                "seconds": round(_seconds(row["start_date"], row["end_date"]), 1)})
        elif row["task_id"] == "tenant.load" and row["state"] == "success":
            by_tenant[tid]["landed_s"] = round(_seconds(run_start, row["end_date"]), 1)

    for tid, entry in by_tenant.items():
        entry["extract_tries"].sort(key=lambda t: t["try"])
        entry["calls"] = int(stats["calls_by_tenant"].get(tid, 0))
        entry["client_counted_calls"] = int(api_calls.get(tid) or 0)
        entry["peak_calls_per_minute"] = peak_in_window(per_tenant_series[tid])
        entry["peak_in_flight"] = in_flight_peak[tid]
        entry["peak_minute_window"] = sampler.minute_used_peak.get(tid, 0)
        seconds = sum(t["seconds"] for t in entry["extract_tries"])
        entry["extract_seconds"] = round(seconds, 1)

    events = sorted([(s, 1) for s, _ in extracts] + [(e, -1) for _, e in extracts], key=lambda x: (x[0], x[1]))
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)

    wall = _seconds(run["queued_at"] or run_start, run_end) or 0.0
    total_calls = sum(int(v) for v in stats["calls_by_tenant"].values())
    first = min((s for s, _ in extracts), default=run_start)
    last = max((e for _, e in extracts), default=run_end)
    extract_phase = _seconds(first, last) or 0.0
    summary = {
        "total_calls": total_calls,
        "rate_limited": stats.get("rate_limited", {}),
        "token_refreshes": stats.get("token_refreshes"),
        "invalid_grant": stats.get("invalid_grant"),
        "faults_injected": stats.get("faults_injected"),
        "app_peak_calls_per_minute": peak_in_window(app_series),
        "app_peak_in_flight": app_in_flight_peak,
        "app_calls_per_minute_over_run": round(total_calls / (wall / 60), 1) if wall else None,
        "extract_phase_seconds": round(extract_phase, 1),
        "app_calls_per_minute_over_extract_phase": round(total_calls / (extract_phase / 60), 1)
        if extract_phase else None,
        "samples": len(samples),
    }
    return ScaleResult(config=asdict(config), started_at=started_at.strftime("%Y-%m-%d %H:%M UTC"),
                       run={k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in run.items()},
                       wall_seconds=round(wall, 1), differences=[], tenants_synced=0, stats=summary,
                       tenants=list(by_tenant.values()), extract_concurrency_peak=peak, faults=faults)


# ----------------------------------------------------------------------------- report

def _fmt(n: float | int | None) -> str:
    if n is None:
        return "-"
    return f"{n:,.0f}" if float(n).is_integer() or abs(n) >= 100 else f"{n:,.1f}"


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{_fmt(min(values))} / {_fmt(statistics.median(values))} / {_fmt(max(values))}"


def markdown(results: list[ScaleResult]) -> str:
    """The section for docs/benchmarks.md: the clean run, then the fault and paced runs if made."""
    def kind(r: ScaleResult) -> str:
        if r.config.get("tenant_minute_limit"):
            return "paced"
        return "faults" if r.config.get("failing_tenant") or r.config.get("slow_tenant_latency_ms") else "clean"

    by_kind = {kind(r): r for r in results}
    clean, faulty, paced = by_kind["clean"], by_kind.get("faults"), by_kind.get("paced")
    c = clean.config
    s = clean.stats
    per = clean.tenants
    flags = (" --faults" if faulty else "") + (f" --paced {paced.config['tenant_minute_limit']}" if paced else "")
    lines = [
        f"Run {clean.started_at}: `.venv/bin/python -m benchmarks.scale_50_tenants{flags} --write-docs`; "
        f"sandbox `{c['dataset']}` (seed {c['seed']}, Xero's limits on), {c['tenants']} tenants, the last one "
        "without Journals on its plan. The real components on this 2-core machine: api-server, dag-processor, "
        f"scheduler, triggerer and one Celery worker (concurrency {c['worker_concurrency']}) on the local Redis, "
        f"metadata and IntoAEC data in two PostgreSQL databases; pool `xero_api` = {c['pool_slots']} slots. "
        "The scheduler started the run itself (DAG created unpaused). The machine was shared: 5-minute load average "
        f"{clean.load_average.get('5min_at_start')} at the start and {clean.load_average.get('5min_at_end')} at the "
        f"end, on {clean.load_average.get('cores')} cores.",
        "",
        f"- run state: **{clean.run['state']}**; {clean.tenants_synced} of {c['tenants']} tenants equal to the "
        f"sandbox's truth (counts, money totals, net by account): **{'yes' if not clean.differences else 'NO'}**",
        f"- wall time, run queued to run finished: **{_fmt(clean.wall_seconds)} s**; extract phase (first extract "
        f"start to last extract end): {_fmt(s['extract_phase_seconds'])} s",
        f"- API calls: {_fmt(s['total_calls'])} ({_fmt(s['total_calls'] / max(1, len(per)))} per tenant); "
        f"429s: **{sum(s['rate_limited'].values()) if s['rate_limited'] else 0}**; token refreshes: "
        f"{s['token_refreshes']}, invalid_grant: {s['invalid_grant']}",
        f"- overall: {_fmt(s['app_calls_per_minute_over_run'])} calls/min over the run, "
        f"{_fmt(s['app_calls_per_minute_over_extract_phase'])} over the extract phase; busiest 60 s: "
        f"**{_fmt(s['app_peak_calls_per_minute'])}** (Xero's app limit: {APP_PER_MINUTE:,})",
        f"- per tenant (min / median / max): calls {_spread([t['calls'] for t in per])}; busiest 60 s "
        f"{_spread([t['peak_calls_per_minute'] for t in per])} (limit {TENANT_PER_MINUTE}); extract task "
        f"{_spread([t['extract_seconds'] for t in per])} s, i.e. "
        f"{_spread([t['calls'] / t['extract_seconds'] * 60 for t in per if t['extract_seconds']])} calls/min "
        "while its extract ran",
        f"- extract tasks running at once: at most **{clean.extract_concurrency_peak}** (pool: {c['pool_slots']})",
        f"- calls in flight, sampled every {c['sample_every']} s: at most {s['app_peak_in_flight']} across the app and "
        f"{max((t['peak_in_flight'] for t in per), default=0)} for any one tenant (limit {TENANT_CONCURRENT}); calls "
        "last milliseconds, so samples mostly see none: the exact proof is the sandbox refusing nothing (0 429s)",
    ]
    if faulty:
        lines += ["", "### One slow and one failing tenant", ""] + _fault_lines(clean, faulty)
    if paced:
        lines += ["", f"### Every tenant paced: {paced.config['tenant_minute_limit']} calls a minute", ""]
        lines += _paced_lines(paced)
    lines += ["", "How to read it, and what it means for production:", "", *READING]
    return "\n".join(lines)


def _fault_lines(clean: ScaleResult, faulty: ScaleResult) -> list[str]:
    f = faulty.faults
    bad = {f[k]["tenant_id"] for k in ("slow", "failing") if k in f}
    healthy = [t for t in faulty.tenants if t["tenant_id"] not in bad]
    landed_healthy = max((t.get("landed_s", 0) for t in healthy), default=0)
    landed_clean = max((t.get("landed_s", 0) for t in clean.tenants), default=0)
    by_id = {t["tenant_id"]: t for t in faulty.tenants}
    lines = [f"Same run with faults injected through `/_sandbox/faults` (tenant-scoped): "
             f"run state **{faulty.run['state']}**, equal to the truth for all {faulty.tenants_synced} tenants: "
             f"**{'yes' if not faulty.differences else 'NO'}**, 429s: "
             f"{sum(faulty.stats['rate_limited'].values()) if faulty.stats['rate_limited'] else 0}.", ""]
    def others(predicate) -> int:
        return sum(1 for o in healthy for x in o["extract_tries"] if predicate(x))

    if "slow" in f:
        t = by_id[f["slow"]["tenant_id"]]
        x = t["extract_tries"][-1]
        during = others(lambda o: o["start_s"] >= x["start_s"] and o["end_s"] <= x["end_s"])
        lines.append(f"- slow: {t['tenant_name']}, every accounting call delayed {f['slow']['latency_ms']:,} ms "
                     f"(1 call in flight for {_fmt(x['seconds'])} s): its extract held one slot from "
                     f"{_fmt(x['start_s'])} s to {_fmt(x['end_s'])} s, while the other slots ran **{during}** other "
                     f"tenants' extracts from start to finish; it landed at {_fmt(t.get('landed_s'))} s")
    if "failing" in f:
        t = by_id[f["failing"]["tenant_id"]]
        tries = t["extract_tries"]
        text = ", ".join(f"try {x['try']} {x['state']} after {_fmt(x['seconds'])} s ({_fmt(x['start_s'])}-"
                         f"{_fmt(x['end_s'])} s)" for x in tries)
        waiting = ""
        if len(tries) > 1:
            gap = (tries[0]["end_s"], tries[-1]["start_s"])
            landed = sum(1 for o in healthy if gap[0] <= o.get("landed_s", -1) <= gap[1])
            waiting = (f"; during Airflow's retry delay its slot was free and **{landed}** other tenants "
                       "landed")
        lines.append(f"- failing: {t['tenant_name']}, {f['failing']['http_500s']} HTTP 500s on Contacts: {text}"
                     f"{waiting}; it landed at {_fmt(t.get('landed_s'))} s")
    lines += [
        f"- the other {len(healthy)} tenants had all landed **{_fmt(landed_healthy)} s** after the run started "
        f"(all {len(clean.tenants)} of the clean run: {_fmt(landed_clean)} s, on a machine whose load varies "
        "between runs): the slow and failing tenants cost the others only the slot each held while it ran, "
        "never a wait on them",
        f"- run wall time {_fmt(faulty.wall_seconds)} s. The run (and `report`) cannot end before the failing "
        "tenant's last retry, so a tenant that stays broken holds the run open for its retries (2 × 2 min) and, "
        "with `max_active_runs=1`, delays the next scheduled run by as much, not by hours",
    ]
    return lines


def _paced_lines(paced: ScaleResult) -> list[str]:
    c, s, per = paced.config, paced.stats, paced.tenants
    limit = c["tenant_minute_limit"]
    return [
        f"The sandbox's per-tenant minute limit and the connection's `calls_per_minute` both set to {limit}, so "
        f"each tenant's ~8 calls must spread over more than a minute and the limiter, not the work, sets the pace; "
        f"pool `xero_api` = {c['pool_slots']} slots, worker concurrency {c['worker_concurrency']} (run "
        f"{paced.started_at}, 5-minute load average {paced.load_average.get('5min_at_start')} to "
        f"{paced.load_average.get('5min_at_end')}).",
        "",
        f"- run state: **{paced.run['state']}**; equal to the truth for all {paced.tenants_synced} tenants: "
        f"**{'yes' if not paced.differences else 'NO'}**; 429s: "
        f"**{sum(s['rate_limited'].values()) if s['rate_limited'] else 0}**",
        f"- wall time: {_fmt(paced.wall_seconds)} s; extract task per tenant (min / median / max): "
        f"{_spread([t['extract_seconds'] for t in per])} s",
        f"- per tenant, most calls the sandbox counted in one of its minute windows: "
        f"{_spread([t['peak_minute_window'] for t in per])} (limit {limit})",
        f"- extract tasks running at once: at most **{paced.extract_concurrency_peak}** (pool: {c['pool_slots']}); "
        f"busiest 60 s across the app: {_fmt(s['app_peak_calls_per_minute'])} calls, more than {c['pool_slots']} "
        f"slots × {limit}: a slot passes to the next tenant the moment one finishes, and the new tenant starts "
        "with a full minute of its own, so the pool alone does not cap the app's calls per minute (see below)",
    ]


READING = [
    "- One extract task per tenant makes that tenant's calls one after another, and `max_active_runs=1` keeps "
    "two runs of `xero_sync` from extracting the same tenant at once: **a tenant never has more than one call "
    "in flight** from the sync (Xero allows 5), whatever the pool size. The remaining 4 are headroom for "
    "`xero_backfill`, the connect page and the keep-alive.",
    "- The per-tenant limiter (`calls_per_minute`, 60 by default, honouring `X-MinLimit-Remaining`) paces each "
    "tenant to Xero's minute limit and stops a tenant cleanly at its day limit.",
    "- The `xero_api` pool is **not** per tenant: its slots are how many tenants are extracted at once, across "
    "all workers. It bounds calls in flight across the app (one per slot) but not calls per minute: small "
    "tenants finishing and starting within a minute each bring a fresh per-tenant minute. What holds the app "
    "under Xero's 10,000/min is the limiter's app brake: every response carries `X-AppMinLimit-Remaining`, and "
    "once 50 or fewer remain each running extract waits for its own minute to roll over before calling again, "
    "so at most one more call per running extract. **Keep the pool at 50 slots or fewer** (the brake's "
    "reserve) and the app cannot pass the limit; 16 (the compose default) is far below it.",
    "- Size the pool below the workers' total concurrency (Celery `worker_concurrency` × workers), so loads "
    "always find a free worker and each tenant lands as soon as its extract is done.",
    "- Small tenants (about 8 calls each here) finish in seconds, so wall time is Airflow's per-task overhead "
    "(starting a task process, importing the package) on 2 shared cores, not Xero's limits. Calls/min per tenant "
    "while its extract runs can look high, but no tenant comes near 60 calls in any minute. Large tenants are "
    "bounded by 60 calls/min each: 50 of them need 50 slots to sync in parallel, well inside the app limit.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_50_tenants", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--dataset", default="many")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--executor", default="CeleryExecutor", choices=["CeleryExecutor", "LocalExecutor"])
    parser.add_argument("--pool-slots", type=int, default=4)
    parser.add_argument("--worker-concurrency", type=int, default=6)
    parser.add_argument("--faults", action="store_true", help="also run with one slow and one failing tenant")
    parser.add_argument("--slow-latency-ms", type=int, default=4000)
    parser.add_argument("--paced", type=int, default=0, metavar="N",
                        help="also run with every tenant limited to N calls a minute (sandbox and connection)")
    parser.add_argument("--paced-pool-slots", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=1500)
    parser.add_argument("--write-docs", action="store_true", help=f"rewrite the '{HEADING}' section of "
                        "docs/benchmarks.md")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--workdir", type=Path, help="keep Airflow's home and logs here")
    parser.add_argument("--render", type=Path, help="run nothing: report the results saved by --json")
    args = parser.parse_args(argv)

    def say(message: str) -> None:
        print(f"[scale] {message}", flush=True)

    base = ScaleConfig(tenants=args.tenants, dataset=args.dataset, seed=args.seed, executor=args.executor,
                       pool_slots=args.pool_slots, worker_concurrency=args.worker_concurrency, timeout=args.timeout)
    results = [ScaleResult(**r) for r in json.loads(args.render.read_text())] if args.render else []
    scenarios = [] if args.render else [("clean", base)]
    if args.faults and not args.render:
        scenarios.append(("faults", ScaleConfig(**{**asdict(base), "slow_tenant_latency_ms": args.slow_latency_ms,
                                                   "failing_tenant": True})))
    if args.paced and not args.render:
        # Paced extracts mostly wait, so many run at once without loading the CPU.
        scenarios.append(("paced", ScaleConfig(**{**asdict(base), "tenant_minute_limit": args.paced,
                                                  "pool_slots": args.paced_pool_slots,
                                                  "worker_concurrency": args.paced_pool_slots + 4})))
    for name, config in scenarios:
        say(f"--- scenario: {name}")
        workdir = args.workdir / name if args.workdir else None
        result = run_scale(config, workdir=workdir, log=say)
        say(f"{name}: state {result.run['state']}, wall {result.wall_seconds} s, "
            f"differences {len(result.differences)}, 429s {result.stats['rate_limited']}, "
            f"tenants equal to truth {result.tenants_synced}")
        results.append(result)
    text = markdown(results)
    print()
    print(text)
    if args.json and not args.render:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2, default=str))
    ok = all(r.ok for r in results)
    if args.write_docs:
        if ok:
            from benchmarks.report import write_section

            write_section(HEADING, text)
            say(f"wrote the '{HEADING}' section of docs/benchmarks.md")
        else:
            say("not writing docs/benchmarks.md: a run failed its checks")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
