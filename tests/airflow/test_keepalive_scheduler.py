"""The keep-alive under a real scheduler: parsed, scheduled unprompted, run by LocalExecutor workers.

``airflow dags test`` runs tasks in-process, where they may do what real workers may not (write
connections, for one), so this starts the real components: api-server (the Execution API the
workers talk to), dag-processor and scheduler, on a PostgreSQL metadata database, with only the
keep-alive DAG in the DAG folder. Nobody triggers the DAG: it is created unpaused and the
scheduler runs it, which is exactly what keeps grants alive while xero_sync is paused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from intoaec_xero import db
from intoaec_xero.tokens import TokenCipher
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.airflow.conftest import CLIENT_ID, CLIENT_SECRET, connect
from tests.conftest import POSTGRES_ADMIN_URL, REPO
from tests.harness.airflow import stop_group

pytestmark = [pytest.mark.airflow, pytest.mark.integration]


@pytest.fixture
def databases():
    """A metadata database for Airflow and an IntoAEC database, both fresh on the local PostgreSQL."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    names = [f"keepalive_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("airflow", "intoaec")]
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    urls = [make_url(POSTGRES_ADMIN_URL).set(database=n).render_as_string(hide_password=False) for n in names]
    yield urls
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_the_scheduler_renews_the_grant_with_nobody_triggering_the_dag(tmp_path, databases):
    from xero_sandbox.testing import free_port, running_sandbox

    metadata_url, intoaec_url = databases
    fernet_key = Fernet.generate_key().decode()
    engine = db.create_db_engine(intoaec_url)
    db.upgrade(engine)
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "xero_keepalive.py").symlink_to(REPO / "dags" / "xero_keepalive.py")
    port = free_port()

    with running_sandbox(dataset="small", seed=3) as sandbox:
        _, store = connect(sandbox, engine, cipher=TokenCipher(fernet_key))
        before = store.load()
        sandbox.reset_stats()
        env = dict(
            os.environ,
            PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            AIRFLOW_HOME=str(tmp_path / "home"),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=metadata_url,
            AIRFLOW__CORE__DAGS_FOLDER=str(dags),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(tmp_path / "no-plugins"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__PARALLELISM="2",
            AIRFLOW__CORE__FERNET_KEY=fernet_key,
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            AIRFLOW__API__SECRET_KEY=Fernet.generate_key().decode(),
            AIRFLOW__API_AUTH__JWT_SECRET=Fernet.generate_key().decode(),
            AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
            AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT="30",  # as tests/harness/airflow.py says why
            AIRFLOW_CONN_XERO_DEFAULT=json.dumps({
                "conn_type": "xero", "login": CLIENT_ID, "password": CLIENT_SECRET,
                "extra": {"api_base_url": f"{sandbox.base_url}/api.xro/2.0", "identity_base_url": sandbox.base_url,
                          "sandbox": True},
            }),
            AIRFLOW_CONN_INTOAEC_DB=json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": intoaec_url}}),
            TZ="UTC",
        )
        env.pop("INTOAEC_FERNET_KEY", None)
        (tmp_path / "no-plugins").mkdir()
        airflow = str(Path(sys.executable).with_name("airflow"))
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
        components = []
        try:
            for command in (["api-server", "--host", "127.0.0.1", "--port", str(port)], ["dag-processor"],
                            ["scheduler"]):
                log = open(tmp_path / f"{command[0]}.log", "wb")  # noqa: SIM115 - closed with the process
                components.append((subprocess.Popen([airflow, *command], env=env, stdout=log,
                                                    stderr=subprocess.STDOUT, start_new_session=True), log))
                if command[0] == "api-server":
                    # A task reports to the Execution API the moment it starts: on a busy machine the
                    # scheduler could otherwise queue it before the API server listens.
                    _wait_for_api_server(port, components, tmp_path)
            run = _wait_for_run(metadata_url, components, tmp_path)
        finally:
            for process, log in components:
                stop_group(process)
                log.close()

        assert run["state"] == "success", _logs(tmp_path)
        assert run["run_type"] == "scheduled"  # nobody triggered it
        assert run["grants"] == ["xero_default"]  # one mapped renewal per connection, labelled by it
        stats = sandbox.stats()
        assert stats["token_refreshes"] == 1 and stats["invalid_grant"] == 0
        after = store.load()
        assert after.previous_refresh_token == before.refresh_token != after.refresh_token
        task_logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "home" / "logs").rglob("*")
                            if p.is_file())
        assert "Kept the Xero grant of 'xero_default' alive" in task_logs
        for secret in (CLIENT_SECRET, before.access_token, before.refresh_token, after.access_token,
                       after.refresh_token):
            assert secret not in task_logs


def _wait_for_api_server(port: int, components, tmp_path: Path, timeout: float = 240) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process = components[0][0]
        if process.poll() is not None:
            pytest.fail(f"api-server exited ({process.returncode}):\n{_logs(tmp_path)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/version", timeout=5):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(1)
    pytest.fail(f"the api-server did not answer within {timeout:.0f} s:\n{_logs(tmp_path)}")


def _wait_for_run(metadata_url: str, components, tmp_path: Path, timeout: float = 240) -> dict:
    metadata = create_engine(metadata_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for process, _ in components:
                if process.poll() is not None:
                    pytest.fail(f"{process.args[1]} exited ({process.returncode}):\n{_logs(tmp_path)}")
            try:
                with metadata.connect() as conn:
                    row = conn.execute(text(
                        "SELECT state, run_type FROM dag_run WHERE dag_id = 'xero_keepalive' "
                        "AND state IN ('success', 'failed') ORDER BY id LIMIT 1")).mappings().first()
                    labels = conn.execute(text(
                        "SELECT rendered_map_index FROM task_instance WHERE dag_id = 'xero_keepalive' "
                        "AND task_id = 'renew_grant'")).scalars().all()
            except Exception:  # noqa: BLE001 - tables appear once the components have started
                row = None
            if row:
                return dict(row) | {"grants": labels}
            time.sleep(1)
    finally:
        metadata.dispose()
    pytest.fail(f"no finished xero_keepalive run after {timeout:.0f} s:\n{_logs(tmp_path)}")


def _logs(tmp_path: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in tmp_path.glob("*.log"))
