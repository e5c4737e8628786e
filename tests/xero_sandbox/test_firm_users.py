"""Firm users (one Xero user per organisation, each seeing only its own) and expiring one user's grants."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from intoaec_xero.oauth import finish_authorization, list_connections, start_authorization
from intoaec_xero.settings import XeroSettings
from xero_sandbox import identity
from xero_sandbox.testing import (
    CORE_CLIENT_ID,
    CORE_CLIENT_SECRET,
    DEFAULT_SCOPES,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    FIRM_PASSWORD,
    ConsentError,
    firm_user,
    running_sandbox,
    sign_in_and_consent,
)

REDIRECT = "http://127.0.0.1:9/callback"
FIRMS = 4


@pytest.fixture(scope="module")
def firms():
    """Shared by the tests that only connect: none of them lapses or revokes a grant another reads."""
    with running_sandbox("small", seed=1, limits=False, extra_args=("--tenants", str(FIRMS))) as sb:
        yield sb


@pytest.fixture
def lapsing():
    """A private sandbox for the tests that expire grants and count invalid_grant."""
    with running_sandbox("small", seed=1, limits=False, extra_args=("--tenants", "3")) as sb:
        yield sb


def _tenant_ids(sb) -> list[str]:
    return [t["tenantId"] for t in sb.health()["tenants"]]


def _consent_page(sb, email: str, password: str) -> tuple[requests.Session, str, str]:
    """Sign in by hand; return the session, the consent form's ``tx`` and the consent page."""
    s = requests.Session()
    page = s.get(sb.authorize_url(REDIRECT, DEFAULT_SCOPES), timeout=30).text
    tx = re.search(r'name="tx" value="([^"]+)"', page).group(1)
    r = s.post(sb.base_url + "/identity/connect/login", data={"tx": tx, "email": email, "password": password},
               timeout=30)
    assert r.status_code == 200 and "/identity/connect/consent" in r.text, r.text[:300]
    return s, tx, r.text


def _offered(page: str) -> list[str]:
    return re.findall(r'name="tenant" value="([^"]+)"', page)


def _connections(sb, token: dict) -> requests.Response:
    return requests.get(sb.base_url + "/connections", headers={"Authorization": f"Bearer {token['access_token']}"},
                        timeout=30)


def _invoices(sb, token: dict, tenant_id: str) -> requests.Response:
    return requests.get(sb.base_url + "/api.xro/2.0/Invoices", params={"page": 1}, timeout=30,
                        headers={"Authorization": f"Bearer {token['access_token']}", "xero-tenant-id": tenant_id})


def _refresh(sb, token: dict, client=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)) -> requests.Response:
    return requests.post(sb.base_url + "/connect/token", auth=client, timeout=30,
                         data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]})


def _claims(jwt: str) -> dict:
    body = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_firm_user_helper_follows_the_sandbox_rule(firms):
    assert firm_user(0) == ("firm1@intoaec.test", "sandbox") == (identity.firm_email(0), identity.FIRM_PASSWORD)
    assert firm_user(FIRMS - 1)[1] == FIRM_PASSWORD
    with pytest.raises(ValueError):
        firm_user(-1)
    # One user per organisation, no more.
    with pytest.raises(ConsentError, match="sign-in refused"):
        sign_in_and_consent(firms.authorize_url(REDIRECT, DEFAULT_SCOPES), *firm_user(FIRMS))


def test_firm_user_sees_approves_and_reaches_only_its_organisation(firms):
    ids = _tenant_ids(firms)
    _, _, page = _consent_page(firms, *firm_user(2))
    assert _offered(page) == [ids[2]]
    assert "firm3@intoaec.test" in page

    # The app's own flow (PKCE S256, state) with the firm user at the consent page.
    settings = XeroSettings.for_single_host(firms.base_url, client_id=DEMO_CLIENT_ID,
                                            client_secret=DEMO_CLIENT_SECRET, calls_per_minute=0)
    request = start_authorization(settings, REDIRECT)
    email, password = firm_user(2)
    tokens = finish_authorization(settings, request, sign_in_and_consent(request.url, email=email, password=password))
    conns = list_connections(settings, tokens.access_token)
    assert [c["tenantId"] for c in conns] == [ids[2]]

    token = {"access_token": tokens.access_token}
    assert _invoices(firms, token, ids[2]).status_code == 200
    assert _invoices(firms, token, ids[0]).status_code == 403


