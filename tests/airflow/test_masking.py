"""No token and no client secret in logs, errors or what Airflow would print, whatever happens."""

from __future__ import annotations

import logging

import pytest
from intoaec_xero import oauth, tenants
from intoaec_xero.client import XeroClient
from intoaec_xero.errors import IntoAECXeroError
from intoaec_xero.tokens import TokenCipher

from tests.airflow.conftest import CLIENT_SECRET, airflow_connection_env, connect

pytestmark = [pytest.mark.airflow, pytest.mark.integration]


@pytest.fixture
def hook_env(monkeypatch, sandbox, sqlite_url):
    airflow_connection_env(monkeypatch, sandbox, sqlite_url)
    monkeypatch.setattr("intoaec_xero.airflow.hooks.token_cipher", lambda: TokenCipher.from_environment())


def test_every_token_and_the_client_secret_stay_out_of_logs_and_errors(hook_env, sandbox, sqlite_url, caplog):
    from intoaec_xero import db
    from intoaec_xero.airflow.hooks import XeroHook

    caplog.set_level(logging.DEBUG)  # everything: ours, requests/urllib3, the SDK, Airflow
    engine = db.create_db_engine(sqlite_url)
    db.upgrade(engine)
    seen: list[str] = []  # every token value that existed during the test
    errors: list[str] = []

    settings, store = connect(sandbox, engine)
    seen += [store.load().access_token, store.load().refresh_token]
    hook = XeroHook()
    assert hook.test_connection()[0]
    hook.keep_alive()
    seen += [store.load().access_token, store.load().refresh_token]
    sandbox.advance_clock(31 * 60)  # a 401 mid-run, then a refresh
    XeroClient(settings, store, sleep=lambda s: None).connections()
    seen += [store.load().access_token, store.load().refresh_token]
    first = tenants.organisations(engine, "xero_default", store.info())[0]
    oauth.delete_connection(XeroClient(settings, store), first.connection_id, session=hook.get_conn())
    sandbox.advance_clock(61 * 86400)  # and finally a grant Xero refuses
    tokens = store.load()
    tokens.expires_at = 0
    store.save(tokens)
    for attempt in (lambda: XeroClient(settings, store).connections(), hook.keep_alive, hook.test_connection):
        try:
            result = attempt()
            if isinstance(result, tuple):
                errors.append(result[1])
        except Exception as error:  # noqa: BLE001 - the point is what every failure says
            errors.append(f"{type(error).__name__}: {error}")
    assert any("invalid_grant" in e for e in errors)

    everything = caplog.text + "\n".join(errors) + repr(store.load()) + repr(settings)
    for secret in {*seen, CLIENT_SECRET}:
        assert secret not in everything


def test_airflow_masks_every_token_the_store_handles(hook_env, sandbox, sqlite_url):
    from airflow._shared.secrets_masker import redact as redact_in_core
    from airflow.sdk._shared.secrets_masker import redact as redact_in_tasks
    from intoaec_xero import db
    from intoaec_xero.airflow.hooks import XeroHook

    engine = db.create_db_engine(sqlite_url)
    db.upgrade(engine)
    connect(sandbox, engine)
    XeroHook().keep_alive()
    tokens = XeroHook().get_token_store().load()
    for value in (tokens.access_token, tokens.refresh_token, tokens.previous_refresh_token):
        line = f"Authorization: Bearer {value}"
        assert value not in redact_in_tasks(line)
        assert value not in redact_in_core(line)


def test_errors_from_the_token_endpoint_never_echo_the_request(sandbox):
    import dataclasses

    from tests.airflow.conftest import sandbox_settings

    settings = dataclasses.replace(sandbox_settings(sandbox), client_secret="a-wrong-but-secret-value")
    with pytest.raises(IntoAECXeroError) as raised:
        oauth.exchange_code(settings, "some-code", "http://127.0.0.1:8080/xero/callback", None)
    assert "a-wrong-but-secret-value" not in str(raised.value)
