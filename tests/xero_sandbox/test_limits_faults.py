"""Rate limits (minute, day, concurrent, app-wide) on the sandbox clock, faults and stats."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from xero_sandbox.testing import running_sandbox


def _headers(r):
    return {h: int(r.headers[h]) for h in ("X-DayLimit-Remaining", "X-MinLimit-Remaining", "X-AppMinLimit-Remaining")}


def test_minute_limit_and_reset_by_clock(fresh, make_api):
    api = make_api(fresh, fresh.connect())
    t = api.tenants[0]
    seen = []
    for _ in range(60):
        r = api.get("Accounts", t)
        assert r.status_code == 200, r.text
        seen.append(_headers(r)["X-MinLimit-Remaining"])
        if seen[-1] == 0:
            break
    else:
        pytest.fail("minute quota never ran out")
    # the window is fixed per tenant; it may have rolled over once during the loop
    refused = api.get("Accounts", t)
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "minute"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert _headers(refused)["X-MinLimit-Remaining"] == 0
    assert refused.json()["Status"] == 429
    # another tenant has its own window
    assert api.get("Accounts", api.tenants[1]).status_code == 200
    fresh.advance_clock(int(refused.headers["Retry-After"]))
    again = api.get("Accounts", t)
    assert again.status_code == 200 and _headers(again)["X-MinLimit-Remaining"] == 59
    stats = fresh.stats()
    assert stats["rate_limited"]["minute"] == 1
    assert stats["requests"]["GET /api.xro/2.0/Accounts"]["429"] == 1


def test_day_limit_resets_after_a_day(make_api):
    with running_sandbox("small", extra_args=["--day-limit", "8"]) as sb:
        api = make_api(sb, sb.connect())
        t = api.tenants[0]
        days = [_headers(api.get("Accounts", t))["X-DayLimit-Remaining"] for _ in range(8)]
        assert days == list(range(7, -1, -1))
        refused = api.get("Accounts", t)
        assert refused.status_code == 429 and refused.headers["X-Rate-Limit-Problem"] == "day"
        assert int(refused.headers["Retry-After"]) > 60
        sb.advance_clock(60)
        assert api.get("Accounts", t).status_code == 429  # a new minute is not a new day
        sb.advance_clock(86400)
        api.token = sb.connect()  # the old access token expired with the day
        ok = api.get("Accounts", t)
        assert ok.status_code == 200 and _headers(ok)["X-DayLimit-Remaining"] == 7


def test_concurrent_limit(fresh, make_api):
    api = make_api(fresh, fresh.connect())
    t = api.tenants[0]
    fresh.faults(endpoint="Accounts", latency_ms=800)
    auth = {**api.auth(), "xero-tenant-id": t}

    def call(_):
        return requests.get(fresh.base_url + "/api.xro/2.0/Accounts", headers=auth, timeout=30)

    with ThreadPoolExecutor(max_workers=7) as pool:
        results = list(pool.map(call, range(7)))
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) == 5 and codes.count(429) == 2
    problems = {r.headers.get("X-Rate-Limit-Problem") for r in results if r.status_code == 429}
    assert problems == {"concurrent"}
    fresh.clear_faults()
    assert api.get("Accounts", t).status_code == 200


def test_app_wide_minute_limit(make_api):
    with running_sandbox("small", extra_args=["--app-minute-limit", "5"]) as sb:
        api = make_api(sb, sb.connect())
        for n in range(5):
            r = api.get("Accounts", api.tenants[n % 2])
            assert r.status_code == 200
        assert _headers(r)["X-AppMinLimit-Remaining"] == 0
        refused = api.get("Accounts", api.tenants[1])
        assert refused.status_code == 429
        assert "Retry-After" in refused.headers and refused.headers["X-Rate-Limit-Problem"] == "appminute"


def test_no_limits_never_refuses(api):
    t = api.tenants[1]
    for _ in range(70):
        r = api.get("Accounts", t)
        assert r.status_code == 200
    assert "X-MinLimit-Remaining" in r.headers


def test_faults_status_rate_seed_count_and_clear(fresh, make_api):
    api = make_api(fresh, fresh.connect())
    t = api.tenants[0]
    fresh.faults(endpoint="Invoices", status=503, rate=0.5, seed=7)
    codes = [api.get("Invoices", t, params={"page": 1, "pageSize": 1}).status_code for _ in range(20)]
    fresh.advance_clock(60)
    assert set(codes) == {200, 503} and 3 < codes.count(503) < 17
    assert api.get("Contacts", t, params={"page": 1}).status_code == 200  # other endpoints unaffected
    r = requests.post(fresh.base_url + "/_sandbox/faults", json={"clear": True}, timeout=10)
    assert r.json()["faults"] == []
    assert api.get("Invoices", t, params={"page": 1}).status_code == 200
    # the same seed fails the same calls
    fresh.faults(endpoint="Invoices", status=503, rate=0.5, seed=7)
    again = [api.get("Invoices", t, params={"page": 1, "pageSize": 1}).status_code for _ in range(20)]
    assert again == codes
    fresh.clear_faults()
    fresh.advance_clock(60)
    fresh.faults(endpoint="*", status=429, count=2, retry_after=7, problem="minute")
    first = api.get("Payments", t, params={"page": 1})
    assert first.status_code == 429 and first.headers["Retry-After"] == "7"
    assert api.get("Journals", t).status_code == 429
    assert api.get("Journals", t).status_code == 200
    assert fresh.stats()["faults_injected"] >= 2


def test_latency_timeout_and_truncation(fresh, make_api):
    api = make_api(fresh, fresh.connect())
    t = api.tenants[0]
    fresh.faults(endpoint="Contacts", latency_ms=400, count=1)
    start = time.perf_counter()
    assert api.get("Contacts", t, params={"page": 1}).status_code == 200
    assert time.perf_counter() - start >= 0.4
    fresh.faults(endpoint="Contacts", timeout=True, timeout_seconds=3, count=1)
    with pytest.raises(requests.exceptions.Timeout):
        api.get("Contacts", t, params={"page": 1}, timeout=0.5)
    fresh.clear_faults()
    fresh.faults(endpoint="Payments", truncate=True, count=1)
    cut = api.get("Payments", t, params={"page": 1})
    assert cut.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)
    assert api.get("Payments", t, params={"page": 1}).json()["Payments"]


def test_a_mangled_record_carries_the_given_values_once(fresh, make_api):
    api = make_api(fresh, fresh.connect())
    t = api.tenants[0]
    clean = api.get("Invoices", t, params={"page": 1}).json()["Invoices"]
    fresh.faults(endpoint="Invoices", mangle={"Total": 1234567.89}, count=1, tenant_id=t)
    served = api.get("Invoices", t, params={"page": 1}).json()["Invoices"]
    assert served[0]["Total"] == 1234567.89 and served[0]["InvoiceID"] == clean[0]["InvoiceID"]
    assert served[1:] == clean[1:]
    assert api.get("Invoices", t, params={"page": 1}).json()["Invoices"] == clean
    bad = requests.post(fresh.base_url + "/_sandbox/faults", json={"endpoint": "Invoices", "mangle": 1}, timeout=10)
    assert bad.status_code == 400


def test_token_endpoint_fault_and_bad_fault_spec(fresh):
    fresh.faults(endpoint="connect/token", status=503, count=1)
    r = requests.post(fresh.base_url + "/connect/token", data={"grant_type": "client_credentials"},
                      auth=("sandbox-client", "sandbox-secret"), timeout=10)
    assert r.status_code == 503
    r = requests.post(fresh.base_url + "/connect/token", data={"grant_type": "client_credentials"},
                      auth=("sandbox-client", "sandbox-secret"), timeout=10)
    assert r.status_code == 200
    bad = requests.post(fresh.base_url + "/_sandbox/faults", json={"endpoint": "Invoices", "bogus": 1}, timeout=10)
    assert bad.status_code == 400
    assert fresh.stats()["requests"]["POST /connect/token"] == {"503": 1, "200": 1}
