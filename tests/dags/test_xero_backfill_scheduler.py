"""``airflow backfill create`` for three month windows, run by the real scheduler.

``dag.test`` runs tasks in-process; this starts the real components (api-server for the
Execution API, dag-processor, scheduler with LocalExecutor workers, parallelism 2) on a
PostgreSQL metadata database with only xero_backfill in the DAG folder, creates the backfill
with the CLI the README documents, and checks what landed in the IntoAEC database. Everything
it starts runs in its own process group and is killed by group at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from intoaec_xero import db, report
from intoaec_xero.backfill import progress
from intoaec_xero.pipeline import run_sync
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import credit_notes, invoice_lines, invoices, payments, sync_runs
from intoaec_xero.tokens import TokenCipher
from sqlalchemy import and_, create_engine, func, select, text
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_ADMIN_URL, REPO
from tests.intoaec_xero.backfill.conftest import connect, sync_client

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

FIRST, AFTER_LAST = date(2025, 1, 1), date(2025, 4, 1)  # --from-date 2025-01-01 --to-date 2025-03-01
TIMEOUT = 480


@pytest.fixture
def databases():
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    names = [f"backfill_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("airflow", "intoaec")]
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield [make_url(POSTGRES_ADMIN_URL).set(database=n).render_as_string(hide_password=False) for n in names]
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_backfill_create_runs_month_windows_under_the_scheduler(tmp_path, databases):
    from xero_sandbox.testing import free_port, running_sandbox

    metadata_url, intoaec_url = databases
    fernet_key = Fernet.generate_key().decode()
    engine = db.create_db_engine(intoaec_url)
    db.upgrade(engine)
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "xero_backfill.py").symlink_to(REPO / "dags" / "xero_backfill.py")
    (tmp_path / "no-plugins").mkdir()
    port = free_port()

    with running_sandbox(dataset="small", seed=4, extra_args=["--minute-limit", "100000"]) as sandbox:
        connect(sandbox, engine)
        env = _airflow_env(tmp_path, dags, metadata_url, intoaec_url, fernet_key, port, sandbox.base_url)
        # The token store is read through the hook, which encrypts with Airflow's Fernet key.
        from intoaec_xero.tokens import TokenStore

        plain = TokenStore(engine, "xero_default", TokenCipher(None)).load()
        TokenStore(engine, "xero_default", TokenCipher(fernet_key)).save(plain)

        airflow = str(Path(sys.executable).with_name("airflow"))
        _run([airflow, "db", "migrate"], env)
        _run([airflow, "pools", "set", "xero_api", "5", "Xero API: concurrent calls per tenant"], env)
        components = []
        try:
            for command in (["api-server", "--host", "127.0.0.1", "--port", str(port)], ["dag-processor"],
                            ["scheduler"]):
                log = open(tmp_path / f"{command[0]}.log", "wb")  # noqa: SIM115 - closed with the process
                components.append((subprocess.Popen([airflow, *command], env=env, stdout=log,
                                                    stderr=subprocess.STDOUT, start_new_session=True), log))
            metadata = create_engine(metadata_url)
            try:
                paused = _wait(metadata, components, tmp_path, "the DAG to be parsed",
                               "SELECT is_paused FROM dag WHERE dag_id = 'xero_backfill'")
                assert paused is True  # created paused

                created = _run([airflow, "backfill", "create", "--dag-id", "xero_backfill", "--from-date",
                                "2025-01-01", "--to-date", "2025-03-01"], env)
                runs = _backfill_runs(metadata)
                assert [(r["start"], r["end"]) for r in runs] == [
                    (date(2025, 1, 1), date(2025, 2, 1)), (date(2025, 2, 1), date(2025, 3, 1)),
                    (date(2025, 3, 1), date(2025, 4, 1))], created
                time.sleep(8)  # several scheduler loops: Airflow 3.3 starts no run of a paused DAG
                assert {r["state"] for r in _backfill_runs(metadata)} == {"queued"}

                _run([airflow, "dags", "unpause", "xero_backfill"], env)
                finished = _wait(metadata, components, tmp_path, "the three backfill runs to finish",
                                 "SELECT CASE WHEN count(*) FILTER (WHERE state IN ('success', 'failed')) = 3 "
                                 "THEN string_agg(state, ',') END FROM dag_run "
                                 "WHERE dag_id = 'xero_backfill' AND run_type = 'backfill'")
                task_states = metadata.connect().execute(text(
                    "SELECT task_id, map_index, state, run_id FROM task_instance WHERE dag_id = 'xero_backfill' "
                    "AND run_id LIKE 'backfill%' ORDER BY run_id, task_id, map_index")).all()
            finally:
                metadata.dispose()
        finally:
            for process, log in components:
                _stop_group(process)
                log.close()
        assert finished == "success,success,success", f"{task_states}\n{_logs(tmp_path)}"
        truth = sandbox.truth()

        # What the windows should hold: a full sync of the same documents, narrowed to the months.
        reference = db.create_db_engine(f"sqlite:///{tmp_path / 'reference.db'}")
        db.upgrade(reference)
        settings, store = connect(sandbox, reference)
        assert run_sync(sync_client(settings, store), settings, reference, RawStore(tmp_path / "ref-raw"), "ref",
                        stream_names=["invoices", "credit_notes", "payments"]).ok

    assert _window_figures(engine) == _window_figures(reference)
    assert _window_figures(engine)["invoices"][0] > 0
    # The ledger: walked whole by the first run to take each tenant's lease, equal to the truth.
    assert report.compare_with_truth(engine, truth, {"journals", "journal_lines"}) == []
    for tenant_id in truth["tenants"]:
        assert progress.read(engine, tenant_id, "journals")["status"] == "complete"
    with engine.connect() as conn:
        statuses = conn.execute(select(sync_runs.c.stream, sync_runs.c.status)
                                .where(sync_runs.c.run_id.like("backfill__%"))).all()
    assert {s.stream for s in statuses} == {"invoices", "credit_notes", "payments", "journals"}
    assert {s.status for s in statuses if s.stream != "journals"} == {"success"}
    task_logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "home" / "logs").rglob("*.log"))
    assert "journal backfill done: offset" in task_logs  # progress in the task log


def _airflow_env(tmp_path: Path, dags: Path, metadata_url: str, intoaec_url: str, fernet_key: str, port: int,
                 base_url: str) -> dict[str, str]:
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
        AIRFLOW_CONN_XERO_DEFAULT=json.dumps({
            "conn_type": "xero", "login": "sandbox-client", "password": "sandbox-secret",
            "extra": {"api_base_url": f"{base_url}/api.xro/2.0", "identity_base_url": base_url,
                      "calls_per_minute": "0"},
        }),
        AIRFLOW_CONN_INTOAEC_DB=json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": intoaec_url}}),
        INTOAEC_DATA_DIR=str(tmp_path / "var"),
        INTOAEC_BACKFILL_POKE_MINUTES="1",
        TZ="UTC",
    )
    for name in ("INTOAEC_FERNET_KEY", "INTOAEC_XERO_CONN_IDS", "INTOAEC_BACKFILL_SHARE", "INTOAEC_XERO_DAY_LIMIT"):
        env.pop(name, None)
    return env


def _run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{command[1:]}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return result.stdout + result.stderr


def _backfill_runs(metadata) -> list[dict]:
    with metadata.connect() as conn:
        rows = conn.execute(text(
            "SELECT state, data_interval_start, data_interval_end FROM dag_run "
            "WHERE dag_id = 'xero_backfill' AND run_type = 'backfill' ORDER BY data_interval_start")).all()
    return [{"state": r.state, "start": r.data_interval_start.date(), "end": r.data_interval_end.date()}
            for r in rows]


def _wait(metadata, components, tmp_path: Path, what: str, query: str):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        for process, _ in components:
            if process.poll() is not None:
                pytest.fail(f"{process.args[1]} exited ({process.returncode}):\n{_logs(tmp_path)}")
        try:
            with metadata.connect() as conn:
                value = conn.execute(text(query)).scalar()
        except Exception:  # noqa: BLE001 - tables appear once the components have started
            value = None
        if value is not None:
            return value
        time.sleep(1)
    pytest.fail(f"timed out after {TIMEOUT} s waiting for {what}:\n{_logs(tmp_path)}")


def _window_figures(engine) -> dict[str, tuple[int, Decimal | None]]:
    """Rows and money dated in the backfilled months, per table."""
    out = {}
    with engine.connect() as conn:
        for table, money in ((invoices, invoices.c.total), (payments, payments.c.amount),
                             (credit_notes, credit_notes.c.total)):
            inside = and_(table.c.date >= FIRST, table.c.date < AFTER_LAST)
            count, cents = conn.execute(select(func.count(), db.money_sum(money)).where(inside)).one()
            out[table.name] = (count, db.cents_to_decimal(cents))
        out["invoice_lines"] = (conn.execute(
            select(func.count()).select_from(invoice_lines.join(
                invoices, and_(invoices.c.tenant_id == invoice_lines.c.tenant_id,
                               invoices.c.invoice_id == invoice_lines.c.invoice_id)))
            .where(invoices.c.date >= FIRST, invoices.c.date < AFTER_LAST)).scalar_one(), None)
    return out


def _logs(tmp_path: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in tmp_path.glob("*.log"))


def _stop_group(process: subprocess.Popen) -> None:
    """Each component was started in its own process group: stop that group (it and its workers only)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if process.poll() is None:
        process.wait(timeout=10)
