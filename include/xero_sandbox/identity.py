"""Xero's identity service: sign-in, consent, tokens, revocation and connections.

The flow is the real one, not a shortcut: ``/identity/connect/authorize`` validates the client,
redirect URI and scopes (errors are an HTML page, never a redirect, as Xero does), shows an
HTML sign-in form and then a consent page listing the scopes and organisations; approval
redirects to ``redirect_uri`` with a single-use code (5 minutes, PKCE S256 or plain verified at
the token endpoint). Tokens follow Xero's lifetimes on the sandbox clock: access tokens 30
minutes; refresh tokens rotate on every use, the previous one stays usable for a 30-minute grace
window, and a refresh token unused for 60 days dies. Anything else answers
``400 {"error": "invalid_grant"}`` and is counted in ``/_sandbox/stats``.

Users: the demo user sees every organisation; each organisation also has its own firm user
(``firm{i+1}@intoaec.test``) who sees only it, so an app can connect many firms, each through
its own sign-in and grant. ``IdentityStore.expire_grants`` lapses one user's grants on demand.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from importlib import resources
from string import Template
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from . import ids
from .clock import SandboxClock, ms_to_iso

ACCESS_TTL_S = 1800
REFRESH_GRACE_S = 1800
REFRESH_IDLE_S = 60 * 86400
CODE_TTL_S = 300

#: Scopes the sandbox knows: the spec's broad ones and the 2026 granular ones.
KNOWN_SCOPES = {
    "openid", "profile", "email", "offline_access",
    "accounting.transactions", "accounting.transactions.read",
    "accounting.invoices", "accounting.invoices.read",
    "accounting.payments", "accounting.payments.read",
    "accounting.banktransactions", "accounting.banktransactions.read",
    "accounting.manualjournals", "accounting.manualjournals.read",
    "accounting.contacts", "accounting.contacts.read",
    "accounting.settings", "accounting.settings.read",
    "accounting.journals.read",
    "accounting.reports.read", "accounting.reports.trialbalance.read",
    "accounting.reports.profitandloss.read", "accounting.reports.balancesheet.read",
    "accounting.reports.tenninetynine.read", "accounting.budgets.read",
    "accounting.attachments", "accounting.attachments.read",
}

SCOPE_TEXT = {
    "openid": "Your Xero user identifier",
    "profile": "Your name",
    "email": "Your email address",
    "offline_access": "Stay connected when you're not using the app",
    "accounting.journals.read": "View your general ledger (journals)",
    "accounting.settings.read": "View your organisation settings and chart of accounts",
    "accounting.contacts.read": "View your contacts",
    "accounting.transactions.read": "View your business transactions",
    "accounting.invoices.read": "View your invoices, credit notes, purchase orders, quotes and billable expenses",
    "accounting.payments.read": "View your payments, prepayments and overpayments",
    "accounting.reports.read": "View your reports",
    "accounting.reports.trialbalance.read": "View your trial balance report",
    "accounting.reports.profitandloss.read": "View your profit and loss report",
    "accounting.reports.balancesheet.read": "View your balance sheet report",
    "accounting.reports.tenninetynine.read": "View your 1099 report",
    "accounting.banktransactions.read": "View your bank transactions (spend and receive money)",
    "accounting.manualjournals.read": "View your manual journals",
    "accounting.budgets.read": "View your budgets",
    "accounting.attachments.read": "View your attachments",
    "accounting.transactions": "View and manage your business transactions",
    "accounting.invoices": "View and manage your invoices, credit notes, purchase orders and quotes",
    "accounting.payments": "View and manage your payments, prepayments and overpayments",
    "accounting.banktransactions": "View and manage your bank transactions",
    "accounting.manualjournals": "View and manage your manual journals",
    "accounting.contacts": "View and manage your contacts",
    "accounting.settings": "View and manage your organisation settings and chart of accounts",
    "accounting.attachments": "View and manage your attachments",
}


@dataclass
class OAuthClient:
    client_id: str
    secret: str
    name: str
    allow_client_credentials: bool = True
    # Since March 2026 Xero serves Journals only to apps on its Advanced partner tier; any other
    # app is refused them for every organisation it is connected to.
    allow_journals: bool = True

    def redirect_ok(self, uri: str) -> bool:
        """Registered redirect URIs: http(s) on 127.0.0.1 or localhost, any port and path."""
        try:
            parts = urlsplit(uri)
            port = parts.port  # raises on a malformed port
        except ValueError:
            return False
        del port
        return parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost") \
            and not parts.fragment


@dataclass
class User:
    user_id: str
    email: str
    password: str
    given_name: str
    family_name: str
    # Tenant numbers the user may connect; None: every organisation (the demo user).
    tenant_nos: frozenset[int] | None = None


@dataclass
class Grant:
    grant_id: str
    client_id: str
    user_id: str
    scopes: list[str]
    auth_event_id: str
    created_ms: int
    revoked: bool = False
    # Lapsed as if unused for 60 days: refreshes fail, connections stay.
    expired: bool = False


@dataclass
class RefreshToken:
    token: str
    grant_id: str
    issued_ms: int
    rotated_ms: int | None = None
    revoked: bool = False


@dataclass
class AccessToken:
    token: str
    client_id: str
    scopes: list[str]
    exp_ms: int
    user_id: str | None  # None for client_credentials
    grant_id: str | None
    tenant_nos: list[int] | None = None  # fixed tenants (client_credentials)
    revoked: bool = False


@dataclass
class Connection:
    id: str
    tenant_no: int
    client_id: str
    user_id: str
    auth_event_id: str
    created_ms: int
    updated_ms: int


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    scopes: list[str]
    user_id: str
    grant_id: str
    exp_ms: int
    challenge: str | None
    method: str | None
    nonce: str | None
    used: bool = False


@dataclass
class AuthRequest:
    """One pass through sign-in and consent, referenced by the hidden ``tx`` form field."""
    tx: str
    client_id: str
    redirect_uri: str
    scopes: list[str]
    state: str | None
    challenge: str | None
    method: str | None
    nonce: str | None
    created_ms: int
    user_id: str | None = None


@dataclass
class IdentityStore:
    clock: SandboxClock
    tenants: list  # Books, in /connections order
    clients: dict[str, OAuthClient] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    requests: dict[str, AuthRequest] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)
    connections: dict[str, Connection] = field(default_factory=dict)
    token_refreshes: int = 0
    invalid_grant: int = 0
    tokens_issued: int = 0
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    issuer: str = "https://identity.xero.com"

    # ------------------------------------------------------------------ tokens
    def _jwt(self, payload: dict) -> str:
        def b64(d: bytes) -> str:
            return base64.urlsafe_b64encode(d).rstrip(b"=").decode()
        head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "sandbox"}).encode())
        body = b64(json.dumps(payload, separators=(",", ":")).encode())
        sig = b64(hmac.new(self.secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
        return f"{head}.{body}.{sig}"

    def issue(self, client_id: str, scopes: list[str], user_id: str | None, grant: Grant | None,
              tenant_nos: list[int] | None = None, nonce: str | None = None, with_refresh: bool = True) -> dict:
        now = self.clock.now_ms()
        exp = now + ACCESS_TTL_S * 1000
        payload = {
            "nbf": now // 1000, "exp": exp // 1000, "iss": self.issuer, "aud": f"{self.issuer}/resources",
            "client_id": client_id, "jti": secrets.token_hex(16), "iat": now // 1000, "scope": scopes,
        }
        if user_id:
            payload.update({"sub": user_id, "auth_time": now // 1000, "xero_userid": user_id,
                            "global_session_id": secrets.token_hex(16)})
        if grant:
            payload["authentication_event_id"] = grant.auth_event_id
        access = self._jwt(payload)
        self.access_tokens[access] = AccessToken(access, client_id, scopes, exp, user_id,
                                                 grant.grant_id if grant else None, tenant_nos)
        self.tokens_issued += 1
        body = {"access_token": access, "expires_in": ACCESS_TTL_S, "token_type": "Bearer"}
        if grant and with_refresh and "offline_access" in scopes:
            rt = secrets.token_hex(32)
            self.refresh_tokens[rt] = RefreshToken(rt, grant.grant_id, now)
            body["refresh_token"] = rt
        body["scope"] = " ".join(scopes)
        if user_id and "openid" in scopes:
            user = self.users[user_id]
            idp = {"nbf": now // 1000, "exp": (now + 300_000) // 1000, "iss": self.issuer, "aud": client_id,
                   "iat": now // 1000, "at_hash": secrets.token_urlsafe(16), "sid": secrets.token_hex(16),
                   "sub": user_id, "auth_time": now // 1000, "xero_userid": user_id,
                   "global_session_id": payload["global_session_id"], "preferred_username": user.email,
                   "email": user.email, "given_name": user.given_name, "family_name": user.family_name}
            if nonce:
                idp["nonce"] = nonce
            body["id_token"] = self._jwt(idp)
        return body

    def check_access(self, token: str | None):
        """Return (AccessToken, None) or (None, problem detail) for an API call."""
        now = self.clock.now_ms()
        at = self.access_tokens.get(token or "")
        if at is None or at.revoked:
            return None, f"TokenExpired: token expired at {_xero_time(now)}"
        if now >= at.exp_ms:
            return None, f"TokenExpired: token expired at {_xero_time(at.exp_ms)}"
        return at, None

    def user_by_email(self, email: str) -> User | None:
        email = email.strip().lower()
        return next((u for u in self.users.values() if u.email == email), None)

    def user_tenants(self, user: User) -> list:
        """The organisations this user may connect, in /connections order."""
        if user.tenant_nos is None:
            return list(self.tenants)
        return [self.tenants[no] for no in sorted(user.tenant_nos)]

    def tenant_nos_for(self, at: AccessToken) -> list[int]:
        if at.tenant_nos is not None:
            return at.tenant_nos
        return sorted(c.tenant_no for c in self.connections.values()
                      if c.client_id == at.client_id and c.user_id == at.user_id)

    def refresh(self, client_id: str, token: str) -> tuple[int, dict]:
        now = self.clock.now_ms()
        rt = self.refresh_tokens.get(token)
        if rt is None or rt.revoked:
            return self._invalid_grant()
        grant = self.grants.get(rt.grant_id)
        if grant is None or grant.revoked or grant.expired or grant.client_id != client_id:
            return self._invalid_grant()
        if rt.rotated_ms is None:
            if now - rt.issued_ms > REFRESH_IDLE_S * 1000:
                return self._invalid_grant()
            rt.rotated_ms = now
        elif now - rt.rotated_ms > REFRESH_GRACE_S * 1000:
            return self._invalid_grant()
        self.token_refreshes += 1
        return 200, self.issue(grant.client_id, grant.scopes, grant.user_id, grant)

    def _invalid_grant(self) -> tuple[int, dict]:
        self.invalid_grant += 1
        return 400, {"error": "invalid_grant"}

    def revoke(self, token: str) -> None:
        rt = self.refresh_tokens.get(token)
        grant = None
        if rt is not None:
            grant = self.grants.get(rt.grant_id)
        else:
            at = self.access_tokens.get(token)
            if at is not None and at.grant_id:
                grant = self.grants.get(at.grant_id)
        if grant is None:
            return
        grant.revoked = True
        for r in self.refresh_tokens.values():
            if r.grant_id == grant.grant_id:
                r.revoked = True
        for a in self.access_tokens.values():
            if a.user_id == grant.user_id and a.client_id == grant.client_id:
                a.revoked = True
        for cid in [c.id for c in self.connections.values()
                    if c.user_id == grant.user_id and c.client_id == grant.client_id]:
            del self.connections[cid]

    def expire_grants(self, user_id: str, client_id: str | None = None) -> int:
        """Lapse the user's live grants (of one app, or all) as 60 days unused would at Xero.

        Their refresh tokens answer ``invalid_grant`` and their access tokens read as expired,
        but the connections stay: the user must sign in again, nothing is disconnected.
        Returns how many grants lapsed.
        """
        now = self.clock.now_ms()
        lapsed = set()
        for g in self.grants.values():
            if g.user_id == user_id and not (g.revoked or g.expired) \
                    and (client_id is None or g.client_id == client_id):
                g.expired = True
                lapsed.add(g.grant_id)
        for at in self.access_tokens.values():
            if at.grant_id in lapsed:
                at.exp_ms = min(at.exp_ms, now)
        return len(lapsed)

    def connect(self, client_id: str, user_id: str, tenant_nos: list[int], auth_event_id: str) -> None:
        now = self.clock.now_ms()
        for no in tenant_nos:
            existing = next((c for c in self.connections.values() if c.client_id == client_id
                             and c.user_id == user_id and c.tenant_no == no), None)
            if existing:
                existing.updated_ms = now
                existing.auth_event_id = auth_event_id
            else:
                cid = str(uuid.uuid4())
                self.connections[cid] = Connection(cid, no, client_id, user_id, auth_event_id, now, now)

    def connection_json(self, c: Connection) -> dict:
        b = self.tenants[c.tenant_no]
        return {"id": c.id, "authEventId": c.auth_event_id, "tenantId": b.tenant_id, "tenantType": "ORGANISATION",
                "tenantName": b.name, "createdDateUtc": _conn_time(c.created_ms),
                "updatedDateUtc": _conn_time(c.updated_ms)}


def _xero_time(ms: int) -> str:
    iso = ms_to_iso(ms)  # 2026-11-25T16:25:48.123Z
    d, t = iso[:10], iso[11:19]
    y, m, dd = d.split("-")
    return f"{m}/{dd}/{y} {t}"


def _conn_time(ms: int) -> str:
    # Xero sends 7 fractional digits; the spec's format is date-time, which needs an offset.
    iso = ms_to_iso(ms)
    base = iso[:19]
    frac = (iso[20:23] if len(iso) > 20 else "000") + "0000"
    return f"{base}.{frac}Z"


DEMO_CLIENT_ID, DEMO_CLIENT_SECRET = "sandbox-client", "sandbox-secret"
CORE_CLIENT_ID, CORE_CLIENT_SECRET = "sandbox-client-core", "sandbox-secret-core"
FIRM_PASSWORD = "sandbox"


def firm_email(index: int) -> str:
    """The firm user of the organisation at 0-based ``index`` (``Books.no``)."""
    return f"firm{index + 1}@intoaec.test"


def default_store(clock, tenants, app_without_journals: bool = False) -> IdentityStore:
    """Two demo apps of one developer (same user, same organisations): the main one, refused
    Journals when ``app_without_journals``, and a Core-tier one that never gets them.

    Users: the demo user reaches every organisation; each organisation also has a firm user who
    reaches only it, so a test can connect many firms, each by its own sign-in."""
    store = IdentityStore(clock=clock, tenants=tenants)
    store.clients[DEMO_CLIENT_ID] = OAuthClient(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, "IntoAEC (sandbox)",
                                                allow_journals=not app_without_journals)
    store.clients[CORE_CLIENT_ID] = OAuthClient(CORE_CLIENT_ID, CORE_CLIENT_SECRET, "IntoAEC (sandbox, Core tier)",
                                                allow_journals=False)
    uid = "0f2c8b3e-6a5d-4e11-9c1b-5d7a3f0e2b41"
    store.users[uid] = User(uid, "demo@intoaec.test", "sandbox", "Demo", "User")
    for b in tenants:
        fid = b.guid(ids.USER, 0)
        store.users[fid] = User(fid, firm_email(b.no), FIRM_PASSWORD, f"Firm {b.no + 1}", "Accountant",
                                frozenset({b.no}))
    return store


# ---------------------------------------------------------------------------- pages

def _template(name: str) -> Template:
    return Template(resources.files("xero_sandbox").joinpath("templates", name).read_text(encoding="utf-8"))


def _error_page(title: str, detail: str, status: int = 400) -> HTMLResponse:
    body = _template("error.html").substitute(title=html.escape(title), detail=html.escape(detail))
    return HTMLResponse(body, status_code=status)


def _store(request: Request) -> IdentityStore:
    return request.app.state.sandbox.identity


def _client_auth(request: Request, form) -> tuple[str | None, str | None]:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            raw = base64.b64decode(auth[6:].strip()).decode()
            cid, _, sec = raw.partition(":")
            return cid, sec
        except (ValueError, UnicodeDecodeError):
            return None, None
    return form.get("client_id"), form.get("client_secret")


def _token_error(status: int, error: str, description: str | None = None) -> JSONResponse:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


router = APIRouter()


@router.get("/identity/connect/authorize", response_class=HTMLResponse)
async def authorize(request: Request):
    store = _store(request)
    q = request.query_params
    client = store.clients.get(q.get("client_id", ""))
    if client is None:
        return _error_page("unauthorized_client", "Unknown client or client not enabled")
    redirect_uri = q.get("redirect_uri", "")
    if not client.redirect_ok(redirect_uri):
        return _error_page("invalid_request", "Invalid redirect_uri")
    if q.get("response_type") != "code":
        return _error_page("unsupported_response_type", "response_type must be 'code'")
    scopes = [s for s in re.split(r"[\s+]+", q.get("scope", "")) if s]
    bad = [s for s in scopes if s not in KNOWN_SCOPES]
    if not scopes or bad:
        return _error_page("invalid_scope", f"Invalid scope for client: {' '.join(bad) or '(none)'}")
    method = q.get("code_challenge_method")
    challenge = q.get("code_challenge")
    if challenge and (method or "plain") not in ("S256", "plain"):
        return _error_page("invalid_request", "code_challenge_method must be S256 or plain")
    tx = secrets.token_urlsafe(18)
    store.requests[tx] = AuthRequest(tx, client.client_id, redirect_uri, scopes, q.get("state"), challenge,
                                     (method or "plain") if challenge else None, q.get("nonce"),
                                     store.clock.now_ms())
    session_user = store.sessions.get(request.cookies.get("xero_sandbox_session", ""))
    if session_user:
        store.requests[tx].user_id = session_user
        return RedirectResponse(f"/identity/connect/consent?tx={tx}", status_code=302)
    return HTMLResponse(_template("login.html").substitute(tx=tx, error="", email=""))


@router.post("/identity/connect/login", response_class=HTMLResponse)
async def login(request: Request):
    store = _store(request)
    form = await request.form()
    req = store.requests.get(str(form.get("tx", "")))
    if req is None:
        return _error_page("invalid_request", "This sign-in link has expired. Start again from the app.")
    email = str(form.get("email", "")).strip().lower()
    password = str(form.get("password", ""))
    user = store.user_by_email(email)
    if user is None or user.password != password:
        page = _template("login.html").substitute(
            tx=req.tx, email=html.escape(email),
            error='<p class="error" role="alert">Your email or password is incorrect.</p>')
        return HTMLResponse(page, status_code=200)
    req.user_id = user.user_id
    sid = secrets.token_urlsafe(24)
    store.sessions[sid] = user.user_id
    resp = RedirectResponse(f"/identity/connect/consent?tx={req.tx}", status_code=302)
    resp.set_cookie("xero_sandbox_session", sid, httponly=True, samesite="lax")
    return resp


@router.get("/identity/connect/consent", response_class=HTMLResponse)
async def consent_page(request: Request):
    store = _store(request)
    req = store.requests.get(request.query_params.get("tx", ""))
    if req is None or req.user_id is None:
        return _error_page("invalid_request", "This consent link has expired. Start again from the app.")
    client = store.clients[req.client_id]
    user = store.users[req.user_id]
    scope_items = "\n".join(
        f'<li><code>{html.escape(s)}</code> — {html.escape(SCOPE_TEXT.get(s, s))}</li>' for s in req.scopes)
    org_items = "\n".join(
        f'<li><label><input type="checkbox" name="tenant" value="{b.tenant_id}" checked> '
        f'{html.escape(b.name)}</label></li>' for b in store.user_tenants(user))
    page = _template("consent.html").substitute(
        tx=req.tx, app=html.escape(client.name), scopes=scope_items, orgs=org_items,
        user=html.escape(user.email))
    return HTMLResponse(page)


@router.post("/identity/connect/consent")
async def consent_submit(request: Request):
    store = _store(request)
    form = await request.form()
    req = store.requests.pop(str(form.get("tx", "")), None)
    if req is None or req.user_id is None:
        return _error_page("invalid_request", "This consent link has expired. Start again from the app.")
    extra = {"state": req.state} if req.state is not None else {}
    if form.get("decision") != "allow":
        return RedirectResponse(_with_query(req.redirect_uri, {"error": "access_denied", **extra}), status_code=302)
    chosen = set(form.getlist("tenant"))
    # Only organisations this user may reach; any other id posted is ignored.
    nos = [b.no for b in store.user_tenants(store.users[req.user_id]) if b.tenant_id in chosen]
    if not nos:
        return _error_page("invalid_request", "Choose at least one organisation to connect.")
    now = store.clock.now_ms()
    auth_event = str(uuid.uuid4())
    grant = Grant(secrets.token_hex(12), req.client_id, req.user_id, req.scopes, auth_event, now)
    store.grants[grant.grant_id] = grant
    store.connect(req.client_id, req.user_id, nos, auth_event)
    code = secrets.token_urlsafe(32)
    store.codes[code] = AuthCode(code, req.client_id, req.redirect_uri, req.scopes, req.user_id, grant.grant_id,
                                 now + CODE_TTL_S * 1000, req.challenge, req.method, req.nonce)
    return RedirectResponse(_with_query(req.redirect_uri, {"code": code, "scope": " ".join(req.scopes), **extra}),
                            status_code=302)


def _with_query(uri: str, params: dict) -> str:
    sep = "&" if urlsplit(uri).query else "?"
    return uri + sep + urlencode(params)


@router.post("/connect/token")
async def token(request: Request):
    store = _store(request)
    form = await request.form()
    cid, secret = _client_auth(request, form)
    client = store.clients.get(cid or "")
    grant_type = form.get("grant_type")
    if client is None:
        return _token_error(400, "invalid_client")
    if grant_type == "authorization_code":
        code = store.codes.get(str(form.get("code", "")))
        redirect_uri = form.get("redirect_uri", code.redirect_uri if code else "")
        if code is None or code.used or code.client_id != client.client_id \
                or store.clock.now_ms() > code.exp_ms or code.redirect_uri != redirect_uri \
                or store.grants[code.grant_id].expired:
            if code is not None:
                code.used = True
            store.invalid_grant += 1
            return _token_error(400, "invalid_grant")
        verifier = form.get("code_verifier")
        if code.challenge:
            if not verifier or not _pkce_ok(code.challenge, code.method or "plain", str(verifier)):
                code.used = True
                store.invalid_grant += 1
                return _token_error(400, "invalid_grant")
        elif secret != client.secret:
            return _token_error(400, "invalid_client")
        if secret is not None and secret != client.secret:
            return _token_error(400, "invalid_client")
        code.used = True
        grant = store.grants[code.grant_id]
        return JSONResponse(store.issue(client.client_id, code.scopes, code.user_id, grant, nonce=code.nonce),
                            headers={"Cache-Control": "no-store"})
    if secret != client.secret:
        return _token_error(400, "invalid_client")
    if grant_type == "refresh_token":
        status, body = store.refresh(client.client_id, str(form.get("refresh_token", "")))
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
    if grant_type == "client_credentials":
        if not client.allow_client_credentials:
            return _token_error(400, "unauthorized_client")
        asked = [s for s in re.split(r"[\s+]+", str(form.get("scope", ""))) if s]
        bad = [s for s in asked if s not in KNOWN_SCOPES]
        if bad:
            return _token_error(400, "invalid_scope")
        scopes = asked or ["accounting.transactions.read", "accounting.contacts.read", "accounting.settings.read",
                           "accounting.journals.read", "accounting.reports.read"]
        return JSONResponse(store.issue(client.client_id, scopes, None, None, tenant_nos=[0], with_refresh=False),
                            headers={"Cache-Control": "no-store"})
    return _token_error(400, "unsupported_grant_type")


def _pkce_ok(challenge: str, method: str, verifier: str) -> bool:
    if not 43 <= len(verifier) <= 128:
        return False
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        expect = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return hmac.compare_digest(expect, challenge)
    return hmac.compare_digest(verifier, challenge)


@router.post("/connect/revocation")
async def revocation(request: Request):
    store = _store(request)
    form = await request.form()
    cid, secret = _client_auth(request, form)
    client = store.clients.get(cid or "")
    if client is None or secret != client.secret:
        return _token_error(400, "invalid_client")
    store.revoke(str(form.get("token", "")))
    return Response(status_code=200)


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def _unauthorized(detail: str) -> JSONResponse:
    return JSONResponse({"Title": "Unauthorized", "Status": 401, "Detail": detail}, status_code=401,
                        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


@router.get("/connections")
@router.get("/Connections")
async def list_connections(request: Request):
    store = _store(request)
    at, problem = store.check_access(_bearer(request))
    if at is None:
        return _unauthorized(problem)
    if at.user_id is None:
        # A custom connection (client_credentials) is connected to exactly its one organisation.
        out = []
        for no in at.tenant_nos or []:
            b = store.tenants[no]
            stamp = _conn_time(b.created_ms)
            out.append({"id": b.guid(ids.CONNECTION, 0), "authEventId": b.guid(ids.AUTH_EVENT, 0),
                        "tenantId": b.tenant_id, "tenantType": "ORGANISATION", "tenantName": b.name,
                        "createdDateUtc": stamp, "updatedDateUtc": stamp})
        return JSONResponse(out)
    event = request.query_params.get("authEventId")
    conns = [c for c in store.connections.values() if c.client_id == at.client_id and c.user_id == at.user_id
             and (event is None or c.auth_event_id == event)]
    conns.sort(key=lambda c: c.tenant_no)
    return JSONResponse([store.connection_json(c) for c in conns])


@router.delete("/connections/{connection_id}")
@router.delete("/Connections/{connection_id}")
async def delete_connection(connection_id: str, request: Request):
    store = _store(request)
    at, problem = store.check_access(_bearer(request))
    if at is None:
        return _unauthorized(problem)
    c = store.connections.get(connection_id)
    if c is None or c.client_id != at.client_id or c.user_id != at.user_id:
        return JSONResponse({"Title": "NotFound", "Status": 404, "Detail": "Connection not found"}, status_code=404)
    del store.connections[connection_id]
    return Response(status_code=204)
