"""Shared setup for the connection-setup tests: a sandbox, a connected grant, the Airflow connections."""

from __future__ import annotations

import json

import pytest
from intoaec_xero import oauth
from intoaec_xero.client import XeroClient
from intoaec_xero.settings import XeroSettings
from intoaec_xero.tokens import TokenCipher, TokenStore

CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"  # the sandbox's public demo app


@pytest.fixture(scope="module")
def sandbox():
    from xero_sandbox.testing import running_sandbox

    with running_sandbox(dataset="small", seed=1) as handle:
        yield handle


def sandbox_settings(sandbox, connection_key: str = "xero_default", **kwargs) -> XeroSettings:
    return XeroSettings.for_single_host(sandbox.base_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                        connection_key=connection_key, **kwargs)


def connect(sandbox, engine, connection_key: str = "xero_default", cipher: TokenCipher | None = None,
            **kwargs) -> tuple[XeroSettings, TokenStore]:
    """The whole authorization-code flow, the sandbox's scripted user at the browser."""
    from xero_sandbox.testing import sign_in_and_consent

    settings = sandbox_settings(sandbox, connection_key, **kwargs)
    store = TokenStore(engine, connection_key, cipher or TokenCipher.from_environment())
    request = oauth.start_authorization(settings, "http://127.0.0.1:8080/xero/callback")
    tokens = oauth.finish_authorization(settings, request, sign_in_and_consent(request.url))
    oauth.complete_sign_in(settings, store, tokens, XeroClient(settings, store, sleep=lambda s: None))
    return settings, store


def airflow_connection_env(monkeypatch, sandbox, db_url: str, conn_id: str = "xero_default",
                           secret: str = CLIENT_SECRET, **extra: str) -> None:
    """The ``xero`` and ``intoaec_db`` connections as Airflow reads them from the environment."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({
        "conn_type": "xero", "login": CLIENT_ID, "password": secret,
        "extra": {"api_base_url": f"{sandbox.base_url}/api.xro/2.0", "identity_base_url": sandbox.base_url,
                  "sandbox": True, **extra},
    }))
    monkeypatch.setenv("AIRFLOW_CONN_INTOAEC_DB", json.dumps({"conn_type": "generic",
                                                              "extra": {"sqlalchemy_url": db_url}}))
