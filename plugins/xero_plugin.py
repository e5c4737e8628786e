"""The Xero page in the Airflow UI: connect, see, reconnect and disconnect organisations.

This is IntoAEC's "Configure Xero" flow inside Airflow: Connect to Xero → Xero sign-in →
approve → back here, where every organisation reads Connected / Sync Enabled / Future Access
Saved. A FastAPI app mounted by the plugin under ``/xero`` and linked from the Admin menu.

The link opens the page on its own rather than embedded: Airflow embeds plugin views in a
sandboxed iframe that may not navigate the window, and Xero's sign-in refuses to be framed,
so the sign-in has to start from a top-level page.

Below the organisations the page answers "is this firm's ledger current?" per tenant, from the
pipeline's own records (``intoaec_xero.health``, the same verdicts as ``intoaec-xero status``),
with a chart of the last 30 days drawn here as inline SVG: the page must work where the API
server has no internet, and it adds no front-end build to the project.

Airflow does not protect plugin apps, so every route requires a logged-in Airflow user who
may read (page) or edit (connect, disconnect) the Xero connection. The sign-in in progress
(PKCE verifier, ``state``, who started it) travels in a short-lived cookie encrypted with the
API server's secret key: nothing is kept in memory, so any API-server worker can finish it,
and a callback whose ``state`` does not match that cookie is refused before any code is used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails
from airflow.api_fastapi.core_api.security import GetUserDep
from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin
from cryptography.fernet import Fernet, InvalidToken
from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from intoaec_xero import health as sync_health
from intoaec_xero import oauth
from intoaec_xero.airflow.connections import XERO_CONN_ID
from intoaec_xero.airflow.hooks import XeroHook
from intoaec_xero.errors import IntoAECXeroError, XeroUnavailable
from intoaec_xero.tokens import STATUS_RECONNECT
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

MOUNT = "/xero"
SIGN_IN_COOKIE = "intoaec_xero_sign_in"
SIGN_IN_SECONDS = 900  # Xero's codes live 5 minutes; signing in may take a while longer
NOTICES = {
    "connected": "Connected to Xero.",
    "disconnected": "Organisation disconnected.",
}

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("xero_templates")),
    autoescape=select_autoescape(["html"]),
)

app = FastAPI(title="Xero", docs_url=None, redoc_url=None, openapi_url=None)

SYNC_DAG, BACKFILL_DAG = "xero_sync", "xero_backfill"
HISTORY_DAYS = 30


# -- security ---------------------------------------------------------------------------------

def _secret() -> bytes:
    secret = conf.get("api", "secret_key", fallback="") or conf.get("api_auth", "jwt_secret", fallback="")
    if not secret:
        raise HTTPException(500, "The API server has no [api] secret_key to protect the Xero sign-in with.")
    return secret.encode()


def _fernet() -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"intoaec-xero-sign-in\0" + _secret()).digest()))


def _csrf_token(user) -> str:
    return hmac.new(_secret(), b"intoaec-xero-csrf\0" + user.get_name().encode(), hashlib.sha256).hexdigest()


def _require(user, method: str, conn_id: str, csrf: str | None = None) -> None:
    allowed = get_auth_manager().is_authorized_connection(
        method=method, details=ConnectionDetails(conn_id=conn_id), user=user
    )
    if not allowed:
        raise HTTPException(403, f"You may not {'change' if method != 'GET' else 'see'} the Xero connection "
                                 f"'{conn_id}'.")
    if csrf is not None and not hmac.compare_digest(csrf, _csrf_token(user)):
        raise HTTPException(403, "This form is stale or did not come from the Xero page; reload the page.")


@app.exception_handler(StarletteHTTPException)
async def _refusal(request: Request, error: StarletteHTTPException) -> Response:
    """Refusals as a page (the browser is the client), with the way to log in when that is what is missing."""
    login = None
    if error.status_code == 401:
        login = get_auth_manager().get_url_login(next_url=str(request.url))
    body = _templates.get_template("refused.html").render(status=error.status_code, detail=error.detail, login=login)
    return HTMLResponse(body, status_code=error.status_code, headers=getattr(error, "headers", None))


# -- pages ----------------------------------------------------------------------------------

def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/") or MOUNT


def _page(request: Request, conn_id: str, notice: str | None = None) -> str:
    query = {"conn_id": conn_id} | ({"notice": notice} if notice else {})
    return f"{_root(request)}/?{urlencode(query)}"


def _redirect_uri(request: Request) -> str:
    """What Xero must send the browser back to; it has to be registered on the Xero app as is."""
    configured = os.environ.get("INTOAEC_XERO_REDIRECT_URI")
    if configured:
        return configured
    base_url = conf.get("api", "base_url", fallback="")
    if base_url:
        return f"{base_url.rstrip('/')}{MOUNT}/callback"
    return str(request.url_for("callback"))


def _render(request: Request, user, conn_id: str, *, error: str | None = None, notice: str | None = None,
            status_code: int = 200) -> HTMLResponse:
    root = _root(request)
    context = {"root": root, "airflow_home": (root[: -len(MOUNT)] if root.endswith(MOUNT) else "") + "/",
               "conn_id": conn_id, "csrf": _csrf_token(user), "error": error,
               "notice": NOTICES.get(notice or ""), "user": user.get_name(), "orgs": [], "grant": None,
               "settings": None, "grant_state": "not_connected", "setup_problem": None, "tenants": []}
    try:
        hook = XeroHook(xero_conn_id=conn_id)
        context["settings"] = hook.settings
        store = hook.get_token_store()
        grant = store.info()
        context["grant"] = grant
        context["orgs"] = oauth.organisations(hook.engine, conn_id, grant,
                                              custom_connection=hook.settings.grant_type == "client_credentials")
        if grant is not None:
            context["grant_state"] = "reconnect" if grant.status == STATUS_RECONNECT else "connected"
        context.update(_health_context(hook.engine, context["orgs"], context["airflow_home"], root))
    except IntoAECXeroError as problem:
        context["setup_problem"] = str(problem)
    body = _templates.get_template("xero.html").render(**context)
    return HTMLResponse(body, status_code=status_code, headers={"Cache-Control": "no-store"})


@app.get("/", response_class=HTMLResponse)
def page(request: Request, user: GetUserDep, conn_id: str = XERO_CONN_ID, notice: str | None = None):
    _require(user, "GET", conn_id)
    return _render(request, user, conn_id, notice=notice)


@app.post("/connect")
def connect(request: Request, user: GetUserDep, conn_id: Annotated[str, Form()] = XERO_CONN_ID,
            csrf: Annotated[str, Form()] = ""):
    """Start the sign-in: PKCE + state, remembered in an encrypted cookie, then off to Xero."""
    _require(user, "PUT", conn_id, csrf)
    hook = XeroHook(xero_conn_id=conn_id)
    try:
        settings = hook.settings
        if settings.grant_type == "client_credentials":
            store = hook.get_token_store()
            tokens = oauth.client_credentials_token(settings, hook.get_conn())
            oauth.complete_sign_in(settings, store, tokens, hook.get_client())
            return RedirectResponse(_page(request, conn_id, "connected"), status_code=303)
        auth = oauth.start_authorization(settings, _redirect_uri(request))
    except IntoAECXeroError as problem:
        return _render(request, user, conn_id, error=str(problem), status_code=_status_for(problem))
    pending = {"conn_id": conn_id, "user": user.get_name(), "request": auth.to_dict()}
    response = RedirectResponse(auth.url, status_code=303)
    response.set_cookie(
        SIGN_IN_COOKIE,
        _fernet().encrypt(json.dumps(pending).encode()).decode(),
        max_age=SIGN_IN_SECONDS,
        path=MOUNT,
        httponly=True,
        samesite="lax",  # sent on Xero's top-level redirect back, not on cross-site posts
        secure=request.url.scheme == "https",
    )
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
        response = _render(request, user, conn_id, error=str(problem), status_code=_status_for(problem))
        response.delete_cookie(SIGN_IN_COOKIE, path=MOUNT)
        return response
    log.info("Xero connection '%s' connected by %s: %d organisation(s).", conn_id, user.get_name(), len(connections))
    response = RedirectResponse(_page(request, conn_id, "connected"), status_code=303)
    response.delete_cookie(SIGN_IN_COOKIE, path=MOUNT)
    return response


@app.post("/organisations/{tenant_id}/disconnect")
def disconnect(request: Request, tenant_id: str, user: GetUserDep,
               conn_id: Annotated[str, Form()] = XERO_CONN_ID, csrf: Annotated[str, Form()] = ""):
    """Xero's DELETE /connections/{id} for one organisation; the grant stays for the others."""
    _require(user, "PUT", conn_id, csrf)
    hook = XeroHook(xero_conn_id=conn_id)
    org = next((o for o in oauth.organisations(hook.engine, conn_id, None) if o.tenant_id == tenant_id), None)
    if org is None:
        raise HTTPException(404, "No such organisation on this Xero connection.")
    try:
        if org.connection_id:
            oauth.delete_connection(hook.get_client(), org.connection_id, session=hook.get_conn())
        oauth.mark_organisation_disconnected(hook.engine, tenant_id)
    except IntoAECXeroError as problem:
        return _render(request, user, conn_id, error=str(problem), status_code=_status_for(problem))
    log.info("Xero organisation %s disconnected from '%s' by %s.", org.name, conn_id, user.get_name())
    return RedirectResponse(_page(request, conn_id, "disconnected"), status_code=303)


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


