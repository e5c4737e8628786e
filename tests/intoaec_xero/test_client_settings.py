"""Numeric connection extras read as written: 0 stays 0, nonsense is refused by connection and key."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from intoaec_xero.airflow.connections import xero_settings
from intoaec_xero.errors import ConfigurationError
from intoaec_xero.limits import LimitPolicy, TenantLimiter
from intoaec_xero.settings import XeroSettings


def _conn(**extra):
    return SimpleNamespace(login="client", password="secret", extra_dejson=extra)


@pytest.mark.parametrize(("given", "expected"), [
    (0, 0), ("0", 0), (" 0 ", 0), (0.0, 0), (30, 30), ("30", 30), (45.0, 45), ("45.0", 45),
    (None, 60), ("", 60),
])
def test_calls_per_minute_is_read_as_written(given, expected):
    extra = {} if given is None else {"calls_per_minute": given}
    assert xero_settings(_conn(**extra), "xero_acme").calls_per_minute == expected


@pytest.mark.parametrize("given", [-1, "-5", "abc", True, 1.5, "1.5", "nan", "inf", [60], {"n": 1}])
def test_an_invalid_calls_per_minute_names_the_connection_and_the_key(given):
    with pytest.raises(ConfigurationError) as caught:
        xero_settings(_conn(calls_per_minute=given), "xero_acme")
    message = str(caught.value)
    assert "'xero_acme'" in message and "calls_per_minute" in message
    assert "whole number of 0 or more" in message and "0 turns client-side pacing off" in message
    assert not caught.value.retriable


def test_zero_calls_per_minute_turns_pacing_off():
    settings = xero_settings(_conn(calls_per_minute=0), "xero_acme")
    slept = []
    limiter = TenantLimiter(LimitPolicy(per_minute=settings.calls_per_minute), clock=lambda: 0.0,
                            sleep=slept.append)
    assert not limiter.policy.paced
    for _ in range(500):
        limiter.before_call("tenant")
    # Xero's own "nearly out" counter does not make an unpaced limiter wait either.
    limiter.after_response("tenant", {"x-minlimit-remaining": "0"})
    limiter.before_call("tenant")
    assert slept == []


def test_a_paced_limiter_still_waits():
    slept = []
    limiter = TenantLimiter(LimitPolicy(per_minute=2), clock=lambda: 0.0, sleep=slept.append)
    for _ in range(3):
        limiter.before_call("tenant")
    assert slept == [60.0]


def test_a_negative_pacing_policy_is_refused():
    with pytest.raises(ValueError, match="per_minute"):
        LimitPolicy(per_minute=-1)


def test_timeouts_default_to_10_s_connect_and_60_s_read():
    settings = xero_settings(_conn(), "xero_acme")
    assert settings.http_timeout == (10.0, 60.0)


@pytest.mark.parametrize(("extra", "expected"), [
    ({"connect_timeout": 3, "read_timeout": 20}, (3.0, 20.0)),
    ({"connect_timeout": "2.5", "read_timeout": "0.5"}, (2.5, 0.5)),
    ({"read_timeout": 120}, (10.0, 120.0)),
    ({"connect_timeout": ""}, (10.0, 60.0)),
])
def test_timeouts_come_from_the_connection_extra(extra, expected):
    assert xero_settings(_conn(**extra), "xero_acme").http_timeout == expected


@pytest.mark.parametrize(("key", "given"), [
    ("connect_timeout", 0), ("connect_timeout", "-1"), ("read_timeout", 0), ("read_timeout", "soon"),
    ("read_timeout", False), ("read_timeout", "inf"),
])
def test_an_invalid_timeout_names_the_connection_and_the_key(key, given):
    with pytest.raises(ConfigurationError) as caught:
        xero_settings(_conn(**{key: given}), "xero_acme")
    message = str(caught.value)
    assert "'xero_acme'" in message and key in message and "greater than 0" in message


@pytest.mark.parametrize("overrides", [
    {"connect_timeout": 0}, {"request_timeout": -1.0}, {"calls_per_minute": -1}, {"max_attempts": 0},
])
def test_settings_built_in_code_are_checked_the_same_way(overrides):
    with pytest.raises(ConfigurationError, match="'xero_default'"):
        XeroSettings(client_id="client", client_secret="secret", **overrides)
