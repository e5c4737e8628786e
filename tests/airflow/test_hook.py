"""XeroHook: built from the ``xero`` connection, and the Test button's verdicts against the sandbox."""

from __future__ import annotations

import json
import os
import secrets
import time

import pytest
from intoaec_xero.tokens import STATUS_ACTIVE, STATUS_RECONNECT, TokenCipher, TokenStore

from tests.airflow.conftest import CLIENT_ID, CLIENT_SECRET, airflow_connection_env, connect
from tests.intoaec_xero.test_timeouts import silent_server

pytestmark = [pytest.mark.airflow, pytest.mark.integration]


@pytest.fixture
def hook_env(monkeypatch, sandbox, db_url):
    airflow_connection_env(monkeypatch, sandbox, db_url)
    # The tokens these tests store unencrypted must read back the same way in the hook.
    monkeypatch.setenv("INTOAEC_FERNET_KEY", "")
    monkeypatch.setattr("intoaec_xero.airflow.hooks.token_cipher", lambda: TokenCipher(None))


def _hook(conn_id: str = "xero_default"):
    from intoaec_xero.airflow.hooks import XeroHook

    return XeroHook(xero_conn_id=conn_id)


def test_the_session_authenticates_the_app_and_sends_no_xero_settings_as_headers(hook_env, monkeypatch, sandbox,
                                                                                 db_url):
    airflow_connection_env(monkeypatch, sandbox, db_url, tenant_filter="Harbourside", verify="false",
                           proxies=json.dumps({}))
    session = _hook().get_conn()
    assert session.auth.username == CLIENT_ID and session.auth.password == CLIENT_SECRET
    assert not {"scopes", "tenant_filter", "api_base_url", "identity_base_url", "grant_type"} & {
        h.lower() for h in session.headers}
    assert session.verify == "false"  # HttpHook's own handling of the connection's HTTP extras


def test_no_consent_yet_says_so(hook_env, engine):
    ok, message = _hook().test_connection()
    assert not ok
    assert "nobody has connected an organisation yet" in message


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
        "extra": {"identity_base_url": "http://127.0.0.1:9", "api_base_url": "http://127.0.0.1:9/api.xro/2.0"}}))
    ok, message = _hook().test_connection()
    assert not ok and "Cannot reach Xero" in message


def test_a_missing_connection_says_how_to_add_it(hook_env, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_XERO_DEFAULT")
    ok, message = _hook().test_connection()
    assert not ok and "'xero_default' is missing" in message


def test_the_ui_test_button_path_finds_the_grant_under_a_temporary_connection_id(hook_env, sandbox, engine):
    """Airflow tests a form under a random connection id; the grant stored for that app is the one meant."""
    from airflow.models.connection import Connection

    connect(sandbox, engine)
    transient = secrets.token_hex(5)
    conn = Connection(conn_id=transient, conn_type="xero", login=CLIENT_ID, password=CLIENT_SECRET,
                      extra=json.dumps({"api_base_url": f"{sandbox.base_url}/api.xro/2.0",
                                        "identity_base_url": sandbox.base_url}))
    os.environ[f"AIRFLOW_CONN_{transient.upper()}"] = conn.get_uri()
    try:
        ok, message = conn.test_connection()
    finally:
        del os.environ[f"AIRFLOW_CONN_{transient.upper()}"]
    assert ok, message
    assert message.startswith("Connected to 2 organisations")
    assert TokenStore(engine, transient, TokenCipher(None)).status() is None  # nothing stored under the temp id


def test_a_custom_connection_is_tested_with_a_client_credentials_token(hook_env, monkeypatch, sandbox, db_url,
                                                                       engine):
    airflow_connection_env(monkeypatch, sandbox, db_url, grant_type="client_credentials")
    ok, message = _hook().test_connection()
    assert ok, message
    assert "custom connection" in message
    assert TokenStore(engine, "xero_default", TokenCipher(None)).status() is None


def test_a_silent_xero_ends_the_test_within_the_connection_timeouts(hook_env, monkeypatch):
    """A host that accepts and never answers: the Test button says so instead of hanging the page."""
    with silent_server() as server:
        monkeypatch.setenv("AIRFLOW_CONN_XERO_DEFAULT", json.dumps({
            "conn_type": "xero", "login": CLIENT_ID, "password": CLIENT_SECRET,
            "extra": {"identity_base_url": server.url, "api_base_url": f"{server.url}/api.xro/2.0",
                      "connect_timeout": 1, "read_timeout": "1"}}))
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
