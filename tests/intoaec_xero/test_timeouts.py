"""Every HTTP call to Xero is bounded: a host that accepts and never answers cannot hang a task.

A real socket server accepts connections and never writes a byte; the client must give up on
its read timeout with a retriable ``XeroUnavailable``, and a token refresh that hung must have
released the grant's row lock so the next worker can refresh.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import urllib3
from intoaec_xero import db
from intoaec_xero.client import XeroClient
from intoaec_xero.errors import XeroUnavailable
from intoaec_xero.settings import XeroSettings
from intoaec_xero.tokens import STATUS_ACTIVE, TokenCipher, TokenSet, TokenStore

TIMEOUT = 1.0
ATTEMPTS = 2


@contextlib.contextmanager
def silent_server() -> Iterator[SimpleNamespace]:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)  # kept open, never read from or written to

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{listener.getsockname()[1]}", accepted=held)
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for conn in held:
            conn.close()


def _tokens(n: int, expires_in: float = 1800) -> TokenSet:
    return TokenSet(access_token=f"access-{n}", refresh_token=f"refresh-{n}", expires_at=time.time() + expires_in,
                    scope=("offline_access", "accounting.invoices.read"), client_id="client")


def _client(base_url: str, store: TokenStore, **overrides) -> XeroClient:
    settings = XeroSettings.for_single_host(base_url, client_id="client", client_secret="secret",
                                            connect_timeout=TIMEOUT, request_timeout=TIMEOUT,
                                            max_attempts=ATTEMPTS, calls_per_minute=0, **overrides)
    return XeroClient(settings, store, sleep=lambda seconds: None)


def _can_lock_and_refresh(engine, key: str) -> TokenSet | None:
    """Another worker's refresh through its own store: None if it is still waiting after 15 s."""
    result: list[TokenSet] = []

    def worker() -> None:
        other = TokenStore(engine, key, TokenCipher.from_environment())
        result.append(other.refresh(other.load(), lambda current: _tokens(99), force=True))

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    thread.join(15)
    return result[0] if result else None


def test_an_api_call_to_a_silent_server_ends_on_its_read_timeout(engine):
    store = TokenStore(engine, "k", TokenCipher.from_environment())
    store.save(_tokens(1))  # fresh: no refresh, the API call itself hangs
    with silent_server() as server:
        client = _client(server.url, store, connection_key="k")
        started = time.monotonic()
        with pytest.raises(XeroUnavailable) as caught:
            client.connections()
        elapsed = time.monotonic() - started
    assert caught.value.retriable
    assert "timed out" in str(caught.value) and f"gave up after {ATTEMPTS} attempts" in str(caught.value)
    assert len(server.accepted) == ATTEMPTS
    assert ATTEMPTS * TIMEOUT * 0.9 <= elapsed < ATTEMPTS * TIMEOUT + 3


def test_a_token_refresh_to_a_silent_server_times_out_and_releases_the_lock(engine):
    store = TokenStore(engine, "k", TokenCipher.from_environment())
    store.save(_tokens(1, expires_in=10))  # inside the expiry margin: due for a refresh
    with silent_server() as server:
        client = _client(server.url, store, connection_key="k")
        client.current_tokens()
        started = time.monotonic()
        with pytest.raises(XeroUnavailable) as caught:
            client.refresh_tokens(force=False)
        elapsed = time.monotonic() - started
    assert caught.value.retriable and caught.value.retries_exhausted
    assert "token endpoint" in str(caught.value) and "timed out" in str(caught.value)
    assert len(server.accepted) == ATTEMPTS  # the token call is retried like an API call
    assert elapsed < ATTEMPTS * TIMEOUT + 3
    # Nothing was written and the row lock is free: another worker refreshes at once.
    assert store.load().refresh_token == "refresh-1" and store.status() == STATUS_ACTIVE
    refreshed = _can_lock_and_refresh(engine, "k")
    assert refreshed is not None, "the grant's row lock was still held after the timed-out refresh"
    assert refreshed.access_token == "access-99"


def test_an_api_call_whose_token_refresh_hangs_is_not_retried_twice_over(engine):
    """The SDK refreshes inside the API call; its spent retries must not be multiplied by the call's."""
    store = TokenStore(engine, "k", TokenCipher.from_environment())
    store.save(_tokens(1, expires_in=-60))
    with silent_server() as server:
        client = _client(server.url, store, connection_key="k")
        started = time.monotonic()
        with pytest.raises(XeroUnavailable, match="token endpoint"):
            client.connections()
        elapsed = time.monotonic() - started
    assert len(server.accepted) == ATTEMPTS
    assert client.stats.retries == ATTEMPTS - 1
    assert elapsed < ATTEMPTS * TIMEOUT + 3
    assert _can_lock_and_refresh(engine, "k") is not None


