"""The Xero page in the Airflow UI: connect, see, reconnect and disconnect organisations.

This is IntoAEC's "Configure Xero" flow inside Airflow: Connect to Xero → Xero sign-in →
approve → back here, where every organisation reads Connected / Sync Enabled / Future Access
Saved. A FastAPI app mounted by the plugin under ``/xero`` and linked from the Admin menu.

The link opens the page on its own rather than embedded: Airflow embeds plugin views in a
sandboxed iframe that may not navigate the window, and Xero's sign-in refuses to be framed,
so the sign-in has to start from a top-level page.

Below the organisations the page answers "is this firm's ledger current?" per tenant, from the
pipeline's own records (``intoaec_xero.health``, the same verdicts as ``intoaec-xero status``),
with a chart of the last 30 days; ``intoaec_xero.airflow.page_view`` builds both, this module
only routes, checks who may do what, and renders. What data quality checks held back from the
connection's organisations is listed there too, each item with a review page and a Release
button (``intoaec_xero.airflow.page_quarantine``, the same as ``intoaec-xero quarantine``).

Airflow does not protect plugin apps, so every route requires a logged-in Airflow user who
may read (page) or edit (connect, disconnect, release) the Xero connection. Every form carries a token
bound to the user, this browser's page session and an expiry (``page_security``), and no
response of the page may be framed by another site. The sign-in in progress
(PKCE verifier, ``state``, who started it) travels in a short-lived cookie encrypted with the
API server's secret key: nothing is kept in memory, so any API-server worker can finish it,
and a callback whose ``state`` does not match that cookie is refused before any code is used.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlencode

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails
from airflow.api_fastapi.core_api.security import GetUserDep
from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin
from cryptography.fernet import Fernet, InvalidToken
from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from intoaec_xero import environment, oauth, tenants
from intoaec_xero.airflow import (
    connect_api,
    page_connections,
    page_dags,
    page_quarantine,
    page_security,
    page_view,
    test_button,
)
from intoaec_xero.airflow.connections import XERO_CONN_ID
from intoaec_xero.airflow.hooks import XeroHook
from intoaec_xero.airflow.page_view import BACKFILL_DAG, SYNC_DAG
from intoaec_xero.errors import IntoAECXeroError, XeroUnavailable
from intoaec_xero.tokens import STATUS_RECONNECT
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod

log = logging.getLogger(__name__)

MOUNT = "/xero"
SIGN_IN_COOKIE = "intoaec_xero_sign_in"
SIGN_IN_SECONDS = 900  # Xero's codes live 5 minutes; signing in may take a while longer
NOTICES = {
    "connected": "Connected to Xero.",
    "disconnected": "Organisation disconnected.",
    "sync-started": "A xero_sync run was started; its progress is on the run's page and below.",
    "sync-queued": "A xero_sync run was queued, but xero_sync is paused: it starts once you unpause it.",
    "paused": "xero_sync is paused: no scheduled sync runs until you unpause it.",
    "unpaused": "xero_sync is unpaused: it runs on its schedule.",
}

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("xero_templates")),
    autoescape=select_autoescape(["html"]),
)

app = FastAPI(title="Xero", docs_url=None, redoc_url=None, openapi_url=None)
# IntoAEC's web app connects firms through this (its own bearer token, no Airflow user).
app.mount(connect_api.VERSION_PREFIX, connect_api.api)



# -- security ---------------------------------------------------------------------------------

def _secret() -> bytes:
    secret = conf.get("api", "secret_key", fallback="") or conf.get("api_auth", "jwt_secret", fallback="")
    if not secret:
        raise HTTPException(500, "The API server has no [api] secret_key to protect the Xero sign-in with.")
    return secret.encode()


def _fernet() -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"intoaec-xero-sign-in\0" + _secret()).digest()))


def _may(user, method: ResourceMethod, conn_id: str) -> bool:
    return get_auth_manager().is_authorized_connection(
        method=method, details=ConnectionDetails(conn_id=conn_id), user=user
    )


def _require(user, method: ResourceMethod, conn_id: str) -> None:
    if not _may(user, method, conn_id):
        raise HTTPException(403, f"You may not {'change' if method != 'GET' else 'see'} the Xero connection "
                                 f"'{conn_id}'.")


def _check_form(request: Request, user, csrf: str) -> None:
    """The form must carry a current token this server issued to this user in this browser's page session."""
    try:
        page_security.check_csrf(_secret(), csrf, request.cookies.get(page_security.SESSION_COOKIE), user.get_name())
    except page_security.CsrfRefused as refused:
        raise HTTPException(403, str(refused)) from None


