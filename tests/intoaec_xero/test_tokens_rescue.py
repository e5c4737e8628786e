"""A rotated token is never lost when the database goes away during the refresh.

Xero rotates the refresh token when it answers; the store commits the new set after. Here the
database connection holding the refresh's lock is terminated (``pg_terminate_backend``) while
Xero's answer is in flight, so that commit cannot happen. The set must be saved again on a
fresh connection, or, while the database stays away, kept encrypted on disk and saved by the
next refresh; either way, once Xero's 30-minute grace for the old refresh token has passed
(the sandbox clock moved), the next refresh works without ``invalid_grant``.
"""

from __future__ import annotations

import threading
import time

import pytest
from intoaec_xero.client import XeroClient
from intoaec_xero.oauth import finish_authorization, start_authorization
from intoaec_xero.settings import XeroSettings
from intoaec_xero.tokens import STATUS_ACTIVE, TokenCipher, TokenStore
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from tests.conftest import POSTGRES_ADMIN_URL

pytestmark = pytest.mark.integration

PAST_THE_GRACE = 31 * 60


@pytest.fixture(scope="module")
def sandbox():
    from xero_sandbox.testing import running_sandbox

    with running_sandbox(dataset="small", seed=3, limits=False) as handle:
        yield handle


@pytest.fixture
def connected(sandbox, migrated_postgres_url, tmp_path):
    from intoaec_xero import db
    from xero_sandbox.testing import sign_in_and_consent

    sandbox.clear_faults()
    settings = XeroSettings.for_single_host(sandbox.base_url, client_id="sandbox-client",
                                            client_secret="sandbox-secret", calls_per_minute=0, max_attempts=1)
    engine = db.create_db_engine(migrated_postgres_url)
    store = TokenStore(engine, settings.connection_key, TokenCipher.from_environment(), rescue_dir=tmp_path / "rescue")
    request = start_authorization(settings, "http://127.0.0.1:9/callback")
    store.save(finish_authorization(settings, request, sign_in_and_consent(request.url)))
    sandbox.reset_stats()
    yield settings, store, migrated_postgres_url
    sandbox.clear_faults()
    engine.dispose()


def _terminate_connections_during_the_token_call(sandbox, url: str) -> threading.Thread:
    """Xero answers the next token call after 1.5 s; 0.5 s into it, every connection to ``url``'s database ends."""
    sandbox.faults(endpoint="connect/token", latency_ms=1500, count=1)
    name = make_url(url).database

    def terminate() -> None:
        time.sleep(0.5)
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            ended = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                      "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name}).scalar()
        admin.dispose()
        assert ended >= 1

    killer = threading.Thread(target=terminate)
    killer.start()
    return killer


def _database_still_away(self) -> bool:
    raise OperationalError("SELECT", {}, Exception("the database system is starting up"))


def _client(settings: XeroSettings, store: TokenStore) -> XeroClient:
    client = XeroClient(settings, store, sleep=lambda seconds: None)
    client.current_tokens()
    return client


def test_a_rotation_whose_commit_died_is_saved_again_on_a_fresh_connection(sandbox, connected, caplog):
    settings, store, url = connected
    before = store.load()
    client = _client(settings, store)
    killer = _terminate_connections_during_the_token_call(sandbox, url)
    rotated = client.refresh_tokens(force=True)
    killer.join()

    stored = store.load()
    assert stored.refresh_token == rotated.refresh_token != before.refresh_token
    assert stored.previous_refresh_token == before.refresh_token
    assert not store.rescue_path().exists()
    assert "saved again on a fresh connection" in caplog.text

    sandbox.advance_clock(PAST_THE_GRACE)  # the old refresh token is dead now
    _client(settings, store).refresh_tokens(force=True)
    assert sandbox.stats()["invalid_grant"] == 0 and store.status() == STATUS_ACTIVE


def test_while_the_database_stays_away_the_set_is_kept_on_disk_and_the_next_refresh_saves_it(
        sandbox, connected, monkeypatch, caplog):
    settings, store, url = connected
    before = store.load()
    monkeypatch.setattr("intoaec_xero.tokens.RESCUE_RETRY_DELAYS", (0.0, 0.0))
    real_recover = TokenStore.recover
    monkeypatch.setattr(TokenStore, "recover", _database_still_away)
    killer = _terminate_connections_during_the_token_call(sandbox, url)
    rotated = _client(settings, store).refresh_tokens(force=True)  # this run carries on with the new set
    killer.join()
    monkeypatch.setattr(TokenStore, "recover", real_recover)

    kept = store.rescue_path()
    assert kept.exists() and oct(kept.stat().st_mode & 0o777) == "0o600"
    assert rotated.refresh_token.encode() not in kept.read_bytes()  # encrypted, like the row
    assert "do not delete that file" in caplog.text and rotated.refresh_token not in caplog.text

    sandbox.advance_clock(PAST_THE_GRACE)  # the refresh token still in the database is dead now
    other_process = TokenStore(store.engine, store.connection_key, TokenCipher.from_environment(),
                               rescue_dir=kept.parent)
    assert other_process.load().refresh_token == rotated.refresh_token  # recovered on the way in
    assert not kept.exists()
    _client(settings, other_process).refresh_tokens(force=True)
    stats = sandbox.stats()
    assert stats["invalid_grant"] == 0 and other_process.status() == STATUS_ACTIVE
    assert other_process.load().refresh_token not in (before.refresh_token, rotated.refresh_token)


def test_a_kept_set_never_overwrites_a_newer_one(sandbox, connected, monkeypatch):
    settings, store, url = connected
    monkeypatch.setattr("intoaec_xero.tokens.RESCUE_RETRY_DELAYS", (0.0,))
    real_recover = TokenStore.recover
    monkeypatch.setattr(TokenStore, "recover", _database_still_away)
    killer = _terminate_connections_during_the_token_call(sandbox, url)
    _client(settings, store).refresh_tokens(force=True)
    killer.join()
    monkeypatch.setattr(TokenStore, "recover", real_recover)
    assert store.rescue_path().exists()

    # Meanwhile someone reconnected: the database holds a set the kept one did not replace.
    from xero_sandbox.testing import sign_in_and_consent

    request = start_authorization(settings, "http://127.0.0.1:9/callback")
    reconnected = finish_authorization(settings, request, sign_in_and_consent(request.url))
    with store.engine.begin() as conn:
        store._write(conn, reconnected, STATUS_ACTIVE)
    assert store.recover() is False and not store.rescue_path().exists()
    assert store.load().refresh_token == reconnected.refresh_token
