"""The per-tenant limiter, on a fake clock: paces to 60 a minute, stops at the day budget."""

from __future__ import annotations

import pytest
from intoaec_xero.errors import XeroDailyLimitReached
from intoaec_xero.limits import LimitPolicy, TenantLimiter


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_sixty_calls_a_minute_then_it_waits_for_the_window():
    clock = FakeClock()
    limiter = TenantLimiter(LimitPolicy(per_minute=60), clock=clock, sleep=clock.sleep)
    for _ in range(60):
        limiter.before_call("t")
        clock.now += 0.1
    assert clock.slept == []
    limiter.before_call("t")
    assert clock.slept and clock.slept[0] == pytest.approx(60 - 6.0, abs=0.01)


def test_tenants_are_paced_independently():
    clock = FakeClock()
    limiter = TenantLimiter(LimitPolicy(per_minute=2), clock=clock, sleep=clock.sleep)
    for tenant in ("a", "a", "b", "b"):
        limiter.before_call(tenant)
    assert clock.slept == []


def test_xeros_own_minute_counter_is_trusted_when_lower():
    clock = FakeClock()
    limiter = TenantLimiter(LimitPolicy(per_minute=60, minute_reserve=1), clock=clock, sleep=clock.sleep)
    limiter.before_call("t")
    limiter.after_response("t", {"x-minlimit-remaining": "1"})  # someone else is using the tenant
    clock.now += 5
    limiter.before_call("t")
    assert clock.slept == [pytest.approx(55.0)]


def test_the_day_budget_stops_the_tenant_without_sleeping():
    clock = FakeClock()
    limiter = TenantLimiter(LimitPolicy(day_reserve=2000), clock=clock, sleep=clock.sleep)
    limiter.before_call("t")
    limiter.after_response("t", {"x-daylimit-remaining": "2000"})
    with pytest.raises(XeroDailyLimitReached, match="2000 calls left today"):
        limiter.before_call("t")
    assert clock.slept == []
    limiter.before_call("other")  # other tenants carry on


def test_pacing_off_never_waits_but_still_guards_the_day():
    clock = FakeClock()
    limiter = TenantLimiter(LimitPolicy(per_minute=0, day_reserve=10), clock=clock, sleep=clock.sleep)
    for _ in range(500):
        limiter.before_call("t")
        limiter.after_response("t", {"x-minlimit-remaining": "0", "x-daylimit-remaining": "4000"})
    assert clock.slept == []
    limiter.after_response("t", {"x-daylimit-remaining": "10"})
    with pytest.raises(XeroDailyLimitReached):
        limiter.before_call("t")