def _secure_cookies(request: Request) -> bool:
    return page_security.cookies_secure(request.url.scheme, conf.get("api", "base_url", fallback=""))


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path=_root(request), httponly=True,
                        samesite="lax",  # sent on Xero's top-level redirect back, not on cross-site posts
                        secure=_secure_cookies(request))


def _delete_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path=_root(request), httponly=True, samesite="lax", secure=_secure_cookies(request))


app.add_middleware(page_security.FrameGuard)


@app.exception_handler(StarletteHTTPException)
async def _refusal(request: Request, error: StarletteHTTPException) -> Response:
    """Refusals as a page (the browser is the client), with the way to log in when that is what is missing."""
    login = None
    if error.status_code == 401:
        login = get_auth_manager().get_url_login(next_url=str(request.url))
    body = _templates.get_template("refused.html").render(status=error.status_code, detail=error.detail, login=login)
    return HTMLResponse(body, status_code=error.status_code, headers=getattr(error, "headers", None))


@app.exception_handler(Exception)
async def _failure(request: Request, error: Exception) -> Response:
    """An unexpected error: a page that says where to look, never the error's text (it may hold a secret).

    Starlette answers these outside the app's middleware, so the framing headers are set here.
    """
    body = _templates.get_template("refused.html").render(
        status=500, login=None, detail="The Xero page failed unexpectedly; the API server's log says why.")
    return HTMLResponse(body, status_code=500, headers={**page_security.FRAMING, "Cache-Control": "no-store"})


# -- pages ----------------------------------------------------------------------------------

def _notice(notice: str | None, organisation: str | None) -> str | None:
    """The banner after a redirect; the organisation's name, when given, replaces the generic word."""
    text = NOTICES.get(notice or "")
    if text and organisation and notice == "disconnected":
        return f"{organisation} was disconnected: IntoAEC no longer reads it from Xero, and its synced data stays."
    return text


def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/") or MOUNT


def _page(request: Request, conn_id: str, notice: str | None = None, organisation: str | None = None) -> str:
    query = {"conn_id": conn_id} | ({"notice": notice} if notice else {}) | (
        {"organisation": organisation} if organisation else {})
    return f"{_root(request)}/?{urlencode(query)}"


def _redirect_uri(request: Request) -> str:
    """What Xero must send the browser back to; it has to be registered on the Xero app as is."""
    configured = environment.current().xero_redirect_uri
    if configured:
        return configured
    base_url = conf.get("api", "base_url", fallback="")
    if base_url:
        return f"{base_url.rstrip('/')}{MOUNT}/callback"
    return str(request.url_for("callback"))


def _page_session(request: Request) -> tuple[str, bool]:
    """This browser's page session id, and whether it is new (the response then sets its cookie)."""
    session_id = request.cookies.get(page_security.SESSION_COOKIE)
    if page_security.is_session_id(session_id):
        return session_id, False
    return page_security.new_session_id(), True


