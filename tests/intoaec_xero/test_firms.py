"""Firms' grants without Airflow: return URLs, the signed single-use state, the help page's words,
and a firm's grant living the life of any grant (refused, reconnected, switched off)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from intoaec_xero import firms, oauth
from intoaec_xero.client import build_client
from intoaec_xero.errors import XeroAuthError
from intoaec_xero.schema import intoaec_connect_sessions, intoaec_firm_tenants, xero_tenants
from intoaec_xero.tenants import record_discovery
from intoaec_xero.tokens import TokenStore
from sqlalchemy import select

from tests.harness.databases import migrated_engine
from tests.harness.firms import REDIRECT_URI, RETURN_URL, SECRET, connect_firm
from tests.harness.xero import sandbox_settings

pytestmark = [pytest.mark.integration]


@pytest.fixture
def engine(tmp_path, monkeypatch):
    monkeypatch.setenv("INTOAEC_ALLOW_PLAINTEXT_TOKENS", "1")
    monkeypatch.setenv("INTOAEC_DATA_DIR", str(tmp_path / "data"))
    with migrated_engine(f"sqlite:///{tmp_path / 'intoaec.db'}") as migrated:
        yield migrated


@pytest.fixture(scope="module")
def sandbox():
    from xero_sandbox.testing import running_sandbox

    with running_sandbox(dataset="small", seed=3, limits=False) as running:
        yield running


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://app.intoaec.com/integrations/xero", True),
    ("https://app.intoaec.com/integrations", True),
    ("https://app.intoaec.com/integrations?tab=xero", True),
    ("https://app.intoaec.com/integrationsx", False),
    ("https://app.intoaec.com.evil.test/integrations", False),
    ("https://evil.test/https://app.intoaec.com/integrations", False),
    ("https://user:pw@app.intoaec.com/integrations/xero", False),
    ("http://app.intoaec.com/integrations/xero", False),
    ("https://app.intoaec.com/integrations/xero#x", False),
    ("https://app.intoaec.com/integrations/x\r\nSet-Cookie: a", False),
    ("javascript:alert(1)//https://app.intoaec.com/integrations", False),
    ("", False),
])
def test_return_urls_are_matched_at_a_boundary(url, allowed):
    assert firms.return_url_allowed(url, ["https://app.intoaec.com/integrations"]) is allowed


def test_a_prefix_ending_in_a_slash_allows_what_is_under_it():
    assert firms.return_url_allowed("https://a.test/x/y", ["https://a.test/x/"])
    assert not firms.return_url_allowed("https://a.test/xy", ["https://a.test/x/"])
    assert not firms.return_url_allowed("https://a.test/x/y", [])


@pytest.mark.parametrize("firm_id", ["", "a/b", "../x", "a b", "-x", "x" * 64, "a:b", "ä"])
def test_firm_ids_that_cannot_name_a_grant_are_refused(firm_id):
    with pytest.raises(firms.ConnectError) as refused:
        firms.check_firm_id(firm_id)
    assert refused.value.code == "invalid_firm_id"


def test_a_session_is_used_once_and_only_in_time(engine, sandbox):
    settings = sandbox_settings(sandbox)
    started = firms.start_session(engine, settings, "acme", RETURN_URL, REDIRECT_URI, SECRET)
    state = dict(p.split("=", 1) for p in started.authorize_url.split("?", 1)[1].split("&"))["state"]
    late = started.expires_at + timedelta(seconds=1)
    with pytest.raises(firms.SessionRefused) as expired:
        firms.claim_session(engine, state, SECRET, now=late)
    assert (expired.value.code, expired.value.return_url) == ("session_expired", RETURN_URL)
    with pytest.raises(firms.SessionRefused) as forged:
        firms.claim_session(engine, state, b"another server's secret")
    assert (forged.value.code, forged.value.return_url) == ("invalid_state", None)
    claimed = firms.claim_session(engine, state, SECRET, now=started.expires_at - timedelta(seconds=1))
    assert (claimed.firm_id, claimed.return_url, claimed.redirect_uri) == ("acme", RETURN_URL, REDIRECT_URI)
    with engine.connect() as conn:
        stored = conn.execute(select(intoaec_connect_sessions.c.verifier)).scalar_one()
    assert claimed.verifier.encode() not in bytes(stored)  # kept encrypted
    with pytest.raises(firms.SessionRefused) as again:
        firms.claim_session(engine, state, SECRET)
    assert again.value.code == "session_used"
    assert firms.forget_old_sessions(engine, now=datetime.now(UTC) + timedelta(days=8)) == 1


def test_a_firms_grant_lives_like_any_other(engine, sandbox):
    settings = sandbox_settings(sandbox, calls_per_minute=0)
    connected = connect_firm(engine, settings, "acme", 0)
    (org,) = connected.organisations
    assert firms.firm_ids(engine) == ["acme"]
    view = firms.firm(engine, "acme").organisations[0]
    assert (view.status, view.sync_enabled, view.future_access_saved) == ("Connected", True, True)

    # The firm switches the sync off: the next discovery leaves the organisation out, still Connected.
    firms.set_sync(engine, "acme", org["tenant_id"], False)
    firm_settings = firms.firm_settings(settings, "acme")
    store = TokenStore(engine, firm_settings.connection_key)
    client = build_client(firm_settings, store)
    assert record_discovery(engine, firm_settings, client.connections()).tenants == []
    assert firms.firm(engine, "acme").to_api()["organisations"][0]["sync"] == "Sync Disabled"
    firms.set_sync(engine, "acme", org["tenant_id"], True)
    assert [t["tenant_id"] for t in record_discovery(engine, firm_settings, client.connections()).tenants] == [
        org["tenant_id"]]

    # Xero lets the grant lapse: the firm reads Reconnect needed, in its own row too.
    sandbox.expire_grants("firm1@intoaec.test")
    with pytest.raises(XeroAuthError):
        client.refresh_tokens(force=True)
    view = firms.firm(engine, "acme").to_api()["organisations"][0]
    assert (view["status"], view["future_access"]) == ("Reconnect needed", "Future Access Not Saved")
    with engine.connect() as conn:
        assert conn.execute(select(intoaec_firm_tenants.c.status)).scalar_one() == "Reconnect needed"

    connect_firm(engine, settings, "acme", 0)
    view = firms.firm(engine, "acme").to_api()["organisations"][0]
    assert (view["status"], view["sync"], view["future_access"]) == (
        "Connected", "Sync Enabled", "Future Access Saved")


def test_a_refused_sign_in_leaves_the_firm_as_it_was(engine, sandbox):
    settings = sandbox_settings(sandbox, calls_per_minute=0)
    connect_firm(engine, settings, "acme", 0)
    with pytest.raises(firms.ConnectError) as refused:
        connect_firm(engine, settings, "bravo", 0)
    assert refused.value.code == "organisation_already_connected" and "(acme)" in refused.value.message
    assert firms.firm_ids(engine) == ["acme"]
    assert firms.firm(engine, "bravo").organisations == []
    # Allowed to share: bravo sees it, acme keeps syncing it.
    connect_firm(engine, settings, "bravo", 0, allow_sharing=True)
    (shared,) = firms.firm(engine, "bravo").organisations
    assert shared.status == "Connected" and shared.shared_with == "firm:acme"
    with engine.connect() as conn:
        assert conn.execute(select(xero_tenants.c.connection_key)).scalars().all() == ["firm:acme"]


def test_a_firm_that_declines_at_xero_gets_a_named_error(engine, sandbox):
    settings = sandbox_settings(sandbox)
    started = firms.start_session(engine, settings, "acme", RETURN_URL, REDIRECT_URI, SECRET)
    state = dict(p.split("=", 1) for p in started.authorize_url.split("?", 1)[1].split("&"))["state"]
    claimed = firms.claim_session(engine, state, SECRET)
    with pytest.raises(firms.ConnectError) as declined:
        firms.finish_sign_in(engine, settings, claimed, f"{REDIRECT_URI}?error=access_denied&state={state}",
                             allow_sharing=False, exchange=lambda code: oauth.exchange_code(settings, code, "", None),
                             client_for=lambda store: build_client(settings, store))
    assert declined.value.code == "access_denied"
    assert firms.firm_ids(engine) == []


def test_another_firms_organisation_is_not_found(engine, sandbox):
    settings = sandbox_settings(sandbox, calls_per_minute=0)
    connect_firm(engine, settings, "acme", 0)
    bravo = connect_firm(engine, settings, "bravo", 1).organisations[0]["tenant_id"]
    for act in (lambda: firms.set_sync(engine, "acme", bravo, False),
                lambda: firms.disconnect(engine, "acme", bravo, lambda cid: pytest.fail("reached Xero")),
                lambda: firms.owned(engine, "acme", bravo)):
        with pytest.raises(firms.ConnectError) as missing:
            act()
        assert (missing.value.code, missing.value.status) == ("organisation_not_found", 404)
    assert firms.firm(engine, "bravo").organisations[0].status == "Connected"
