"""A connection under test never hands another connection's Xero grant to the host it names.

The Test button (and ``airflow connections test``) runs a connection whose URLs are whatever
the person testing typed. Here they name a local listener that records every request and
answers like a hostile Xero (a made-up token, or ``invalid_grant``), with the real, public
client id and a wrong secret. The stored grant of ``xero_default`` must not reach it (no access
token in an Authorization header, no refresh token in any body) and must stay exactly as it
was, through each way Airflow runs a connection test: the CLI, the REST API's test endpoint
(in-process and through a real API server) and the worker-side test of a form.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from intoaec_xero.tokens import STATUS_ACTIVE, TokenCipher, TokenSet, TokenStore

from tests.airflow.conftest import CLIENT_ID, airflow_connection_env, connect
from tests.harness.servers import serving
from tests.plugins.conftest import airflow_ui  # noqa: F401 - the real API server, shared with the page tests

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

WRONG_SECRET = "not-the-real-secret"


class _Recorder(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answer: str):
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.answer = answer  # "fake-token": 200 with made-up tokens; "invalid-grant": 400 invalid_grant
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def everything_sent(self) -> str:
        """Every request line, header and body this host received, as one text to search."""
        with self.lock:
            return "\n".join(f"{r['method']} {r['path']}\n{r['headers']}\n{r['body']}" for r in self.requests)


class _RecordingHandler(http.server.BaseHTTPRequestHandler):
    server: _Recorder

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("latin-1")
        with self.server.lock:
            self.server.requests.append({"method": self.command, "path": self.path,
                                         "headers": str(self.headers), "body": body})
        if self.server.answer == "invalid-grant":
            status, answer = 400, {"error": "invalid_grant"}
        elif self.path.rstrip("/").endswith("/connections"):
            status, answer = 200, [{"id": "c1", "tenantId": "t-fake", "tenantType": "ORGANISATION",
                                    "tenantName": "Attacker Ltd"}]
        else:
            status, answer = 200, {"access_token": "made-up-access", "refresh_token": "made-up-refresh",
                                   "expires_in": 1800, "token_type": "Bearer", "scope": "offline_access"}
        raw = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_DELETE = _handle

    def log_message(self, *args) -> None:
        pass


def recording_listener(answer: str) -> contextlib.AbstractContextManager[_Recorder]:
    return serving(_Recorder(answer))


def _listener_extra(listener: _Recorder, **more) -> dict:
    return {"api_base_url": f"{listener.url}/api.xro/2.0", "identity_base_url": listener.url, **more}


def _secrets_of(tokens: TokenSet) -> list[str]:
    return [t for t in (tokens.access_token, tokens.refresh_token, tokens.previous_refresh_token) if t]


def _assert_untouched(listener: _Recorder, store: TokenStore, before: TokenSet) -> None:
    sent = listener.everything_sent()
    # The client check reached the listener, so the test went as far as a hostile host can take it.
    assert any(r["method"] == "POST" and r["path"] == "/connect/token" for r in listener.requests), sent
    for token in _secrets_of(before):
        assert token not in sent
    assert store.load() == before
    assert store.status() == STATUS_ACTIVE


def _with_every_kind_of_token(store: TokenStore, access: str) -> None:
    """A previous refresh token inside its grace window too; an expired access token makes a client refresh."""
    tokens = store.load()
    tokens.previous_refresh_token = "previous-" + secrets.token_hex(8)
    tokens.previous_rotated_at = time.time() - 60
    if access == "expired":
        tokens.expires_at = time.time() - 5
    store.save(tokens)


@pytest.fixture
def db_url(tmp_path):
    """Where the grant is stored does not change where a test may send it: SQLite only here (the
    store itself is tested on both backends in tests/intoaec_xero/test_tokens.py)."""
    return f"sqlite:///{tmp_path / 'intoaec.db'}"


@pytest.fixture(params=["fresh", "expired"])
def connected(request, monkeypatch, sandbox, db_url, engine):
    """``xero_default`` connected through the sandbox; its access token fresh (sent as is) or expired (refreshed)."""
    airflow_connection_env(monkeypatch, sandbox, db_url)
    _, store = connect(sandbox, engine, cipher=TokenCipher.from_environment())
    _with_every_kind_of_token(store, request.param)
    return store


@pytest.mark.parametrize("answer", ["fake-token", "invalid-grant"])
def test_airflow_connections_test_sends_another_connections_grant_nowhere(connected, monkeypatch, answer):
    """``airflow connections test xero_probe``, a saved connection naming the listener, as the CLI runs it."""
    before = connected.load()
    with recording_listener(answer) as listener:
        env = dict(os.environ, AIRFLOW__CORE__TEST_CONNECTION="Enabled",
                   AIRFLOW_CONN_XERO_PROBE=json.dumps({"conn_type": "xero", "login": CLIENT_ID,
                                                       "password": WRONG_SECRET,
                                                       "extra": _listener_extra(listener, sandbox=True)}))
        airflow = str(Path(sys.executable).with_name("airflow"))
        result = subprocess.run([airflow, "connections", "test", "xero_probe"], env=env, capture_output=True,
                                text=True, timeout=300)
        _assert_untouched(listener, connected, before)
        output = result.stdout + result.stderr
        assert result.returncode == 1, output
        assert "Connection failed!" in output and "no grant is stored under the connection id 'xero_probe'" in output


@pytest.mark.parametrize("answer", ["fake-token", "invalid-grant"])
def test_the_rest_apis_temporary_connection_id_reads_no_grant(connected, answer):
    """What ``POST /api/v2/connections/test`` does in the API server: the form under a random id."""
    from airflow.models.connection import Connection

    before = connected.load()
    with recording_listener(answer) as listener:
        transient = secrets.token_hex(5)
        conn = Connection(conn_id=transient, conn_type="xero", login=CLIENT_ID, password=WRONG_SECRET,
                          extra=json.dumps(_listener_extra(listener, sandbox=True)))
        os.environ[f"AIRFLOW_CONN_{transient.upper()}"] = conn.get_uri()
        try:
            ok, message = conn.test_connection()
        finally:
            del os.environ[f"AIRFLOW_CONN_{transient.upper()}"]
        _assert_untouched(listener, connected, before)
        assert not ok and f"no grant is stored under the connection id '{transient}'" in message


@pytest.mark.parametrize("answer", ["fake-token", "invalid-grant"])
def test_a_form_tested_on_a_worker_under_the_real_id_reads_no_grant(connected, answer):
    """Airflow's worker-side test holds the form in memory under the saved connection's own id."""
    from airflow.sdk import Connection

    before = connected.load()
    with recording_listener(answer) as listener:
        form = Connection(conn_id="xero_default", conn_type="xero", login=CLIENT_ID, password=WRONG_SECRET,
                          extra=json.dumps(_listener_extra(listener, sandbox=True)))
        ok, message = form.test_connection()
        _assert_untouched(listener, connected, before)
        assert not ok
        assert "a connection form under test never uses the grant stored for 'xero_default'" in message


def test_the_saved_connection_itself_still_reaches_its_organisations(connected):
    """The same rule leaves the saved connection working: its own grant, its own URLs."""
    from airflow.models.connection import Connection

    ok, message = Connection.get_connection_from_secrets("xero_default").test_connection()
    assert ok, message
    assert message == "Connected to 2 organisations: Harbourside Architects Ltd, Meridian Structural Engineers Pty Ltd"


def test_a_url_that_is_not_xeros_without_sandbox_is_refused_before_any_request(connected):
    from airflow.models.connection import Connection

    before = connected.load()
    with recording_listener("fake-token") as listener:
        transient = secrets.token_hex(5)
        conn = Connection(conn_id=transient, conn_type="xero", login=CLIENT_ID, password=WRONG_SECRET,
                          extra=json.dumps(_listener_extra(listener)))
        os.environ[f"AIRFLOW_CONN_{transient.upper()}"] = conn.get_uri()
        try:
            ok, message = conn.test_connection()
        finally:
            del os.environ[f"AIRFLOW_CONN_{transient.upper()}"]
        assert not ok
        assert message == (f"The Xero connection '{transient}' points api_base_url at {listener.url}, which is not "
                           "Xero's api.xero.com: set \"sandbox\": true in its extra if that is the local sandbox, "
                           "or remove api_base_url to use Xero's.")
        assert listener.requests == []
    assert connected.load() == before


# -- through a real API server, as the connection form's Test button calls it ------------------

@pytest.fixture(params=["fresh", "expired"])
def ui_connected(request, airflow_ui):  # noqa: F811 - the fixture imported above
    airflow_ui.reset()
    _, store = connect(airflow_ui.sandbox, airflow_ui.engine, cipher=TokenCipher(airflow_ui.fernet_key))
    _with_every_kind_of_token(store, request.param)
    yield airflow_ui, store
    airflow_ui.reset()


@pytest.mark.parametrize("connection_id", ["xero_default", "xero_probe"])
@pytest.mark.parametrize("answer", ["fake-token", "invalid-grant"])
def test_the_rest_test_endpoint_sends_the_stored_grant_nowhere(ui_connected, connection_id, answer):
    """``POST /api/v2/connections/test`` with the listener's URLs, the real client id and a wrong secret.

    Under ``xero_default`` Airflow merges the saved connection into the form first, so this is
    also the case of someone re-testing the saved connection with only its URLs changed.
    """
    ui, store = ui_connected
    before = store.load()
    with recording_listener(answer) as listener:
        body = {"connection_id": connection_id, "conn_type": "xero", "login": CLIENT_ID, "password": WRONG_SECRET,
                "extra": json.dumps(_listener_extra(listener, sandbox=True))}
        answer_ = ui.session().post(f"{ui.base_url}/api/v2/connections/test", headers=ui.bearer(), json=body,
                                    timeout=120)
        assert answer_.status_code == 200, answer_.text
        _assert_untouched(listener, store, before)
        verdict = answer_.json()
        assert verdict["status"] is False and "no grant is stored under the connection id" in verdict["message"]


def test_the_rest_test_endpoint_refuses_a_url_that_is_not_xeros_without_sandbox(ui_connected):
    ui, store = ui_connected
    before = store.load()
    with recording_listener("fake-token") as listener:
        body = {"connection_id": "xero_probe", "conn_type": "xero", "login": CLIENT_ID, "password": WRONG_SECRET,
                "extra": json.dumps({"identity_base_url": listener.url})}
        verdict = ui.session().post(f"{ui.base_url}/api/v2/connections/test", headers=ui.bearer(), json=body,
                                    timeout=120).json()
        assert verdict["status"] is False
        named, _, sentence = verdict["message"].partition("' points ")
        assert named.startswith("The Xero connection '")  # the form's temporary id
        assert sentence == (f"identity_base_url at {listener.url}, which is not Xero's identity.xero.com: set "
                            "\"sandbox\": true in its extra if that is the local sandbox, or remove "
                            "identity_base_url to use Xero's.")
        assert listener.requests == []
    assert store.load() == before