def _render(request: Request, user, conn_id: str, *, error: str | None = None, notice: str | None = None,
            organisation: str | None = None, fix_connection: bool = False,
            confirm_disconnect: tenants.Organisation | None = None, status_code: int = 200,
            firm_filter: str | None = None, firm_status_filter: str | None = None) -> HTMLResponse:
    root = _root(request)
    session_id, new_session = _page_session(request)
    context = {"root": root, "airflow_home": (root[: -len(MOUNT)] if root.endswith(MOUNT) else "") + "/",
               "conn_id": conn_id, "csrf": page_security.issue_csrf(_secret(), session_id, user.get_name()),
               "error": error, "fix_connection": fix_connection,
               "notice": _notice(notice, organisation), "confirm_disconnect": confirm_disconnect,
               "user": user.get_name(), "orgs": [], "grant": None,
               "settings": None, "grant_state": "not_connected", "setup_problem": None, "tenants": [],
               "quarantine": None}
    stored = page_connections.stored_xero_ids()
    context["connection_warning"] = page_connections.source(conn_id, stored).shadow_warning
    context["conn_choices"] = page_connections.choices(
        conn_id, page_connections.configured_ids(), stored, page_connections.environment_xero_ids(),
        lambda other: _may(user, "GET", other))
    try:
        hook = XeroHook(xero_conn_id=conn_id)
        context["settings"] = hook.settings
        store = hook.get_token_store()
        grant = store.info()
        context["grant"] = grant
        context["orgs"] = tenants.organisations(hook.engine, conn_id, grant,
                                                custom_connection=hook.settings.grant_type == "client_credentials")
        if grant is not None:
            context["grant_state"] = "reconnect" if grant.status == STATUS_RECONNECT else "connected"
        context.update(page_view.health_context(hook.engine, context["orgs"], context["airflow_home"], root,
                                                   _airflow_runs))
        context["sync_dag"] = page_dags.sync_dag_state(user)
        context["quarantine"] = page_quarantine.overview(hook.engine, {org.tenant_id for org in context["orgs"]})
    except IntoAECXeroError as problem:
        context["setup_problem"] = str(problem)
    if _may(user, "GET", XERO_CONN_ID):  # firms sign in through xero_default's Xero app
        try:
            context.update(page_view.firms_context(XeroHook(xero_conn_id=XERO_CONN_ID).engine, firm_filter,
                                                   firm_status_filter))
        except IntoAECXeroError:
            pass  # no IntoAEC database yet: setup_problem above already says what is missing
    body = _templates.get_template("xero.html").render(**context)
    response = HTMLResponse(body, status_code=status_code, headers={"Cache-Control": "no-store"})
    if new_session:  # a browser session cookie: closing the browser ends the page session
        _set_cookie(request, response, page_security.SESSION_COOKIE, session_id)
    return response


@app.get("/", response_class=HTMLResponse)
def page(request: Request, user: GetUserDep, conn_id: str = XERO_CONN_ID, notice: str | None = None,
         organisation: str | None = None, firm: str | None = None, firm_status: str | None = None):
    _require(user, "GET", conn_id)
    return _render(request, user, conn_id, notice=notice, organisation=organisation, firm_filter=firm,
                   firm_status_filter=firm_status)


@app.post("/connect")
def connect(request: Request, user: GetUserDep, conn_id: Annotated[str, Form()] = XERO_CONN_ID,
            csrf: Annotated[str, Form()] = ""):
    """Start the sign-in: PKCE + state, remembered in an encrypted cookie, then off to Xero."""
    _require(user, "PUT", conn_id)
    _check_form(request, user, csrf)
    hook = XeroHook(xero_conn_id=conn_id)
    try:
        settings = hook.settings
        if settings.grant_type == "client_credentials":
            store = hook.get_token_store()
            tokens = oauth.client_credentials_token(settings, hook.get_conn())
            oauth.complete_sign_in(settings, store, tokens, hook.get_client())
            return RedirectResponse(_page(request, conn_id, "connected"), status_code=303)
        # A wrong secret is otherwise found only after the user has signed in and approved at Xero.
        rejected = oauth.check_client(settings, hook.get_conn())
        if rejected:
            return _render(request, user, conn_id, error=rejected, fix_connection=True, status_code=400)
        auth = oauth.start_authorization(settings, _redirect_uri(request))
    except IntoAECXeroError as problem:
        return _render(request, user, conn_id, error=str(problem), status_code=_status_for(problem))
    pending = {"conn_id": conn_id, "user": user.get_name(), "request": auth.to_dict()}
    response = RedirectResponse(auth.url, status_code=303)
    _set_cookie(request, response, SIGN_IN_COOKIE, _fernet().encrypt(json.dumps(pending).encode()).decode(),
                max_age=SIGN_IN_SECONDS)
    return response


