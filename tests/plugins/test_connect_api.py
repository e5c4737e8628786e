"""The connect API through a real Airflow API server: the bearer token, the firm's sign-in, isolation.

``intoaec_app`` is stored with ``airflow connections add``, as the data team stores it. The
firms' Xero users are the sandbox's ``firm{N}@intoaec.test``, each seeing one organisation.
Requests play IntoAEC's back end (the bearer token) and the firm's browser (redirects followed by
hand, so each hop can be checked).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from intoaec_xero.schema import intoaec_connect_sessions, intoaec_firm_tenants, xero_tenants, xero_tokens
from sqlalchemy import select, update
from xero_sandbox.testing import firm_user, sign_in_and_consent

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

TOKEN = "connect-api-" + uuid.uuid4().hex
RETURN = "http://127.0.0.1:9/integrations/xero/return"
REPO = Path(__file__).resolve().parents[2]


def _airflow(ui, *args: str) -> None:
    subprocess.run([str(Path(sys.executable).with_name("airflow")), *args], env=ui.env, check=True,
                   capture_output=True, timeout=120)


def _store_app_connection(ui, password: str = TOKEN, replace: bool = True, **extra) -> None:
    if replace:
        _airflow(ui, "connections", "delete", "intoaec_app")
    _airflow(ui, "connections", "add", "intoaec_app", "--conn-type", "generic", "--conn-password", password,
             "--conn-extra", json.dumps({"return_url_prefixes": ["http://127.0.0.1:9/integrations/"], **extra}))


@pytest.fixture(scope="module")
def stored_app(airflow_ui):
    """``intoaec_app`` stored once for the module (Airflow's CLI takes seconds a call)."""
    _store_app_connection(airflow_ui, replace=False)
    yield airflow_ui
    _airflow(airflow_ui, "connections", "delete", "intoaec_app")


@pytest.fixture
def api(stored_app):
    stored_app.reset()
    yield stored_app
    stored_app.reset()


def _url(ui, path: str) -> str:
    return f"{ui.base_url}/xero/api/v1{path}"


def _call(ui, method: str, path: str, token: str | None = TOKEN, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, _url(ui, path), headers=headers, timeout=30, allow_redirects=False, **kwargs)


def _start(ui, firm_id: str, return_url: str = RETURN) -> dict:
    answer = _call(ui, "POST", f"/firms/{firm_id}/connect-sessions", json={"return_url": return_url})
    assert answer.status_code == 201, answer.text
    return answer.json()


def _connect(ui, firm_id: str, firm_index: int) -> dict[str, list[str]]:
    """The firm's whole sign-in: session, Xero's sign-in as the firm's accountant, the callback; the
    query IntoAEC's return URL receives."""
    email, password = firm_user(firm_index)
    callback = sign_in_and_consent(_start(ui, firm_id)["authorize_url"], email=email, password=password)
    back = requests.get(callback, allow_redirects=False, timeout=60)
    assert back.status_code == 303, back.text
    location = back.headers["location"]
    assert location.startswith(RETURN + "?")
    return parse_qs(urlsplit(location).query)


def test_every_route_needs_the_token(api):
    routes = [("POST", "/firms/acme/connect-sessions"), ("GET", "/firms/acme"),
              ("POST", "/firms/acme/organisations/t/disconnect"), ("PUT", "/firms/acme/organisations/t/sync"),
              ("GET", "/openapi.json"), ("GET", "/firms/acme/nothing-here")]
    for token in (None, "wrong-" + TOKEN, TOKEN + "x", ""):
        for method, path in routes:
            answer = _call(api, method, path, token=token, data="not json")
            assert answer.status_code == 401, (method, path, token, answer.text)
            assert answer.json()["error"]["code"] == "unauthorized"
            assert answer.headers["www-authenticate"].startswith("Bearer")
    # Another scheme with the right secret is not a bearer token either.
    answer = requests.get(_url(api, "/firms/acme"), auth=("intoaec", TOKEN), timeout=30)
    assert answer.status_code == 401
    # An Airflow user's token is not the app's.
    assert requests.get(_url(api, "/firms/acme"), headers=api.bearer(), timeout=30).status_code == 401


def test_the_token_rotates_with_the_connection(api):
    assert _call(api, "GET", "/firms/acme").status_code == 200
    _store_app_connection(api, password="rotated-" + TOKEN)
    assert _call(api, "GET", "/firms/acme").status_code == 401
    assert _call(api, "GET", "/firms/acme", token="rotated-" + TOKEN).status_code == 200
    _store_app_connection(api)


def test_a_firm_connects_and_reads_the_help_pages_words(api):
    never = _call(api, "GET", "/firms/acme").json()
    assert never == {"firm_id": "acme", "organisations": []}
    session = _start(api, "acme")
    assert session["authorize_url"].startswith(api.sandbox.base_url + "/identity/connect/authorize?")
    query = parse_qs(urlsplit(session["authorize_url"]).query)
    assert query["redirect_uri"] == [f"{api.base_url}/xero/api/v1/callback"]
    assert query["code_challenge_method"] == ["S256"]

    back = _connect(api, "acme", 0)
    assert back["status"] == ["connected"] and back["firm_id"] == ["acme"] and back["organisations"] == ["1"]
    firm = _call(api, "GET", "/firms/acme").json()
    (org,) = firm["organisations"]
    tenant = api.sandbox.health()["tenants"][0]
    assert org["tenant_id"] == tenant["tenantId"] and org["tenant_name"] == tenant["tenantName"]
    assert (org["status"], org["sync"], org["future_access"]) == ("Connected", "Sync Enabled", "Future Access Saved")
    with api.engine.connect() as conn:
        row = conn.execute(select(intoaec_firm_tenants)).mappings().one()
        grant = conn.execute(select(xero_tokens.c.connection_key, xero_tokens.c.encrypted)).one()
        holder = conn.execute(select(xero_tenants.c.connection_key)).scalar_one()
    assert (row["firm_id"], row["tenant_id"], row["status"]) == ("acme", tenant["tenantId"], "Connected")
    assert row["connection_id"]
    assert tuple(grant) == ("firm:acme", True) and holder == "firm:acme"

    off = _call(api, "PUT", f"/firms/acme/organisations/{org['tenant_id']}/sync", json={"enabled": False})
    assert off.status_code == 200 and off.json()["sync"] == "Sync Disabled"
    on = _call(api, "PUT", f"/firms/acme/organisations/{org['tenant_id']}/sync", json={"enabled": True})
    assert on.json()["sync"] == "Sync Enabled"

    gone = _call(api, "POST", f"/firms/acme/organisations/{org['tenant_id']}/disconnect")
    assert gone.status_code == 200, gone.text
    assert (gone.json()["status"], gone.json()["sync"], gone.json()["future_access"]) == (
        "Disconnected", "Sync Disabled", "Future Access Not Saved")
    connections = requests.get(f"{api.sandbox.base_url}/connections", timeout=30,
                               headers={"Authorization": f"Bearer {api.engine and _access_token(api, 'firm:acme')}"})
    assert connections.json() == []  # disconnected at Xero too, with the firm's own grant

    again = _connect(api, "acme", 0)
    assert again["status"] == ["connected"]
    assert _call(api, "GET", "/firms/acme").json()["organisations"][0]["status"] == "Connected"


def _access_token(ui, key: str) -> str:
    from intoaec_xero.tokens import TokenCipher, TokenStore

    return TokenStore(ui.engine, key, TokenCipher(ui.fernet_key)).load().access_token


def test_firms_are_isolated(api):
    assert _connect(api, "acme", 0)["status"] == ["connected"]
    assert _connect(api, "bravo", 1)["status"] == ["connected"]
    acme = _call(api, "GET", "/firms/acme").json()["organisations"]
    bravo = _call(api, "GET", "/firms/bravo").json()["organisations"]
    assert len(acme) == len(bravo) == 1 and acme[0]["tenant_id"] != bravo[0]["tenant_id"]
    theirs = bravo[0]["tenant_id"]
    for method, path, body in [("POST", f"/firms/acme/organisations/{theirs}/disconnect", None),
                               ("PUT", f"/firms/acme/organisations/{theirs}/sync", {"enabled": False})]:
        answer = _call(api, method, path, json=body)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "organisation_not_found"
    # Nothing of bravo's changed, at IntoAEC or at Xero.
    assert _call(api, "GET", "/firms/bravo").json()["organisations"] == bravo
    with api.engine.connect() as conn:
        assert conn.execute(select(xero_tenants.c.sync_enabled, xero_tenants.c.connection_status)
                            .where(xero_tenants.c.tenant_id == theirs)).one() == (True, "Connected")
    assert len(requests.get(f"{api.sandbox.base_url}/connections", timeout=30, headers={
        "Authorization": f"Bearer {_access_token(api, 'firm:bravo')}"}).json()) == 1


def test_a_sign_in_finishes_once_for_the_firm_that_started_it(api):
    session = _start(api, "acme")
    email, password = firm_user(0)
    callback = sign_in_and_consent(session["authorize_url"], email=email, password=password)
    state = parse_qs(urlsplit(callback).query)["state"][0]
    session_id, _, signature = state.partition(".")
    # Another firm's session id under this signature, or this one altered, is not this server's.
    other = _start(api, "bravo")
    other_id = parse_qs(urlsplit(other["authorize_url"]).query)["state"][0].partition(".")[0]
    for forged in (f"{other_id}.{signature}", f"{session_id}.{signature[:-2]}AA", session_id, "", "x.y"):
        answer = requests.get(callback.replace(state, forged), allow_redirects=False, timeout=30)
        assert answer.status_code == 400 and "refused" in answer.text, forged
    # Moving the session to another firm in the database does not move the signature with it.
    with api.engine.begin() as conn:
        conn.execute(update(intoaec_connect_sessions).where(intoaec_connect_sessions.c.session_id == session_id)
                     .values(firm_id="bravo"))
    assert requests.get(callback, allow_redirects=False, timeout=30).status_code == 400
    with api.engine.begin() as conn:
        conn.execute(update(intoaec_connect_sessions).where(intoaec_connect_sessions.c.session_id == session_id)
                     .values(firm_id="acme"))
    first = requests.get(callback, allow_redirects=False, timeout=60)
    assert parse_qs(urlsplit(first.headers["location"]).query)["status"] == ["connected"]
    replay = requests.get(callback, allow_redirects=False, timeout=30)
    assert replay.status_code == 303
    assert parse_qs(urlsplit(replay.headers["location"]).query)["error"] == ["session_used"]
    assert _call(api, "GET", "/firms/bravo").json()["organisations"] == []


def test_an_expired_sign_in_is_refused(api):
    session = _start(api, "acme")
    email, password = firm_user(0)
    callback = sign_in_and_consent(session["authorize_url"], email=email, password=password)
    with api.engine.begin() as conn:
        conn.execute(update(intoaec_connect_sessions).values(expires_at=intoaec_connect_sessions.c.created_at))
    answer = requests.get(callback, allow_redirects=False, timeout=30)
    # The expiry is signed too: changing it in the database breaks the signature, so it reads forged.
    assert answer.status_code == 400


def test_return_urls_must_be_allow_listed(api):
    for url in ("http://127.0.0.1:9/elsewhere", "http://127.0.0.1:9/integrations.evil/", "javascript:alert(1)",
                "http://user@127.0.0.1:9/integrations/x", "https://127.0.0.1:9/integrations/x", "", "/integrations/"):
        answer = _call(api, "POST", "/firms/acme/connect-sessions", json={"return_url": url})
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "return_url_not_allowed", url
    bad = _call(api, "POST", "/firms/acme/connect-sessions", data="{not json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"
    bad_firm = _call(api, "POST", "/firms/acme%2Fx/connect-sessions", json={"return_url": RETURN})
    assert bad_firm.status_code in (400, 404)


def test_an_organisation_of_another_firm_is_refused_unless_sharing_is_allowed(api):
    assert _connect(api, "acme", 0)["status"] == ["connected"]
    # The same organisation, approved by the same accountant for a second firm.
    refused = _connect(api, "bravo", 0)
    assert refused["status"] == ["error"] and refused["error"] == ["organisation_already_connected"]
    assert "acme" in refused["message"][0]
    assert _call(api, "GET", "/firms/bravo").json()["organisations"] == []
    with api.engine.connect() as conn:
        assert conn.execute(select(xero_tokens.c.connection_key).order_by(xero_tokens.c.connection_key)
                            ).scalars().all() == ["firm:acme"]

    _store_app_connection(api, allow_shared_organisations=True)
    shared = _connect(api, "bravo", 0)
    assert shared["status"] == ["connected"]
    (org,) = _call(api, "GET", "/firms/bravo").json()["organisations"]
    assert org["status"] == "Connected"
    with api.engine.connect() as conn:  # still synced once, through the firm that connected it first
        assert conn.execute(select(xero_tenants.c.connection_key)).scalars().all() == ["firm:acme"]
    _store_app_connection(api)


def test_the_served_openapi_document_is_the_committed_one(api):
    served = _call(api, "GET", "/openapi.json")
    assert served.status_code == 200
    committed = json.loads((REPO / "docs" / "connect-api.openapi.json").read_text())
    assert served.json() == committed
    assert set(committed["paths"]) >= {"/firms/{firm_id}/connect-sessions", "/firms/{firm_id}", "/callback",
                                       "/firms/{firm_id}/organisations/{tenant_id}/disconnect",
                                       "/firms/{firm_id}/organisations/{tenant_id}/sync"}


def test_the_xero_page_lists_firms_for_the_data_team(api):
    import re

    _connect(api, "acme", 0)
    _connect(api, "bravo", 1)
    page = api.session("admin").get(f"{api.base_url}/xero/", timeout=60)
    assert page.status_code == 200
    assert 'id="firm-acme"' in page.text and 'id="firm-bravo"' in page.text
    filtered = api.session("admin").get(f"{api.base_url}/xero/", params={"firm": "acm"}, timeout=60).text
    assert 'id="firm-acme"' in filtered and 'id="firm-bravo"' not in filtered
    section = filtered[filtered.index('id="firm-acme"'):]
    assert re.search(r'class="status"><span class="badge \w+">Connected<', section)
    assert "Future Access Saved" in section
