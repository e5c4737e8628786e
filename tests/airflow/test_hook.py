"""XeroHook: built from the ``xero`` connection, and the Test button's verdicts against the sandbox."""

from __future__ import annotations

import json
import os
import time

import pytest
from intoaec_xero.tokens import STATUS_ACTIVE, STATUS_RECONNECT, TokenStore

from tests.airflow.conftest import CLIENT_ID, CLIENT_SECRET, airflow_connection_env, connect
from tests.intoaec_xero.test_timeouts import silent_server

pytestmark = [pytest.mark.airflow, pytest.mark.integration]


@pytest.fixture
def hook_env(monkeypatch, sandbox, db_url):
    airflow_connection_env(monkeypatch, sandbox, db_url)


def _hook(conn_id: str = "xero_default"):
    from intoaec_xero.airflow.hooks import XeroHook

    return XeroHook(xero_conn_id=conn_id)


def test_the_session_authenticates_the_app_and_sends_no_xero_settings_as_headers(hook_env, monkeypatch, sandbox,
                                                                                 db_url):
    airflow_connection_env(monkeypatch, sandbox, db_url, tenant_filter="Harbourside", verify="false",
                           proxies=json.dumps({}))
    session = _hook().get_conn()
    assert session.auth.username == CLIENT_ID and session.auth.password == CLIENT_SECRET
    assert not {"scopes", "tenant_filter", "api_base_url", "identity_base_url", "grant_type", "sandbox"} & {
        h.lower() for h in session.headers}
    assert session.verify == "false"  # HttpHook's own handling of the connection's HTTP extras


def test_no_consent_yet_says_so(hook_env, engine):
    ok, message = _hook().test_connection()
    assert not ok
    assert message.startswith("Xero accepts the Client ID and secret, but no grant is stored under the connection "
                              "id 'xero_default', so no organisation was checked: connect one on the Xero page")


def test_connected_lists_the_organisations(hook_env, sandbox, engine):
    connect(sandbox, engine)
    ok, message = _hook().test_connection()
    assert ok, message
    assert message == "Connected to 2 organisations: Harbourside Architects Ltd, Meridian Structural Engineers Pty Ltd"


def test_a_wrong_client_secret_is_named_and_leaves_the_grant_alone(hook_env, monkeypatch, sandbox, db_url, engine):
    _, store = connect(sandbox, engine)
    airflow_connection_env(monkeypatch, sandbox, db_url, secret="typo-in-the-form")
    ok, message = _hook().test_connection()
    assert not ok
    assert "rejected the Client ID / Client Secret" in message
    assert store.status() == STATUS_ACTIVE


def test_an_expired_grant_says_reconnect(hook_env, sandbox, engine):
    _, store = connect(sandbox, engine)
    tokens = store.load()
    tokens.expires_at = 0  # force a refresh ...
    store.save(tokens)
    sandbox.advance_clock(61 * 86400)  # ... of a refresh token idle past Xero's 60 days
    ok, message = _hook().test_connection()
    assert not ok
    assert "invalid_grant" in message and "Reconnect" in message
    assert store.status() == STATUS_RECONNECT
    ok, message = _hook().test_connection()
    assert not ok and "expired or was revoked" in message


def test_an_unreachable_xero_says_so(hook_env, monkeypatch, db_url):
    monkeypatch.setenv("AIRFLOW_CONN_XERO_DEFAULT", json.dumps({
        "conn_type": "xero", "login": CLIENT_ID, "password": CLIENT_SECRET,
        "extra": {"identity_base_url": "http://127.0.0.1:9", "api_base_url": "http://127.0.0.1:9/api.xro/2.0",
                  "sandbox": "true"}}))
    ok, message = _hook().test_connection()
    assert not ok and "Cannot reach Xero" in message


