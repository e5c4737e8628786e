"""The connect API: IntoAEC's web app lets each firm connect its own Xero (``/xero/api/v1``).

IntoAEC's Integrations page calls it from IntoAEC's back end with the bearer token it holds (the
password of the Airflow connection ``intoaec_app``, compared in constant time, rotatable by
editing the connection); no Airflow user is involved. The firm's accountant only ever meets
Xero's sign-in and the public callback, which trusts nothing but the signed, single-use state
it issued (:mod:`intoaec_xero.firms`). Every route names its firm in the path and only ever
touches that firm's grant and organisations; another firm's organisation is "not found".

Errors are JSON ``{"error": {"code", "message"}}``: the code for IntoAEC's app to branch on, the
sentence for its people. The callback answers the browser: a redirect to the session's return URL
with ``status=connected`` or ``status=error&error=<code>&message=…``, or, when the state cannot be
trusted, a page saying to start again.
"""

from __future__ import annotations

import hmac
import html
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from intoaec_xero import firms, oauth
from intoaec_xero.airflow.connections import APP_CONN_ID, XERO_CONN_ID, get_connection
from intoaec_xero.errors import ConfigurationError, IntoAECXeroError, XeroAuthError, XeroUnavailable

log = logging.getLogger(__name__)

VERSION_PREFIX = "/api/v1"
PUBLIC_PATHS = ("/callback",)


# -- the contract, as models (they make the OpenAPI document) ---------------------------------

class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable reason, e.g. return_url_not_allowed")
    message: str = Field(description="One sentence for people")


class ErrorBody(BaseModel):
    error: ErrorDetail


class ConnectSessionRequest(BaseModel):
    return_url: str = Field(description="Where the browser goes when the sign-in ends; must start with one of "
                                        "the intoaec_app connection's return_url_prefixes")


class ConnectSession(BaseModel):
    session_id: str
    authorize_url: str = Field(description="Send the firm's browser here (Xero's sign-in)")
    expires_at: str = Field(description="ISO 8601 UTC; the sign-in must finish before then")


class Organisation(BaseModel):
    tenant_id: str
    tenant_name: str
    status: str = Field(description="Connected, Reconnect needed, Disconnected or Connection error")
    sync: str = Field(description="Sync Enabled or Sync Disabled")
    future_access: str = Field(description="Future Access Saved or Future Access Not Saved")
    sync_enabled: bool
    future_access_saved: bool
    connected_at: str | None
    last_successful_sync: str | None = Field(description="When every stream of it last synced (ISO 8601 UTC)")
    health: str | None = Field(description="The sync's verdict: healthy, stale, failing, reconnect needed, …")
    health_reasons: list[str]
    backfill: dict[str, Any] | None = Field(description="History backfill progress, or null when none ran")


class FirmBody(BaseModel):
    firm_id: str
    organisations: list[Organisation]


class SyncRequest(BaseModel):
    enabled: bool


# -- the app ----------------------------------------------------------------------------------

api = FastAPI(title="IntoAEC Xero connect API", version="1.0.0", docs_url=None, redoc_url=None, openapi_url=None,
              description="Lets IntoAEC's web app connect each firm's own Xero organisations. Every route but "
                          "the callback needs `Authorization: Bearer <token>`, the password of the Airflow "
                          "connection `intoaec_app`.")
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in ((400, "Bad request"), (401, "No valid bearer token"), (404, "Not this firm's"),
                         (409, "Conflict"), (502, "Xero failed"), (503, "Not set up"))}


