"""The daily keep-alive: a grant nobody syncs with survives Xero's 60-day idle expiry."""

from __future__ import annotations

import pytest
from intoaec_xero.client import XeroClient
from intoaec_xero.errors import XeroAuthError
from intoaec_xero.tokens import STATUS_ACTIVE, STATUS_RECONNECT, TokenCipher

from tests.airflow.conftest import airflow_connection_env, connect
from tests.conftest import REPO

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

DAY = 86400


@pytest.fixture
def hook_env(monkeypatch, sandbox, db_url):
    airflow_connection_env(monkeypatch, sandbox, db_url)
    airflow_connection_env(monkeypatch, sandbox, db_url, conn_id="xero_idle")
    monkeypatch.setattr("intoaec_xero.airflow.hooks.token_cipher", lambda: TokenCipher.from_environment())


def _keep_alive(conn_id: str = "xero_default") -> dict:
    from intoaec_xero.airflow.hooks import XeroHook

    return XeroHook(xero_conn_id=conn_id).keep_alive()


def test_the_dag_is_daily_unpaused_and_thin():
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags" / "xero_keepalive.py")).dags["xero_keepalive"]
    assert dag.is_paused_upon_creation is False  # runs even while xero_sync is paused
    assert dag.catchup is False
    assert dag.timetable.expression in ("@daily", "0 0 * * *")
    assert set(dag.task_dict) == {"connections", "renew_grant"}


def test_a_daily_keep_alive_carries_a_grant_past_xeros_60_day_idle_expiry(hook_env, sandbox, engine):
    idle_settings, idle = connect(sandbox, engine, connection_key="xero_idle")  # nobody renews this one
    _, kept = connect(sandbox, engine)
    sandbox.reset_stats()

    for _ in range(4):  # 100 days, renewed every 25
        sandbox.advance_clock(25 * DAY)
        summary = _keep_alive()
        assert summary["refreshed"] is True
        assert summary["organisations"] == ["Harbourside Architects Ltd", "Meridian Structural Engineers Pty Ltd"]

    assert kept.status() == STATUS_ACTIVE
    assert sandbox.stats()["invalid_grant"] == 0
    idle_client = XeroClient(idle_settings, idle, sleep=lambda s: None)
    idle_client.current_tokens()
    with pytest.raises(XeroAuthError, match="invalid_grant"):
        idle_client.refresh_tokens(force=True)
    assert idle.status() == STATUS_RECONNECT


def test_a_refused_grant_fails_the_keep_alive_without_retries(hook_env, sandbox, engine):
    from airflow.sdk.exceptions import AirflowFailException

    _, idle = connect(sandbox, engine, connection_key="xero_idle")
    sandbox.advance_clock(61 * DAY)
    with pytest.raises(AirflowFailException, match="invalid_grant"):
        _keep_alive("xero_idle")
    with pytest.raises(AirflowFailException, match="needs reconnecting"):
        _keep_alive("xero_idle")


def test_a_custom_connection_has_nothing_to_keep_alive(hook_env, monkeypatch, sandbox, db_url):
    airflow_connection_env(monkeypatch, sandbox, db_url, grant_type="client_credentials")
    assert _keep_alive() == {"connection": "xero_default", "refreshed": False,
                             "reason": "custom connections have no refresh token to keep alive"}


def test_a_fresh_install_skips_the_keep_alive_with_what_to_do(monkeypatch, tmp_path):
    from airflow.sdk.exceptions import AirflowSkipException

    monkeypatch.delenv("AIRFLOW_CONN_XERO_DEFAULT", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_INTOAEC_DB", f"sqlite:///{tmp_path / 'intoaec.db'}")
    with pytest.raises(AirflowSkipException, match="Nothing to keep alive yet.*'xero_default' is missing"):
        _keep_alive()


def test_a_xero_connection_without_intoaecs_database_yet_is_skipped_too(monkeypatch, hook_env):
    from airflow.sdk.exceptions import AirflowSkipException

    monkeypatch.delenv("AIRFLOW_CONN_INTOAEC_DB", raising=False)
    monkeypatch.delenv("INTOAEC_DB_URL", raising=False)
    with pytest.raises(AirflowSkipException, match="IntoAEC's database is not set up.*'intoaec_db' is missing"):
        _keep_alive()


def test_a_connection_named_on_purpose_that_is_missing_fails(monkeypatch, tmp_path):
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv("AIRFLOW_CONN_INTOAEC_DB", f"sqlite:///{tmp_path / 'intoaec.db'}")
    with pytest.raises(AirflowFailException, match="'xero_acme' is missing"):
        _keep_alive("xero_acme")


def test_a_connection_nobody_connected_yet_is_skipped_not_failed(hook_env):
    from airflow.sdk.exceptions import AirflowSkipException

    with pytest.raises(AirflowSkipException, match="'xero_default' has no grant yet.*Xero page"):
        _keep_alive()
