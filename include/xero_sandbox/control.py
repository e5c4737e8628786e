"""Test controls under ``/_sandbox/``: clock, activity, faults, paging, grants, stats, truth, health.

These exist so a test can make the world misbehave on purpose and then check the result:
jump the clock instead of sleeping, make the books change as a busy firm's do, inject the
failures a real Xero produces (429s, 5xx, hangs, slow and cut-off responses), lapse one user's
grants as 60 idle days would, count what the client actually sent, and read the ground truth a
correct sync must reproduce.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .activity import COST_STREAMS, LEDGER_STREAMS, apply_activity

router = APIRouter(prefix="/_sandbox")


# ----------------------------------------------------------------------------- faults

@dataclass
class Fault:
    """One injection rule. ``endpoint``: a resource name (``Invoices``, ``Journals``,
    ``Reports/TrialBalance``, ``connect/token``, ``connections``) or ``*``."""

    endpoint: str = "*"
    status: int | None = None
    rate: float = 1.0
    latency_ms: int = 0
    timeout: bool = False
    timeout_seconds: float = 30.0
    truncate: bool = False
    # Field values to set on the first record of the response (e.g. {"Total": 1}): data that fails checks.
    mangle: dict | None = None
    count: int | None = None  # how many times it may still fire (None: unlimited)
    tenant_id: str | None = None
    retry_after: int = 1
    problem: str = "minute"
    seed: int = 0
    fired: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def matches(self, endpoint: str, tenant_id: str | None) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        if self.tenant_id and tenant_id and self.tenant_id != tenant_id:
            return False
        e = self.endpoint.strip().lower()
        if e.startswith(("get ", "post ", "delete ")):
            e = e.split(" ", 1)[1]
        e = e.strip("/")
        if e.startswith("api.xro/2.0/"):
            e = e[len("api.xro/2.0/"):]
        return e in ("*", "", endpoint.lower())

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in ("endpoint", "status", "rate", "latency_ms", "timeout",
                                              "timeout_seconds", "truncate", "mangle", "count", "tenant_id",
                                              "retry_after", "problem", "seed", "fired")}


class FaultInjector:
    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.injected = 0

    def add(self, spec: dict) -> Fault:
        known = set(Fault.__dataclass_fields__) - {"rng", "fired"}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        f = Fault(**spec)
        if not 0 <= f.rate <= 1:
            raise ValueError("rate must be between 0 and 1")
        if f.status is None and not (f.latency_ms or f.timeout or f.truncate or f.mangle):
            raise ValueError("a fault needs status, latency_ms, timeout, truncate or mangle")
        if f.mangle is not None and not isinstance(f.mangle, dict):
            raise ValueError("mangle is an object of field names and the values to serve")
        f.rng = random.Random(f.seed)
        self.faults.append(f)
        return f

    def clear(self) -> None:
        self.faults.clear()

    def pick(self, endpoint: str, tenant_id: str | None = None) -> Fault | None:
        for f in self.faults:
            if f.matches(endpoint, tenant_id) and f.rng.random() < f.rate:
                if f.count is not None:
                    f.count -= 1
                f.fired += 1
                self.injected += 1
                return f
        return None


# ----------------------------------------------------------------------------- stats

@dataclass
class Stats:
    requests: dict[str, dict[str, int]] = field(default_factory=dict)
    calls_by_tenant: dict[str, int] = field(default_factory=dict)

    def record(self, label: str, status: int) -> None:
        row = self.requests.setdefault(label, {})
        key = str(status)
        row[key] = row.get(key, 0) + 1

    def tenant_call(self, tenant_id: str) -> None:
        self.calls_by_tenant[tenant_id] = self.calls_by_tenant.get(tenant_id, 0) + 1


# ----------------------------------------------------------------------------- routes

def _sb(request: Request):
    return request.app.state.sandbox


async def _json(request: Request) -> dict:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise ValueError(f"body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


def _bad(msg: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"ok": False, "error": msg}, status_code=status)


@router.get("/health")
async def health(request: Request):
    sb = _sb(request)
    return {"ok": True, "dataset": sb.dataset.name, "seed": sb.dataset.seed, "limits": sb.limiter.config.enabled,
            "max_page_size": sb.max_page_size,
            "tenants": [{"tenantId": b.tenant_id, "tenantName": b.name} for b in sb.dataset.tenants],
            # Journals are the app's privilege (Xero's partner tier), the same for every organisation.
            "apps": [{"clientId": c.client_id, "name": c.name, "journals": c.allow_journals}
                     for c in sb.identity.clients.values()],
            "now": sb.clock.iso()}


@router.get("/clock")
async def get_clock(request: Request):
    sb = _sb(request)
    return {"now": sb.clock.iso(), "now_ms": sb.clock.now_ms()}


@router.post("/clock")
async def post_clock(request: Request):
    sb = _sb(request)
    try:
        body = await _json(request)
        seconds = float(body.get("advance_seconds", 0))
        sb.clock.advance(seconds)
    except (ValueError, TypeError) as e:
        return _bad(str(e))
    return {"now": sb.clock.iso(), "now_ms": sb.clock.now_ms()}


@router.post("/activity")
async def post_activity(request: Request):
    sb = _sb(request)
    try:
        body = await _json(request)
        n_inv = int(body.get("invoices", 0))
        n_pay = int(body.get("payments", 0))
        tenant = body.get("tenant_id")
        unknown = set(body) - {"invoices", "payments", "tenant_id", *COST_STREAMS, *LEDGER_STREAMS}
        if unknown:
            raise ValueError(f"unknown activity fields: {', '.join(sorted(unknown))}")
        # Cost-side streams: as many actions as asked; none named, a fifth of the invoice actions each.
        costs = {name: int(body[name]) for name in COST_STREAMS if name in body} or None
        if costs is not None:
            costs = {name: costs.get(name, 0) for name in COST_STREAMS}
        # Bank transfers and payslips: only what is asked (0 by default).
        ledger = {name: int(body.get(name, 0)) for name in LEDGER_STREAMS}
        if n_inv < 0 or n_pay < 0 or any(v < 0 for v in [*(costs or {}).values(), *ledger.values()]):
            raise ValueError("activity counts must be >= 0")
    except (ValueError, TypeError) as e:
        return _bad(str(e))
    targets = sb.dataset.tenants
    if tenant:
        b = sb.dataset.by_id(tenant)
        if b is None:
            return _bad(f"unknown tenant_id {tenant}")
        targets = [b]
    summary = {}
    for b in targets:
        sb.activity_runs[b.no] = sb.activity_runs.get(b.no, 0) + 1
        summary[b.tenant_id] = apply_activity(b, n_inv, n_pay, sb.dataset.seed, sb.activity_runs[b.no],
                                              sb.clock.now_ms(), costs, **ledger)
    sb.query_cache.clear()
    return {"ok": True, "now": sb.clock.iso(), "changes": summary}


@router.get("/faults")
async def get_faults(request: Request):
    return {"faults": [f.to_json() for f in _sb(request).faults.faults]}


@router.post("/faults")
async def post_faults(request: Request):
    sb = _sb(request)
    try:
        body = await _json(request)
        if body.get("clear"):
            sb.faults.clear()
            return {"ok": True, "faults": []}
        listed = body.get("faults")
        specs = listed if isinstance(listed, list) else [body]
        for spec in specs:
            sb.faults.add(spec)
    except (ValueError, TypeError) as e:
        return _bad(str(e))
    return {"ok": True, "faults": [f.to_json() for f in sb.faults.faults]}


@router.delete("/faults")
async def delete_faults(request: Request):
    _sb(request).faults.clear()
    return {"ok": True, "faults": []}


@router.get("/paging")
async def get_paging(request: Request):
    return {"max_page_size": _sb(request).max_page_size}


@router.post("/paging")
async def post_paging(request: Request):
    """``{"max_page_size": N}``: serve at most N rows a page from now on (null: Xero's own limits)."""
    sb = _sb(request)
    try:
        body = await _json(request)
        if "max_page_size" not in body:
            raise ValueError("expected {\"max_page_size\": N or null}")
        value = body["max_page_size"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError("max_page_size must be a whole number >= 1, or null")
    except (ValueError, TypeError) as e:
        return _bad(str(e))
    sb.max_page_size = value
    return {"ok": True, "max_page_size": value}


@router.post("/grants/expire")
async def expire_grants(request: Request):
    """``{"email": E, "client_id": C?}``: the user's refresh tokens lapse as after 60 days unused
    (``invalid_grant``) and its access tokens expire; connections stay, a new sign-in works."""
    ident = _sb(request).identity
    try:
        body = await _json(request)
        unknown = set(body) - {"email", "client_id"}
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
        email, client_id = body.get("email"), body.get("client_id")
        if not isinstance(email, str) or not email.strip():
            raise ValueError('expected {"email": "...", "client_id": optional}')
        if client_id is not None and client_id not in ident.clients:
            raise ValueError(f"unknown client_id {client_id}")
    except (ValueError, TypeError) as e:
        return _bad(str(e))
    user = ident.user_by_email(email)
    if user is None:
        return _bad(f"unknown user {email}", status=404)
    return {"expired_grants": ident.expire_grants(user.user_id, client_id)}


@router.get("/stats")
async def get_stats(request: Request):
    sb = _sb(request)
    ident = sb.identity
    return {
        "requests": sb.stats.requests,
        "token_refreshes": ident.token_refreshes,
        "invalid_grant": ident.invalid_grant,
        "tokens_issued": ident.tokens_issued,
        "calls_by_tenant": sb.stats.calls_by_tenant,
        "rate_limited": dict(sb.limiter.refused),
        "faults_injected": sb.faults.injected,
        "limits": {sb.dataset.tenants[no].tenant_id: v for no, v in sb.limiter.snapshot().items()},
    }


@router.delete("/stats")
async def reset_stats(request: Request):
    sb = _sb(request)
    sb.stats.requests.clear()
    sb.stats.calls_by_tenant.clear()
    sb.limiter.refused.clear()
    sb.identity.token_refreshes = sb.identity.invalid_grant = 0
    return {"ok": True}


@router.get("/truth")
async def truth(request: Request):
    return _sb(request).dataset.truth()
