"""Token refresh under trouble: passing failures are retried, and a lost rotation recovers in the same run.

Xero rotates the refresh token on every use and accepts the previous one again for 30
minutes. So when Xero's answer is lost after it rotated (a read timeout, a transfer cut
half-way), sending the same old token again is what recovers; and when Xero refuses the stored
token while the previous one is inside its window, the previous one is tried once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from intoaec_xero.client import XeroClient
from intoaec_xero.errors import XeroAuthError, XeroUnavailable
from intoaec_xero.oauth import finish_authorization, start_authorization
from intoaec_xero.schema import xero_tokens
from intoaec_xero.settings import XeroSettings
from intoaec_xero.tokens import (
    PREVIOUS_TOKEN_GRACE_SECONDS,
    STATUS_ACTIVE,
    STATUS_RECONNECT,
    TokenCipher,
    TokenSet,
    TokenStore,
)
from sqlalchemy import update

from tests.harness.servers import serving

TOKEN_LABEL = "POST /connect/token"


# -- a proxy in front of the sandbox's token endpoint that loses answers ---------------------

class _LosingProxy(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, mode: str, losses: int):
        super().__init__(("127.0.0.1", 0), _LosingHandler)
        self.upstream = upstream
        self.mode = mode  # "cut": half the body then close; "stall": say nothing until the client gives up
        self.losses = losses
        self.forwarded = 0
        self.lost = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _LosingHandler(http.server.BaseHTTPRequestHandler):
    server: _LosingProxy

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization", "accept")}
        # Xero (the sandbox) does the work, rotation included, whatever happens to its answer.
        answer = requests.post(self.server.upstream + self.path, data=body, headers=headers, timeout=30)
        with self.server.lock:
            self.server.forwarded += 1
            lose = self.server.lost < self.server.losses
            if lose:
                self.server.lost += 1
        if lose and self.server.mode == "stall":
            time.sleep(3)
            self.close_connection = True
            return
        self.send_response(answer.status_code)
        self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        if lose:
            self.wfile.write(answer.content[: len(answer.content) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(answer.content)


def losing_proxy(upstream: str, mode: str, losses: int = 1) -> contextlib.AbstractContextManager[_LosingProxy]:
    return serving(_LosingProxy(upstream, mode, losses))


# -- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sandbox():
    from xero_sandbox.testing import running_sandbox

    with running_sandbox(dataset="small", seed=7, limits=False) as handle:
        yield handle


@pytest.fixture
def connected(sandbox, engine):
    """A grant freshly consented in the sandbox and stored; the sandbox's counters start at zero."""
    from xero_sandbox.testing import sign_in_and_consent

    sandbox.clear_faults()
    settings = XeroSettings.for_single_host(sandbox.base_url, client_id="sandbox-client",
                                            client_secret="sandbox-secret", calls_per_minute=0,
                                            connect_timeout=1.0, request_timeout=1.0, max_attempts=4)
    store = TokenStore(engine, settings.connection_key, TokenCipher.from_environment())
    request = start_authorization(settings, "http://127.0.0.1:9/callback")
    store.save(finish_authorization(settings, request, sign_in_and_consent(request.url)))
    sandbox.reset_stats()
    yield settings, store
    sandbox.clear_faults()


def _client(settings: XeroSettings, store: TokenStore) -> XeroClient:
    client = XeroClient(settings, store, sleep=lambda seconds: None)
    client.current_tokens()  # what this worker last used: the refresh compares against it
    return client


def _token_posts(sandbox) -> dict[str, int]:
    return sandbox.stats()["requests"].get(TOKEN_LABEL, {})


