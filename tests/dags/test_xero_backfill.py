"""xero_backfill's shape, and one month window run end to end by Airflow (in-process) into SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pendulum
import pytest
from intoaec_xero import db, report
from intoaec_xero.backfill import progress
from intoaec_xero.schema import credit_notes, invoices, payments, sync_state
from sqlalchemy import func, select

from tests.conftest import REPO

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "xero_backfill.py"))
    assert bag.import_errors == {}
    return bag.dags["xero_backfill"]


def test_monthly_data_intervals_paused_and_behind_the_sync_in_the_pool(dag):
    from airflow.sdk import CronDataIntervalTimetable
    from airflow.timetables.interval import CronDataIntervalTimetable as Scheduling

    assert isinstance(dag.timetable, CronDataIntervalTimetable)  # [start, end) windows, not zero-length
    timetable = Scheduling(dag.timetable.expression, dag.timetable.timezone)
    interval = timetable.infer_manual_data_interval(run_after=pendulum.datetime(2024, 3, 15, tz="UTC"))
    assert (interval.start, interval.end) == (pendulum.datetime(2024, 2, 1, tz="UTC"),
                                              pendulum.datetime(2024, 3, 1, tz="UTC"))
    assert dag.is_paused_upon_creation is True and dag.catchup is False
    # A run dated before start_date gets no tasks at all: it would "succeed" having loaded nothing.
    assert dag.start_date <= pendulum.datetime(2006, 1, 1, tz="UTC")
    assert {"discover_tenants", "window.extract", "window.load", "journals", "report", "run_verdict"} == set(
        dag.task_dict)
    for task_id in ("window.extract", "journals"):
        task = dag.task_dict[task_id]
        assert task.pool == "xero_api"
        assert task.priority_weight == 1 and task.weight_rule == "absolute"
    sensor = dag.task_dict["journals"]
    # it waits out the day's quota without holding a worker or a pool slot
    assert sensor.partial_kwargs["mode"] == "reschedule"
    assert dag.task_dict["report"].trigger_rule == "all_done"
    # report always runs, so it cannot carry the outcome: a leaf that runs only on a failure does.
    verdict = dag.task_dict["run_verdict"]
    assert verdict.trigger_rule == "one_failed" and not verdict.downstream_task_ids
    assert {"discover_tenants", "window.load", "journals"} <= verdict.upstream_task_ids


@pytest.fixture(scope="module")
def airflow_db():
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@pytest.mark.integration
@pytest.mark.slow  # a whole DAG run by dag.test(), twice
def test_a_window_run_loads_the_month_and_the_ledger_and_a_rerun_changes_nothing(dag, airflow_db, tmp_path,
                                                                               monkeypatch):
    from intoaec_xero.demo import connect
    from intoaec_xero.settings import XeroSettings
    from intoaec_xero.tokens import TokenStore
    from xero_sandbox.testing import running_sandbox

    url = f"sqlite:///{tmp_path / 'intoaec.db'}"
    engine = db.create_db_engine(url)
    db.upgrade(engine)
    with running_sandbox(dataset="small", seed=5) as sandbox:
        settings = XeroSettings.for_single_host(sandbox.base_url, client_id="sandbox-client",
                                                client_secret="sandbox-secret")
        connect(settings, TokenStore(engine, settings.connection_key))
        monkeypatch.setenv("AIRFLOW_CONN_XERO_DEFAULT", json.dumps({
            "conn_type": "xero", "login": "sandbox-client", "password": "sandbox-secret",
            "extra": {"api_base_url": f"{sandbox.base_url}/api.xro/2.0", "identity_base_url": sandbox.base_url,
                      "sandbox": True},
        }))
        monkeypatch.setenv("AIRFLOW_CONN_INTOAEC_DB", json.dumps({"conn_type": "generic",
                                                                   "extra": {"sqlalchemy_url": url}}))
        monkeypatch.setenv("INTOAEC_DATA_DIR", str(tmp_path / "var"))

        run = dag.test(logical_date=pendulum.datetime(2025, 3, 1, tz="UTC"))
        assert run.state == "success"
        window = (run.data_interval_start.date(), run.data_interval_end.date())
        assert window == (date(2025, 2, 1), date(2025, 3, 1))  # a manual run takes the month before
        truth = sandbox.truth()
        first = _month_rows(engine)
        assert first["invoices"] and first["payments"]
        assert {d for t in first.values() for d in t} == {window}  # nothing dated outside the window

        run = dag.test(logical_date=pendulum.datetime(2025, 3, 1, tz="UTC"))
        assert run.state == "success"
        assert _month_rows(engine) == first

    # The ledger walk finished in that run (a small ledger fits one day's share) and equals the truth.
    assert report.compare_with_truth(engine, truth, {"journals", "journal_lines"}) == []
    for tenant_id in truth["tenants"]:
        entry = progress.read(engine, tenant_id, "journals")
        assert entry["status"] == "complete" and entry["offset"] >= entry["target"] > 0
        windows = progress.read(engine, tenant_id, "invoices")["windows"]
        assert windows["2025-02-01..2025-03-01"]["status"] == "loaded"
    with engine.connect() as conn:  # the windows left the sync's invoice watermark alone
        marks = conn.execute(select(sync_state.c.watermark).where(sync_state.c.stream == "invoices")).scalars().all()
    assert marks and set(marks) == {None}


def _month_rows(engine) -> dict[str, dict]:
    """Counts and dates of what landed, per table, keyed by (first, last+1) of the dates seen."""
    out: dict[str, dict] = {}
    with engine.connect() as conn:
        for table in (invoices, credit_notes, payments):
            row = conn.execute(select(func.count(), func.min(table.c.date), func.max(table.c.date))).one()
            content = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            if row[0]:
                first, last = row[1], row[2]
                key = (date(first.year, first.month, 1),
                       date(last.year + last.month // 12, last.month % 12 + 1, 1))
                out[table.name] = {key: (row[0], tuple(content))}
    return out