class BearerToken:
    """Every route but the public callback needs the ``intoaec_app`` token, checked before anything
    else of the request is read (a body never gets parsed for a caller without it)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].removeprefix(scope.get("root_path", "")) in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = given.partition(" ")
        if scheme.lower() == "bearer" and token.strip() and _token_ok(token.strip()):
            await self.app(scope, receive, send)
            return
        response = _error(401, "unauthorized", "The connect API refused the call: it needs an Authorization header "
                                               "\"Bearer <token>\" with the token IntoAEC was given (the password of "
                                               "the Airflow connection intoaec_app).")
        response.headers["WWW-Authenticate"] = 'Bearer realm="intoaec-xero"'
        await response(scope, receive, send)


api.add_middleware(BearerToken)


def _app_connection():
    try:
        return get_connection(APP_CONN_ID)
    except ConfigurationError:
        return None


def _token_ok(token: str) -> bool:
    conn = _app_connection()
    expected = (conn.password or "") if conn is not None else ""
    if not expected:
        log.warning("The connect API was called, but the Airflow connection '%s' (its bearer token) is not set: "
                    "every call is refused.", APP_CONN_ID)
        hmac.compare_digest(token.encode(), b"-")  # the same work either way
        return False
    return hmac.compare_digest(token.encode(), expected.encode())


def _app_extra() -> dict[str, Any]:
    conn = _app_connection()
    return dict(conn.extra_dejson or {}) if conn is not None else {}


def return_url_prefixes(extra: dict[str, Any]) -> list[str]:
    given = extra.get("return_url_prefixes") or []
    if isinstance(given, str):
        given = [part.strip() for part in given.replace("\n", ",").split(",")]
    return [p for p in given if isinstance(p, str) and p]


def _allow_sharing(extra: dict[str, Any]) -> bool:
    value = extra.get("allow_shared_organisations", False)
    return value is True or str(value).strip().lower() in ("true", "1", "yes")


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers={"Cache-Control": "no-store"})


@api.exception_handler(firms.ConnectError)
async def _connect_error(request: Request, error: firms.ConnectError) -> Response:
    return _error(error.status, error.code, error.message)


@api.exception_handler(RequestValidationError)
async def _invalid(request: Request, error: RequestValidationError) -> Response:
    first = (error.errors() or [{}])[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
    return _error(400, "invalid_request", f"The request is not valid: {where}: {first.get('msg', 'invalid')}.")


@api.exception_handler(StarletteHTTPException)
async def _http(request: Request, error: StarletteHTTPException) -> Response:
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "error")
    return _error(error.status_code, code, str(error.detail))


@api.exception_handler(Exception)
async def _unexpected(request: Request, error: Exception) -> Response:
    log.error("The connect API failed on %s %s: %s", request.method, request.url.path, type(error).__name__)
    return _error(500, "internal_error", "The connect API failed unexpectedly; the API server's log says why.")


def _hook(firm_id: str | None = None):
    from intoaec_xero.airflow.hooks import XeroHook

    return XeroHook(xero_conn_id=XERO_CONN_ID, firm_id=firm_id)


def _engine():
    try:
        return _hook().engine
    except IntoAECXeroError as problem:
        raise firms.ConnectError("not_configured", f"IntoAEC's database is not set up: {problem}", 503) from None


def _app_settings(hook):
    try:
        return hook.settings
    except IntoAECXeroError as problem:
        raise firms.ConnectError("xero_not_configured", f"The Xero app is not set up for IntoAEC yet: {problem}",
                                 503) from None


def _secret() -> bytes:
    from airflow.configuration import conf

    secret = conf.get("api", "secret_key", fallback="") or conf.get("api_auth", "jwt_secret", fallback="")
    if not secret:
        raise firms.ConnectError("not_configured", "The API server has no [api] secret_key to sign sign-ins with.",
                                 503)
    return secret.encode()


def redirect_uri(request: Request, extra: dict[str, Any]) -> str:
    """Where Xero sends a firm's browser back: register it on the Xero app as is."""
    if extra.get("redirect_uri"):
        return str(extra["redirect_uri"])
    from airflow.configuration import conf

    base_url = conf.get("api", "base_url", fallback="")
    if base_url:
        return f"{base_url.rstrip('/')}/xero{VERSION_PREFIX}/callback"
    return str(request.url_for("firm_callback"))


# -- routes -----------------------------------------------------------------------------------

@api.post("/firms/{firm_id}/connect-sessions", status_code=201, response_model=ConnectSession, responses=ERRORS,
          summary="Start a firm's Xero sign-in")
def create_connect_session(firm_id: str, body: ConnectSessionRequest, request: Request) -> dict[str, Any]:
    firms.check_firm_id(firm_id)
    extra = _app_extra()
    prefixes = return_url_prefixes(extra)
    if not firms.return_url_allowed(body.return_url, prefixes):
        raise firms.ConnectError("return_url_not_allowed", "The return_url does not start with any of the intoaec_app "
                                                           "connection's return_url_prefixes.", 400)
    hook = _hook(firm_id)
    settings = _app_settings(hook)
    if settings.grant_type == "client_credentials":
        raise firms.ConnectError("xero_not_configured", "The Xero app is a custom connection (one organisation); "
                                                        "firms need an app with the authorization-code flow.", 503)
    started = firms.start_session(hook.engine, settings, firm_id, body.return_url, redirect_uri(request, extra),
                                  _secret())
    return {"session_id": started.session_id, "authorize_url": started.authorize_url,
            "expires_at": started.expires_at.isoformat()}


@api.get("/callback", name="firm_callback", include_in_schema=True, summary="Xero's redirect back (public)",
         response_class=RedirectResponse, status_code=303)
