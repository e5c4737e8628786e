"""The sandbox application: one host serving identity, the Accounting API and test controls.

``create_app`` builds the dataset once and wires thin routes over it. A small ASGI wrapper
counts every request by endpoint and status for ``/_sandbox/stats`` and applies injected faults
to the identity endpoints (the Accounting API applies its own, inside the rate-limit slot, so
an injected delay also holds a concurrency slot as a slow Xero call would).
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from dataclasses import dataclass, field

from fastapi import FastAPI
from starlette.routing import Route

from . import accounting, control, identity
from .clock import SandboxClock
from .control import FaultInjector, Stats
from .generate import build_dataset
from .limits import LimitConfig, RateLimiter
from .model import Dataset


@dataclass
class Sandbox:
    dataset: Dataset
    clock: SandboxClock
    identity: identity.IdentityStore
    limiter: RateLimiter
    faults: FaultInjector = field(default_factory=FaultInjector)
    stats: Stats = field(default_factory=Stats)
    query_cache: OrderedDict = field(default_factory=OrderedDict)
    activity_runs: dict[int, int] = field(default_factory=dict)
    # Serve at most this many rows a page (and Journals per call), whatever pageSize asks; the
    # pagination object says what was served. None: Xero's own limits (1000, Journals 100).
    max_page_size: int | None = None


class _Observe:
    """Pure-ASGI wrapper: request stats for everything outside /_sandbox, identity faults."""

    IDENTITY_FAULT_NAMES = {"/connect/token": "connect/token", "/connect/revocation": "connect/revocation",
                            "/connections": "connections", "/identity/connect/authorize": "authorize"}

    def __init__(self, app, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            return await self.app(scope, receive, send)
        label = accounting.endpoint_label(scope["method"], scope["path"])
        status_box = [0]

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
            await send(message)

        fault_name = self.IDENTITY_FAULT_NAMES.get(scope["path"].lower())
        if fault_name is None and scope["path"].lower().startswith("/connections/"):
            fault_name = "connections"
        if fault_name:
            fault = self.sandbox.faults.pick(fault_name)
            if fault is not None:
                if fault.latency_ms:
                    await asyncio.sleep(fault.latency_ms / 1000)
                if fault.timeout:
                    await asyncio.sleep(fault.timeout_seconds)
                if fault.status or fault.timeout:
                    status = fault.status or 504
                    body = json.dumps({"error": "server_error"} if status >= 500 else
                                      {"error": "temporarily_unavailable"}).encode()
                    await send_wrapper({"type": "http.response.start", "status": status,
                                        "headers": [(b"content-type", b"application/json"),
                                                    (b"content-length", str(len(body)).encode())]})
                    await send_wrapper({"type": "http.response.body", "body": body})
                    self.sandbox.stats.record(label, status)
                    return
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.sandbox.stats.record(label, status_box[0] or 500)


def create_app(dataset: str = "small", seed: int = 1, limits: bool = True, tenants: int | None = None,
               clock_start_ms: int | None = None, limit_config: LimitConfig | None = None,
               max_page_size: int | None = None, app_without_journals: bool = False) -> FastAPI:
    """The sandbox app. ``app_without_journals``: the demo app ``sandbox-client`` is below Xero's
    Advanced tier, so Journals answer it 401 for every organisation (``sandbox-client-core`` always is)."""
    if max_page_size is not None and max_page_size < 1:
        raise ValueError("--max-page-size must be at least 1")
    ds = build_dataset(dataset, seed, tenants)
    clock = SandboxClock(clock_start_ms)
    cfg = limit_config or LimitConfig()
    cfg.enabled = limits
    sandbox = Sandbox(dataset=ds, clock=clock, identity=identity.default_store(clock, ds.tenants, app_without_journals),
                      limiter=RateLimiter(clock, cfg), max_page_size=max_page_size)
    app = FastAPI(title="Xero sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sandbox = sandbox
    app.include_router(identity.router)
    app.include_router(control.router)
    app.router.routes.append(Route(accounting.API_PREFIX + "/{path:path}", accounting.api_entry, methods=["GET"]))
    # Xero's paths are case-insensitive; accept the lower-case prefix too.
    app.router.routes.append(Route("/API.XRO/2.0/{path:path}", accounting.api_entry, methods=["GET"]))
    app.add_middleware(_Observe, sandbox=sandbox)
    return app
