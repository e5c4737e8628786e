"""``intoaec-xero`` with its connections stored in Airflow's metadata database.

As a user sets them up: ``airflow connections add`` (the same store as Admin ▸ Connections),
with no ``AIRFLOW_CONN_*`` variable anywhere. Outside a task the Task SDK's own lookup never
reads that database, so this is the path the environment-variable tests cannot see.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from intoaec_xero import db, report
from intoaec_xero.streams import STREAMS
from intoaec_xero.tokens import TokenStore

from tests.airflow.conftest import CLIENT_ID, CLIENT_SECRET

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

BIN = Path(sys.executable).parent
CLI, AIRFLOW = str(BIN / "intoaec-xero"), str(BIN / "airflow")
SANDBOX_USER = "demo@intoaec.test:sandbox"


class StoredSetup:
    def __init__(self, home: Path, env: dict[str, str], db_url: str, sandbox):
        self.home, self.env, self.db_url, self.sandbox = home, env, db_url, sandbox

    def airflow(self, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([AIRFLOW, *args], env=self.env, cwd=self.home, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([CLI, *args], env=env or self.env, cwd=self.home, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=300)

    def add_xero_connection(self, conn_id: str) -> None:
        self.airflow("connections", "add", conn_id, "--conn-type", "xero", "--conn-login", CLIENT_ID,
                     "--conn-password", CLIENT_SECRET, "--conn-extra",
                     json.dumps({"api_base_url": f"{self.sandbox.base_url}/api.xro/2.0",
                                 "identity_base_url": self.sandbox.base_url, "sandbox": True}))


@pytest.fixture(scope="module")
def stored(sandbox, tmp_path_factory):
    """A fresh Airflow home whose metadata database holds ``xero_default`` and ``intoaec_db``."""
    home = tmp_path_factory.mktemp("airflow-home")
    db_url = f"sqlite:///{home / 'intoaec.db'}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AIRFLOW_CONN_") and k not in ("INTOAEC_DB_URL", "INTOAEC_FERNET_KEY",
                                                              "INTOAEC_STALE_AFTER_MINUTES")}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
               AIRFLOW__CORE__LOAD_EXAMPLES="False", INTOAEC_DATA_DIR=str(home / "data"))
    setup = StoredSetup(home, env, db_url, sandbox)
    setup.airflow("db", "migrate")
    setup.add_xero_connection("xero_default")
    setup.airflow("connections", "add", "intoaec_db", "--conn-type", "generic",
                  "--conn-extra", json.dumps({"sqlalchemy_url": db_url}))
    return setup


def test_connect_sync_and_status_read_the_connections_airflow_stored(stored, sandbox):
    assert not [k for k in stored.env if k.startswith("AIRFLOW_CONN_")]
    listed = stored.airflow("connections", "get", "xero_default", "--output", "json")
    assert "xero_default" in listed.stdout

    connected = stored.cli("connect", "--sandbox-user", SANDBOX_USER)
    assert connected.returncode == 0, connected.stdout + connected.stderr
    assert "Connected to 2 organisations:" in connected.stdout
    assert connected.stdout.count("Connected · Sync Enabled · Future Access Saved") == 2

    synced = stored.cli("sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "Harbourside Architects Ltd" in synced.stdout

    status = stored.cli("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "Harbourside Architects Ltd" in status.stdout
    assert "Meridian Structural Engineers Pty Ltd" in status.stdout

    engine = db.create_db_engine(stored.db_url)  # the database named only in the stored intoaec_db
    tables = {t for s in STREAMS.values() for t in s.targets}
    assert report.compare_with_truth(engine, sandbox.truth(), tables) == []
    counts = report.row_counts(engine)
    assert len(counts) == 2 and all(c["invoices"] > 0 for c in counts.values())
    for output in (connected, synced, status):
        assert CLIENT_SECRET not in output.stdout + output.stderr


def test_other_subcommands_and_conn_id_read_stored_connections_too(stored, tmp_path):
    stored.add_xero_connection("xero_second_firm")
    other_db = f"sqlite:///{tmp_path / 'second.db'}"
    connected = stored.cli("--db-url", other_db, "--conn-id", "xero_second_firm", "connect",
                           "--sandbox-user", SANDBOX_USER)
    assert connected.returncode == 0, connected.stdout + connected.stderr
    assert "Connected to 2 organisations:" in connected.stdout
    assert TokenStore(db.create_db_engine(other_db), "xero_second_firm").status() is not None

    for args in (["quarantine", "list"], ["backfill", "status"], ["counts"], ["db", "upgrade"]):
        result = stored.cli(*args)
        assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
        assert "is missing" not in result.stderr


def test_an_environment_variable_shadows_the_stored_connection(stored, tmp_path):
    shadow_db = tmp_path / "shadow.db"
    env = dict(stored.env, AIRFLOW_CONN_INTOAEC_DB=json.dumps(
        {"conn_type": "generic", "extra": {"sqlalchemy_url": f"sqlite:///{shadow_db}"}}))
    upgraded = stored.cli("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert str(shadow_db) in upgraded.stdout and shadow_db.exists()


def test_a_connection_stored_nowhere_says_where_it_was_looked_for(stored):
    missing = stored.cli("--conn-id", "xero_nobody", "connect", "--sandbox-user", SANDBOX_USER)
    assert missing.returncode == 1
    assert "Traceback" not in missing.stderr
    assert "The Airflow connection 'xero_nobody' is missing" in missing.stderr
    assert "airflow connections add xero_nobody" in missing.stderr
    assert str(stored.home / "airflow.db") in missing.stderr  # names the metadata database it read


# -- which lookup runs where (no subprocess) ---------------------------------------------------------


@pytest.fixture
def lookups(monkeypatch):
    """Both of Airflow's lookups replaced by recorders."""
    from airflow.models.connection import Connection as StoredConnection
    from airflow.sdk import BaseHook
    from intoaec_xero.airflow import connections

    calls = []

    def task_sdk(conn_id):
        calls.append(("task_sdk", conn_id))
        return "task-sdk-connection"

    def stored_lookup(conn_id, team_name=None):
        calls.append(("stored", conn_id))
        return StoredConnection(conn_id=conn_id, conn_type="xero", login="id", password="secret-value",
                                extra=json.dumps({"scopes": "offline_access"}))

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(lambda cls, conn_id: task_sdk(conn_id)))
    monkeypatch.setattr(StoredConnection, "get_connection_from_secrets",
                        classmethod(lambda cls, conn_id, team_name=None: stored_lookup(conn_id, team_name)))
    monkeypatch.delenv("_AIRFLOW_PROCESS_CONTEXT", raising=False)
    return connections, calls


