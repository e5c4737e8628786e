"""A run that failed for one tenant ends failed, while the other tenant's rows still land.

`airflow dags test xero_sync` (the CLI, in its own process) after a first sync, with a permanent
500 on one tenant's Contacts: the command exits non-zero, `intoaec-xero status` exits 2 naming that
tenant, and the other tenant's new invoices equal the sandbox's truth.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from intoaec_xero import cli, db, report
from intoaec_xero.client import XeroClient
from intoaec_xero.pipeline import run_sync
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import sync_runs, xero_tenants
from sqlalchemy import select

pytestmark = [pytest.mark.airflow, pytest.mark.integration, pytest.mark.slow]  # `airflow dags test` with retries

AIRFLOW = Path(sys.executable).with_name("airflow")


def _dags_test(env: dict[str, str], log: Path) -> int:
    with log.open("w") as out:
        return subprocess.run([str(AIRFLOW), "dags", "test", "xero_sync"], env=env, stdout=out,
                              stderr=subprocess.STDOUT, timeout=900).returncode


def test_one_failing_tenant_fails_the_run_and_the_others_land(tmp_path, capsys):
    from intoaec_xero.oauth import finish_authorization, start_authorization
    from intoaec_xero.settings import XeroSettings
    from intoaec_xero.tokens import TokenStore
    from xero_sandbox.testing import running_sandbox, sign_in_and_consent

    migrate = subprocess.run([str(AIRFLOW), "db", "migrate"], capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    url = f"sqlite:///{tmp_path / 'intoaec.db'}"
    engine = db.create_db_engine(url)
    db.upgrade(engine)
    with running_sandbox(dataset="small", seed=41, limits=False) as sandbox:
        settings = XeroSettings.for_single_host(sandbox.base_url, client_id="sandbox-client",
                                                client_secret="sandbox-secret")
        request = start_authorization(settings, "http://127.0.0.1:9/callback")
        TokenStore(engine, settings.connection_key).save(
            finish_authorization(settings, request, sign_in_and_consent(request.url)))
        env = {**os.environ,
               "AIRFLOW_CONN_XERO_DEFAULT": json.dumps({
                   "conn_type": "xero", "login": "sandbox-client", "password": "sandbox-secret",
                   "extra": {"api_base_url": f"{sandbox.base_url}/api.xro/2.0",
                             "identity_base_url": sandbox.base_url, "sandbox": True, "calls_per_minute": "0",
                             # The fault is permanent: one try per call, and Airflow's retries, say so.
                             "max_attempts": "1"}}),
               "AIRFLOW_CONN_INTOAEC_DB": json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": url}}),
               "INTOAEC_DATA_DIR": str(tmp_path / "var"),
               "INTOAEC_RETRY_DELAY_SECONDS": "1"}
        # The first sync runs in-process (the DAG's own run is test_xero_sync_run's): only the second,
        # failing run is the one under test.
        first = run_sync(XeroClient(settings, TokenStore(engine, settings.connection_key), sleep=lambda s: None),
                         settings, engine, RawStore(tmp_path / "var" / "raw"), "first")
        assert first.ok, first.failures

        broken, fine = sorted(sandbox.truth()["tenants"])
        sandbox.advance_clock(3600)
        assert sandbox.activity(invoices=10, payments=5)["ok"]
        sandbox.faults(endpoint="Contacts", status=500, tenant_id=broken)
        code = _dags_test(env, tmp_path / "second.log")
        log = (tmp_path / "second.log").read_text()
        truth = sandbox.truth()

    assert code != 0, log[-3000:]
    # Every other stream of the broken tenant, and all of the other tenant, landed to the cent.
    broken_truth = {"tenants": {fine: truth["tenants"][fine]}}
    assert report.compare_with_truth(engine, broken_truth, {"invoices", "invoice_lines", "payments", "clients"}) == []
    only_invoices = {"tenants": {broken: truth["tenants"][broken]}}
    assert report.compare_with_truth(engine, only_invoices, {"invoices", "invoice_lines", "payments"}) == []
    with engine.connect() as conn:
        failed = conn.execute(select(sync_runs.c.tenant_id, sync_runs.c.stream)
                              .where(sync_runs.c.status == "failed")).all()
        names = dict(conn.execute(select(xero_tenants.c.tenant_id, xero_tenants.c.tenant_name)).all())
    assert set(failed) == {(broken, "contacts")}
    assert "run_verdict" in log and names[broken] in log
    # The grid names each organisation's tasks, the failed one too (not "0" and "1").
    with sqlite3.connect(Path(os.environ["AIRFLOW_HOME"]) / "airflow.db") as metadata:
        labels = metadata.execute(
            "SELECT task_id, state, rendered_map_index FROM task_instance WHERE dag_id = 'xero_sync' "
            "AND run_id = (SELECT MAX(run_id) FROM dag_run WHERE dag_id = 'xero_sync') AND map_index >= 0").fetchall()
    assert sorted(labels) == sorted([("tenant.extract", "success", names[broken]),  # passes what it read
                                     ("tenant.extract", "success", names[fine]),
                                     ("tenant.load", "failed", names[broken]),
                                     ("tenant.load", "success", names[fine])]), labels

    capsys.readouterr()
    assert cli.main(["--db-url", url, "status"]) == 2
    out = capsys.readouterr().out
    broken_line = next(line for line in out.splitlines() if line.startswith(names[broken]))
    assert "FAILING" in broken_line
    assert f"{names[broken]}: contacts:" in out and "500" in out
    fine_line = next(line for line in out.splitlines() if line.startswith(names[fine]))
    assert "HEALTHY" in fine_line