# -- sync health ------------------------------------------------------------------------------

# Worst first, so a tenant that needs someone is at the top of the page, not the bottom.
VERDICTS = {
    sync_health.RECONNECT: ("bad", "Reconnect needed"),
    sync_health.FAILING: ("bad", "Failing"),
    sync_health.STALE: ("warn", "Stale"),
    sync_health.NEVER_SYNCED: ("off", "Never synced"),
    sync_health.HEALTHY: ("ok", "Healthy"),
    sync_health.DISCONNECTED: ("off", "Disconnected"),
}
ATTENTION = {sync_health.RECONNECT, sync_health.FAILING, sync_health.STALE}
QUALITY = {"passed": ("ok", "Passed"), "warn": ("warn", "Warnings"), "failed": ("bad", "Failed"),
           "skipped": ("off", "Skipped")}
RUN_STATUS = {"success": "ok", "failed": "bad", "rejected": "bad", "quarantined": "bad", "partial": "warn",
              "unavailable": "off", "running": "info", "extracting": "info", "extracted": "info", "skipped": "off"}


@dataclass
class TenantView:
    """One tenant's card: its health verdict plus what the page adds (links, chart, backfill)."""

    health: sync_health.TenantHealth
    org: oauth.Organisation | None
    runs: list[sync_health.RunSummary]
    chart: Markup
    chart_unit: str
    backfill: dict[str, Any] | None
    links: dict[str, str] = field(default_factory=dict)

    @property
    def tone(self) -> str:
        return VERDICTS.get(self.health.verdict, ("off", ""))[0]

    @property
    def label(self) -> str:
        return VERDICTS.get(self.health.verdict, ("off", self.health.verdict))[1]

    @property
    def attention(self) -> bool:
        return self.health.verdict in ATTENTION

    @property
    def sync_enabled(self) -> bool:
        # The organisations table's reading (enabled only while Connected), so the two never disagree.
        return self.org.sync_enabled if self.org else self.health.sync_enabled

    @property
    def last_run(self) -> sync_health.RunSummary | None:
        return self.runs[-1] if self.runs else None