@app.get("/callback", response_class=HTMLResponse)
def callback(request: Request, user: GetUserDep):
    """Xero sends the browser back here: check state, exchange the code, store, read /connections."""
    pending = _pending_sign_in(request)
    if pending is None:
        return _refused_callback(
            request,
            "This Xero sign-in was not started from this page, or it is older than 15 minutes, so it was "
            "refused. Start again with Connect to Xero. (Finishing `intoaec-xero connect` in a terminal? "
            "Copy this page's address into the terminal instead.)",
        )
    conn_id = pending["conn_id"]
    if pending.get("user") != user.get_name():
        return _refused_callback(request, "This Xero sign-in was started by another Airflow user; it was refused.")
    _require(user, "PUT", conn_id)
    hook = XeroHook(xero_conn_id=conn_id)
    try:
        settings = hook.settings
        auth = oauth.AuthorizationRequest.from_dict(pending["request"])
        tokens = oauth.finish_authorization(settings, auth, str(request.url), session=hook.get_conn())
        connections = oauth.complete_sign_in(settings, hook.get_token_store(), tokens, hook.get_client())
    except IntoAECXeroError as problem:
        response: Response = _render(request, user, conn_id, error=str(problem), status_code=_status_for(problem))
        _delete_cookie(request, response, SIGN_IN_COOKIE)
        return response
    log.info("Xero connection '%s' connected by %s: %d organisation(s).", conn_id, user.get_name(), len(connections))
    response = RedirectResponse(_page(request, conn_id, "connected"), status_code=303)
    _delete_cookie(request, response, SIGN_IN_COOKIE)
    return response


@app.post("/organisations/{tenant_id}/disconnect")
def disconnect(request: Request, tenant_id: str, user: GetUserDep,
               conn_id: Annotated[str, Form()] = XERO_CONN_ID, csrf: Annotated[str, Form()] = "",
               confirm: Annotated[str, Form()] = ""):
    """Xero's DELETE /connections/{id} for one organisation; the grant stays for the others.

    The first click asks (the page shows what will happen, naming the organisation); only the
    confirmation revokes, since IntoAEC cannot undo it without the organisation's admin at Xero.
    """
    _require(user, "PUT", conn_id)
    _check_form(request, user, csrf)
    hook = XeroHook(xero_conn_id=conn_id)
    org = next((o for o in tenants.organisations(hook.engine, conn_id, None) if o.tenant_id == tenant_id), None)
    if org is None:
        raise HTTPException(404, "No such organisation on this Xero connection.")
    if confirm != "yes":
        return _render(request, user, conn_id, confirm_disconnect=org)
    try:
        if org.connection_id:
            oauth.delete_connection(hook.get_client(), org.connection_id, session=hook.get_conn())
        tenants.mark_organisation_disconnected(hook.engine, tenant_id)
    except IntoAECXeroError as problem:
        return _render(request, user, conn_id, error=str(problem), status_code=_status_for(problem))
    log.info("Xero organisation %s disconnected from '%s' by %s.", org.name, conn_id, user.get_name())
    return RedirectResponse(_page(request, conn_id, "disconnected", organisation=org.name), status_code=303)


@app.post("/sync-now")
def sync_now(request: Request, user: GetUserDep, conn_id: Annotated[str, Form()] = XERO_CONN_ID,
             csrf: Annotated[str, Form()] = ""):
    """Airflow's Trigger, for xero_sync, from the page that says what is out of date."""
    _require(user, "GET", conn_id)
    _check_form(request, user, csrf)
    state = page_dags.sync_dag_state(user)
    if not state.known:
        return _render(request, user, conn_id, status_code=409,
                       error="Airflow has not read the xero_sync DAG yet (is the dag-processor running?).")
    if not state.may_trigger:
        raise HTTPException(403, "You may not trigger xero_sync runs.")
    run_id = page_dags.trigger_sync(user)
    log.info("xero_sync run %s triggered from the Xero page by %s.", run_id, user.get_name())
    return RedirectResponse(_page(request, conn_id, "sync-queued" if state.paused else "sync-started"),
                            status_code=303)


