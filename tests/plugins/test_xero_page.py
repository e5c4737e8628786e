"""The Xero page, through a real Airflow API server: login required, the sign-in flow, disconnects.

Requests play the browser here (cookies, redirects followed by hand so each hop can be checked);
test_browser.py clicks through the same flow in Chromium.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from intoaec_xero.client import XeroClient
from intoaec_xero.errors import XeroAuthError
from intoaec_xero.schema import xero_tokens
from intoaec_xero.settings import XeroSettings
from intoaec_xero.tokens import STATUS_RECONNECT
from sqlalchemy import select

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

LANDING = "/xero/?conn_id=xero_default&notice=connected"


def _csrf(page_html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f.]+)"', page_html).group(1)


def _start(ui, session) -> str:
    """Click "Connect to Xero": returns where the browser is sent (Xero's sign-in)."""
    page = session.get(f"{ui.base_url}/xero/")
    assert page.status_code == 200
    answer = session.post(f"{ui.base_url}/xero/connect", data={"conn_id": "xero_default", "csrf": _csrf(page.text)},
                          allow_redirects=False)
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def _connect_through_the_page(ui, session) -> None:
    from xero_sandbox.testing import sign_in_and_consent

    back = session.get(sign_in_and_consent(_start(ui, session)), allow_redirects=False)
    assert back.status_code == 303, back.text
    assert back.headers["location"] == LANDING


def _rows(page_html: str) -> dict[str, str]:
    """Organisation name → the text of its statuses, from the page's table."""
    rows = {}
    for row in re.findall(r"<tr data-tenant-id=.*?</tr>", page_html, re.S):
        name = re.search(r'<td class="name">(.*?)</td>', row).group(1)
        rows[name] = " ".join(re.findall(r'<span class="badge [a-z]+">(.*?)</span>', row))
    return rows


def test_anonymous_requests_are_refused(airflow_ui):
    base = airflow_ui.base_url
    for method, path in [("GET", "/xero/"), ("POST", "/xero/connect"), ("GET", "/xero/callback?code=c&state=s"),
                         ("POST", "/xero/organisations/t/disconnect"), ("GET", "/xero/data-docs/")]:
        answer = requests.request(method, base + path, allow_redirects=False, timeout=30)
        assert answer.status_code == 401, (method, path, answer.status_code)
        assert "Log in to Airflow" in answer.text
    forged = requests.get(base + "/xero/", headers={"Authorization": "Bearer not-a-jwt"}, timeout=30)
    assert forged.status_code == 403


def test_a_viewer_may_neither_see_nor_change_the_xero_connection(airflow_ui):
    viewer = airflow_ui.session("viewer")
    assert viewer.get(f"{airflow_ui.base_url}/xero/").status_code == 403
    assert viewer.post(f"{airflow_ui.base_url}/xero/connect", data={"conn_id": "xero_default"}).status_code == 403


def test_the_page_is_linked_from_airflows_admin_menu(airflow_ui):
    plugins = requests.get(f"{airflow_ui.base_url}/api/v2/plugins", headers=airflow_ui.bearer(),
                                         timeout=30).json()["plugins"]
    (ours,) = [p for p in plugins if p["name"] == "intoaec_xero"]
    # No url_route: a link to the page itself, since Airflow's embedding iframe may not navigate to Xero.
    assert ours["external_views"][0].items() >= {"name": "Xero", "href": "xero/", "url_route": None,
                                                 "category": "admin", "destination": "nav"}.items()
    assert ours["fastapi_apps"][0]["url_prefix"] == "/xero"


def test_a_connect_without_the_pages_token_is_refused(airflow_ui):
    answer = airflow_ui.session().post(f"{airflow_ui.base_url}/xero/connect", data={"conn_id": "xero_default"},
                                       allow_redirects=False)
    assert answer.status_code == 403 and "did not come from the Xero page" in answer.text


def test_a_wrong_client_secret_is_named_before_anyone_signs_in_at_xero(airflow_ui):
    session = airflow_ui.session()
    page = session.get(f"{airflow_ui.base_url}/xero/?conn_id=xero_wrong_secret")
    answer = session.post(f"{airflow_ui.base_url}/xero/connect",
                          data={"conn_id": "xero_wrong_secret", "csrf": _csrf(page.text)}, allow_redirects=False)
    assert answer.status_code == 400  # not a 303 to Xero's sign-in
    assert "invalid_client" in answer.text and 'id="fix-connection"' in answer.text
    assert "<code>xero_wrong_secret</code>" in answer.text
    assert "not-the-secret" not in answer.text
    assert "intoaec_xero_sign_in" not in answer.headers.get("set-cookie", "")


def test_connect_to_xero_lands_on_connected_sync_enabled_future_access_saved(airflow_ui):
    airflow_ui.reset()
    session = airflow_ui.session()
    assert "Not connected" in session.get(f"{airflow_ui.base_url}/xero/").text

    authorize = _start(airflow_ui, session)
    query = {k: v[0] for k, v in parse_qs(urlparse(authorize).query).items()}
    assert authorize.startswith(f"{airflow_ui.sandbox.base_url}/identity/connect/authorize?")
    assert query["code_challenge_method"] == "S256" and query["state"]
    assert query["redirect_uri"] == f"{airflow_ui.base_url}/xero/callback"
    assert query["scope"].split()[0] == "offline_access"
    cookie = next(c for c in session.cookies if c.name == "intoaec_xero_sign_in")
    assert cookie.path == "/xero" and cookie.has_nonstandard_attr("HttpOnly")
    assert query["state"] not in cookie.value  # encrypted, not just signed

    from xero_sandbox.testing import sign_in_and_consent

    back = session.get(sign_in_and_consent(authorize), allow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == LANDING

    page = session.get(airflow_ui.base_url + LANDING).text
    assert "Connected to Xero." in page
    assert _rows(page) == {
        "Harbourside Architects Ltd": "Connected Sync Enabled Future Access Saved",
        "Meridian Structural Engineers Pty Ltd": "Connected Sync Enabled Future Access Saved",
    }
    with airflow_ui.engine.connect() as conn:
        assert conn.execute(select(xero_tokens.c.encrypted)).scalar_one() is True  # Airflow's Fernet key
    tokens = airflow_ui.store().load()
    server_log = airflow_ui.log_path.read_text()
    assert "/xero/callback" in server_log  # the log is the one this server writes
    for secret in ("sandbox-secret", tokens.access_token, tokens.refresh_token):
        assert secret not in server_log and secret not in page


def test_a_forged_state_is_refused_and_no_code_is_spent(airflow_ui):
    from xero_sandbox.testing import sign_in_and_consent

    session = airflow_ui.session()
    callback = sign_in_and_consent(_start(airflow_ui, session))
    forged = re.sub(r"state=[^&]+", "state=forged", callback)
    airflow_ui.sandbox.reset_stats()
    answer = session.get(forged, allow_redirects=False)
    assert answer.status_code == 400
    assert "state does not match" in answer.text
    assert "POST /connect/token" not in airflow_ui.sandbox.stats()["requests"]


def test_a_callback_this_browser_did_not_start_is_refused(airflow_ui):
    from xero_sandbox.testing import sign_in_and_consent

    starter = airflow_ui.session()
    callback = sign_in_and_consent(_start(airflow_ui, starter))
    stranger = airflow_ui.session()  # logged in, but never clicked Connect
    answer = stranger.get(callback, allow_redirects=False)
    assert answer.status_code == 400 and "not started from this page" in answer.text
    assert "intoaec-xero connect" in answer.text  # where a CLI user should paste it instead

    hijacker = airflow_ui.session("viewer")
    hijacker.cookies.set("intoaec_xero_sign_in", starter.cookies["intoaec_xero_sign_in"], path="/xero")
    answer = hijacker.get(callback, allow_redirects=False)
    assert answer.status_code == 400 and "another Airflow user" in answer.text


def test_disconnect_one_organisation(airflow_ui):
    airflow_ui.reset()
    session = airflow_ui.session()
    _connect_through_the_page(airflow_ui, session)
    page = session.get(f"{airflow_ui.base_url}/xero/").text
    tenant = re.search(r'<tr data-tenant-id="([^"]+)">\s*<td class="name">Harbourside', page).group(1)

    # The row's button only asks, naming the organisation; nothing is revoked yet.
    asked = session.post(f"{airflow_ui.base_url}/xero/organisations/{tenant}/disconnect",
                         data={"conn_id": "xero_default", "csrf": _csrf(page)}, allow_redirects=False)
    assert asked.status_code == 200
    question = re.search(r'<div class="banner warn" role="alertdialog" id="confirm-disconnect".*?</div>',
                         asked.text, re.S).group(0)
    assert "Disconnect <strong>Harbourside Architects Ltd</strong>?" in question
    assert 'name="confirm" value="yes"' in question and 'id="cancel-disconnect"' in question
    assert _rows(asked.text)["Harbourside Architects Ltd"] == "Connected Sync Enabled Future Access Saved"

    answer = session.post(f"{airflow_ui.base_url}/xero/organisations/{tenant}/disconnect",
                          data={"conn_id": "xero_default", "csrf": _csrf(asked.text), "confirm": "yes"},
                          allow_redirects=False)
    assert answer.status_code == 303

    page = session.get(answer.headers["location"] if answer.headers["location"].startswith("http")
                       else airflow_ui.base_url + answer.headers["location"]).text
    assert "Harbourside Architects Ltd was disconnected" in page
    assert _rows(page) == {"Harbourside Architects Ltd": "Disconnected Sync Disabled Not saved",
                           "Meridian Structural Engineers Pty Ltd": "Connected Sync Enabled Future Access Saved"}
    row = re.search(rf'<tr data-tenant-id="{tenant}">.*?</tr>', page, re.S).group(0)
    assert 'class="reconnect"' in row and 'action="/xero/connect"' in row and 'class="danger disconnect"' not in row


def test_an_expired_grant_shows_reconnect_and_reconnecting_restores_it(airflow_ui):
    from xero_sandbox.testing import sign_in_and_consent

    airflow_ui.reset()
    session = airflow_ui.session()
    _connect_through_the_page(airflow_ui, session)
    store = airflow_ui.store()
    tokens = store.load()
    tokens.expires_at = 0
    store.save(tokens)
    airflow_ui.sandbox.advance_clock(61 * 86400)  # the refresh token idled past Xero's 60 days
    with pytest.raises(XeroAuthError, match="invalid_grant"):  # what the next sync meets
        XeroClient(XeroSettings.for_single_host(airflow_ui.sandbox.base_url, client_id="sandbox-client",
                                                client_secret="sandbox-secret"), store).refresh_tokens(force=True)
    assert store.status() == STATUS_RECONNECT

    page = session.get(f"{airflow_ui.base_url}/xero/").text
    assert '<button class="primary" id="connect" type="submit">Reconnect</button>' in page
    assert set(_rows(page).values()) == {"Reconnect needed Sync Disabled Not saved"}

    back = session.get(sign_in_and_consent(_start(airflow_ui, session)), allow_redirects=False)
    assert back.status_code == 303
    page = session.get(f"{airflow_ui.base_url}/xero/").text
    assert set(_rows(page).values()) == {"Connected Sync Enabled Future Access Saved"}
    assert "Connect to Xero" in page


def test_the_connection_forms_test_button_and_fields(airflow_ui):
    airflow_ui.reset()
    session = airflow_ui.session()
    verdict = session.post(f"{airflow_ui.base_url}/api/v2/connections/test", headers=airflow_ui.bearer(),
                           json=_form_body(airflow_ui)).json()
    assert verdict == {"status": False, "message": verdict["message"]}
    assert "Xero accepts the Client ID and secret, but no grant is stored" in verdict["message"]

    # The form runs under a temporary id and never reads the saved connection's grant.
    _connect_through_the_page(airflow_ui, session)
    before = airflow_ui.store().load()
    verdict = session.post(f"{airflow_ui.base_url}/api/v2/connections/test", headers=airflow_ui.bearer(),
                           json=_form_body(airflow_ui)).json()
    assert verdict["status"] is False and "no organisation was checked" in verdict["message"]
    assert airflow_ui.store().load() == before
    wrong = session.post(f"{airflow_ui.base_url}/api/v2/connections/test", headers=airflow_ui.bearer(),
                         json=_form_body(airflow_ui, password="typo")).json()
    assert wrong["status"] is False and "Client Secret" in wrong["message"]

    meta = session.get(f"{airflow_ui.base_url}/ui/connections/hook_meta", headers=airflow_ui.bearer()).json()
    (xero,) = [m for m in meta if m["connection_type"] == "xero"]
    assert xero["hook_name"] == "Xero"
    assert xero["standard_fields"]["login"]["title"] == "Client ID"
    assert xero["standard_fields"]["password"]["title"] == "Client Secret"
    assert all(xero["standard_fields"][f]["hidden"] for f in ("host", "port", "url_schema"))
    assert xero["extra_fields"]["scopes"]["value"].startswith("offline_access accounting.invoices.read")
    assert set(xero["extra_fields"]) == {"scopes", "tenant_filter", "api_base_url", "identity_base_url", "sandbox",
                                         "grant_type", "calls_per_minute", "connect_timeout", "read_timeout"}
    assert xero["extra_fields"]["calls_per_minute"]["value"] == 60


def _form_body(ui, password: str = "sandbox-secret") -> dict:
    """What the connection form sends when Test is clicked (as a new, unsaved connection)."""
    import json

    return {"connection_id": "xero_default", "conn_type": "xero", "login": "sandbox-client", "password": password,
            "extra": json.dumps({"api_base_url": f"{ui.sandbox.base_url}/api.xro/2.0",
                                 "identity_base_url": ui.sandbox.base_url, "sandbox": True})}


def test_sync_now_and_the_pause_toggle_drive_xero_sync(airflow_ui):
    import sqlite3
    import subprocess

    from tests.plugins.conftest import _airflow

    # What the dag-processor does in a running Airflow: xero_sync is in Airflow's DAG table, paused.
    subprocess.run([_airflow(), "dags", "reserialize"], env=airflow_ui.env, check=True, capture_output=True,
                   timeout=300)
    session = airflow_ui.session()
    page = session.get(f"{airflow_ui.base_url}/xero/").text
    block = re.search(r'<div id="sync-dag".*?</div>', page, re.S).group(0)
    assert 'data-paused="true"' in block and "xero_sync is paused" in block
    assert 'id="sync-now"' in block and 'id="unpause"' in block

    metadata_db = airflow_ui.home / "airflow.db"
    with sqlite3.connect(metadata_db) as metadata:  # other page tests leave runs of their own
        before = {r for (r,) in metadata.execute("SELECT run_id FROM dag_run WHERE dag_id = 'xero_sync'")}
    answer = session.post(f"{airflow_ui.base_url}/xero/sync-now", data={"conn_id": "xero_default",
                                                                        "csrf": _csrf(page)}, allow_redirects=False)
    assert answer.status_code == 303 and "notice=sync-queued" in answer.headers["location"]
    with sqlite3.connect(metadata_db) as metadata:
        runs = metadata.execute("SELECT run_id, run_type, triggered_by, state, triggering_user_name FROM dag_run "
                                "WHERE dag_id = 'xero_sync'").fetchall()
    started = [row for row in runs if row[0] not in before]
    assert [row[1:] for row in started] == [("manual", "UI", "queued", "admin")]
    page = session.get(airflow_ui.base_url + answer.headers["location"]).text
    assert "queued, but xero_sync is paused" in page and "run(s) queued or running" in page

    try:
        answer = session.post(f"{airflow_ui.base_url}/xero/sync-pause",
                              data={"conn_id": "xero_default", "csrf": _csrf(page), "paused": "false"},
                              allow_redirects=False)
        assert answer.status_code == 303 and "notice=unpaused" in answer.headers["location"]
        page = session.get(f"{airflow_ui.base_url}/xero/").text
        block = re.search(r'<div id="sync-dag".*?</div>', page, re.S).group(0)
        assert 'data-paused="false"' in block and 'id="pause"' in block and "xero_sync is scheduled" in block
    finally:
        with sqlite3.connect(metadata_db) as metadata:
            metadata.execute("UPDATE dag SET is_paused = 1 WHERE dag_id = 'xero_sync'")
            metadata.execute("DELETE FROM dag_run WHERE dag_id = 'xero_sync' AND run_id = ?", (started[0][0],))

    refused = session.post(f"{airflow_ui.base_url}/xero/sync-now", data={"conn_id": "xero_default"},
                           allow_redirects=False)
    assert refused.status_code in (400, 403)  # no page token: nothing is triggered