def test_two_firm_users_have_independent_grants(firms):
    ids = _tenant_ids(firms)
    one = firms.connect(email=firm_user(0)[0], password=FIRM_PASSWORD)
    two = firms.connect(email=firm_user(1)[0], password=FIRM_PASSWORD)
    assert [c["tenantId"] for c in _connections(firms, one).json()] == [ids[0]]
    assert [c["tenantId"] for c in _connections(firms, two).json()] == [ids[1]]
    claims = _claims(two["id_token"])
    assert (claims["email"], claims["given_name"], claims["family_name"]) == \
        ("firm2@intoaec.test", "Firm 2", "Accountant")
    # Revoking one firm's grant disconnects that firm only.
    assert requests.post(firms.base_url + "/connect/revocation", data={"token": one["refresh_token"]},
                         auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET), timeout=30).status_code == 200
    assert _connections(firms, one).status_code == 401
    assert _invoices(firms, two, ids[1]).status_code == 200
    assert _refresh(firms, two).status_code == 200


def test_demo_user_still_sees_every_organisation(firms):
    ids = _tenant_ids(firms)
    _, _, page = _consent_page(firms, DEMO_EMAIL, DEMO_PASSWORD)
    assert _offered(page) == ids
    token = firms.connect()
    assert [c["tenantId"] for c in _connections(firms, token).json()] == ids


def test_firm_user_cannot_approve_another_firms_organisation(firms):
    ids = _tenant_ids(firms)
    s, tx, _ = _consent_page(firms, *firm_user(3))
    r = s.post(firms.base_url + "/identity/connect/consent", data={"tx": tx, "tenant": ids[0], "decision": "allow"},
               allow_redirects=False, timeout=30)
    assert r.status_code == 400 and "Choose at least one organisation" in r.text
    # Its own and another's: only its own is connected.
    s, tx, _ = _consent_page(firms, *firm_user(3))
    r = s.post(firms.base_url + "/identity/connect/consent", allow_redirects=False, timeout=30,
               data=[("tx", tx), ("tenant", ids[0]), ("tenant", ids[3]), ("decision", "allow")])
    assert r.status_code == 302
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    token = requests.post(firms.base_url + "/connect/token", auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET), timeout=30,
                          data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}).json()
    assert [c["tenantId"] for c in _connections(firms, token).json()] == [ids[3]]
    # The scripted user refuses to ask for what the page does not offer.
    with pytest.raises(ConsentError, match="not offered"):
        sign_in_and_consent(firms.authorize_url(REDIRECT, DEFAULT_SCOPES), *firm_user(3), tenant_ids=[ids[0]])


