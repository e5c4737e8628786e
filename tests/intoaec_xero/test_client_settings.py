"""Connection extras read as written (0 stays 0, nonsense refused by connection and key), and only Xero's hosts."""

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


@pytest.mark.parametrize(("given", "expected"), [(None, 6), ("", 6), (1, 1), ("2", 2), (10, 10)])
def test_max_attempts_is_read_from_the_extra(given, expected):
    extra = {} if given is None else {"max_attempts": given}
    assert xero_settings(_conn(**extra), "xero_acme").max_attempts == expected


@pytest.mark.parametrize("given", [0, "0", -1, "two", 1.5])
def test_an_invalid_max_attempts_names_the_connection_and_the_key(given):
    with pytest.raises(ConfigurationError) as caught:
        xero_settings(_conn(max_attempts=given), "xero_acme")
    message = str(caught.value)
    assert "'xero_acme'" in message and "max_attempts" in message and "whole number of 1 or more" in message


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


# -- only Xero's own hosts, unless the connection says it is the sandbox -----------------------

def test_xeros_own_urls_need_no_sandbox_flag():
    settings = xero_settings(_conn(), "xero_acme")
    assert settings.sandbox is False
    assert (settings.api_base_url, settings.identity_base_url, settings.login_base_url,
            settings.connections_base_url) == ("https://api.xero.com/api.xro/2.0", "https://identity.xero.com",
                                               "https://login.xero.com", "https://api.xero.com")


@pytest.mark.parametrize(("key", "url", "host"), [
    ("api_base_url", "http://127.0.0.1:5055/api.xro/2.0", "api.xero.com"),
    ("api_base_url", "http://api.xero.com/api.xro/2.0", "api.xero.com"),  # not TLS
    ("api_base_url", "https://api.xero.com.attacker.test/api.xro/2.0", "api.xero.com"),
    ("api_base_url", "https://attacker.test/api.xero.com", "api.xero.com"),
    ("api_base_url", "https://api.xero.com:8443/api.xro/2.0", "api.xero.com"),
    ("api_base_url", "https://identity.xero.com/api.xro/2.0", "api.xero.com"),  # Xero, but not its API host
    ("identity_base_url", "https://attacker.test", "identity.xero.com"),
    ("login_base_url", "https://login.attacker.test", "login.xero.com"),
    ("connections_base_url", "https://attacker.test", "api.xero.com"),
])
def test_a_url_that_is_not_xeros_is_refused_naming_the_connection_and_the_key(key, url, host):
    with pytest.raises(ConfigurationError) as caught:
        xero_settings(_conn(**{key: url}), "xero_acme")
    message = str(caught.value)
    assert message.startswith(f"The Xero connection 'xero_acme' points {key} at ")
    assert message.endswith(f", which is not Xero's {host}: set \"sandbox\": true in its extra if that is the local "
                            f"sandbox, or remove {key} to use Xero's.")
    assert not caught.value.retriable


def test_a_sandbox_identity_url_also_moves_sign_in_and_connections_so_all_are_refused_together():
    with pytest.raises(ConfigurationError, match="points identity_base_url at https://attacker.test"):
        xero_settings(_conn(identity_base_url="https://attacker.test"), "xero_acme")
    settings = xero_settings(_conn(identity_base_url="http://127.0.0.1:5055", sandbox=True), "xero_acme")
    assert settings.login_base_url == settings.connections_base_url == "http://127.0.0.1:5055"


def test_a_refusal_never_repeats_credentials_written_into_the_url():
    with pytest.raises(ConfigurationError) as caught:
        xero_settings(_conn(api_base_url="https://user:hunter2@attacker.test:8443/api.xro/2.0"), "xero_acme")
    assert "points api_base_url at https://attacker.test:8443," in str(caught.value)
    assert "hunter2" not in str(caught.value) and "user" not in str(caught.value)


@pytest.mark.parametrize(("given", "expected"), [
    (True, True), ("true", True), ("True", True), (" TRUE ", True),
    (False, False), ("false", False), ("False", False), ("", False), (None, False),
])
def test_the_sandbox_extra_reads_json_booleans_and_text(given, expected):
    extra = {"api_base_url": "http://127.0.0.1:5055/api.xro/2.0", "identity_base_url": "http://127.0.0.1:5055"}
    if expected:
        assert xero_settings(_conn(**extra, sandbox=given), "xero_acme").sandbox is True
    else:
        with pytest.raises(ConfigurationError, match="points api_base_url at http://127.0.0.1:5055"):
            xero_settings(_conn(**extra, **({} if given is None else {"sandbox": given})), "xero_acme")
        assert xero_settings(_conn(sandbox=given), "xero_acme").sandbox is False  # fine on Xero's own URLs


@pytest.mark.parametrize("given", ["yes", "1", 1, 0, "on", ["true"], {"sandbox": True}])
def test_a_sandbox_extra_that_is_not_true_or_false_is_refused_by_name(given):
    with pytest.raises(ConfigurationError) as caught:
        xero_settings(_conn(sandbox=given), "xero_acme")
    assert str(caught.value) == (f"The Xero connection 'xero_acme' has sandbox = {given!r} in its extra: it must be "
                                 "true or false.")


def test_a_url_extra_that_is_not_text_is_refused_by_name():
    with pytest.raises(ConfigurationError, match="'xero_acme' has identity_base_url = 5055 in its extra: it must be"):
        xero_settings(_conn(identity_base_url=5055), "xero_acme")


def test_settings_built_in_code_are_held_to_xeros_hosts_too():
    with pytest.raises(ConfigurationError, match="'xero_default' points identity_base_url at http://127.0.0.1:9"):
        XeroSettings(client_id="client", client_secret="secret", identity_base_url="http://127.0.0.1:9")
    with pytest.raises(ConfigurationError, match="sandbox = 'true'"):
        XeroSettings(client_id="client", client_secret="secret", sandbox="true")
    assert XeroSettings(client_id="c", client_secret="s", identity_base_url="http://127.0.0.1:9", sandbox=True).sandbox
    # The sandbox's own constructor says so itself; a caller may still say otherwise and be refused.
    assert XeroSettings.for_single_host("http://127.0.0.1:9", client_id="c", client_secret="s").sandbox is True
    with pytest.raises(ConfigurationError, match="not Xero's"):
        XeroSettings.for_single_host("http://127.0.0.1:9", client_id="c", client_secret="s", sandbox=False)