def _health_context(engine, orgs: list[oauth.Organisation], airflow_home: str, root: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    threshold = sync_health.stale_after()
    by_id = {org.tenant_id: org for org in orgs}
    healths = [h for h in sync_health.tenant_health(engine, now=now, threshold=threshold) if h.tenant_id in by_id]
    history = sync_health.run_history(engine, days=HISTORY_DAYS, now=now)
    run_ids = {r.run_id for h in healths for r in history.get(h.tenant_id, [])}
    run_ids |= {s.last_run_id for h in healths for s in h.streams if s.last_run_id}
    dags = _airflow_runs(run_ids)
    links = {run_id: f"{airflow_home}dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
             for run_id, dag_id in dags.items()}
    order = list(VERDICTS)
    tenants = []
    for h in sorted(healths, key=lambda h: (order.index(h.verdict) if h.verdict in order else 0,
                                            h.tenant_name.lower())):
        runs = history.get(h.tenant_id, [])
        chart, unit = _chart(runs, links, now - timedelta(days=HISTORY_DAYS), now)
        tenants.append(TenantView(
            health=h, org=by_id.get(h.tenant_id), runs=runs, links=links, chart=chart, chart_unit=unit,
            backfill=h.backfill))
    from intoaec_xero.quality import docs

    return {
        "tenants": tenants,
        "threshold_minutes": threshold.total_seconds() / 60,
        "history_days": HISTORY_DAYS,
        "data_docs": f"{root}/data-docs/" if docs.latest_index() else None,
        "dag_links": {dag_id: f"{airflow_home}dags/{dag_id}/runs" for dag_id in (SYNC_DAG, BACKFILL_DAG)},
        "checked_at": now,
    }


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

    wanted, found = sorted(run_ids), {}
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


# -- the 30-day chart -------------------------------------------------------------------------

CHART_W, CHART_H = 720, 156
PAD_L, PAD_R, PAD_T, PAD_B = 44, 10, 10, 28
MAX_BARS = 180  # an hourly schedule makes 720 runs a month: more bars than pixels, and a heavy page
ROWS_COLOUR, CALLS_COLOUR = "#017cee", "#805ad5"
BAR_COLOUR = {"failed": "#c53030", "partial": "#dd6b20"}
WORSE = {"failed": 2, "partial": 1}


@dataclass
class Bar:
    at: str | None
    rows: int
    calls: int
    status: str
    title: str
    run_id: str


def _bars(runs: list[sync_health.RunSummary], since: datetime, now: datetime) -> tuple[list[Bar], str]:
    """One bar per run while they fit; beyond MAX_BARS, one per time slot summing its runs.

    A slot's bar links to its worst run (the latest of them), the one someone would open.
    """
    if len(runs) <= MAX_BARS:
        return [Bar(r.started_at, r.rows_loaded, r.api_calls, r.status, _run_title(r), r.run_id) for r in runs], "run"
    slot = (now - since) / MAX_BARS
    slots: dict[int, list[sync_health.RunSummary]] = {}
    for run in runs:
        slots.setdefault(int((datetime.fromisoformat(run.started_at) - since) / slot), []).append(run)
    bars = []
    for group in slots.values():
        worst = max(reversed(group), key=lambda r: WORSE.get(r.status, 0))
        rows, calls = sum(r.rows_loaded for r in group), sum(r.api_calls for r in group)
        title = (f"{len(group)} runs, {_when(group[0].started_at)} – {_when(group[-1].started_at)}\n"
                 f"{rows:,} rows loaded · {calls:,} API calls"
                 + (f"\n{sum(WORSE.get(r.status, 0) > 0 for r in group)} with failures, e.g. {worst.run_id}"
                    if WORSE.get(worst.status) else ""))
        bars.append(Bar(group[-1].started_at, rows, calls, worst.status, title, worst.run_id))
    hours = slot.total_seconds() / 3600
    return bars, f"{hours:g}-hour slot" if hours >= 1 else f"{slot.total_seconds() / 60:g}-minute slot"


def _run_title(run: sync_health.RunSummary) -> str:
    return (f"{run.run_id}\n{_when(run.started_at)} · {run.status}\n{run.rows_loaded:,} rows loaded · "
            f"{run.api_calls:,} API calls" + (f" · {run.rate_limited} × 429" if run.rate_limited else "")
            + (f" · quota left {run.quota_day_remaining:,}" if run.quota_day_remaining is not None else ""))


def _chart(runs: list[sync_health.RunSummary], links: dict[str, str], since: datetime,
           now: datetime) -> tuple[Markup, str]:
    """Rows loaded (bars) and API calls (line) per run on one log axis; returns the SVG and its unit.

    Log, because a first full sync loads thousands of rows and an hourly incremental a handful:
    on a linear axis every run after the first would be a flat line. Each bar links to its run.
    """
    bars, unit = _bars(runs, since, now)
    plot_w, plot_h = CHART_W - PAD_L - PAD_R, CHART_H - PAD_T - PAD_B
    span = (now - since).total_seconds()
    top = max([1] + [b.rows for b in bars] + [b.calls for b in bars])
    decades = max(1, math.ceil(math.log10(top + 1)))

    def x(moment: str | None) -> float:
        seconds = (datetime.fromisoformat(moment) - since).total_seconds() if moment else span
        return PAD_L + plot_w * min(1.0, max(0.0, seconds / span))

    def y(value: int) -> float:
        return PAD_T + plot_h * (1 - math.log10(value + 1) / decades)

    parts = [f'<svg class="chart" viewBox="0 0 {CHART_W} {CHART_H}" width="{CHART_W}" height="{CHART_H}" '
             f'role="img" aria-label="Rows loaded and API calls per {unit}, last {HISTORY_DAYS} days" '
             f'xmlns="http://www.w3.org/2000/svg">']
    for power in range(decades + 1):
        level = y(10 ** power - 1)
        parts.append(f'<line x1="{PAD_L}" x2="{CHART_W - PAD_R}" y1="{level:.1f}" y2="{level:.1f}" class="grid"/>')
        parts.append(f'<text x="{PAD_L - 6}" y="{level + 3:.1f}" text-anchor="end" class="tick">'
                     f'{_short(10 ** power if power else 0)}</text>')
    for days_back in range(0, HISTORY_DAYS + 1, 7):
        moment = now - timedelta(days=days_back)
        tick = x(moment.isoformat())
        anchor = "end" if days_back == 0 else "middle"
        parts.append(f'<line x1="{tick:.1f}" x2="{tick:.1f}" y1="{PAD_T}" y2="{CHART_H - PAD_B}" class="grid"/>')
        parts.append(f'<text x="{tick:.1f}" y="{CHART_H - 4}" text-anchor="{anchor}" class="tick">'
                     f'{"now" if days_back == 0 else moment.strftime("%b %-d")}</text>')
    if not bars:
        parts.append(f'<text x="{PAD_L + plot_w / 2}" y="{PAD_T + plot_h / 2}" text-anchor="middle" class="empty">'
                     f'No runs in the last {HISTORY_DAYS} days</text>')
    width = min(12.0, max(1.5, plot_w / max(len(bars), 1) * 0.6))
    base = y(0)
    for bar in bars:
        height = max(1.5, base - y(bar.rows))
        rect = (f'<rect class="run {bar.status}" x="{x(bar.at) - width / 2:.1f}" y="{base - height:.1f}" '
                f'width="{width:.1f}" height="{height:.1f}" fill="{BAR_COLOUR.get(bar.status, ROWS_COLOUR)}">'
                f'<title>{escape(bar.title)}</title></rect>')
        link = links.get(bar.run_id)
        parts.append(f'<a href="{escape(link)}" target="_top">{rect}</a>' if link else rect)
    if bars:
        points = " ".join(f"{x(b.at):.1f},{y(b.calls):.1f}" for b in bars)
        parts.append(f'<polyline class="calls" points="{points}" fill="none" stroke="{CALLS_COLOUR}" '
                     f'stroke-width="1.5"/>')
        if len(bars) <= 60:  # dots only while they can be told apart
            parts.extend(f'<circle cx="{x(b.at):.1f}" cy="{y(b.calls):.1f}" r="2.5" fill="{CALLS_COLOUR}"/>'
                         for b in bars)
    # Failures again as marks under the axis, on top of everything: a failed run minutes after a
    # good one would otherwise hide behind its bar.
    for bar in bars:
        if bar.status in BAR_COLOUR:
            left = x(bar.at)
            parts.append(f'<path class="failure {bar.status}" d="M{left - 4:.1f},{base + 9:.1f} L{left + 4:.1f},'
                         f'{base + 9:.1f} L{left:.1f},{base + 2:.1f} Z" fill="{BAR_COLOUR[bar.status]}">'
                         f'<title>{escape(bar.title)}</title></path>')
    parts.append("</svg>")
    return Markup("".join(parts)), unit


def _short(value: int) -> str:
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return str(value)


def _when(moment: str | datetime | None) -> str:
    if not moment:
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _age(minutes: float | None) -> str:
    if minutes is None:
        return "-"
    if minutes < 1:
        return "just now"
    if minutes < 120:
        return f"{minutes:.0f} min ago"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h ago"
    return f"{minutes / 1440:.1f} days ago"


_templates.filters["when"] = _when
_templates.filters["age"] = _age
_templates.filters["count"] = lambda value: "-" if value is None else f"{value:,}"
_templates.globals.update(RUN_STATUS=RUN_STATUS, QUALITY=QUALITY)


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
    response.delete_cookie(SIGN_IN_COOKIE, path=MOUNT)
    return response


def _status_for(problem: IntoAECXeroError) -> int:
    return 502 if isinstance(problem, XeroUnavailable) else 400


class XeroPlugin(AirflowPlugin):
    name = "intoaec_xero"
    fastapi_apps = [{"app": app, "url_prefix": MOUNT, "name": "Xero"}]
    external_views = [{"name": "Xero", "href": "xero/", "destination": "nav", "category": "admin"}]
