"""The stand-in's pages: Dashboard → Integrations → Xero card → Configure Xero, and the return from Xero.

Every page renders from templates/; every state change is a POST carrying a double-submit token
(a cookie and a hidden field that must match) and answered with a 303 back to a page, so a reload
never repeats it. A one-shot cookie carries the sentence the next page shows (connected, the
API's error, …). Whatever the connect API refuses is shown in its own words; anything else that
goes wrong is one plain sentence, never a traceback.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from examples.intoaec_app.api import ApiError, ConnectApi

log = logging.getLogger("intoaec_app")

HERE = Path(__file__).parent
CSRF_COOKIE = "intoaec_app_csrf"
FLASH_COOKIE = "intoaec_app_flash"
CONNECTED = "Connected"
RETURN_PATH = "/integrations/xero/return"
TABS = {"account-software": "Account Software", "all": "All Integrations"}


@dataclass(frozen=True)
class Config:
    api_url: str
    firm_id: str
    firm_name: str
    public_url: str  # how the browser reaches this app: the return URL is built on it
    token: str = field(repr=False)

    @property
    def return_url(self) -> str:
        return self.public_url.rstrip("/") + RETURN_PATH


def create_app(config: Config, *, api: ConnectApi | None = None) -> FastAPI:
    api = api or ConnectApi(config.api_url, config.token)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        api.close()

    app = FastAPI(title="IntoAEC (stand-in)", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        response = templates.TemplateResponse(request, name, {"firm_name": config.firm_name,
                                                              "firm_id": config.firm_id, "csrf": token, **context},
                                              status_code=status)
        if request.cookies.get(CSRF_COOKIE) != token:
            response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/")
        return response

    def back_to_xero(kind: str | None = None, text: str | None = None, code: str | None = None) -> Response:
        response = RedirectResponse("/integrations/xero", status_code=303)
        if text:
            flash = json.dumps({"kind": kind, "text": text, "code": code}).encode()
            response.set_cookie(FLASH_COOKIE, base64.urlsafe_b64encode(flash).decode(), max_age=300,
                                httponly=True, samesite="lax", path="/integrations/xero")
        return response

    def form_ok(request: Request, csrf: str) -> bool:
        expected = request.cookies.get(CSRF_COOKIE, "")
        return bool(expected) and hmac.compare_digest(expected.encode(), csrf.encode())

    stale_form = ("error", "This page was open too long or came from elsewhere; nothing was changed. Try again.",
                  "stale_form")

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'none'"
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.error("%s %s failed: %s", request.method, request.url.path, type(error).__name__)
        return page(request, "error.html", 500, active=None,
                    message="Something went wrong on IntoAEC's side; nothing was changed. Try again in a moment.")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/", response_class=HTMLResponse)
    def dashboard(request: Request) -> Response:
        return page(request, "dashboard.html", active="dashboard")

    @app.get("/integrations", response_class=HTMLResponse)
    def integrations(request: Request, tab: str = "all") -> Response:
        tab = tab if tab in TABS else "all"
        return page(request, "integrations.html", active="integrations", tab=tab, tabs=TABS)

    @app.get("/integrations/xero", response_class=HTMLResponse)
    def configure_xero(request: Request) -> Response:
        flash = _read_flash(request.cookies.get(FLASH_COOKIE))
        organisations, load_error = [], None
        try:
            organisations = api.firm(config.firm_id).get("organisations") or []
        except ApiError as error:
            load_error = error
        response = page(request, "configure_xero.html", active="integrations", flash=flash,
                        organisations=organisations, load_error=load_error, connected=CONNECTED)
        if FLASH_COOKIE in request.cookies:
            response.delete_cookie(FLASH_COOKIE, path="/integrations/xero")
        return response

    @app.post("/integrations/xero/configure")
    def configure(request: Request, csrf: str = Form("")) -> Response:
        """Configure and Reconnect: a new connect session, then the browser goes to Xero's sign-in."""
        if not form_ok(request, csrf):
            return back_to_xero(*stale_form)
        try:
            session = api.start_session(config.firm_id, config.return_url)
        except ApiError as error:
            return back_to_xero("error", error.message, error.code)
        authorize_url = str(session.get("authorize_url") or "")
        if not authorize_url.startswith(("https://", "http://")):
            return back_to_xero("error", "The Xero connect API gave no sign-in address; nothing was started.",
                                "unexpected_answer")
        return RedirectResponse(authorize_url, status_code=303)

    @app.get(RETURN_PATH)
    def returned(request: Request) -> Response:
        """Where the connect API sends the browser when the sign-in ends, either way."""
        query = request.query_params
        if query.get("firm_id") and query["firm_id"] != config.firm_id:
            return back_to_xero("error", "That Xero sign-in was for another firm; nothing changed here.",
                                "wrong_firm")
        if query.get("status") == "connected":
            count = _count(query.get("organisations"))
            text = f"Connected to Xero: {count} organisation{'' if count == 1 else 's'}."
            refused = _count(query.get("refused"))
            if refused:
                text += (f" {refused} organisation{' was' if refused == 1 else 's were'} not connected: another "
                         "IntoAEC firm or the data team already connects "
                         f"{'it' if refused == 1 else 'them'}.")
            return back_to_xero("notice", text, "connected")
        if query.get("status") == "error":
            code = query.get("error") or "error"
            return back_to_xero("error", query.get("message") or f"The Xero sign-in did not finish ({code}).", code)
        return back_to_xero("error", "The Xero sign-in came back without saying how it went; press Configure to "
                                     "try again.", "unknown_return")

    @app.post("/integrations/xero/organisations/{tenant_id}/disconnect")
    def disconnect(request: Request, tenant_id: str, csrf: str = Form("")) -> Response:
        if not form_ok(request, csrf):
            return back_to_xero(*stale_form)
        try:
            org = api.disconnect(config.firm_id, tenant_id)
        except ApiError as error:
            return back_to_xero("error", error.message, error.code)
        return back_to_xero("notice", f"{org.get('tenant_name') or 'The organisation'} was disconnected; its data "
                                      "already in IntoAEC stays.", "disconnected")

    @app.post("/integrations/xero/organisations/{tenant_id}/sync")
    def sync(request: Request, tenant_id: str, enabled: str = Form(...), csrf: str = Form("")) -> Response:
        if not form_ok(request, csrf):
            return back_to_xero(*stale_form)
        on = enabled == "true"
        try:
            org = api.set_sync(config.firm_id, tenant_id, on)
        except ApiError as error:
            return back_to_xero("error", error.message, error.code)
        return back_to_xero("notice", f"{org.get('tenant_name') or 'The organisation'}: {org.get('sync')}.",
                            "sync_on" if on else "sync_off")

    return app


def _read_flash(cookie: str | None) -> dict[str, str] | None:
    if not cookie:
        return None
    try:
        flash = json.loads(base64.urlsafe_b64decode(cookie.encode()))
    except (ValueError, TypeError):
        return None
    if not isinstance(flash, dict) or not isinstance(flash.get("text"), str):
        return None
    return {"kind": "error" if flash.get("kind") == "error" else "notice", "text": flash["text"][:1000],
            "code": str(flash.get("code") or "")[:64]}


def _count(value: str | None) -> int:
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0
