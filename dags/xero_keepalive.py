"""xero_keepalive: renew each Xero grant daily, so none dies of Xero's 60-day idle expiry.

Created unpaused and independent of xero_sync, so grants stay alive while syncs are paused.
A grant Xero already refused fails the run with the reason (Reconnect needed on the Xero page).
Connections: XERO_KEEPALIVE_CONN_IDS (comma-separated), xero_default by default.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import dag, task

CONN_IDS = [c.strip() for c in os.environ.get("XERO_KEEPALIVE_CONN_IDS", "xero_default").split(",") if c.strip()]


@dag(
    dag_id="xero_keepalive",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    tags=["xero", "intoaec"],
    default_args={"retries": 3, "retry_delay": pendulum.duration(minutes=15)},
    doc_md=__doc__,
)
def xero_keepalive():
    @task(map_index_template="{{ task.op_kwargs['xero_conn_id'] }}")
    def renew_grant(xero_conn_id: str) -> dict:
        from intoaec_xero.airflow.hooks import XeroHook

        return XeroHook(xero_conn_id=xero_conn_id).keep_alive()

    renew_grant.expand(xero_conn_id=CONN_IDS)


xero_keepalive()
