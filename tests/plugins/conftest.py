"""A real Airflow API server with this project's plugin, pointed at a sandbox, for the page tests.

One per test session (a migrate and a start take ~20 s): SimpleAuthManager with two admins
(``admin``, ``deputy``) and a ``viewer``, the Test button enabled, the ``xero_default`` and
``intoaec_db`` connections from the environment, and a fixed Fernet key so the tests can read
what the page stored. It trusts forwarded headers from 127.0.0.1 (``--proxy-headers``), as behind a TLS proxy that sends
them. ``airflow_ui_behind_tls`` is a second server on the same Airflow home whose configured
base URL is https while it is reached over plain http, as behind a proxy whose headers are not
trusted.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from intoaec_xero import db
from intoaec_xero.schema import (
    dq_results,
    intoaec_connect_sessions,
    intoaec_firm_tenants,
    project_summary,
    sync_runs,
    sync_state,
    xero_tenants,
    xero_tokens,
)
from intoaec_xero.tokens import TokenCipher, TokenStore
from sqlalchemy import create_engine, delete, text
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_ADMIN_URL, REPO

PASSWORDS = {"admin": "admin-password", "viewer": "viewer-password", "deputy": "deputy-password"}
CLIENT_ID, CLIENT_SECRET = "sandbox-client", "sandbox-secret"


@dataclass
class AirflowUI:
    base_url: str
    sandbox: object
    db_url: str
    fernet_key: str
    log_path: Path
    home: Path
    env: dict[str, str] = field(repr=False, default_factory=dict)

    @property
    def secret_key(self) -> bytes:
        """The API server's [api] secret_key, which signs the page's form tokens."""
        return self.env["AIRFLOW__API__SECRET_KEY"].encode()

    @property
    def data_dir(self) -> Path:
        """The server's INTOAEC_DATA_DIR (Data Docs live under it)."""
        return self.home / "data"

    def session(self, user: str = "admin") -> requests.Session:
        """A logged-in browser-like session: Airflow's JWT in its ``_token`` cookie, as the UI has it."""
        answer = requests.post(f"{self.base_url}/auth/token", json={"username": user, "password": PASSWORDS[user]},
                               timeout=30)
        answer.raise_for_status()
        session = requests.Session()
        session.cookies.set("_token", answer.json()["access_token"])
        return session

    def bearer(self, user: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.session(user).cookies['_token']}"}

    @property
    def engine(self):
        return db.create_db_engine(self.db_url)

    def store(self) -> TokenStore:
        return TokenStore(self.engine, "xero_default", TokenCipher(self.fernet_key))

    def reset(self) -> None:
        """Back to "never connected": no grant, no organisations, no sync history."""
        with self.engine.begin() as conn:
            for table in (xero_tokens, xero_tenants, sync_runs, sync_state, dq_results, project_summary,
                          intoaec_firm_tenants, intoaec_connect_sessions):
                conn.execute(delete(table))

    def add_dag_run(self, dag_id: str, run_id: str) -> None:
        """Make a run known to this Airflow, as the scheduler would have, so the page may link to it."""
        with sqlite3.connect(self.home / "airflow.db") as conn:
            conn.execute("INSERT OR IGNORE INTO dag_run (dag_id, run_id, run_type, run_after, state) "
                         "VALUES (?, ?, 'manual', CURRENT_TIMESTAMP, 'success')", (dag_id, run_id))


def _free_port() -> int:
    from xero_sandbox.testing import free_port

    return free_port()