def test_a_missing_connection_says_how_to_add_it(hook_env, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_XERO_DEFAULT")
    ok, message = _hook().test_connection()
    assert not ok and "'xero_default' is missing" in message


def test_a_custom_connection_is_tested_with_a_client_credentials_token(hook_env, monkeypatch, sandbox, db_url,
                                                                       engine):
    airflow_connection_env(monkeypatch, sandbox, db_url, grant_type="client_credentials")
    ok, message = _hook().test_connection()
    assert ok, message
    assert "custom connection" in message
    assert TokenStore(engine, "xero_default").status() is None


def test_a_silent_xero_ends_the_test_within_the_connection_timeouts(hook_env, monkeypatch):
    """A host that accepts and never answers: the Test button says so instead of hanging the page."""
    with silent_server() as server:
        monkeypatch.setenv("AIRFLOW_CONN_XERO_DEFAULT", json.dumps({
            "conn_type": "xero", "login": CLIENT_ID, "password": CLIENT_SECRET,
            "extra": {"identity_base_url": server.url, "api_base_url": f"{server.url}/api.xro/2.0",
                      "sandbox": True, "connect_timeout": 1, "read_timeout": "1"}}))
        started = time.monotonic()
        ok, message = _hook().test_connection()
        elapsed = time.monotonic() - started
    assert not ok and "Cannot reach Xero" in message and "ReadTimeout" in message
    assert elapsed < 5


def test_numeric_extras_are_read_as_written_and_never_sent_as_headers(hook_env, monkeypatch, sandbox, db_url):
    airflow_connection_env(monkeypatch, sandbox, db_url, calls_per_minute=0, connect_timeout="5", read_timeout=30)
    hook = _hook()
    assert hook.settings.calls_per_minute == 0
    assert hook.settings.http_timeout == (5.0, 30.0)
    headers = {h.lower() for h in hook.get_conn().headers}
    assert not {"calls_per_minute", "connect_timeout", "read_timeout"} & headers


def test_an_invalid_numeric_extra_is_the_test_buttons_answer(hook_env, monkeypatch, sandbox, db_url):
    airflow_connection_env(monkeypatch, sandbox, db_url, calls_per_minute="sixty")
    ok, message = _hook().test_connection()
    assert not ok
    assert "'xero_default'" in message and "calls_per_minute" in message and "whole number" in message


def _set_sandbox_extra(monkeypatch, value) -> None:
    """The ``xero_default`` of ``hook_env`` with its ``sandbox`` extra set to ``value`` (None: left out)."""
    conn = json.loads(os.environ["AIRFLOW_CONN_XERO_DEFAULT"])
    conn["extra"].pop("sandbox", None)
    if value is not None:
        conn["extra"]["sandbox"] = value
    monkeypatch.setenv("AIRFLOW_CONN_XERO_DEFAULT", json.dumps(conn))


@pytest.mark.parametrize("sandbox_flag", [None, False, "false", "False", ""])
def test_a_url_that_is_not_xeros_is_refused_unless_the_connection_says_sandbox(hook_env, monkeypatch, sandbox,
                                                                              sandbox_flag):
    _set_sandbox_extra(monkeypatch, sandbox_flag)
    sandbox.reset_stats()
    ok, message = _hook().test_connection()
    assert not ok
    assert message == (f"The Xero connection 'xero_default' points api_base_url at {sandbox.base_url}, which is not "
                       "Xero's api.xero.com: set \"sandbox\": true in its extra if that is the local sandbox, or "
                       "remove api_base_url to use Xero's.")
    assert sandbox.stats()["requests"] == {}  # refused before the secret went anywhere


@pytest.mark.parametrize("sandbox_flag", [True, "true", " TRUE ", "True"])
def test_sandbox_true_is_read_from_json_or_text(hook_env, monkeypatch, sandbox_flag):
    _set_sandbox_extra(monkeypatch, sandbox_flag)
    assert _hook().settings.sandbox is True


@pytest.mark.parametrize("sandbox_flag", ["yes", "1", 1, ["true"], {"on": True}])
def test_a_sandbox_extra_that_is_not_true_or_false_is_refused_by_name(hook_env, monkeypatch, sandbox_flag):
    _set_sandbox_extra(monkeypatch, sandbox_flag)
    ok, message = _hook().test_connection()
    assert not ok
    assert message == (f"The Xero connection 'xero_default' has sandbox = {sandbox_flag!r} in its extra: it must be "
                       "true or false.")
