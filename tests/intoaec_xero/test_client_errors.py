"""Which failures are worth another attempt: every error type says so, and the token endpoint's
answers are classified like the API's (passing ones retried, a refused grant or client not)."""

from __future__ import annotations

import contextlib
import http.server
import inspect
import json
import socket
import time

import pytest
from intoaec_xero import errors
from intoaec_xero.client import XeroClient
from intoaec_xero.errors import (
    ConfigurationError,
    XeroAuthError,
    XeroBadResponse,
    XeroRateLimited,
    XeroUnavailable,
)
from intoaec_xero.settings import XeroSettings
from intoaec_xero.tokens import STATUS_ACTIVE, STATUS_RECONNECT, TokenCipher, TokenSet, TokenStore

from tests.harness.servers import serving

EXPECTED_RETRIABLE = {
    "IntoAECXeroError": False,
    "ConfigurationError": False,
    "ConnectionMissing": False,
    "TargetDatabaseError": True,
    "XeroError": False,
    "XeroUnavailable": True,
    "XeroRateLimited": True,
    "XeroDailyLimitReached": False,
    "XeroAuthError": False,
    "XeroAccessDenied": False,
    "StreamNotAvailable": False,
    "XeroBadResponse": True,
}


def test_every_error_type_says_whether_a_retry_can_help():
    classes = {name: cls for name, cls in inspect.getmembers(errors, inspect.isclass)
               if issubclass(cls, errors.IntoAECXeroError)}
    assert set(classes) == set(EXPECTED_RETRIABLE), "a new error type needs a deliberate retriable flag"
    for name, cls in classes.items():
        assert "retriable" in vars(cls), f"{name} inherits its retriable flag instead of stating it"
        assert cls.retriable is EXPECTED_RETRIABLE[name], name


# -- a token endpoint that answers what each test scripts ------------------------------------

GOOD = (200, {"access_token": "new-access", "refresh_token": "new-refresh", "expires_in": 1800,
              "token_type": "Bearer", "scope": "offline_access accounting.invoices.read"})


class _Scripted(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answers: list):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers = list(answers)
        self.posts: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Scripted

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        form = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.server.posts.append(form)
        answer = self.server.answers.pop(0) if self.server.answers else GOOD
        if answer == "reset":  # close without a word
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if answer == "not-json":  # a body cut short, no length to notice it by
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b'{"access_token": "new-acc')
            self.close_connection = True
            return
        status, body = answer
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        if status == 429:
            self.send_header("Retry-After", "0")
            self.send_header("X-Rate-Limit-Problem", "minute")
        self.end_headers()
        self.wfile.write(raw)


def token_endpoint(*answers) -> contextlib.AbstractContextManager[_Scripted]:
    return serving(_Scripted(list(answers)))


def _refresh(engine, server: _Scripted, max_attempts: int = 4):
    store = TokenStore(engine, "k", TokenCipher.from_environment())
    store.save(TokenSet(access_token="old-access", refresh_token="old-refresh", expires_at=time.time() + 10,
                        scope=("offline_access",)))
    settings = XeroSettings.for_single_host(server.url, client_id="client", client_secret="secret",
                                            connection_key="k", connect_timeout=1, request_timeout=1,
                                            max_attempts=max_attempts)
    client = XeroClient(settings, store, sleep=lambda seconds: None)
    client.current_tokens()
    return client, store


@pytest.mark.parametrize("failure", [
    (500, {"error": "server_error"}),
    (502, {}),
    (503, {"error": "temporarily_unavailable"}),
    (504, {}),
    (429, {}),
    "reset",
    "not-json",
])
def test_a_passing_token_endpoint_failure_is_retried_with_the_same_refresh_token(sqlite_engine, failure):
    with token_endpoint(failure, failure) as server:
        client, store = _refresh(sqlite_engine, server)
        tokens = client.refresh_tokens(force=True)
    assert tokens.access_token == "new-access"
    assert len(server.posts) == 3 and client.stats.retries == 2
    # The same old refresh token each time: Xero's 30-minute grace covers a lost rotation.
    assert all("refresh_token=old-refresh" in form for form in server.posts)
    stored = store.load()
    assert stored.refresh_token == "new-refresh" and stored.previous_refresh_token == "old-refresh"


@pytest.mark.parametrize(("failure", "kind"), [
    ((503, {}), XeroUnavailable),
    ((429, {}), XeroRateLimited),
    ("reset", XeroUnavailable),
    ("not-json", XeroBadResponse),
    ((200, {"token_type": "Bearer"}), XeroBadResponse),
])
def test_a_token_failure_that_persists_is_classified_and_retriable(sqlite_engine, failure, kind):
    with token_endpoint(*[failure] * 3) as server:
        client, store = _refresh(sqlite_engine, server, max_attempts=3)
        with pytest.raises(kind, match="gave up after 3 attempts") as caught:
            client.refresh_tokens(force=True)
    assert caught.value.retriable and len(server.posts) == 3
    assert store.status() == STATUS_ACTIVE and store.load().refresh_token == "old-refresh"


def test_invalid_grant_is_final_and_marks_the_grant_for_reconnecting(sqlite_engine):
    with token_endpoint((400, {"error": "invalid_grant"})) as server:
        client, store = _refresh(sqlite_engine, server)
        with pytest.raises(XeroAuthError, match="invalid_grant") as caught:
            client.refresh_tokens(force=True)
    assert not caught.value.retriable
    assert len(server.posts) == 1 and client.stats.retries == 0
    assert store.status() == STATUS_RECONNECT


@pytest.mark.parametrize("status", [400, 401])
def test_invalid_client_is_final_and_leaves_the_grant_alone(sqlite_engine, status):
    with token_endpoint((status, {"error": "invalid_client"})) as server:
        client, store = _refresh(sqlite_engine, server)
        with pytest.raises(XeroAuthError, match="invalid_client") as caught:
            client.refresh_tokens(force=True)
    assert not caught.value.retriable
    assert len(server.posts) == 1
    assert store.status() == STATUS_ACTIVE


def test_bad_settings_are_a_configuration_error_that_is_not_retried():
    with pytest.raises(ConfigurationError) as caught:
        XeroSettings(client_id="client", client_secret="secret", connect_timeout=0)
    assert not caught.value.retriable


@pytest.fixture
def sqlite_engine(tmp_path):
    from intoaec_xero import db

    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'intoaec.db'}")
    db.upgrade(engine)
    yield engine
    engine.dispose()
