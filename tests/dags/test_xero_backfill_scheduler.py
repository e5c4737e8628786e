"""``airflow backfill create`` for three month windows, run by the real scheduler.

``dag.test`` runs tasks in-process; this starts the real components (api-server for the
Execution API, dag-processor, scheduler with LocalExecutor workers, parallelism 2) on a
PostgreSQL metadata database with only xero_backfill in the DAG folder, creates the backfill
with the CLI the README documents, and checks what landed in the IntoAEC database. Everything
it starts runs in its own process group and is killed by group at the end.
"""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from intoaec_xero import db, report
from intoaec_xero.backfill import progress
from intoaec_xero.backfill.windows import WINDOW_STREAMS
from intoaec_xero.pipeline import run_sync
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import credit_notes, invoice_lines, invoices, payments, sync_runs
from intoaec_xero.tokens import TokenCipher, TokenStore
from sqlalchemy import and_, func, select

from tests.harness.airflow import airflow_stack, connection_env
from tests.harness.databases import fresh_postgres, migrated_engine
from tests.intoaec_xero.backfill.conftest import connect, sync_client

pytestmark = [pytest.mark.airflow, pytest.mark.integration, pytest.mark.scheduler]

FIRST, AFTER_LAST = date(2025, 1, 1), date(2025, 4, 1)  # --from-date 2025-01-01 --to-date 2025-03-01
RUNS = "SELECT {what} FROM dag_run WHERE dag_id = 'xero_backfill' AND run_type = 'backfill'"


def test_backfill_create_runs_month_windows_under_the_scheduler(tmp_path):
    from xero_sandbox.testing import running_sandbox

    fernet_key = Fernet.generate_key().decode()
    with (fresh_postgres("backfill_airflow", "backfill_intoaec") as (metadata_url, intoaec_url),
          migrated_engine(intoaec_url) as engine,
          running_sandbox(dataset="small", seed=4, extra_args=["--minute-limit", "100000"]) as sandbox):
        connect(sandbox, engine)
        # The token store is read through the hook, which encrypts with Airflow's Fernet key.
        plain = TokenStore(engine, "xero_default", TokenCipher.from_environment()).load()
        TokenStore(engine, "xero_default", TokenCipher(fernet_key)).save(plain)

        env = {**connection_env(sandbox.base_url, intoaec_url, calls_per_minute="0"),
               "INTOAEC_BACKFILL_POKE_MINUTES": "1"}
        with airflow_stack(tmp_path, dags=["xero_backfill.py"], metadata_url=metadata_url, fernet_key=fernet_key,
                           env=env) as stack:
            paused = stack.wait_for("the DAG to be parsed", "SELECT is_paused FROM dag WHERE dag_id = 'xero_backfill'")
            assert paused is True  # created paused

            created = stack.airflow("backfill", "create", "--dag-id", "xero_backfill", "--from-date", "2025-01-01",
                                    "--to-date", "2025-03-01")
            runs = _backfill_runs(stack)
            assert [(r["start"], r["end"]) for r in runs] == [
                (date(2025, 1, 1), date(2025, 2, 1)), (date(2025, 2, 1), date(2025, 3, 1)),
                (date(2025, 3, 1), date(2025, 4, 1))], created
            time.sleep(8)  # several scheduler loops: Airflow 3.3 starts no run of a paused DAG
            assert {r["state"] for r in _backfill_runs(stack)} == {"queued"}

            stack.airflow("dags", "unpause", "xero_backfill")
            finished = stack.wait_for("the three backfill runs to finish", RUNS.format(
                what="CASE WHEN count(*) FILTER (WHERE state IN ('success', 'failed')) = 3 "
                     "THEN string_agg(state, ',') END"))
            task_states = stack.rows("SELECT task_id, map_index, state, run_id FROM task_instance "
                                     "WHERE dag_id = 'xero_backfill' AND run_id LIKE 'backfill%' "
                                     "ORDER BY run_id, task_id, map_index")
            assert finished == "success,success,success", f"{task_states}\n{stack.logs()}"
        truth = sandbox.truth()

        # What the windows should hold: a full sync of the same documents, narrowed to the months.
        with migrated_engine(f"sqlite:///{tmp_path / 'reference.db'}") as reference:
            settings, store = connect(sandbox, reference)
            assert run_sync(sync_client(settings, store), settings, reference, RawStore(tmp_path / "ref-raw"), "ref",
                            stream_names=[s.name for s in WINDOW_STREAMS]).ok
            assert _window_figures(engine) == _window_figures(reference)
        assert _window_figures(engine)["invoices"][0] > 0
        # The ledger: walked whole by the first run to take each tenant's lease, equal to the truth.
        assert report.compare_with_truth(engine, truth, {"journals", "journal_lines"}) == []
        for tenant_id in truth["tenants"]:
            assert progress.read(engine, tenant_id, "journals")["status"] == "complete"
        with engine.connect() as conn:
            statuses = conn.execute(select(sync_runs.c.stream, sync_runs.c.status)
                                    .where(sync_runs.c.run_id.like("backfill__%"))).all()
        assert {s.stream for s in statuses} == {s.name for s in WINDOW_STREAMS} | {"journals"}
        assert {s.status for s in statuses if s.stream != "journals"} == {"success"}
        assert "journal backfill done: offset" in stack.task_logs()  # progress in the task log


def _backfill_runs(stack) -> list[dict]:
    rows = stack.rows(RUNS.format(what="state, data_interval_start, data_interval_end")
                      + " ORDER BY data_interval_start")
    return [{"state": r["state"], "start": r["data_interval_start"].date(), "end": r["data_interval_end"].date()}
            for r in rows]


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