@pytest.fixture(scope="session")
def airflow_ui():
    from xero_sandbox.testing import running_sandbox

    home = Path(tempfile.mkdtemp(prefix="intoaec-airflow-ui-"))
    (home / "passwords.json").write_text(json.dumps(PASSWORDS))
    name = f"intoaec_ui_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db_url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    db.upgrade(db.create_db_engine(db_url))
    fernet_key = Fernet.generate_key().decode()
    port = _free_port()
    with running_sandbox(dataset="small", seed=1) as sandbox:
        env = dict(
            os.environ,
            AIRFLOW_HOME=str(home),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin,viewer:viewer,deputy:admin",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(home / "passwords.json"),
            AIRFLOW__CORE__TEST_CONNECTION="Enabled",
            AIRFLOW__CORE__FERNET_KEY=fernet_key,
            AIRFLOW__API__SECRET_KEY=Fernet.generate_key().decode(),
            AIRFLOW__API_AUTH__JWT_SECRET=Fernet.generate_key().decode(),
            AIRFLOW__API__WORKERS="1",
            INTOAEC_DATA_DIR=str(home / "data"),
            AIRFLOW_CONN_XERO_DEFAULT=json.dumps({
                "conn_type": "xero", "login": CLIENT_ID, "password": CLIENT_SECRET,
                "extra": {"api_base_url": f"{sandbox.base_url}/api.xro/2.0", "identity_base_url": sandbox.base_url,
                          "sandbox": True},
            }),
            # The same app with a mistyped secret: Connect must say so before anyone signs in at Xero.
            AIRFLOW_CONN_XERO_WRONG_SECRET=json.dumps({
                "conn_type": "xero", "login": CLIENT_ID, "password": "not-the-secret",
                "extra": {"api_base_url": f"{sandbox.base_url}/api.xro/2.0", "identity_base_url": sandbox.base_url,
                          "sandbox": True},
            }),
            AIRFLOW_CONN_INTOAEC_DB=json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": db_url}}),
        )
        env.pop("INTOAEC_FERNET_KEY", None)  # the server must use Airflow's key, as in production
        env.pop("INTOAEC_STALE_AFTER_MINUTES", None)  # the default threshold (2 h), which the tests rely on
        env.pop("AIRFLOW__API__BASE_URL", None)
        env.pop("FORWARDED_ALLOW_IPS", None)  # uvicorn's default: trust forwarded headers from 127.0.0.1 only
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        log_path = home / "api-server.log"
        subprocess.run([_airflow(), "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
        try:
            with _api_server(env, port, log_path, "--proxy-headers") as base_url:
                yield AirflowUI(base_url, sandbox, db_url, fernet_key, log_path, home, env)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


@pytest.fixture(scope="session")
def airflow_ui_behind_tls(airflow_ui):
    """The same Airflow (home, users, connections, keys) served again, configured as https://airflow.intoaec.test."""
    env = dict(airflow_ui.env, AIRFLOW__API__BASE_URL="https://airflow.intoaec.test")
    log_path = airflow_ui.home / "api-server-behind-tls.log"
    with _api_server(env, _free_port(), log_path) as base_url:
        yield AirflowUI(base_url, airflow_ui.sandbox, airflow_ui.db_url, airflow_ui.fernet_key, log_path,
                        airflow_ui.home, env)


def _airflow() -> str:
    return str(Path(sys.executable).with_name("airflow"))


@contextmanager
def _api_server(env: dict[str, str], port: int, log_path: Path, *options: str):
    """``airflow api-server`` on 127.0.0.1:port until the block ends; yields its base URL."""
    with open(log_path, "wb") as log:
        server = subprocess.Popen([_airflow(), "api-server", "--host", "127.0.0.1", "--port", str(port), *options],
                                  env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{base_url}/api/v2/monitor/health", server, log_path, "airflow api-server")
        yield base_url
    finally:
        _stop_group(server)


def wait_until_answers(url: str, process: subprocess.Popen, log_path: Path, what: str,
                       timeout: float = 180) -> None:
    """Poll ``url`` until it answers 200; fails with ``process``'s log if it exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited ({process.returncode}):\n{log_path.read_text()[-4000:]}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    pytest.fail(f"{what} did not answer at {url} within {timeout:.0f} s:\n{log_path.read_text()[-4000:]}")


def _stop_group(process: subprocess.Popen) -> None:
    """The API server forks workers: stop its whole process group, which only it and they are in."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    try:
        os.killpg(process.pid, signal.SIGKILL)  # any straggler of that group
    except ProcessLookupError:
        pass