@app.post("/sync-pause")
def sync_pause(request: Request, user: GetUserDep, conn_id: Annotated[str, Form()] = XERO_CONN_ID,
               csrf: Annotated[str, Form()] = "", paused: Annotated[str, Form()] = ""):
    """Airflow's pause toggle, for xero_sync."""
    _require(user, "GET", conn_id)
    _check_form(request, user, csrf)
    if paused not in ("true", "false"):
        raise HTTPException(400, "paused must be true or false.")
    state = page_dags.sync_dag_state(user)
    if not state.known or not state.may_pause:
        raise HTTPException(403 if state.known else 409, "You may not pause or unpause xero_sync."
                            if state.known else "Airflow has not read the xero_sync DAG yet.")
    page_dags.set_paused(paused == "true")
    log.info("xero_sync %s from the Xero page by %s.", "paused" if paused == "true" else "unpaused", user.get_name())
    return RedirectResponse(_page(request, conn_id, "paused" if paused == "true" else "unpaused"), status_code=303)


@app.get("/data-docs/{path:path}")
def data_docs(user: GetUserDep, path: str = ""):
    """Great Expectations' Data Docs, served behind Airflow's login like the page that links to them.

    The site is a folder on the API server's disk, and a browser will not follow a ``file:``
    link from an http page. Its pages are GX's, with Xero's data in them, so they may not
    reach back into Airflow's API from this origin (``connect-src``/``form-action``).
    """
    _require(user, "GET", XERO_CONN_ID)
    from intoaec_xero.quality import docs

    base = docs.docs_dir().resolve()
    wanted = (base / (path or "index.html")).resolve()
    if wanted.is_dir():
        wanted = wanted / "index.html"
    if not wanted.is_relative_to(base) or wanted.name.startswith(".") or not wanted.is_file():
        raise HTTPException(404, "No such Data Docs page (Data Docs are built by the sync's quality checks).")
    return FileResponse(wanted, headers={
        "Cache-Control": "no-store",
        "Content-Security-Policy": "connect-src 'none'; form-action 'none'; frame-ancestors 'self'; base-uri 'self'",
        "X-Content-Type-Options": "nosniff",
    })


# -- quarantine -------------------------------------------------------------------------------

def _item_page(request: Request, conn_id: str, item: str, outcome: str | None = None) -> str:
    query = {"conn_id": conn_id} | ({"outcome": outcome} if outcome else {})
    return f"{_root(request)}/quarantine/{item}?{urlencode(query)}"


def _render_item(request: Request, user, conn_id: str, item: str, *, outcome: str | None = None,
                 error: str | None = None, status_code: int = 200) -> HTMLResponse:
    """One held record or quarantined batch of the connection's organisations; another's is not found."""
    root = _root(request)
    session_id, new_session = _page_session(request)
    context = {"root": root, "conn_id": conn_id, "user": user.get_name(), "error": error, "detail": None,
               "status": None, "csrf": page_security.issue_csrf(_secret(), session_id, user.get_name()),
               "back": _page(request, conn_id), "may_release": _may(user, "PUT", conn_id)}
    try:
        engine = XeroHook(xero_conn_id=conn_id).engine
        found = page_quarantine.detail(engine, page_quarantine.connection_tenants(engine, conn_id), item)
    except page_quarantine.NotFound as missing:
        raise HTTPException(404, str(missing)) from None
    except IntoAECXeroError as problem:
        context["error"] = str(problem)
        status_code = _status_for(problem) if status_code == 200 else status_code
    else:
        context["detail"] = found
        context["status"] = page_quarantine.item_status(found, outcome if outcome in page_quarantine.OUTCOMES
                                                        else None)
    body = _templates.get_template("quarantine.html").render(**context)
    response = HTMLResponse(body, status_code=status_code, headers={"Cache-Control": "no-store"})
    if new_session:
        _set_cookie(request, response, page_security.SESSION_COOKIE, session_id)
    return response


@app.get("/quarantine/{item}", response_class=HTMLResponse)
def quarantine_item(request: Request, item: str, user: GetUserDep, conn_id: str = XERO_CONN_ID,
                    outcome: str | None = None):
    """``intoaec-xero quarantine show`` on the page: why it was held, and the raw JSON it was held as."""
    _require(user, "GET", conn_id)
    return _render_item(request, user, conn_id, item, outcome=outcome)