# -- a lost answer after Xero rotated ------------------------------------------------------------

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("mode", ["cut", "stall"])
def test_a_rotation_whose_answer_was_lost_recovers_in_the_same_run(sandbox, connected, mode):
    settings, store = connected
    before = store.load()
    with losing_proxy(sandbox.base_url, mode) as proxy:
        client = _client(dataclasses.replace(settings, identity_base_url=proxy.url), store)
        after = client.refresh_tokens(force=True)
    assert (proxy.lost, proxy.forwarded) == (1, 2)
    assert client.stats.retries == 1 and client.stats.token_refreshes == 1
    stats = sandbox.stats()
    # Xero rotated twice (the lost answer and the retry with the same old token) and refused nothing.
    assert stats["token_refreshes"] == 2 and stats["invalid_grant"] == 0
    stored = store.load()
    assert stored.access_token == after.access_token != before.access_token
    assert stored.refresh_token != before.refresh_token
    assert stored.previous_refresh_token == before.refresh_token
    assert store.status() == STATUS_ACTIVE
    # What was stored is what Xero now expects: the API answers and the next rotation works.
    follow_up = _client(settings, store)
    assert len(follow_up.connections()) == 2
    follow_up.refresh_tokens(force=True)
    assert sandbox.stats()["invalid_grant"] == 0


def test_passing_token_endpoint_failures_are_retried_like_api_calls(sandbox, connected):
    settings, store = connected
    before = store.load()
    sandbox.faults(endpoint="connect/token", status=503, count=2)
    client = _client(settings, store)
    after = client.refresh_tokens(force=True)
    assert after.access_token != before.access_token
    assert client.stats.retries == 2
    assert _token_posts(sandbox) == {"503": 2, "200": 1}
    assert store.status() == STATUS_ACTIVE


def test_a_token_endpoint_that_stays_down_gives_up_after_max_attempts(sandbox, connected):
    settings, store = connected
    before = store.load()
    sandbox.faults(endpoint="connect/token", status=503)
    client = _client(settings, store)
    with pytest.raises(XeroUnavailable, match="gave up after 4 attempts") as caught:
        client.refresh_tokens(force=True)
    assert caught.value.retriable
    assert _token_posts(sandbox) == {"503": 4}
    # Nothing was spent: the stored grant is intact and still works once Xero is back.
    assert store.load().refresh_token == before.refresh_token and store.status() == STATUS_ACTIVE
    sandbox.clear_faults()
    assert _client(settings, store).refresh_tokens(force=True).access_token != before.access_token


def test_a_refresh_inside_an_api_call_is_retried_once_not_squared(sandbox, connected):
    settings, store = connected
    tokens = store.load()
    tokens.expires_at = time.time() - 60  # the SDK refreshes before the call
    store.save(tokens)
    sandbox.faults(endpoint="connect/token", status=503)
    client = XeroClient(settings, store, sleep=lambda seconds: None)
    with pytest.raises(XeroUnavailable, match="gave up after 4 attempts"):
        client.connections()
    assert _token_posts(sandbox) == {"503": 4}


# -- the previous refresh token's grace window ------------------------------------------------

def test_a_refused_stored_token_falls_back_once_to_the_previous_one_inside_its_window(sandbox, connected):
    settings, store = connected
    client = _client(settings, store)
    first = store.load()
    client.refresh_tokens(force=True)  # rotates: the first refresh token becomes the previous one
    rotated = store.load()
    assert rotated.previous_refresh_token == first.refresh_token and rotated.previous_rotated_at
    rotated.refresh_token = "a-token-xero-does-not-know"  # what Xero refuses with invalid_grant
    store.save(rotated)

    after = _client(settings, store).refresh_tokens(force=True)
    stats = sandbox.stats()
    assert stats["invalid_grant"] == 1 and stats["token_refreshes"] == 2
    stored = store.load()
    assert store.status() == STATUS_ACTIVE
    assert stored.access_token == after.access_token
    # The token that worked stays the previous one, its window still counted from its rotation.
    assert stored.previous_refresh_token == first.refresh_token
    assert stored.previous_rotated_at == rotated.previous_rotated_at
    assert len(_client(settings, store).connections()) == 2


