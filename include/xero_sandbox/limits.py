"""Xero's API rate limits, on the sandbox clock.

Per tenant: 5 calls in flight, 60 per minute, 5,000 per day; across the app: 10,000 per
minute. Windows are fixed and, as at Xero, reset at different moments per tenant (each tenant
has its own phase). Every API response reports what is left in ``X-DayLimit-Remaining``,
``X-MinLimit-Remaining`` and ``X-AppMinLimit-Remaining``; a refused call gets 429 with
``Retry-After`` (seconds until its window resets) and ``X-Rate-Limit-Problem``. Refused calls do
not use up quota. With limits disabled the counters and headers still run, nothing is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .clock import SandboxClock


@dataclass
class LimitConfig:
    enabled: bool = True
    per_minute: int = 60
    per_day: int = 5000
    concurrent: int = 5
    app_per_minute: int = 10_000


@dataclass
class Decision:
    ok: bool
    headers: dict[str, str]
    problem: str | None = None
    retry_after: int = 0


@dataclass
class _Window:
    window: int = -1
    used: int = 0


@dataclass
class RateLimiter:
    clock: SandboxClock
    config: LimitConfig = field(default_factory=LimitConfig)
    _minute: dict[int, _Window] = field(default_factory=dict)
    _day: dict[int, _Window] = field(default_factory=dict)
    _app: _Window = field(default_factory=_Window)
    _inflight: dict[int, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def _phase(tenant_no: int, period: int) -> int:
        return (tenant_no * 7919 + 13) % period

    def _window(self, table: dict[int, _Window], tenant_no: int, period: int, now_s: float):
        phase = self._phase(tenant_no, period)
        wid = math.floor((now_s + phase) / period)
        w = table.setdefault(tenant_no, _Window())
        if w.window != wid:
            w.window, w.used = wid, 0
        reset_in = (wid + 1) * period - (now_s + phase)
        return w, max(1, math.ceil(reset_in))

    def _app_window(self, now_s: float):
        wid = math.floor(now_s / 60)
        if self._app.window != wid:
            self._app.window, self._app.used = wid, 0
        return self._app, max(1, math.ceil((wid + 1) * 60 - now_s))

    def acquire(self, tenant_no: int) -> Decision:
        cfg = self.config
        now_s = self.clock.now_s()
        minute, min_reset = self._window(self._minute, tenant_no, 60, now_s)
        day, day_reset = self._window(self._day, tenant_no, 86400, now_s)
        app, app_reset = self._app_window(now_s)
        inflight = self._inflight.get(tenant_no, 0)
        problem, retry = None, 0
        if cfg.enabled:
            if inflight >= cfg.concurrent:
                problem, retry = "concurrent", 1
            elif day.used >= cfg.per_day:
                problem, retry = "day", day_reset
            elif minute.used >= cfg.per_minute:
                problem, retry = "minute", min_reset
            elif app.used >= cfg.app_per_minute:
                problem, retry = "appminute", app_reset
        if problem is None:
            minute.used += 1
            day.used += 1
            app.used += 1
            self._inflight[tenant_no] = inflight + 1
        else:
            self.refused[problem] = self.refused.get(problem, 0) + 1
        headers = {
            "X-DayLimit-Remaining": str(max(0, cfg.per_day - day.used)),
            "X-MinLimit-Remaining": str(max(0, cfg.per_minute - minute.used)),
            "X-AppMinLimit-Remaining": str(max(0, cfg.app_per_minute - app.used)),
        }
        if problem:
            headers["Retry-After"] = str(retry)
            headers["X-Rate-Limit-Problem"] = problem
        return Decision(problem is None, headers, problem, retry)

    def release(self, tenant_no: int) -> None:
        self._inflight[tenant_no] = max(0, self._inflight.get(tenant_no, 0) - 1)

    def snapshot(self) -> dict:
        now_s = self.clock.now_s()
        out = {}
        for no in sorted(set(self._minute) | set(self._day)):
            minute, _ = self._window(self._minute, no, 60, now_s)
            day, _ = self._window(self._day, no, 86400, now_s)
            out[no] = {"minute_used": minute.used, "day_used": day.used, "in_flight": self._inflight.get(no, 0)}
        return out
