"""Per-tenant pacing that keeps the sync inside Xero's limits instead of bouncing off them.

Xero allows each tenant 60 calls a minute and 5,000 a day (and 5 at once, which the Airflow
pool ``xero_api`` enforces across workers). Every response reports what is left
(``X-MinLimit-Remaining``, ``X-DayLimit-Remaining``, ``X-AppMinLimit-Remaining``). The limiter
paces calls on a sliding minute, trusts Xero's own counters when they are lower than its own
(another process may share the tenant), and stops a tenant cleanly when its day budget is
spent rather than holding a worker slot for hours.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from intoaec_xero.errors import XeroDailyLimitReached

log = logging.getLogger(__name__)

MINUTE = 60.0


@dataclass(frozen=True)
class LimitPolicy:
    # Calls per tenant per sliding minute. 0 turns pacing off entirely (Xero's reported minute
    # counters included): for a sandbox without limits, or a caller that paces on its own.
    per_minute: int = 60
    # Calls left in the day that this process leaves for others (e.g. the scheduled sync
    # while a backfill runs). 0 means it may use the whole day.
    day_reserve: int = 0
    # Keep this many of the minute's calls unused when another process shares the tenant.
    minute_reserve: int = 1
    app_minute_reserve: int = 50

    def __post_init__(self) -> None:
        if self.per_minute < 0:
            raise ValueError(f"per_minute must be 0 (no pacing) or more, not {self.per_minute}")

    @property
    def paced(self) -> bool:
        return self.per_minute > 0


class TenantLimiter:
    def __init__(self, policy: LimitPolicy | None = None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.policy = policy or LimitPolicy()
        self._clock = clock
        self._sleep = sleep
        self._calls: dict[str, deque[float]] = {}
        self._reported: dict[str, dict[str, tuple[int, float]]] = {}
        self._lock = threading.Lock()
        self.waited_seconds = 0.0

    def before_call(self, tenant_id: str) -> None:
        """Wait until a call fits the minute; refuse it if the day budget is gone."""
        with self._lock:
            day_left = self._left(tenant_id, "day", horizon=None)
            if day_left is not None and day_left <= self.policy.day_reserve:
                raise XeroDailyLimitReached(
                    f"Tenant {tenant_id}: {day_left} calls left today, at or below the reserve of "
                    f"{self.policy.day_reserve}; stopping cleanly, the next run resumes.",
                    problem="day", retry_after=None,
                )
            wait = self._minute_wait(tenant_id)
        if wait > 0:
            log.info("Tenant %s: pacing %.1f s to stay within Xero's per-minute limit.", tenant_id, wait)
            self.waited_seconds += wait
            self._sleep(wait)
        with self._lock:
            self._calls.setdefault(tenant_id, deque()).append(self._clock())

    def after_response(self, tenant_id: str, headers: dict[str, str]) -> None:
        now = self._clock()
        with self._lock:
            seen = self._reported.setdefault(tenant_id, {})
            for header, key in (("x-daylimit-remaining", "day"), ("x-minlimit-remaining", "minute"),
                                ("x-appminlimit-remaining", "app")):
                value = headers.get(header)
                if value is not None and str(value).lstrip("-").isdigit():
                    seen[key] = (int(value), now)

    def _left(self, tenant_id: str, key: str, horizon: float | None) -> int | None:
        value = self._reported.get(tenant_id, {}).get(key)
        if value is None:
            return None
        left, seen_at = value
        if horizon is not None and self._clock() - seen_at >= horizon:
            return None  # that window has rolled over
        return left

    def _minute_wait(self, tenant_id: str) -> float:
        if not self.policy.paced:
            return 0.0
        now = self._clock()
        calls = self._calls.setdefault(tenant_id, deque())
        while calls and now - calls[0] >= MINUTE:
            calls.popleft()
        waits = [0.0]
        if len(calls) >= self.policy.per_minute:
            waits.append(calls[len(calls) - self.policy.per_minute] + MINUTE - now)
        minute_left = self._left(tenant_id, "minute", horizon=MINUTE)
        if minute_left is not None and minute_left <= self.policy.minute_reserve and calls:
            # Xero counts calls this process did not make: wait for the oldest of ours to age out.
            waits.append(calls[0] + MINUTE - now)
        app_left = self._left(tenant_id, "app", horizon=MINUTE)
        if app_left is not None and app_left <= self.policy.app_minute_reserve and calls:
            waits.append(calls[0] + MINUTE - now)
        return max(waits)

    def day_remaining(self, tenant_id: str) -> int | None:
        return self._left(tenant_id, "day", horizon=None)