def test_no_fallback_once_the_previous_token_is_past_its_window(sandbox, connected):
    settings, store = connected
    client = _client(settings, store)
    client.refresh_tokens(force=True)
    rotated = store.load()
    rotated.refresh_token = "a-token-xero-does-not-know"
    rotated.previous_rotated_at = time.time() - 31 * 60
    store.save(rotated)
    with pytest.raises(XeroAuthError, match="invalid_grant") as caught:
        _client(settings, store).refresh_tokens(force=True)
    assert not caught.value.retriable
    assert sandbox.stats()["invalid_grant"] == 1  # the stored token only; the old one was not tried
    assert store.status() == STATUS_RECONNECT


# -- the store's rules, without Xero ------------------------------------------------------------

def _set(refresh: str, previous: str | None = None, rotated_at: float | None = None,
         expires_in: float = 10) -> TokenSet:
    return TokenSet(access_token=f"access-{refresh}", refresh_token=refresh, expires_at=time.time() + expires_in,
                    previous_refresh_token=previous, previous_rotated_at=rotated_at)


def _xero(accepts: set[str], used: list[str]):
    def fetch(current: TokenSet) -> TokenSet:
        used.append(current.refresh_token)
        if current.refresh_token not in accepts:
            raise XeroAuthError("Xero refused the stored refresh token (invalid_grant).", status=400)
        return _set(f"new-from-{current.refresh_token}", expires_in=1800)
    return fetch


def test_the_previous_token_is_tried_exactly_once_and_then_the_grant_is_given_up(engine):
    store = TokenStore(engine, "k", TokenCipher.from_environment())
    store.save(_set("stored", previous="old", rotated_at=time.time() - 60))
    used: list[str] = []
    with pytest.raises(XeroAuthError, match="invalid_grant"):
        store.refresh(store.load(), _xero(set(), used), force=True)
    assert used == ["stored", "old"]
    assert store.status() == STATUS_RECONNECT


def test_a_set_stored_before_rotation_times_were_kept_uses_the_row_refresh_time(engine):
    store = TokenStore(engine, "k", TokenCipher.from_environment())
    store.save(_set("stored", previous="old"))  # no previous_rotated_at: refreshed_at says when
    used: list[str] = []
    result = store.refresh(store.load(), _xero({"old"}, used), force=True)
    assert used == ["stored", "old"] and result.refresh_token == "new-from-old"
    assert store.status() == STATUS_ACTIVE

    store.save(_set("stored-2", previous="old-2"))
    long_ago = datetime.now(UTC) - timedelta(seconds=PREVIOUS_TOKEN_GRACE_SECONDS + 60)
    with engine.begin() as conn:
        conn.execute(update(xero_tokens).values(refreshed_at=long_ago))
    used.clear()
    with pytest.raises(XeroAuthError):
        store.refresh(store.load(), _xero({"old-2"}, used), force=True)
    assert used == ["stored-2"]


def test_a_passing_failure_is_not_answered_with_the_previous_token(engine):
    """Only Xero's invalid_grant says the stored token is dead; a 503 says nothing about it."""
    store = TokenStore(engine, "k", TokenCipher.from_environment())
    store.save(_set("stored", previous="old", rotated_at=time.time() - 60))
    used: list[str] = []

    def unavailable(current: TokenSet) -> TokenSet:
        used.append(current.refresh_token)
        raise XeroUnavailable("POST /connect/token: Xero answered 503.", status=503)

    with pytest.raises(XeroUnavailable):
        store.refresh(store.load(), unavailable, force=True)
    assert used == ["stored"]
    assert store.load().refresh_token == "stored" and store.status() == STATUS_ACTIVE


def test_a_normal_rotation_records_when_the_previous_token_was_rotated_out(engine):
    store = TokenStore(engine, "k", TokenCipher.from_environment())
    store.save(_set("one"))
    started = time.time()
    store.refresh(store.load(), _xero({"one"}, []), force=True)
    stored = store.load()
    assert stored.previous_refresh_token == "one"
    assert started <= stored.previous_rotated_at <= time.time()
