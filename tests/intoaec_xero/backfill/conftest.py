"""Helpers for the backfill tests: a connected grant on a sandbox, and a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from intoaec_xero.client import XeroClient

from tests.harness import xero
from tests.harness.xero import tenants_of  # noqa: F401 - the backfill tests import it from here

# Mid-way through tenant 0's day window: the sandbox's per-tenant windows reset at
# (tenant_no * 7919 + 13) s past midnight, so a test that advances whole days never meets a reset.
CLOCK_START = "2026-11-02T12:00:00Z"


def connect(sandbox, engine, **settings_kwargs):
    """The sandbox's user connected (see :func:`tests.harness.xero.connect`), unpaced: the quota is the test's."""
    settings_kwargs.setdefault("calls_per_minute", 0)
    return xero.connect(sandbox, engine, **settings_kwargs)


def sync_client(settings, store) -> XeroClient:
    """The scheduled sync's client: no reserve, the whole day is its to use."""
    return XeroClient(settings, store, sleep=lambda s: None)


class Clock:
    """The backfill's idea of now, moved with the sandbox's clock (the wall clock never moves a day)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, sandbox, days: float = 1) -> None:
        sandbox.advance_clock(days * 86400)
        self.now += timedelta(days=days)