@pytest.fixture
def sqlite_engine(tmp_path):
    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'intoaec.db'}")
    db.upgrade(engine)
    yield engine
    engine.dispose()


def _capture_timeouts(client: XeroClient) -> list:
    """Record the timeout every request hands urllib3, then fail it without touching the network."""
    seen = []

    def request(method, url, **kwargs):
        seen.append((method, url, kwargs.get("timeout")))
        raise urllib3.exceptions.ProtocolError("no network in this test")

    client._api_client.rest_client.pool_manager.request = request
    return seen


def test_the_default_connect_and_read_timeouts_reach_urllib3_on_api_and_token_calls(sqlite_engine):
    store = TokenStore(sqlite_engine, "k", TokenCipher.from_environment())
    store.save(_tokens(1))
    settings = XeroSettings.for_single_host("http://xero.invalid", client_id="client", client_secret="secret",
                                            connection_key="k", max_attempts=1)
    assert settings.http_timeout == (10.0, 60.0)
    client = XeroClient(settings, store, sleep=lambda seconds: None)
    seen = _capture_timeouts(client)
    with pytest.raises(XeroUnavailable):
        client.connections()
    client.current_tokens()
    with pytest.raises(XeroUnavailable):
        client.refresh_tokens(force=True)
    assert [(method, url.rsplit("/", 1)[-1]) for method, url, _ in seen] == [("GET", "Connections"),
                                                                             ("POST", "token")]
    for _, _, timeout in seen:
        assert isinstance(timeout, urllib3.Timeout)
        assert (timeout.connect_timeout, timeout.read_timeout) == (10.0, 60.0)


def test_configured_fractional_timeouts_are_honoured_not_dropped(sqlite_engine):
    """xero-python drops a float ``_request_timeout``; the client must pass the pair it honours."""
    store = TokenStore(sqlite_engine, "k", TokenCipher.from_environment())
    store.save(_tokens(1))
    settings = XeroSettings.for_single_host("http://xero.invalid", client_id="client", client_secret="secret",
                                            connection_key="k", max_attempts=1, connect_timeout=2.5,
                                            request_timeout=7.5)
    client = XeroClient(settings, store, sleep=lambda seconds: None)
    seen = _capture_timeouts(client)
    with pytest.raises(XeroUnavailable):
        client.get("get_invoices", "tenant", "GET /Invoices", page=1)
    client.current_tokens()
    with pytest.raises(XeroUnavailable):
        client.refresh_tokens(force=True)
    assert [(t.connect_timeout, t.read_timeout) for _, _, t in seen] == [(2.5, 7.5), (2.5, 7.5)]


def test_oauth_calls_carry_the_connection_timeouts(monkeypatch):
    """Sign-in, client check, connections and revocation go through requests with the same pair."""
    from intoaec_xero import oauth

    settings = XeroSettings.for_single_host("http://xero.invalid", client_id="client", client_secret="secret",
                                            connect_timeout=3, request_timeout=4)
    seen = []

    class Session:
        def post(self, url, **kwargs):
            seen.append(kwargs["timeout"])
            return SimpleNamespace(status_code=200, json=lambda: {"access_token": "a", "expires_in": 1800})

        def get(self, url, **kwargs):
            seen.append(kwargs["timeout"])
            return SimpleNamespace(status_code=200, json=lambda: [])

    oauth.exchange_code(settings, "code", "http://127.0.0.1/cb", None, session=Session())
    oauth.check_client(settings, session=Session())
    oauth.client_credentials_token(settings, session=Session())
    oauth.list_connections(settings, "access", session=Session())
    oauth.revoke(settings, "refresh", session=Session())
    assert seen == [(3.0, 4.0)] * 5


def test_oauth_against_a_silent_server_ends_in_xero_unavailable():
    from intoaec_xero import oauth

    with silent_server() as server:
        settings = XeroSettings.for_single_host(server.url, client_id="client", client_secret="secret",
                                                connect_timeout=TIMEOUT, request_timeout=TIMEOUT)
        started = time.monotonic()
        with pytest.raises(XeroUnavailable, match="ReadTimeout") as caught:
            oauth.revoke(settings, "refresh")
        with pytest.raises(XeroUnavailable, match="ReadTimeout"):
            oauth.list_connections(settings, "access")
        elapsed = time.monotonic() - started
    assert caught.value.retriable
    assert elapsed < 2 * TIMEOUT + 3