def test_outside_airflow_the_stored_lookup_runs_and_gives_a_task_sdk_connection(lookups):
    from airflow.sdk import Connection

    connections, calls = lookups
    conn = connections.get_connection("xero_default")
    assert calls == [("stored", "xero_default")]
    assert isinstance(conn, Connection)
    assert (conn.login, conn.password, conn.extra_dejson) == ("id", "secret-value", {"scopes": "offline_access"})


def test_inside_a_task_the_task_sdk_lookup_stays(lookups, monkeypatch):
    from airflow.sdk.execution_time import task_runner

    connections, calls = lookups
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", object(), raising=False)
    assert connections.get_connection("xero_default") == "task-sdk-connection"
    assert calls == [("task_sdk", "xero_default")]


@pytest.mark.parametrize("context", ["server", "client"])
def test_in_airflow_components_the_lookup_airflow_set_up_stays(lookups, monkeypatch, context):
    connections, calls = lookups
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", context)
    assert connections.get_connection("intoaec_db") == "task-sdk-connection"
    assert calls == [("task_sdk", "intoaec_db")]


def test_a_connection_form_under_test_is_read_from_memory(lookups):
    from airflow.sdk.execution_time.context import _preset_connections

    connections, calls = lookups
    token = _preset_connections.set({"tmpformid": object()})
    try:
        assert connections.get_connection("tmpformid") == "task-sdk-connection"
    finally:
        _preset_connections.reset(token)
    assert calls == [("task_sdk", "tmpformid")]