def firm_callback(request: Request, state: str | None = None) -> Response:
    engine = _engine()
    try:
        claimed = firms.claim_session(engine, state, _secret())
    except firms.SessionRefused as refused:
        log.warning("A Xero sign-in callback was refused: %s.", refused.code)
        if refused.return_url:
            return _back(refused.return_url, {"status": "error", "error": refused.code, "message": refused.message})
        return _refused_page(refused.message)
    hook = _hook(claimed.firm_id)
    try:
        settings = _app_settings(hook)
        from intoaec_xero.airflow.hooks import token_cipher
        from intoaec_xero.client import build_client

        session = hook.get_conn()
        connected = firms.finish_sign_in(
            engine, settings, claimed, str(request.url), allow_sharing=_allow_sharing(_app_extra()),
            exchange=lambda code: oauth.exchange_code(settings, code, claimed.redirect_uri, claimed.verifier,
                                                      session=session),
            client_for=lambda store: build_client(settings, store), cipher=token_cipher())
    except firms.ConnectError as problem:
        firms.record_outcome(engine, claimed.session_id, problem.code)
        log.warning("Firm %s's Xero sign-in did not connect: %s.", claimed.firm_id, problem.code)
        return _back(claimed.return_url, {"status": "error", "error": problem.code, "message": problem.message,
                                          "firm_id": claimed.firm_id})
    firms.record_outcome(engine, claimed.session_id, "connected")
    return _back(claimed.return_url, {"status": "connected", "firm_id": claimed.firm_id,
                                      "organisations": str(len(connected.organisations))}
                 | ({"refused": str(len(connected.refused))} if connected.refused else {}))


@api.get("/firms/{firm_id}", response_model=FirmBody, responses=ERRORS, summary="A firm's organisations")
def get_firm(firm_id: str) -> dict[str, Any]:
    return firms.firm(_engine(), firm_id).to_api()


@api.post("/firms/{firm_id}/organisations/{tenant_id}/disconnect", response_model=Organisation, responses=ERRORS,
          summary="Disconnect one of the firm's organisations (its synced data stays)")
def disconnect(firm_id: str, tenant_id: str) -> dict[str, Any]:
    firms.check_firm_id(firm_id)
    engine = _engine()
    firms.owned(engine, firm_id, tenant_id)  # 404 before anything reaches Xero
    hook = _hook(firm_id)

    def delete_at_xero(connection_id: str) -> None:
        try:
            oauth.delete_connection(hook.get_client(), connection_id, session=hook.get_conn())
        except XeroAuthError as error:
            # A dead grant cannot disconnect anything at Xero; IntoAEC stops reading it all the same.
            log.warning("Firm %s: Xero's side of the disconnect was not done (%s); disconnected here.", firm_id,
                        error)
        except XeroUnavailable as error:
            raise firms.ConnectError("xero_unavailable", f"Xero could not be reached to disconnect: {error}",
                                     502) from None
        except IntoAECXeroError as error:
            raise firms.ConnectError("xero_refused", f"Xero refused the disconnect: {error}", 502) from None

    return firms.disconnect(engine, firm_id, tenant_id, delete_at_xero).to_api()


@api.put("/firms/{firm_id}/organisations/{tenant_id}/sync", response_model=Organisation, responses=ERRORS,
         summary="Turn the firm's sync of an organisation on or off")
def set_sync(firm_id: str, tenant_id: str, body: SyncRequest) -> dict[str, Any]:
    firms.check_firm_id(firm_id)
    return firms.set_sync(_engine(), firm_id, tenant_id, body.enabled).to_api()


@api.get("/openapi.json", include_in_schema=False)
def openapi_document() -> dict[str, Any]:
    return document()


def document() -> dict[str, Any]:
    """The OpenAPI document of this API, as served and as committed (docs/connect-api.openapi.json)."""
    schema = api.openapi()
    schema["servers"] = [{"url": f"/xero{VERSION_PREFIX}"}]
    schema.setdefault("components", {})["securitySchemes"] = {
        "intoaecApp": {"type": "http", "scheme": "bearer",
                       "description": "The password of the Airflow connection intoaec_app"}}
    schema["security"] = [{"intoaecApp": []}]
    callback = schema.get("paths", {}).get("/callback", {}).get("get")
    if callback is not None:
        callback["security"] = []
    return schema


def _back(return_url: str, params: dict[str, str]) -> Response:
    return RedirectResponse(firms.with_query(return_url, params), status_code=303,
                            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _refused_page(message: str) -> Response:
    body = (f"<!doctype html><title>Xero sign-in refused</title><h1>Xero sign-in refused</h1>"
            f"<p role=alert>{html.escape(message)}</p>")
    return HTMLResponse(body, status_code=400, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def main(argv: list[str] | None = None) -> int:
    """``python -m intoaec_xero.airflow.connect_api [PATH]``: write the OpenAPI document (to stdout)."""
    import json
    import sys

    args = sys.argv[1:] if argv is None else argv
    text = json.dumps(document(), indent=2, sort_keys=True) + "\n"
    if args:
        with open(args[0], "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
