"""Sign-in, consent, tokens, rotation and grace, PKCE, revocation and connections."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from xero_sandbox.testing import (
    DEFAULT_SCOPES,
    GRANULAR_SCOPES,
    ConsentError,
    sign_in_and_consent,
)

REDIRECT = "http://localhost:53682/xero/callback"
CLIENT = ("sandbox-client", "sandbox-secret")


def _code(location: str) -> str:
    return parse_qs(urlsplit(location).query)["code"][0]


def _token(sb, **form):
    return requests.post(sb.base_url + "/connect/token", data=form, auth=CLIENT, timeout=30)


def _jwt_payload(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_full_flow_issues_xero_shaped_tokens(small):
    location = sign_in_and_consent(small.authorize_url(REDIRECT, DEFAULT_SCOPES, state="s-1"))
    assert location.startswith(REDIRECT + "?")
    q = parse_qs(urlsplit(location).query)
    assert q["state"] == ["s-1"]
    r = _token(small, grant_type="authorization_code", code=q["code"][0], redirect_uri=REDIRECT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "expires_in", "token_type", "refresh_token", "scope", "id_token"}
    assert body["expires_in"] == 1800 and body["token_type"] == "Bearer"
    assert set(body["scope"].split()) == set(DEFAULT_SCOPES.split())
    assert _jwt_payload(body["id_token"])["email"] == "demo@intoaec.test"
    # the code is single use
    again = _token(small, grant_type="authorization_code", code=q["code"][0], redirect_uri=REDIRECT)
    assert again.status_code == 400 and again.json() == {"error": "invalid_grant"}


def test_form_body_client_auth_and_no_openid(small):
    location = sign_in_and_consent(small.authorize_url(REDIRECT, GRANULAR_SCOPES))
    r = requests.post(small.base_url + "/connect/token", timeout=30, data={
        "grant_type": "authorization_code", "code": _code(location), "redirect_uri": REDIRECT,
        "client_id": CLIENT[0], "client_secret": CLIENT[1]})
    assert r.status_code == 200
    assert "id_token" not in r.json() and "refresh_token" in r.json()


@pytest.mark.parametrize("change,expect", [
    ({"client_id": "nope"}, "unauthorized_client"),
    ({"redirect_uri": "https://evil.example.com/cb"}, "invalid_request"),
    ({"scope": "offline_access payroll.employees"}, "invalid_scope"),
])
def test_bad_requests_get_an_error_page_not_a_redirect(small, change, expect):
    url = small.authorize_url(REDIRECT, DEFAULT_SCOPES)
    from urllib.parse import urlencode
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    q.update(change)
    r = requests.get(small.base_url + "/identity/connect/authorize?" + urlencode(q), allow_redirects=False,
                     timeout=30)
    assert r.status_code == 400
    assert expect in r.text and "Location" not in r.headers
    with pytest.raises(ConsentError):
        sign_in_and_consent(small.base_url + "/identity/connect/authorize?" + urlencode(q))


def test_wrong_password_and_denial(small):
    with pytest.raises(ConsentError, match="sign-in refused"):
        sign_in_and_consent(small.authorize_url(REDIRECT, DEFAULT_SCOPES), password="wrong")
    location = sign_in_and_consent(small.authorize_url(REDIRECT, DEFAULT_SCOPES, state="d"), approve=False)
    q = parse_qs(urlsplit(location).query)
    assert q == {"error": ["access_denied"], "state": ["d"]}


def test_choose_one_organisation(small, make_api):
    all_ids = [t["tenantId"] for t in small.health()["tenants"]]
    location = sign_in_and_consent(small.authorize_url(REDIRECT, DEFAULT_SCOPES), tenant_ids=[all_ids[1]])
    assert "code=" in location


def test_pkce_s256(small):
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    url = small.authorize_url(REDIRECT, DEFAULT_SCOPES, code_challenge=challenge, code_challenge_method="S256")
    code = _code(sign_in_and_consent(url))
    bad = requests.post(small.base_url + "/connect/token", timeout=30, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": CLIENT[0],
        "code_verifier": secrets.token_urlsafe(48)})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    code = _code(sign_in_and_consent(url))
    ok = requests.post(small.base_url + "/connect/token", timeout=30, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": CLIENT[0],
        "code_verifier": verifier})
    assert ok.status_code == 200, ok.text
    assert ok.json()["refresh_token"]


def test_code_expires_after_five_minutes(fresh):
    code = _code(sign_in_and_consent(fresh.authorize_url(REDIRECT, DEFAULT_SCOPES)))
    fresh.advance_clock(301)
    r = _token(fresh, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert r.status_code == 400 and r.json() == {"error": "invalid_grant"}


def test_access_token_expiry_rotation_grace_and_idle_death(fresh, make_api):
    api = make_api(fresh, fresh.connect())
    first = api.token
    assert api.get("Contacts", params={"page": 1}).status_code == 200
    fresh.advance_clock(1801)
    expired = api.get("Contacts", params={"page": 1})
    assert expired.status_code == 401
    body = expired.json()
    assert body["Title"] == "Unauthorized" and body["Status"] == 401
    assert body["Detail"].startswith("TokenExpired: token expired at ")

    r1 = _token(fresh, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert r1.status_code == 200
    second = r1.json()
    assert second["refresh_token"] != first["refresh_token"]
    api.token = second
    assert api.get("Contacts", params={"page": 1}).status_code == 200

    # The previous refresh token may be retried within 30 minutes ...
    fresh.advance_clock(20 * 60)
    retry = _token(fresh, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert retry.status_code == 200
    # ... and not after.
    fresh.advance_clock(11 * 60)
    late = _token(fresh, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert late.status_code == 400 and late.json() == {"error": "invalid_grant"}

    latest = retry.json()
    fresh.advance_clock(59 * 86400)
    alive = _token(fresh, grant_type="refresh_token", refresh_token=latest["refresh_token"])
    assert alive.status_code == 200
    fresh.advance_clock(61 * 86400)
    dead = _token(fresh, grant_type="refresh_token", refresh_token=alive.json()["refresh_token"])
    assert dead.status_code == 400 and dead.json() == {"error": "invalid_grant"}
    stats = fresh.stats()
    assert stats["token_refreshes"] == 3 and stats["invalid_grant"] == 2


def test_client_credentials_is_one_org_without_refresh(small):
    r = _token(small, grant_type="client_credentials", scope="accounting.transactions.read")
    assert r.status_code == 200
    body = r.json()
    assert "refresh_token" not in body and body["expires_in"] == 1800
    h = {"Authorization": "Bearer " + body["access_token"]}
    # xero-tenant-id is optional for a custom connection
    inv = requests.get(small.base_url + "/api.xro/2.0/Invoices", params={"page": 1}, headers=h, timeout=30)
    assert inv.status_code == 200 and inv.json()["Invoices"]
    second_org = small.health()["tenants"][1]["tenantId"]
    other = requests.get(small.base_url + "/api.xro/2.0/Invoices", params={"page": 1},
                         headers={**h, "xero-tenant-id": second_org}, timeout=30)
    assert other.status_code == 403


def test_bad_client_and_grant_type(small):
    r = requests.post(small.base_url + "/connect/token", data={"grant_type": "client_credentials"},
                      auth=("sandbox-client", "wrong"), timeout=30)
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"
    r = _token(small, grant_type="password")
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    r = _token(small, grant_type="refresh_token", refresh_token="nope")
    assert r.status_code == 400 and r.json() == {"error": "invalid_grant"}


def test_connections_delete_and_revocation(fresh, make_api):
    api = make_api(fresh, fresh.connect())
    conns = api.connections()
    assert [c["tenantName"] for c in conns] == [t["tenantName"] for t in fresh.health()["tenants"]]
    assert all(c["tenantType"] == "ORGANISATION" and c["authEventId"] for c in conns)
    only = requests.get(fresh.base_url + "/connections", params={"authEventId": conns[0]["authEventId"]},
                        headers=api.auth(), timeout=30)
    assert len(only.json()) == len(conns)
    # SDK's IdentityApi uses /Connections
    assert requests.get(fresh.base_url + "/Connections", headers=api.auth(), timeout=30).status_code == 200

    gone = conns[1]
    d = requests.delete(f"{fresh.base_url}/connections/{gone['id']}", headers=api.auth(), timeout=30)
    assert d.status_code == 204
    assert requests.delete(f"{fresh.base_url}/connections/{gone['id']}", headers=api.auth(),
                           timeout=30).status_code == 404
    assert api.get("Contacts", tenant=gone["tenantId"], params={"page": 1}).status_code == 403
    assert api.get("Contacts", tenant=conns[0]["tenantId"], params={"page": 1}).status_code == 200

    rv = requests.post(fresh.base_url + "/connect/revocation", data={"token": api.token["refresh_token"]},
                       auth=CLIENT, timeout=30)
    assert rv.status_code == 200
    assert _token(fresh, grant_type="refresh_token", refresh_token=api.token["refresh_token"]).status_code == 400


def test_scopes_are_enforced_per_endpoint(small, make_api):
    api = make_api(small, small.connect(scope="offline_access accounting.contacts.read"))
    assert api.get("Contacts", params={"page": 1}).status_code == 200
    for path in ("Invoices", "Payments", "Journals", "Accounts", "Reports/TrialBalance"):
        r = api.get(path)
        assert r.status_code == 401, path
        assert r.json()["Detail"] == "AuthorizationUnsuccessful"
    granular = make_api(small, small.connect(scope=GRANULAR_SCOPES))
    for path in ("Contacts", "Invoices", "Payments", "CreditNotes", "Accounts", "TrackingCategories", "Journals",
                 "Reports/TrialBalance"):
        assert granular.get(path, params={"page": 1}).status_code == 200, path
