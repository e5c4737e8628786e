"""The token store: one refresh at a time, committed before use, re-read after the lock, encrypted at rest."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from cryptography.fernet import Fernet
from intoaec_xero.errors import ConfigurationError, XeroAuthError
from intoaec_xero.schema import xero_tokens
from intoaec_xero.tokens import STATUS_ACTIVE, STATUS_RECONNECT, TokenCipher, TokenSet, TokenStore
from sqlalchemy import select

KEY = Fernet.generate_key().decode()


def _tokens(n: int, expires_in: float = 1800) -> TokenSet:
    return TokenSet(access_token=f"access-{n}", refresh_token=f"refresh-{n}", expires_at=time.time() + expires_in,
                    scope=("offline_access", "accounting.invoices.read"))


def test_round_trip_and_repr_hides_secrets(engine):
    store = TokenStore(engine, "xero_default", TokenCipher(KEY))
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
    store = TokenStore(engine, "k", TokenCipher(KEY))
    store.save(_tokens(1))
    calls = []
    result = store.refresh(store.load(), lambda current: calls.append(1) or _tokens(2))
    assert calls == [] and result.access_token == "access-1"


def test_refresh_commits_the_new_set_and_keeps_the_previous_refresh_token(engine):
    store = TokenStore(engine, "k", TokenCipher(KEY))
    store.save(_tokens(1, expires_in=10))
    result = store.refresh(store.load(), lambda current: _tokens(2))
    assert result.access_token == "access-2"
    stored = store.load()
    assert stored.refresh_token == "refresh-2"
    assert stored.previous_refresh_token == "refresh-1"


def test_concurrent_workers_refresh_exactly_once(engine):
    """8 workers find the token expired at once; the lock lets one refresh, the rest re-read."""
    TokenStore(engine, "k", TokenCipher(KEY)).save(_tokens(1, expires_in=10))
    stale = TokenStore(engine, "k", TokenCipher(KEY)).load()
    refreshes = []
    lock = threading.Lock()

    def fetch(current):
        with lock:
            refreshes.append(current.refresh_token)
        time.sleep(0.2)  # Xero takes a while; others must wait on the row lock, not race
        return _tokens(2)

    results = []

    def worker():
        results.append(TokenStore(engine, "k", TokenCipher(KEY)).refresh(stale, fetch).access_token)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert refreshes == ["refresh-1"]
    assert results == ["access-2"] * 8


def test_a_crash_before_commit_keeps_the_old_refresh_token(engine):
    store = TokenStore(engine, "k", TokenCipher(KEY))
    store.save(_tokens(1, expires_in=10))

    def crash(current):
        raise KeyboardInterrupt  # the worker dies after Xero answered, before the commit

    with pytest.raises(KeyboardInterrupt):
        store.refresh(store.load(), crash)
    # Xero still accepts refresh-1 for 30 minutes, so the next refresh recovers with it.
    assert store.load().refresh_token == "refresh-1"


def test_invalid_grant_marks_the_grant_reconnect_needed(engine):
    store = TokenStore(engine, "k", TokenCipher(KEY))
    store.save(_tokens(1, expires_in=10))

    def refused(current):
        raise XeroAuthError("invalid_grant")

    with pytest.raises(XeroAuthError):
        store.refresh(store.load(), refused)
    assert store.status() == STATUS_RECONNECT


def test_refresh_without_a_stored_token_says_connect_first(engine):
    with pytest.raises(XeroAuthError, match="connect Xero first"):
        TokenStore(engine, "missing", TokenCipher(KEY)).refresh(None, lambda c: _tokens(1))


# -- never silently in plaintext ----------------------------------------------------------------

def _row(engine, key: str = "k"):
    with engine.connect() as conn:
        return conn.execute(select(xero_tokens).where(xero_tokens.c.connection_key == key)).mappings().one()


def test_storing_tokens_without_a_key_is_refused_with_how_to_set_one(engine, monkeypatch):
    monkeypatch.delenv("INTOAEC_ALLOW_PLAINTEXT_TOKENS", raising=False)
    with pytest.raises(ConfigurationError) as caught:
        TokenStore(engine, "xero_acme", TokenCipher(None)).save(_tokens(1))
    message = str(caught.value)
    assert message.startswith("Refusing to store the Xero tokens of 'xero_acme' unencrypted: no Fernet key is set")
    assert "AIRFLOW__CORE__FERNET_KEY" in message and "INTOAEC_ALLOW_PLAINTEXT_TOKENS=1" in message
    with engine.connect() as conn:
        assert conn.execute(select(xero_tokens)).all() == []


def test_a_refresh_without_a_key_is_refused_before_xero_is_asked(engine, monkeypatch):
    """A rotated refresh token that could not be stored would be lost: Xero must not be asked at all."""
    TokenStore(engine, "k", TokenCipher(KEY)).save(_tokens(1, expires_in=10))
    monkeypatch.delenv("INTOAEC_ALLOW_PLAINTEXT_TOKENS", raising=False)
    asked = []
    with pytest.raises(ConfigurationError, match="Refusing to store the Xero tokens of 'k' unencrypted"):
        TokenStore(engine, "k", TokenCipher(None)).refresh(None, lambda current: asked.append(1) or _tokens(2))
    assert asked == []
    assert TokenStore(engine, "k", TokenCipher(KEY)).load().refresh_token == "refresh-1"


@pytest.mark.parametrize("flag", ["0", "", "no", "false"])
def test_only_an_explicit_allow_stores_plaintext(engine, monkeypatch, flag):
    monkeypatch.setenv("INTOAEC_ALLOW_PLAINTEXT_TOKENS", flag)
    with pytest.raises(ConfigurationError, match="unencrypted"):
        TokenStore(engine, "k", TokenCipher(None)).save(_tokens(1))


def test_a_throwaway_demo_may_store_plaintext_and_is_warned(engine, monkeypatch, caplog):
    monkeypatch.setenv("INTOAEC_ALLOW_PLAINTEXT_TOKENS", "1")
    store = TokenStore(engine, "k", TokenCipher(None))
    with caplog.at_level(logging.WARNING, logger="intoaec_xero.tokens"):
        store.save(_tokens(1))
    row = _row(engine)
    assert row["encrypted"] is False and b"refresh-1" in bytes(row["token"])
    assert "Storing the Xero tokens of 'k' unencrypted because INTOAEC_ALLOW_PLAINTEXT_TOKENS=1" in caplog.text
    assert "refresh-1" not in caplog.text and "access-1" not in caplog.text


def test_a_plaintext_row_read_with_a_key_is_encrypted_in_place(engine, monkeypatch, caplog):
    monkeypatch.setenv("INTOAEC_ALLOW_PLAINTEXT_TOKENS", "1")
    TokenStore(engine, "k", TokenCipher(None)).save(_tokens(1))
    TokenStore(engine, "k", TokenCipher(None)).mark(STATUS_RECONNECT)
    plain = _row(engine)
    monkeypatch.delenv("INTOAEC_ALLOW_PLAINTEXT_TOKENS")

    with caplog.at_level(logging.WARNING, logger="intoaec_xero.tokens"):
        loaded = TokenStore(engine, "k", TokenCipher(KEY)).load()

    assert loaded.refresh_token == "refresh-1" and loaded.access_token == "access-1"
    row = _row(engine)
    assert row["encrypted"] is True and b"refresh-1" not in bytes(row["token"])
    # Only the token changed: the grant's status and refresh time are what they were.
    assert (row["status"], row["refreshed_at"], row["expires_at"]) == (
        plain["status"], plain["refreshed_at"], plain["expires_at"])
    assert "The Xero tokens of 'k' were stored unencrypted; encrypted them in place" in caplog.text
    assert "refresh-1" not in caplog.text and "access-1" not in caplog.text
    # Now only a process with the key can read them.
    with pytest.raises(XeroAuthError, match="no Fernet key"):
        TokenStore(engine, "k", TokenCipher(None)).load()


def test_a_plaintext_row_is_encrypted_by_a_refresh_that_finds_it_fresh(engine, monkeypatch):
    """The refresh reads under its row lock: the rewrite happens in that same transaction."""
    monkeypatch.setenv("INTOAEC_ALLOW_PLAINTEXT_TOKENS", "1")
    TokenStore(engine, "k", TokenCipher(None)).save(_tokens(1))
    monkeypatch.delenv("INTOAEC_ALLOW_PLAINTEXT_TOKENS")
    result = TokenStore(engine, "k", TokenCipher(KEY)).refresh(None, lambda current: _tokens(2))
    assert result.access_token == "access-1"  # fresh, so not refreshed
    assert _row(engine)["encrypted"] is True


def test_the_grant_info_read_encrypts_a_plaintext_row_too(engine, monkeypatch):
    monkeypatch.setenv("INTOAEC_ALLOW_PLAINTEXT_TOKENS", "1")
    TokenStore(engine, "k", TokenCipher(None)).save(_tokens(1))
    monkeypatch.delenv("INTOAEC_ALLOW_PLAINTEXT_TOKENS")
    info = TokenStore(engine, "k", TokenCipher(KEY)).info()
    assert info.status == STATUS_ACTIVE and info.has_refresh_token
    assert _row(engine)["encrypted"] is True


def test_a_plaintext_row_read_without_a_key_is_read_with_a_warning_and_left_alone(engine, monkeypatch, caplog):
    monkeypatch.setenv("INTOAEC_ALLOW_PLAINTEXT_TOKENS", "1")
    TokenStore(engine, "k", TokenCipher(None)).save(_tokens(1))
    monkeypatch.delenv("INTOAEC_ALLOW_PLAINTEXT_TOKENS")
    with caplog.at_level(logging.WARNING, logger="intoaec_xero.tokens"):
        loaded = TokenStore(engine, "k", TokenCipher(None)).load()
    assert loaded.refresh_token == "refresh-1"
    assert _row(engine)["encrypted"] is False
    assert "The Xero tokens of 'k' are stored unencrypted: set a Fernet key" in caplog.text
    assert "refresh-1" not in caplog.text


def test_a_row_rewritten_by_someone_else_meanwhile_is_not_overwritten(engine, monkeypatch):
    """The in-place encryption only replaces the exact plaintext it read."""
    monkeypatch.setenv("INTOAEC_ALLOW_PLAINTEXT_TOKENS", "1")
    TokenStore(engine, "k", TokenCipher(None)).save(_tokens(1))
    monkeypatch.delenv("INTOAEC_ALLOW_PLAINTEXT_TOKENS")
    store = TokenStore(engine, "k", TokenCipher(KEY))
    stale_row = _row(engine)
    store.save(_tokens(2))  # another process refreshed after our read
    store._encrypt_plaintext_row(stale_row, None)
    assert store.load().refresh_token == "refresh-2"


def test_a_process_hands_the_log_maskers_a_bounded_number_of_tokens(monkeypatch):
    """Airflow's maskers grow one regex per value: hundreds of grants must not make every log line slow."""
    from intoaec_xero import tokens

    seen: list[str] = []
    monkeypatch.setattr(tokens, "_secret_sinks", [seen.append])
    monkeypatch.setattr(tokens, "_announced", set())
    monkeypatch.setattr(tokens, "MASKED_TOKENS_PER_PROCESS", 5)
    first = tokens.TokenSet(access_token="access-token-1", expires_at=0, refresh_token="refresh-token-1")
    tokens._announce_secrets(first)
    tokens._announce_secrets(first)  # the same values again: nothing new
    assert seen == ["refresh-token-1", "access-token-1"]
    for n in range(2, 6):
        tokens._announce_secrets(tokens.TokenSet(access_token=f"access-token-{n}", expires_at=0,
                                                 refresh_token=f"refresh-token-{n}"))
    # Refresh tokens first within a set: the cap keeps the long-lived one of the third grant.
    assert seen == ["refresh-token-1", "access-token-1", "refresh-token-2", "access-token-2", "refresh-token-3"]
