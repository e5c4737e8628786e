"""The token store: one refresh at a time, committed before use, re-read after the lock."""

from __future__ import annotations

import threading
import time

import pytest
from cryptography.fernet import Fernet
from intoaec_xero.errors import XeroAuthError
from intoaec_xero.schema import xero_tokens
from intoaec_xero.tokens import STATUS_RECONNECT, TokenCipher, TokenSet, TokenStore
from sqlalchemy import select


def _tokens(n: int, expires_in: float = 1800) -> TokenSet:
    return TokenSet(access_token=f"access-{n}", refresh_token=f"refresh-{n}", expires_at=time.time() + expires_in,
                    scope=("offline_access", "accounting.invoices.read"))


def test_round_trip_and_repr_hides_secrets(engine):
    store = TokenStore(engine, "xero_default", TokenCipher(None))
    store.save(_tokens(1))
    loaded = store.load()
    assert loaded.refresh_token == "refresh-1"
    assert loaded.scope == ("offline_access", "accounting.invoices.read")
    assert "refresh-1" not in repr(loaded) and "access-1" not in repr(loaded)


def test_encrypted_at_rest_when_a_fernet_key_is_set(engine):
    key = Fernet.generate_key().decode()
    store = TokenStore(engine, "xero_default", TokenCipher(key))
    store.save(_tokens(1))
    with engine.connect() as conn:
        raw = conn.execute(select(xero_tokens.c.token, xero_tokens.c.encrypted)).one()
    assert raw.encrypted is True
    assert b"refresh-1" not in bytes(raw.token)
    assert store.load().refresh_token == "refresh-1"
    with pytest.raises(XeroAuthError, match="no Fernet key"):
        TokenStore(engine, "xero_default", TokenCipher(None)).load()


def test_a_fresh_token_is_not_refreshed_again(engine):
    store = TokenStore(engine, "k", TokenCipher(None))
    store.save(_tokens(1))
    calls = []
    result = store.refresh(store.load(), lambda current: calls.append(1) or _tokens(2))
    assert calls == [] and result.access_token == "access-1"


def test_refresh_commits_the_new_set_and_keeps_the_previous_refresh_token(engine):
    store = TokenStore(engine, "k", TokenCipher(None))
    store.save(_tokens(1, expires_in=10))
    result = store.refresh(store.load(), lambda current: _tokens(2))
    assert result.access_token == "access-2"
    stored = store.load()
    assert stored.refresh_token == "refresh-2"
    assert stored.previous_refresh_token == "refresh-1"


def test_concurrent_workers_refresh_exactly_once(engine):
    """8 workers find the token expired at once; the lock lets one refresh, the rest re-read."""
    TokenStore(engine, "k", TokenCipher(None)).save(_tokens(1, expires_in=10))
    stale = TokenStore(engine, "k", TokenCipher(None)).load()
    refreshes = []
    lock = threading.Lock()

    def fetch(current):
        with lock:
            refreshes.append(current.refresh_token)
        time.sleep(0.2)  # Xero takes a while; others must wait on the row lock, not race
        return _tokens(2)

    results = []

    def worker():
        results.append(TokenStore(engine, "k", TokenCipher(None)).refresh(stale, fetch).access_token)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert refreshes == ["refresh-1"]
    assert results == ["access-2"] * 8


def test_a_crash_before_commit_keeps_the_old_refresh_token(engine):
    store = TokenStore(engine, "k", TokenCipher(None))
    store.save(_tokens(1, expires_in=10))

    def crash(current):
        raise KeyboardInterrupt  # the worker dies after Xero answered, before the commit

    with pytest.raises(KeyboardInterrupt):
        store.refresh(store.load(), crash)
    # Xero still accepts refresh-1 for 30 minutes, so the next refresh recovers with it.
    assert store.load().refresh_token == "refresh-1"


def test_invalid_grant_marks_the_grant_reconnect_needed(engine):
    store = TokenStore(engine, "k", TokenCipher(None))
    store.save(_tokens(1, expires_in=10))

    def refused(current):
        raise XeroAuthError("invalid_grant")

    with pytest.raises(XeroAuthError):
        store.refresh(store.load(), refused)
    assert store.status() == STATUS_RECONNECT


def test_refresh_without_a_stored_token_says_connect_first(engine):
    with pytest.raises(XeroAuthError, match="connect Xero first"):
        TokenStore(engine, "missing", TokenCipher(None)).refresh(None, lambda c: _tokens(1))
