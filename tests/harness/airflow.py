"""Real Airflow components for the tests that need what ``airflow dags test`` hides.

``dags test`` runs every task in the test's own process; the scheduler, the executor's workers,
the Execution API and pools only exist when the components run. :func:`airflow_stack` starts
them (api-server, dag-processor, scheduler with LocalExecutor workers) on a PostgreSQL metadata
database, each in its own process group, with only the DAG files the test names in the DAG
folder; it stops each group (and only those) when the block ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.harness.xero import CLIENT_ID, CLIENT_SECRET

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
# Variables of the test session that must not leak into the components: they bring their own.
PRIVATE = ("INTOAEC_FERNET_KEY", "INTOAEC_XERO_CONN_IDS", "INTOAEC_BACKFILL_SHARE", "INTOAEC_XERO_DAY_LIMIT",
           "INTOAEC_DB_URL", "AIRFLOW_CONFIG")


@dataclass
class AirflowStack:
    home: Path
    env: dict[str, str] = field(repr=False)
    metadata_url: str
    api_port: int
    processes: list[subprocess.Popen] = field(default_factory=list, repr=False)

    def airflow(self, *args: str, timeout: float = 300) -> str:
        """An ``airflow`` CLI command against this stack; its output (it must succeed)."""
        result = subprocess.run([AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"airflow {' '.join(args)}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
        return result.stdout + result.stderr

    def scalar(self, query: str) -> Any:
        """One value from the metadata database, or None while its tables do not exist yet."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.metadata_url)
        try:
            with engine.connect() as conn:
                return conn.execute(text(query)).scalar()
        except Exception:  # noqa: BLE001 - tables appear once the components have migrated and started
            return None
        finally:
            engine.dispose()

    def rows(self, query: str) -> list[Any]:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.metadata_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(query)).mappings())
        finally:
            engine.dispose()

    def wait_for(self, what: str, query: str, timeout: float = 480) -> Any:
        """Poll ``query`` until it gives a value; fails if a component exits or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    pytest.fail(f"airflow {process.args[1]} exited ({process.returncode}):\n{self.logs()}")
            value = self.scalar(query)
            if value is not None:
                return value
            time.sleep(1)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}:\n{self.logs()}")

    def logs(self, chars: int = 3000) -> str:
        """The tail of each component's log."""
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}"
                         for p in sorted((self.home / "components").glob("*.log")))

    def task_logs(self) -> str:
        """Every task log the workers wrote, concatenated."""
        return "".join(p.read_text(errors="replace") for p in (self.home / "logs").rglob("*") if p.is_file())


def connection_env(sandbox_url: str, intoaec_url: str, **extra: Any) -> dict[str, str]:
    """``xero_default`` (the sandbox's demo app) and ``intoaec_db`` as Airflow reads them from the environment."""
    return {
        "AIRFLOW_CONN_XERO_DEFAULT": json.dumps({
            "conn_type": "xero", "login": CLIENT_ID, "password": CLIENT_SECRET,
            "extra": {"api_base_url": f"{sandbox_url}/api.xro/2.0", "identity_base_url": sandbox_url,
                      "sandbox": True, **extra},
        }),
        "AIRFLOW_CONN_INTOAEC_DB": json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": intoaec_url}}),
    }


@contextmanager
def airflow_stack(workdir: Path, *, dags: Sequence[str], metadata_url: str, fernet_key: str, parallelism: int = 2,
                  pools: dict[str, int] | None = None, env: dict[str, str] | None = None,
                  plugins: bool = False, triggerer: bool = False) -> Iterator[AirflowStack]:
    """Migrate ``metadata_url``, set the pools, start the components; stop them when the block ends.

    ``dags`` are file names under ``dags/``; ``env`` adds to (or overrides) the components'
    environment: connections (see :func:`connection_env`), ``INTOAEC_*`` settings; ``plugins``
    loads the repository's plugins (the Xero page) into the API server; ``triggerer`` starts one too, as a
    full install has (the home page's health shows it).
    """
    from xero_sandbox.testing import free_port

    home = workdir / "airflow-home"
    (home / "components").mkdir(parents=True, exist_ok=True)
    dag_folder, plugin_folder = workdir / "dags", (REPO / "plugins" if plugins else workdir / "no-plugins")
    dag_folder.mkdir(exist_ok=True)
    plugin_folder.mkdir(exist_ok=True)
    for name in dags:
        (dag_folder / name).symlink_to(REPO / "dags" / name)
    api_port = free_port()
    settings = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=metadata_url,
        AIRFLOW__CORE__DAGS_FOLDER=str(dag_folder),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(plugin_folder),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM=str(parallelism),
        AIRFLOW__CORE__FERNET_KEY=fernet_key,
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{api_port}/execution/",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__API__SECRET_KEY=uuid.uuid4().hex,
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API_AUTH__JWT_SECRET=uuid.uuid4().hex,
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
        # A task's first call to a just-started API server can take seconds on a busy machine;
        # at Airflow's 5 s the task fails to start and waits out its DAG's retry delay.
        AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT="30",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
        INTOAEC_DATA_DIR=str(workdir / "var"),
        TZ="UTC",
        GX_ANALYTICS_ENABLED="false",
    )
    for name in PRIVATE:
        settings.pop(name, None)
    commands = [["api-server", "--host", "127.0.0.1", "--port", str(api_port)], ["dag-processor"], ["scheduler"],
                *([["triggerer"]] if triggerer else [])]
    settings.update(env or {})
    stack = AirflowStack(home=home, env=settings, metadata_url=metadata_url, api_port=api_port)
    stack.airflow("db", "migrate")
    for pool, slots in (pools or {"xero_api": 5}).items():
        stack.airflow("pools", "set", pool, str(slots), "set by the test")
    logs = []
    try:
        for command in commands:
            log = open(home / "components" / f"{command[0]}.log", "wb")  # noqa: SIM115 - closed with the process
            logs.append(log)
            stack.processes.append(subprocess.Popen([AIRFLOW, *command], env=settings, stdout=log,
                                                    stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True))
        yield stack
    finally:
        for process in reversed(stack.processes):
            stop_group(process)
        for log in logs:
            log.close()


def stop_group(process: subprocess.Popen, grace: float = 30) -> None:
    """Stop a component started in its own process group: that group only (it and its workers)."""
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
