"""xero_sync end to end: Airflow runs the real DAG against the sandbox into SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from intoaec_xero import db, report
from intoaec_xero.streams import STREAMS

from tests.conftest import REPO

pytestmark = [pytest.mark.airflow, pytest.mark.integration, pytest.mark.slow]  # a whole DAG run by dag.test()


@pytest.fixture(scope="module")
def airflow_db():
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_xero_sync_dag_lands_the_truth(airflow_db, tmp_path, monkeypatch):
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

        from airflow.dag_processing.dagbag import DagBag

        dag = DagBag(dag_folder=str(REPO / "dags" / "xero_sync.py")).dags["xero_sync"]
        run = dag.test()
        assert run.state == "success"
        truth = sandbox.truth()
    tables = {t for s in STREAMS.values() for t in s.targets}
    assert report.compare_with_truth(engine, truth, tables) == []
    assert set(report.row_counts(engine)) == set(truth["tenants"])
