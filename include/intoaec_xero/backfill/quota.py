"""The backfill's share of a tenant's Xero quota, and when it may spend again.

Xero gives each tenant 5,000 calls a day (1,000 on the Starter tier) and 60 a minute, shared by
everything that uses the grant. The scheduled sync must never be the one that runs out, so the
backfill takes only a share (60% by default) and leaves the rest as a reserve: it stops as soon
as ``X-DayLimit-Remaining`` says the reserve is all that is left, and paces itself to its share
of each minute so the sync's calls are not answered 429.

Xero's day windows are fixed 24-hour windows whose reset time differs per tenant and is not
published. A backfill that stopped for the day therefore waits until it *knows* a new window
has begun rather than probing (each probe would be a call out of the sync's reserve): either
24 hours have passed since it stopped, or some later call made for the tenant (the sync records
``X-DayLimit-Remaining`` in ``sync_runs``) saw more than the reserve left, which within one
window can never happen again once the backfill stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select

from intoaec_xero.environment import RuntimeSettings, current
from intoaec_xero.limits import LimitPolicy
from intoaec_xero.schema import sync_runs

XERO_DAY_LIMIT = 5000
XERO_MINUTE_LIMIT = 60
DEFAULT_SHARE = 0.6
DAY = timedelta(days=1)


@dataclass(frozen=True)
class QuotaShare:
    """How much of a tenant's Xero quota a backfill may use."""

    share: float = DEFAULT_SHARE
    day_limit: int = XERO_DAY_LIMIT
    # Xero's per-minute limit; 0 turns client-side pacing off (a sandbox without minute limits).
    minute_limit: int = XERO_MINUTE_LIMIT

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise ValueError(f"The backfill's quota share must be in (0, 1], not {self.share}.")
        if self.day_limit < 1 or self.minute_limit < 0:
            raise ValueError("Xero's day limit must be positive and its minute limit not negative.")

    @classmethod
    def from_environment(cls, share: float | None = None, day_limit: int | None = None,
                         minute_limit: int | None = None, *, settings: RuntimeSettings | None = None) -> QuotaShare:
        """Explicit values win; then INTOAEC_BACKFILL_SHARE / INTOAEC_XERO_DAY_LIMIT (``settings``, else this
        process's); both default to Xero's figures."""
        settings = settings or current()
        return cls(
            share=float(share if share is not None else settings.backfill_share),
            day_limit=int(day_limit if day_limit is not None else settings.xero_day_limit),
            minute_limit=int(minute_limit if minute_limit is not None else XERO_MINUTE_LIMIT),
        )

    @property
    def calls_per_day(self) -> int:
        return math.floor(self.day_limit * self.share)

    @property
    def day_reserve(self) -> int:
        """Calls left in the tenant's day at which the backfill stops: the sync's part."""
        return self.day_limit - self.calls_per_day

    @property
    def calls_per_minute(self) -> int:
        return max(1, math.floor(self.minute_limit * self.share))

    def limit_policy(self) -> LimitPolicy:
        if not self.minute_limit:
            return LimitPolicy(per_minute=0, day_reserve=self.day_reserve)
        return LimitPolicy(
            per_minute=self.calls_per_minute,
            day_reserve=self.day_reserve,
            # When Xero says the rest of this minute is down to the sync's part, wait.
            minute_reserve=self.minute_limit - self.calls_per_minute,
        )

    def describe(self) -> str:
        return (f"{self.share:.0%} of {self.day_limit:,} calls/day = {self.calls_per_day:,} "
                f"(reserve {self.day_reserve:,} for the sync)")


def wait_reason(engine: Engine, tenant_id: str, stopped_at: datetime | None, quota: QuotaShare,
                now: datetime) -> str | None:
    """Why the backfill should not call Xero yet for this tenant, or None when it may."""
    if stopped_at is None:
        return None
    if now - stopped_at >= DAY:
        return None
    with engine.connect() as conn:
        seen = conn.execute(
            select(sync_runs.c.quota_day_remaining)
            .where(sync_runs.c.tenant_id == tenant_id, sync_runs.c.started_at > stopped_at,
                   sync_runs.c.quota_day_remaining.is_not(None))
            .order_by(sync_runs.c.started_at.desc())
            .limit(1)
        ).scalar()
    if seen is not None and seen > quota.day_reserve:
        return None
    return (f"waiting for Xero's day window to reset: the share was used at {stopped_at:%Y-%m-%d %H:%M} UTC; "
            f"resumes once a call sees more than {quota.day_reserve:,} left, at the latest "
            f"{stopped_at + DAY:%Y-%m-%d %H:%M} UTC")
