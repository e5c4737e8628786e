"""xero_keepalive: renew each Xero grant daily, so none dies of Xero's 60-day idle expiry.

Created unpaused and independent of xero_sync, so grants stay alive while syncs are paused.
Renews the same grants xero_sync reads: the connections (Variable intoaec_xero_conn_ids or
INTOAEC_XERO_CONN_IDS, else xero_default) and every firm's grant (``firm:<firm id>``, connected
through the connect API). A grant Xero already refused fails its task with the reason
(Reconnect) and no retries; the other grants are still renewed.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, get_current_context, task
from intoaec_xero.airflow import labels


@dag(
    dag_id="xero_keepalive",
    description="Renews each Xero grant daily so none expires idle; skipped until Xero is connected.",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    tags=["xero", "intoaec"],
    default_args={"retries": 3, "retry_delay": pendulum.duration(minutes=15),
                  "execution_timeout": pendulum.duration(minutes=15), "show_return_value_in_logs": False},
    doc_md=__doc__,
)
def xero_keepalive():
    @task
    def connections() -> list[str]:
        from intoaec_xero.airflow.tasks import keepalive_grants

        return keepalive_grants()

    @task(map_index_template=labels.CONNECTION)
    def renew_grant(xero_conn_id: str) -> dict:
        from intoaec_xero.airflow.tasks import keepalive_hook

        # map_index_template renders this key; Airflow's Context type lists only its own keys.
        get_current_context()["xero_conn_id"] = xero_conn_id  # type: ignore[typeddict-unknown-key]
        return keepalive_hook(xero_conn_id).keep_alive()

    renew_grant.expand(xero_conn_id=connections())


xero_keepalive()