@app.post("/quarantine/{item}/release")
def quarantine_release(request: Request, item: str, user: GetUserDep,
                       conn_id: Annotated[str, Form()] = XERO_CONN_ID, csrf: Annotated[str, Form()] = "",
                       accept: Annotated[list[str] | None, Form()] = None):
    """``intoaec-xero quarantine release`` on the page: load it through today's checks, then show what happened.

    It loads data into IntoAEC's tables on behalf of the connection, so it needs the right to
    change the connection, as Connect and Disconnect do.
    """
    _require(user, "PUT", conn_id)
    _check_form(request, user, csrf)
    try:
        engine = XeroHook(xero_conn_id=conn_id).engine
        outcome = page_quarantine.release_item(engine, page_quarantine.connection_tenants(engine, conn_id), item,
                                               accept=accept or (), connection_key=conn_id)
    except page_quarantine.NotFound as missing:
        raise HTTPException(404, str(missing)) from None
    except IntoAECXeroError as problem:
        log.info("Quarantine release of %r (Xero connection '%s') by %s not done: %s.", item, conn_id,
                 user.get_name(), type(problem).__name__)
        return _render_item(request, user, conn_id, item, error=str(problem), status_code=_status_for(problem))
    log.info("Quarantine release of %s (Xero connection '%s') by %s%s: %s.", outcome.item, conn_id, user.get_name(),
             f", accepting {', '.join(accept)}" if accept else "",
             "released" if outcome.released else f"still held ({', '.join(outcome.failing_checks)})")
    return RedirectResponse(_item_page(request, conn_id, outcome.item, outcome.key), status_code=303)


# -- sync health ------------------------------------------------------------------------------

def _airflow_runs(run_ids: set[str]) -> dict[str, str]:
    """run id → its DAG, for the runs this Airflow has.

    ``sync_runs`` keeps the run id, not the DAG, and some runs never were this Airflow's
    (``intoaec-xero sync``, the demo's own Airflow home): those get no link rather than one to
    a page saying the run does not exist.
    """
    if not run_ids:
        return {}
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    wanted = sorted(run_ids)
    found: dict[str, str] = {}
    with create_session(scoped=False) as session:
        for start in range(0, len(wanted), 500):
            rows = session.execute(
                select(DagRun.dag_id, DagRun.run_id)
                .where(DagRun.dag_id.in_((SYNC_DAG, BACKFILL_DAG)), DagRun.run_id.in_(wanted[start:start + 500]))
            ).all()
            for dag_id, run_id in rows:
                if found.get(run_id) != SYNC_DAG:  # a run id both DAGs used: the sync wrote most rows
                    found[run_id] = dag_id
    return found


page_view.register(_templates)


def _pending_sign_in(request: Request) -> dict | None:
    cookie = request.cookies.get(SIGN_IN_COOKIE)
    if not cookie:
        return None
    try:
        return json.loads(_fernet().decrypt(cookie.encode(), ttl=SIGN_IN_SECONDS))
    except (InvalidToken, ValueError):
        return None


def _refused_callback(request: Request, detail: str) -> HTMLResponse:
    body = _templates.get_template("refused.html").render(status=400, detail=detail, login=None,
                                                          back=f"{_root(request)}/")
    response = HTMLResponse(body, status_code=400)
    _delete_cookie(request, response, SIGN_IN_COOKIE)
    return response


def _status_for(problem: IntoAECXeroError) -> int:
    return 502 if isinstance(problem, XeroUnavailable) else 400


class XeroPlugin(AirflowPlugin):
    name = "intoaec_xero"
    fastapi_apps = [{"app": app, "url_prefix": MOUNT, "name": "Xero"}]
    # Airflow 3.3's Test button sends port 0 for a connection without one (test_button.py).
    fastapi_root_middlewares = [{"middleware": test_button.XeroTestButtonFix, "name": "Xero Test button"}]
    external_views = [{"name": "Xero", "href": "xero/", "destination": "nav", "category": "admin"}]
