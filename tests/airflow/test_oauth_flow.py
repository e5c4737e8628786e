"""The sign-in end to end against the sandbox: PKCE, state, consent, /connections, disconnects.

Airflow-free: the same functions serve the Xero page and ``intoaec-xero connect``.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlparse

import pytest
from intoaec_xero import oauth, tenants
from intoaec_xero.client import XeroClient
from intoaec_xero.errors import XeroAuthError
from intoaec_xero.tenants import TenantStatus
from intoaec_xero.tokens import STATUS_ACTIVE, TokenCipher, TokenStore

from tests.airflow.conftest import connect, sandbox_settings

pytestmark = pytest.mark.integration

REDIRECT = "http://127.0.0.1:8080/xero/callback"


def test_sign_in_consent_callback_and_connections_end_to_end(sandbox, engine):
    from xero_sandbox.testing import sign_in_and_consent

    settings = sandbox_settings(sandbox)
    store = TokenStore(engine, settings.connection_key, TokenCipher.from_environment())
    request = oauth.start_authorization(settings, REDIRECT)
    callback = sign_in_and_consent(request.url)
    assert callback.startswith(REDIRECT + "?")

    tokens = oauth.finish_authorization(settings, request, callback)
    connections = oauth.complete_sign_in(settings, store, tokens, XeroClient(settings, store))

    assert [c["tenantName"] for c in connections] == ["Harbourside Architects Ltd",
                                                      "Meridian Structural Engineers Pty Ltd"]
    assert store.status() == STATUS_ACTIVE and store.load().client_id == "sandbox-client"
    orgs = tenants.organisations(engine, settings.connection_key, store.info())
    assert [(o.name, o.status, o.sync_enabled, o.future_access_saved) for o in orgs] == [
        ("Harbourside Architects Ltd", "Connected", True, True),
        ("Meridian Structural Engineers Pty Ltd", "Connected", True, True),
    ]


def test_the_authorize_url_carries_a_pkce_s256_challenge_of_the_verifier_and_a_state(sandbox):
    request = oauth.start_authorization(sandbox_settings(sandbox), REDIRECT)
    query = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
    expected = base64.urlsafe_b64encode(hashlib.sha256(request.code_verifier.encode()).digest()).rstrip(b"=")
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] == expected.decode()
    assert query["state"] == request.state and len(request.state) >= 32
    assert 43 <= len(request.code_verifier) <= 128
    assert query["scope"].split() == list(sandbox_settings(sandbox).scopes)


def test_a_code_without_its_pkce_verifier_is_refused(sandbox):
    from xero_sandbox.testing import sign_in_and_consent

    settings = sandbox_settings(sandbox)
    request = oauth.start_authorization(settings, REDIRECT)
    code = oauth.authorization_code(request, sign_in_and_consent(request.url))
    with pytest.raises(XeroAuthError, match="invalid_grant"):
        oauth.exchange_code(settings, code, REDIRECT, "x" * 64)  # an attacker's verifier
    with pytest.raises(XeroAuthError, match="invalid_grant"):  # and the code is now spent
        oauth.exchange_code(settings, code, REDIRECT, request.code_verifier)


def test_a_forged_state_is_refused_before_the_code_is_used(sandbox):
    from xero_sandbox.testing import sign_in_and_consent

    settings = sandbox_settings(sandbox)
    request = oauth.start_authorization(settings, REDIRECT)
    callback = sign_in_and_consent(request.url)
    forged = callback.replace(f"state={request.state}", "state=forged-by-someone-else")
    sandbox.reset_stats()
    with pytest.raises(XeroAuthError, match="state does not match"):
        oauth.finish_authorization(settings, request, forged)
    assert "POST /connect/token" not in sandbox.stats()["requests"]
    # The genuine answer still works: the code was never spent.
    assert oauth.finish_authorization(settings, request, callback).access_token


def test_cancelling_at_consent_says_so(sandbox):
    from xero_sandbox.testing import sign_in_and_consent

    settings = sandbox_settings(sandbox)
    request = oauth.start_authorization(settings, REDIRECT)
    with pytest.raises(XeroAuthError, match="not completed: access_denied"):
        oauth.finish_authorization(settings, request, sign_in_and_consent(request.url, approve=False))


def test_the_tenant_filter_decides_sync_enabled_but_every_organisation_is_listed(sandbox, engine):
    connect(sandbox, engine, tenant_filter=("Meridian Structural Engineers Pty Ltd",))
    orgs = {o.name: o for o in tenants.organisations(engine, "xero_default", None)}
    assert not orgs["Harbourside Architects Ltd"].sync_enabled
    assert orgs["Meridian Structural Engineers Pty Ltd"].sync_enabled


def test_a_reconnect_covering_fewer_organisations_marks_the_dropped_one_disconnected(sandbox, engine):
    from xero_sandbox.testing import sign_in_and_consent

    settings, store = connect(sandbox, engine)
    orgs = tenants.organisations(engine, "xero_default", store.info())
    kept = orgs[1]
    request = oauth.start_authorization(settings, REDIRECT)
    callback = sign_in_and_consent(request.url, tenant_ids=[kept.tenant_id])
    # Xero keeps earlier connections of the same user; disconnect one to model a narrower consent.
    oauth.delete_connection(XeroClient(settings, store), orgs[0].connection_id)
    tokens = oauth.finish_authorization(settings, request, callback)
    oauth.complete_sign_in(settings, store, tokens, XeroClient(settings, store))
    statuses = {o.name: o.status for o in tenants.organisations(engine, "xero_default", store.info())}
    assert statuses == {orgs[0].name: TenantStatus.DISCONNECTED, kept.name: TenantStatus.CONNECTED}


def test_disconnecting_one_organisation_keeps_the_grant_for_the_others(sandbox, engine):
    settings, store = connect(sandbox, engine)
    first, second = tenants.organisations(engine, "xero_default", store.info())
    client = XeroClient(settings, store)
    oauth.delete_connection(client, first.connection_id)
    tenants.mark_organisation_disconnected(engine, first.tenant_id)
    assert [c["tenantId"] for c in client.connections()] == [second.tenant_id]
    after = {o.tenant_id: o for o in tenants.organisations(engine, "xero_default", store.info())}
    assert after[first.tenant_id].status == TenantStatus.DISCONNECTED and not after[first.tenant_id].sync_enabled
    assert after[second.tenant_id].status == TenantStatus.CONNECTED and after[second.tenant_id].future_access_saved


def test_revoking_the_grant_kills_its_refresh_token_and_every_connection(sandbox, engine):
    settings, store = connect(sandbox, engine)
    refresh_token = store.load().refresh_token
    oauth.revoke(settings, refresh_token)
    store.forget()
    assert store.load() is None
    assert {o.status for o in tenants.organisations(engine, "xero_default", None)} == {TenantStatus.DISCONNECTED}
    store.save(oauth.TokenSet(access_token="x", refresh_token=refresh_token, expires_at=0))
    with pytest.raises(XeroAuthError, match="invalid_grant"):
        XeroClient(settings, store).connections()


def test_the_client_check_tells_a_wrong_secret_from_a_right_one_without_spending_anything(sandbox):
    import dataclasses

    settings = sandbox_settings(sandbox)
    sandbox.reset_stats()
    issued = sandbox.stats()["tokens_issued"]
    assert oauth.check_client(settings) is None
    assert "invalid_client" in oauth.check_client(dataclasses.replace(settings, client_secret="wrong"))
    stats = sandbox.stats()
    assert stats["token_refreshes"] == 0 and stats["invalid_grant"] == 0 and stats["tokens_issued"] == issued
