"""Helpers for the backfill tests: a connected grant on a sandbox, and a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from intoaec_xero.client import XeroClient
from intoaec_xero.oauth import finish_authorization, start_authorization
from intoaec_xero.settings import XeroSettings
from intoaec_xero.tokens import TokenCipher, TokenStore

# Mid-way through tenant 0's day window: the sandbox's per-tenant windows reset at
# (tenant_no * 7919 + 13) s past midnight, so a test that advances whole days never meets a reset.
CLOCK_START = "2026-11-02T12:00:00Z"


def connect(sandbox, engine, **settings_kwargs) -> tuple[XeroSettings, TokenStore]:
    from xero_sandbox.testing import sign_in_and_consent

    settings_kwargs.setdefault("calls_per_minute", 0)
    settings = XeroSettings.for_single_host(sandbox.base_url, client_id="sandbox-client",
                                            client_secret="sandbox-secret", **settings_kwargs)
    store = TokenStore(engine, settings.connection_key, TokenCipher(None))
    request = start_authorization(settings, "http://127.0.0.1:9/callback")
    store.save(finish_authorization(settings, request, sign_in_and_consent(request.url)))
    return settings, store


def sync_client(settings, store) -> XeroClient:
    """The scheduled sync's client: no reserve, the whole day is its to use."""
    return XeroClient(settings, store, sleep=lambda s: None)


def tenants_of(sandbox) -> list[dict[str, str]]:
    return [{"tenant_id": t["tenantId"], "tenant_name": t["tenantName"]} for t in sandbox.health()["tenants"]]


class Clock:
    """The backfill's idea of now, moved with the sandbox's clock (the wall clock never moves a day)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, sandbox, days: float = 1) -> None:
        sandbox.advance_clock(days * 86400)
        self.now += timedelta(days=days)
