"""Build the pipeline's settings from Airflow connections (``xero_default``, ``intoaec_db``)."""

from __future__ import annotations

from typing import Any

from intoaec_xero.errors import ConfigurationError
from intoaec_xero.settings import (
    DEFAULT_SCOPES,
    XERO_API_BASE_URL,
    XERO_CONNECTIONS_BASE_URL,
    XERO_IDENTITY_BASE_URL,
    XERO_LOGIN_BASE_URL,
    XeroSettings,
    split_scopes,
    split_tenants,
)

XERO_CONN_ID = "xero_default"
DB_CONN_ID = "intoaec_db"


def get_connection(conn_id: str):
    """The connection, inside a task (Task SDK) or outside one (CLI, plugin), or a clear error."""
    try:
        from airflow.sdk import BaseHook

        return BaseHook.get_connection(conn_id)
    except Exception as error:  # Airflow raises different types inside and outside tasks
        if type(error).__name__ not in ("AirflowNotFoundException", "AirflowRuntimeError", "RuntimeError"):
            raise
        raise ConfigurationError(
            f"The Airflow connection '{conn_id}' is missing: add it in Admin → Connections "
            f"(or set AIRFLOW_CONN_{conn_id.upper()})."
        ) from None


def xero_settings(conn: Any, conn_id: str = XERO_CONN_ID) -> XeroSettings:
    extra = conn.extra_dejson or {}
    api = extra.get("api_base_url") or XERO_API_BASE_URL
    identity = extra.get("identity_base_url") or XERO_IDENTITY_BASE_URL
    # A sandbox serves everything on the identity host; Xero splits it over three.
    same_host = identity.rstrip("/") != XERO_IDENTITY_BASE_URL
    if not conn.login:
        raise ConfigurationError(f"The Xero connection '{conn_id}' has no Client ID (login).")
    if not conn.password:
        raise ConfigurationError(f"The Xero connection '{conn_id}' has no Client Secret (password).")
    return XeroSettings(
        client_id=conn.login,
        client_secret=conn.password,
        scopes=split_scopes(extra.get("scopes")) or DEFAULT_SCOPES,
        tenant_filter=split_tenants(extra.get("tenant_filter")),
        api_base_url=api.rstrip("/"),
        identity_base_url=identity.rstrip("/"),
        login_base_url=(extra.get("login_base_url") or (identity if same_host else XERO_LOGIN_BASE_URL)).rstrip("/"),
        connections_base_url=(extra.get("connections_base_url")
                              or (identity if same_host else XERO_CONNECTIONS_BASE_URL)).rstrip("/"),
        grant_type=extra.get("grant_type") or "authorization_code",
        connection_key=conn_id,
        calls_per_minute=int(extra.get("calls_per_minute") or 60),
    )


def db_url(conn: Any) -> str:
    """A SQLAlchemy URL from the ``intoaec_db`` connection.

    ``extra.sqlalchemy_url`` wins; otherwise a postgres connection maps to psycopg2 and a
    sqlite connection's host is the file path.
    """
    extra = conn.extra_dejson or {}
    if extra.get("sqlalchemy_url"):
        return extra["sqlalchemy_url"]
    kind = (conn.conn_type or "").lower()
    if kind in ("postgres", "postgresql"):
        from sqlalchemy.engine import URL

        return URL.create("postgresql+psycopg2", username=conn.login or None, password=conn.password or None,
                          host=conn.host or "127.0.0.1", port=conn.port or 5432,
                          database=conn.schema or "postgres").render_as_string(hide_password=False)
    if kind == "sqlite":
        return f"sqlite:///{conn.host}"
    raise ConfigurationError(
        f"The connection '{DB_CONN_ID}' ({kind or 'no type'}) is neither postgres nor sqlite and has no "
        "extra 'sqlalchemy_url'."
    )
