"""The ``xero_sync`` DAG as the Xero page shows and drives it: paused or not, next run, Sync now.

"Sync Enabled" on an organisation means the sync will read it *when the DAG runs*; a paused
``xero_sync`` (Airflow creates it paused) runs nothing. The page says which, and offers what
Airflow's own DAG page would: trigger a run now, pause, unpause — each checked against the
user's Airflow permissions on that DAG. Runs in the API server, which owns Airflow's metadata
database (tasks may not write it; this is not a task).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from intoaec_xero.airflow.page_view import SYNC_DAG


@dataclass(frozen=True)
class SyncDagState:
    """What the page says about ``xero_sync`` (``known`` is False until Airflow has parsed it)."""

    known: bool
    paused: bool = True
    next_run_at: datetime | None = None
    active_runs: int = 0
    may_trigger: bool = False
    may_pause: bool = False


def sync_dag_state(user: Any) -> SyncDagState:
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import func, select

    with create_session(scoped=False) as session:
        dag = session.scalar(select(DagModel).where(DagModel.dag_id == SYNC_DAG))
        if dag is None:
            return SyncDagState(known=False)
        active = session.scalar(select(func.count()).select_from(DagRun).where(
            DagRun.dag_id == SYNC_DAG, DagRun.state.in_((DagRunState.QUEUED, DagRunState.RUNNING)))) or 0
        return SyncDagState(known=True, paused=bool(dag.is_paused),
                            next_run_at=None if dag.is_paused else dag.next_dagrun_create_after,
                            active_runs=int(active), may_trigger=_allowed(user, "POST", run=True),
                            may_pause=_allowed(user, "PUT"))


def trigger_sync(user: Any) -> str:
    """A manual ``xero_sync`` run, as Airflow's Trigger button makes one; returns its run id."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.utils.types import DagRunTriggeredByType

    run = trigger_dag(SYNC_DAG, triggered_by=DagRunTriggeredByType.UI, logical_date=datetime.now(UTC),
                      triggering_user_name=user.get_name(), note="Sync now, from the Xero page")
    if run is None:
        raise RuntimeError(f"Airflow did not create a {SYNC_DAG} run.")
    return run.run_id


def set_paused(paused: bool) -> None:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session(scoped=False) as session:
        session.execute(update(DagModel).where(DagModel.dag_id == SYNC_DAG).values(is_paused=paused))


def _allowed(user: Any, method: Any, run: bool = False) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return get_auth_manager().is_authorized_dag(method=method, user=user, details=DagDetails(id=SYNC_DAG),
                                                access_entity=DagAccessEntity.RUN if run else None)
