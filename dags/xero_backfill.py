"""xero_backfill: Xero history into IntoAEC, without starving xero_sync.

Each run is one month window, [data_interval_start, data_interval_end): every tenant's
invoices, credit notes and payments dated in it (Xero's `where` on Date), loaded through the
sync's own validation and load, so a window can be re-run at will. Alongside, each tenant's
ledger is walked from journal 1 to where xero_sync starts, resumably, within a share of Xero's
daily quota (params journal_share / day_limit; default 60% of 5,000 calls). Scheduled and
manual runs keep walking, day after day, until the ledger is in; backfill runs make one pass.

Run history with `airflow backfill create --dag-id xero_backfill --from-date 2024-01-01
--to-date 2024-12-01`. Created paused; Airflow starts no run of a paused DAG, backfill runs
included, so unpause it once (its own monthly run then re-reads the month just ended).
Progress: the task logs, sync_state, and `intoaec-xero backfill status`.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, PokeReturnValue, dag, get_current_context, task, task_group
from intoaec_xero import environment
from intoaec_xero.airflow import labels
from intoaec_xero.payloads import Manifest, MappedTenant, TenantSummary

SETTINGS = environment.current()  # the INTOAEC_* variables, checked once when the DAG is parsed

# Below xero_sync in the queue for the xero_api pool: the sync's tasks go first.
BACKGROUND: dict[str, Any] = {"pool": "xero_api", "priority_weight": 1, "weight_rule": "absolute"}


@dag(
    dag_id="xero_backfill",
    description="History, one calendar month per run, plus the journal ledger, within a share of the daily quota.",
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
    # Airflow creates no tasks in a run dated before start_date, so it must precede any history
    # (books converted into Xero carry older dates); catchup=False keeps the scheduler from
    # filling the years in by itself.
    start_date=pendulum.datetime(1900, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=True,
    tags=["xero", "intoaec", "backfill"],
    # A window that fails (a 503, a timeout) retries after 5, 10, then 20 minutes: a passing fault holds
    # the windows queued behind it back for minutes, not hours.
    default_args={"retries": 3, "retry_delay": pendulum.duration(minutes=5), "retry_exponential_backoff": 2.0,
                  "max_retry_delay": pendulum.duration(hours=6),
                  # The tasks log each stream's outcome; a returned manifest would only repeat it, at length.
                  "show_return_value_in_logs": False,
                  # Per try (for the journal sensor: per poke); a hung call never holds a slot for ever.
                  "execution_timeout": pendulum.duration(minutes=SETTINGS.extract_timeout_minutes)},
    params={
        "journal_share": Param(None, type=["null", "number"], minimum=0.01, maximum=1,
                               description="Share of each tenant's daily Xero quota the backfill may use "
                                           "(default INTOAEC_BACKFILL_SHARE or 0.6)."),
        "day_limit": Param(None, type=["null", "integer"], minimum=1,
                           description="Xero's calls/day per tenant (default INTOAEC_XERO_DAY_LIMIT or 5000; "
                                       "1000 on the Starter tier)."),
        "streams": Param(None, type=["null", "array"],
                         description="Window streams (default invoices, credit_notes, payments)."),
        "journals": Param(True, type="boolean", description="Walk the ledger too."),
        "restart_journals": Param(False, type="boolean",
                                  description="Re-read the ledger from journal 1 (manual runs only)."),
        "journal_max_calls": Param(None, type=["null", "integer"], minimum=1,
                                   description="At most this many calls per journal pass."),
    },
    doc_md=__doc__,
)
def xero_backfill():
    @task
    def discover_tenants() -> list[MappedTenant]:
        from intoaec_xero.airflow import backfill_tasks

        return backfill_tasks.prepare()

    @task_group(group_id="window")
    def window(tenant: MappedTenant):
        @task(map_index_template=labels.TENANT, **BACKGROUND)
        def extract(tenant: MappedTenant, run_id=None, data_interval_start=None, data_interval_end=None,
                    params=None) -> Manifest:
            from intoaec_xero.airflow import backfill_tasks

            # map_index_template renders this key; Airflow's Context type lists only its own keys.
            get_current_context()["tenant_name"] = tenant["tenant_name"]  # type: ignore[typeddict-unknown-key]
            return backfill_tasks.extract_window(tenant, run_id, data_interval_start, data_interval_end, params)

        @task(map_index_template=labels.TENANT, priority_weight=1, weight_rule="absolute")
        def load(manifest: Manifest) -> TenantSummary:
            from intoaec_xero.airflow import backfill_tasks

            # map_index_template renders this key; Airflow's Context type lists only its own keys.
            get_current_context()["tenant_name"] = manifest["tenant_name"]  # type: ignore[typeddict-unknown-key]
            return backfill_tasks.load_window(manifest)

        # Airflow's task typing does not let an XComArg stand for a task's argument.
        load(extract(tenant))  # type: ignore[arg-type]

    # Airflow's stub types poke_interval and timeout as float; the sensor takes a timedelta too.
    @task.sensor(  # type: ignore[call-overload]
        mode="reschedule",
        poke_interval=pendulum.duration(minutes=SETTINGS.backfill_poke_minutes),
        timeout=pendulum.duration(days=90),
        map_index_template=labels.TENANT,
        **BACKGROUND,
    )
    def journals(tenant: MappedTenant, run_id=None, dag_run=None, params=None) -> PokeReturnValue:
        from intoaec_xero.airflow import backfill_tasks

        # map_index_template renders this key; Airflow's Context type lists only its own keys.
        get_current_context()["tenant_name"] = tenant["tenant_name"]  # type: ignore[typeddict-unknown-key]
        done, outcome = backfill_tasks.journals(tenant, run_id, getattr(dag_run, "run_type", None), params)
        return PokeReturnValue(is_done=done, xcom_value=outcome)

    @task(trigger_rule="all_done")
    def report(run_id=None) -> list[dict]:
        from intoaec_xero.airflow import backfill_tasks

        return backfill_tasks.report(run_id)

    # report runs whatever happened; this leaf runs only when a task upstream failed, and fails the run.
    @task(trigger_rule="one_failed", retries=0)
    def run_verdict(run_id=None) -> None:
        from intoaec_xero.airflow import tasks

        tasks.run_verdict(run_id, dag="xero_backfill")

    tenants = discover_tenants()
    work = [window.expand(tenant=tenants), journals.expand(tenant=tenants)]
    work >> report()
    [tenants, *work] >> run_verdict()


xero_backfill()
