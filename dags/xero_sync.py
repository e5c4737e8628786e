"""xero_sync: every tenant of the Xero connection, extracted then loaded into IntoAEC's tables.

One mapped task group per tenant, so one organisation failing never stops the others.
Schedule: XERO_SYNC_SCHEDULE (cron or preset), hourly by default.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, dag, get_current_context, task, task_group
from intoaec_xero import environment
from intoaec_xero.airflow import labels
from intoaec_xero.airflow.alerts import SyncFailureNotifier
from intoaec_xero.payloads import Manifest, MappedTenant, TenantSummary

SETTINGS = environment.current()  # the INTOAEC_* / XERO_* variables, checked once when the DAG is parsed

# A full read of a large organisation at Xero's 60 calls a minute takes over an hour.
EXTRACT_TIMEOUT = pendulum.duration(minutes=SETTINGS.extract_timeout_minutes)

# Each IntoAEC table is an Asset, so downstream DAGs can be scheduled on fresh financial data.
TABLE_ASSETS = [
    Asset(f"intoaec://intoaec_db/{table}", group="intoaec_xero")
    for table in ("clients", "invoices", "invoice_lines", "payments", "credit_notes", "credit_note_lines", "accounts",
                  "tracking_categories", "tracking_options", "organisations", "tax_rates", "journals", "journal_lines",
                  "bank_transactions", "bank_transaction_lines", "bank_transfers", "manual_journals",
                  "manual_journal_lines", "purchase_orders", "purchase_order_lines", "overpayments",
                  "overpayment_allocations", "prepayments", "prepayment_allocations", "linked_transactions",
                  "project_financials", "project_summary", "ar_aging")
]


@dag(
    dag_id="xero_sync",
    description="Every connected Xero organisation into IntoAEC's tables, hourly; fails when any tenant fails.",
    schedule=SETTINGS.sync_schedule,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["xero", "intoaec"],
    default_args={
        "retries": 2,
        "retry_delay": pendulum.duration(seconds=SETTINGS.retry_delay_seconds),
        # No task may hang a worker slot (and a tenant's token lock) for ever; extract overrides it.
        "execution_timeout": pendulum.duration(minutes=SETTINGS.task_timeout_minutes),
        # A tenant's load outranks the extracts still waiting, so with many tenants each one lands
        # as soon as its own extract is done instead of queueing behind every other tenant's.
        "weight_rule": "upstream",
        # Called on a task's final failure only, so one incident makes one alert, not one per retry.
        "on_failure_callback": SyncFailureNotifier(),
        # The tasks log each stream's outcome; the returned manifest or summary would only repeat it, at length.
        "show_return_value_in_logs": False,
    },
    doc_md=__doc__,
)
def xero_sync():
    @task
    def discover_tenants() -> list[MappedTenant]:
        from intoaec_xero.airflow import tasks

        return tasks.prepare()

    @task_group(group_id="tenant")
    def sync_tenant(tenant: MappedTenant):
        # The grid labels each mapped instance with its organisation's name.
        @task(pool="xero_api", map_index_template=labels.TENANT, execution_timeout=EXTRACT_TIMEOUT)
        def extract(tenant: MappedTenant, run_id: str | None = None) -> Manifest:
            from intoaec_xero.airflow import tasks

            # map_index_template renders this key; Airflow's Context type lists only its own keys.
            get_current_context()["tenant_name"] = tenant["tenant_name"]  # type: ignore[typeddict-unknown-key]
            if run_id is None:  # Airflow passes every task its run's id
                raise ValueError("The task was given no run_id.")
            return tasks.extract(tenant, run_id=run_id)

        @task(map_index_template=labels.TENANT, outlets=TABLE_ASSETS)
        def load(manifest: Manifest) -> TenantSummary:
            from intoaec_xero.airflow import tasks

            # map_index_template renders this key; Airflow's Context type lists only its own keys.
            get_current_context()["tenant_name"] = manifest["tenant_name"]  # type: ignore[typeddict-unknown-key]
            return tasks.load(manifest)

        # Airflow's task typing does not let an XComArg stand for a task's argument.
        load(extract(tenant))  # type: ignore[arg-type]

    @task(trigger_rule="all_done")
    def report(run_id: str | None = None) -> list[dict]:
        from intoaec_xero.airflow import tasks

        if run_id is None:  # Airflow passes every task its run's id
            raise ValueError("The task was given no run_id.")
        return tasks.report(run_id)

    @task(trigger_rule="all_done", retries=0)
    def check_freshness() -> list[dict]:
        from intoaec_xero.airflow import tasks

        return tasks.check_freshness()

    # report and check_freshness run whatever happened (all_done), so they cannot carry the run's
    # outcome; this leaf does: it runs only when a task upstream failed, and then fails the run.
    @task(trigger_rule="one_failed", retries=0)
    def run_verdict(run_id: str | None = None) -> None:
        from intoaec_xero.airflow import tasks

        if run_id is None:  # Airflow passes every task its run's id
            raise ValueError("The task was given no run_id.")
        tasks.run_verdict(run_id)

    tenants = discover_tenants()
    synced = sync_tenant.expand(tenant=tenants)
    synced >> [report(), check_freshness()]
    [tenants, synced] >> run_verdict()


xero_sync()
