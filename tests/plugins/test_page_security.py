"""The Xero page's own defences, through a real Airflow API server: form tokens, framing, cookies.

A form token must be fresh per page, bound to the browser's page session and the user, expire,
and resist editing; every response forbids framing by another site; the page's cookies are
``Secure`` whenever the browser is on https, whether the API server learns that from the
request or from Airflow's configured base URL.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import time
from http.cookies import Morsel, SimpleCookie
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from intoaec_xero.airflow.page_security import CSRF_SECONDS, SESSION_COOKIE, issue_csrf

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

SIGN_IN_COOKIE = "intoaec_xero_sign_in"
FRAMING = "frame-ancestors 'self'"


def _token(page_html: str) -> str:
    tokens = set(re.findall(r'name="csrf" value="([^"]*)"', page_html))
    problem = re.search(r'id="setup-problem">(.*?)</div>', page_html, re.S)
    assert len(tokens) == 1, (tokens, problem and problem.group(1))  # a page's forms share one token
    return tokens.pop()


def _set_cookies(response: requests.Response) -> dict[str, Morsel]:
    """The cookies this one response sets, with their attributes as the browser reads them."""
    cookies = SimpleCookie()
    for line in response.raw.headers.getlist("Set-Cookie"):
        cookies.load(line)
    return dict(cookies)


def _open_page(ui, session: requests.Session) -> tuple[requests.Response, str]:
    page = session.get(f"{ui.base_url}/xero/")
    assert page.status_code == 200, page.text
    return page, _token(page.text)


def _post_form(ui, session: requests.Session, csrf: str) -> requests.Response:
    """The Disconnect form for an organisation that does not exist: 404 once the token passes, no side effect."""
    return session.post(f"{ui.base_url}/xero/organisations/no-such-tenant/disconnect",
                        data={"conn_id": "xero_default", "csrf": csrf}, allow_redirects=False)


def _refused(answer: requests.Response, why: str) -> None:
    assert answer.status_code == 403, (answer.status_code, answer.text)
    assert why in html.unescape(answer.text), answer.text


def test_each_page_gets_a_fresh_token_bound_to_its_session(airflow_ui):
    session = airflow_ui.session()
    first, token = _open_page(airflow_ui, session)
    cookie = _set_cookies(first)[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"].lower() == "lax" and cookie["path"] == "/xero"
    assert not cookie["max-age"] and not cookie["expires"]  # ends with the browser session
    assert not cookie["secure"]  # plain http with no https base URL: a Secure cookie would never come back
    assert cookie.value not in first.text  # the page carries a tag of the session, never its id

    second, again = _open_page(airflow_ui, session)
    assert SESSION_COOKIE not in _set_cookies(second)  # the session stays; each page gets a new token
    assert again != token
    nonce, expiry, session_tag, _ = token.split(".")
    assert again.split(".")[0] != nonce and again.split(".")[2] == session_tag
    assert abs(int(expiry) - (time.time() + CSRF_SECONDS)) < 120
    assert _post_form(airflow_ui, session, token).status_code == 404  # both pages' forms still work
    assert _post_form(airflow_ui, session, again).status_code == 404


def test_a_token_from_another_session_or_user_is_refused(airflow_ui):
    mine, theirs = airflow_ui.session(), airflow_ui.session()  # the same admin in two browsers
    _, my_token = _open_page(airflow_ui, mine)
    _, their_token = _open_page(airflow_ui, theirs)
    _refused(_post_form(airflow_ui, theirs, my_token), "issued to another session")
    assert _post_form(airflow_ui, theirs, their_token).status_code == 404

    # Another Airflow user signed in to the same browser (same page session) may not use it either.
    deputy = airflow_ui.session("deputy")
    deputy.cookies.set(SESSION_COOKIE, mine.cookies[SESSION_COOKIE])
    _refused(_post_form(airflow_ui, deputy, my_token), "this server did not issue it to you")

    # A browser with no page session (the cookie was never set, or was dropped) cannot use any token.
    stranger = airflow_ui.session()
    _refused(_post_form(airflow_ui, stranger, my_token), "without the Xero page's session cookie")
    _refused(_post_form(airflow_ui, stranger, ""), "did not come from the Xero page")


def test_an_expired_or_tampered_token_is_refused(airflow_ui):
    session = airflow_ui.session()
    _, token = _open_page(airflow_ui, session)
    session_id = session.cookies[SESSION_COOKIE]
    key = airflow_ui.secret_key

    # Signed with the server's real key for this session and user: accepted while current ...
    assert _post_form(airflow_ui, session, issue_csrf(key, session_id, "admin")).status_code == 404
    # ... and refused, for no other reason, once its time is up.
    expired = issue_csrf(key, session_id, "admin", now=time.time() - CSRF_SECONDS - 1)
    _refused(_post_form(airflow_ui, session, expired), "This form has expired")
    connect = session.post(f"{airflow_ui.base_url}/xero/connect", data={"conn_id": "xero_default", "csrf": expired},
                           allow_redirects=False)
    _refused(connect, "This form has expired")
    assert SIGN_IN_COOKIE not in _set_cookies(connect)  # no sign-in was started

    nonce, expiry, session_tag, mac = token.split(".")
    flipped = "0" if mac[-1] != "0" else "1"
    for tampered in (
        f"{nonce}.{int(expiry) + 86400}.{session_tag}.{mac}",  # a later expiry
        f"{nonce}.{expiry}.{'0' * 32}.{mac}",  # another session's tag
        f"{nonce}.{expiry}.{session_tag}.{mac[:-1]}{flipped}",  # an edited signature
        issue_csrf(b"not-the-server-secret", session_id, "admin"),  # made elsewhere
        hmac.new(key, b"intoaec-xero-csrf\0admin", hashlib.sha256).hexdigest(),  # the old per-user token
        "not a token",
    ):
        _refused(_post_form(airflow_ui, session, tampered), "security token is not valid")
    assert _post_form(airflow_ui, session, token).status_code == 404  # the real one still works


def test_every_response_of_the_page_forbids_framing(airflow_ui):
    base, admin = airflow_ui.base_url, airflow_ui.session()
    page, token = _open_page(airflow_ui, admin)
    answers = {
        "page": (page, 200),
        "anonymous": (requests.get(f"{base}/xero/", timeout=30), 401),
        "viewer": (airflow_ui.session("viewer").get(f"{base}/xero/"), 403),
        "forged form": (_post_form(airflow_ui, admin, "forged"), 403),
        "no such organisation": (_post_form(airflow_ui, admin, token), 404),
        "no such route": (admin.get(f"{base}/xero/no-such-page"), 404),
        "callback not started here": (admin.get(f"{base}/xero/callback?code=c&state=s", allow_redirects=False), 400),
        "connect": (admin.post(f"{base}/xero/connect", data={"conn_id": "xero_default", "csrf": token},
                               allow_redirects=False), 303),
        # FastAPI's own JSON answer to a malformed form (a file where the connection id goes).
        "invalid form (JSON)": (admin.post(f"{base}/xero/connect", files={"conn_id": ("id.txt", b"xero_default")}),
                                422),
    }
    docs = admin.get(f"{base}/xero/data-docs/")  # 200 once a sync built them, 404 before
    answers["data docs"] = (docs, docs.status_code if docs.status_code in (200, 404) else 200)
    for name, (answer, status) in answers.items():
        assert answer.status_code == status, (name, answer.status_code, answer.text[:300])
        policies = answer.raw.headers.getlist("Content-Security-Policy")
        assert len(policies) == 1 and FRAMING in policies[0], (name, policies)
        assert answer.headers.get("X-Frame-Options") == "SAMEORIGIN", name
    assert answers["invalid form (JSON)"][0].headers["content-type"].startswith("application/json")
    assert answers["anonymous"][0].headers["content-type"].startswith("text/html")


def _as_browser_on(ui, **headers: str) -> tuple[Morsel, Morsel, str]:
    """Open the page and click Connect: the page-session cookie, the sign-in cookie and where Xero is to send back.

    Headers are set by hand (Bearer login, Cookie) because requests' cookie jar, rightly, will not
    return a Secure cookie over the plain http these servers speak.
    """
    auth = ui.bearer()
    page = requests.get(f"{ui.base_url}/xero/", headers={**auth, **headers}, timeout=30)
    assert page.status_code == 200, page.text
    session_cookie = _set_cookies(page)[SESSION_COOKIE]
    connect = requests.post(f"{ui.base_url}/xero/connect", data={"conn_id": "xero_default", "csrf": _token(page.text)},
                            headers={**auth, **headers, "Cookie": f"{SESSION_COOKIE}={session_cookie.value}"},
                            allow_redirects=False, timeout=30)
    assert connect.status_code == 303, connect.text
    redirect_uri = parse_qs(urlparse(connect.headers["location"]).query)["redirect_uri"][0]
    return session_cookie, _set_cookies(connect)[SIGN_IN_COOKIE], redirect_uri


def test_cookies_are_secure_when_the_request_is_https(airflow_ui):
    session_cookie, sign_in, _ = _as_browser_on(airflow_ui)
    assert not session_cookie["secure"] and not sign_in["secure"]  # plain http: local use keeps working

    # A TLS proxy this server trusts (--proxy-headers, from 127.0.0.1) says the browser is on https.
    session_cookie, sign_in, _ = _as_browser_on(airflow_ui, **{"X-Forwarded-Proto": "https"})
    assert session_cookie["secure"] and sign_in["secure"]
    assert sign_in["httponly"] and sign_in["path"] == "/xero" and sign_in["samesite"].lower() == "lax"


def test_cookies_are_secure_when_airflows_base_url_is_https(airflow_ui_behind_tls):
    # Reached over plain http and told nothing by forwarded headers: only [api] base_url says https.
    session_cookie, sign_in, redirect_uri = _as_browser_on(airflow_ui_behind_tls)
    assert session_cookie["secure"] and sign_in["secure"]
    assert sign_in["httponly"] and sign_in["path"] == "/xero"
    assert redirect_uri == "https://airflow.intoaec.test/xero/callback"