def test_expire_lapses_one_users_grants_and_keeps_its_connections(lapsing):
    ids = _tenant_ids(lapsing)
    email = firm_user(0)[0]
    firm = lapsing.connect(email=email, password=FIRM_PASSWORD)
    other = lapsing.connect(email=firm_user(1)[0], password=FIRM_PASSWORD)
    demo = lapsing.connect()
    before = _connections(lapsing, firm).json()
    # A code handed out before the lapse is no way around it.
    pending = parse_qs(urlsplit(sign_in_and_consent(lapsing.authorize_url(REDIRECT, DEFAULT_SCOPES), email=email,
                                                    password=FIRM_PASSWORD)).query)["code"][0]
    lapsing.reset_stats()

    assert lapsing.expire_grants(email) == {"expired_grants": 2}
    dead = _refresh(lapsing, firm)
    assert dead.status_code == 400 and dead.json() == {"error": "invalid_grant"}
    late = requests.post(lapsing.base_url + "/connect/token", auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET), timeout=30,
                         data={"grant_type": "authorization_code", "code": pending, "redirect_uri": REDIRECT})
    assert late.status_code == 400 and late.json() == {"error": "invalid_grant"}
    assert lapsing.stats()["invalid_grant"] == 2
    api = _invoices(lapsing, firm, ids[0])
    assert api.status_code == 401 and api.json()["Detail"].startswith("TokenExpired: token expired at ")
    assert _connections(lapsing, firm).status_code == 401

    # Other users are untouched.
    assert _invoices(lapsing, other, ids[1]).status_code == 200
    assert _invoices(lapsing, demo, ids[0]).status_code == 200
    assert _refresh(lapsing, other).status_code == 200
    assert _refresh(lapsing, demo).status_code == 200

    # Signing in again gives a working grant, on the connection that stayed.
    again = lapsing.connect(email=email, password=FIRM_PASSWORD)
    after = _connections(lapsing, again).json()
    assert [(c["id"], c["tenantId"], c["createdDateUtc"]) for c in after] == \
        [(c["id"], c["tenantId"], c["createdDateUtc"]) for c in before]
    assert _invoices(lapsing, again, ids[0]).status_code == 200
    assert _refresh(lapsing, again).status_code == 200
    # Nothing live is left to lapse twice.
    assert lapsing.expire_grants(email) == {"expired_grants": 1}
    assert lapsing.expire_grants(email) == {"expired_grants": 0}


def test_expire_can_be_limited_to_one_app(lapsing):
    ids = _tenant_ids(lapsing)
    email = firm_user(2)[0]
    main = lapsing.connect(email=email, password=FIRM_PASSWORD)
    core = lapsing.connect(email=email, password=FIRM_PASSWORD, client_id=CORE_CLIENT_ID,
                           client_secret=CORE_CLIENT_SECRET)
    assert lapsing.expire_grants(email, client_id=CORE_CLIENT_ID) == {"expired_grants": 1}
    assert _refresh(lapsing, core, (CORE_CLIENT_ID, CORE_CLIENT_SECRET)).json() == {"error": "invalid_grant"}
    assert _invoices(lapsing, core, ids[2]).status_code == 401
    assert _invoices(lapsing, main, ids[2]).status_code == 200
    assert _refresh(lapsing, main).status_code == 200


def test_expire_refuses_unknown_users_and_bad_bodies(lapsing):
    url = lapsing.base_url + "/_sandbox/grants/expire"
    r = requests.post(url, json={"email": "nobody@intoaec.test"}, timeout=10)
    assert r.status_code == 404 and r.json()["ok"] is False and "nobody@intoaec.test" in r.json()["error"]
    with pytest.raises(requests.HTTPError):
        lapsing.expire_grants("firm99@intoaec.test")
    for body in ({}, {"email": ""}, {"email": "firm1@intoaec.test", "client_id": "nope"},
                 {"email": "firm1@intoaec.test", "tenant": "x"}):
        bad = requests.post(url, json=body, timeout=10)
        assert bad.status_code == 400 and bad.json()["ok"] is False, body
    # A user without grants has nothing to lapse.
    assert lapsing.expire_grants(DEMO_EMAIL) == {"expired_grants": 0}


def test_hundreds_of_firms_each_connect_through_their_own_sign_in():
    with running_sandbox("many", seed=1, limits=False, extra_args=("--tenants", "520")) as sb:
        ids = _tenant_ids(sb)
        assert len(ids) == 520
        for index in (0, 259, 519):
            email, password = firm_user(index)
            token = sb.connect(email=email, password=password)
            assert [c["tenantId"] for c in _connections(sb, token).json()] == [ids[index]]
