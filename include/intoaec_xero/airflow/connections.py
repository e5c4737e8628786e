"""Build the pipeline's settings from Airflow connections (``xero_default``, ``intoaec_db``)."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from intoaec_xero.environment import RuntimeSettings, current, names
from intoaec_xero.errors import ConfigurationError, ConnectionMissing
from intoaec_xero.settings import (
    DEFAULT_SCOPES,
    XERO_CONNECTIONS_BASE_URL,
    XERO_EXTRA,
    XERO_IDENTITY_BASE_URL,
    XERO_LOGIN_BASE_URL,
    XeroSettings,
    read_extras,
    split_scopes,
    split_tenants,
)

XERO_CONN_ID = "xero_default"
CONN_IDS_VARIABLE = "intoaec_xero_conn_ids"  # the connections xero_sync reads, comma separated
# In the API server, while it answers a Test of a Xero connection: the saved connection the test
# names (Airflow runs the test under a temporary id; see airflow/test_button.py).
testing_saved: ContextVar[str | None] = ContextVar("intoaec_xero_testing_saved", default=None)
DB_CONN_ID = "intoaec_db"
# IntoAEC's web app as a client of the connect API: password = bearer token, extra return_url_prefixes.
APP_CONN_ID = "intoaec_app"


def get_connection(conn_id: str):
    """The connection wherever Airflow keeps it, in Airflow's order, or a clear error.

    Inside Airflow's own processes (a task, the API server, a worker testing a connection form)
    the Task SDK's lookup is the one Airflow set up for that process. Anywhere else (this
    package's CLI, a script) the Task SDK reads only environment variables and a secrets
    backend, never the metadata database where Admin ▸ Connections and ``airflow connections
    add`` store connections; there the lookup is the one ``airflow connections get`` uses.
    """
    if _in_airflow_process(conn_id):
        return _task_sdk_connection(conn_id)
    return _stored_connection(conn_id)


def _in_airflow_process(conn_id: str | None = None) -> bool:
    """Whether Airflow already chose how this process reads connections."""
    import os
    import sys

    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    if getattr(runner, "SUPERVISOR_COMMS", None) is not None:
        return True  # a task, also under `airflow dags test`; DAG parsing and triggers too
    if os.environ.get("_AIRFLOW_PROCESS_CONTEXT"):
        return True  # the API server ("server"), a worker testing a connection form ("client")
    return conn_id is not None and form_under_test(conn_id)


def form_under_test(conn_id: str) -> bool:
    """Whether Airflow holds ``conn_id`` in memory as a form being tested, not as the saved connection.

    Airflow's worker-side connection test runs the form under the real connection id, so its
    values (and URLs) are whatever the person testing typed, not what was saved.
    """
    try:
        from airflow.sdk.execution_time.context import _preset_connections
    except ImportError:
        return False
    return conn_id in (_preset_connections.get() or {})


def configured_conn_ids(read_variable: Callable[[], str | None], settings: RuntimeSettings | None = None) -> list[str]:
    """The connections ``xero_sync`` reads: INTOAEC_XERO_CONN_IDS, else the Variable (read by the caller's
    means: a task's and the API server's differ); empty when neither names any."""
    configured = (settings or current()).xero_conn_ids
    if configured:
        return list(configured)
    return list(names(read_variable() or ""))


def same_connection(one: Any, other: Any) -> bool:
    """Every field that decides where requests go and what they carry is equal (the ids may differ)."""

    def fields(conn: Any) -> tuple:
        return (conn.conn_type, conn.host or None, conn.port or None, conn.schema or None, conn.login,
                conn.password, conn.extra_dejson)

    return fields(one) == fields(other)


def _task_sdk_connection(conn_id: str):
    try:
        from airflow.sdk import BaseHook

        return BaseHook.get_connection(conn_id)
    except Exception as error:  # Airflow raises different types inside and outside tasks
        if type(error).__name__ not in ("AirflowNotFoundException", "AirflowRuntimeError", "RuntimeError"):
            raise
        raise _missing(conn_id) from None


def _stored_connection(conn_id: str):
    """Secrets backend, then ``AIRFLOW_CONN_*``, then the metadata database, as Airflow orders them."""
    try:
        from airflow.models.connection import Connection as StoredConnection
    except ImportError:  # a worker-only install (Task SDK, no airflow-core) has no metadata database
        return _task_sdk_connection(conn_id)
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        stored = StoredConnection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        raise _missing(conn_id, metadata_db=_metadata_db()) from None
    except Exception as error:
        if type(error).__name__ != "AirflowSecretsBackendAccessDenied":
            raise
        raise ConfigurationError(f"Airflow's secrets backend refused the connection '{conn_id}': {error}") from None
    # The Task SDK's type, as inside a task, so callers see one kind of connection.
    return Connection(conn_id=conn_id, conn_type=stored.conn_type, description=stored.description,
                      host=stored.host, schema=stored.schema, login=stored.login, password=stored.password,
                      port=stored.port, extra=stored.extra)


def _metadata_db() -> str:
    """Where this process looked for stored connections: a wrong AIRFLOW_HOME is the usual miss."""
    try:
        from airflow.configuration import conf
        from sqlalchemy.engine import make_url

        return make_url(conf.get("database", "sql_alchemy_conn")).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only a hint in an error message
        return ""


def _missing(conn_id: str, metadata_db: str = "") -> ConnectionMissing:
    where = (f" Searched the environment, any secrets backend and Airflow's metadata database at {metadata_db}."
             if metadata_db else "")
    return ConnectionMissing(
        f"The Airflow connection '{conn_id}' is missing: add it in Admin → Connections or with "
        f"`airflow connections add {conn_id} …` (or set AIRFLOW_CONN_{conn_id.upper()}).{where}"
    )


def xero_settings(conn: Any, conn_id: str = XERO_CONN_ID) -> XeroSettings:
    """Settings from a ``xero`` connection; URLs that are not Xero's are refused unless it says ``sandbox``."""
    given = read_extras(conn.extra_dejson or {}, connection=conn_id)

    def value(key: str) -> Any:
        return given.get(key, XERO_EXTRA[key].default)

    api = value("api_base_url")
    identity = value("identity_base_url")
    # A sandbox serves everything on the identity host; Xero splits it over three.
    same_host = identity.rstrip("/") != XERO_IDENTITY_BASE_URL
    if not conn.login:
        raise ConfigurationError(f"The Xero connection '{conn_id}' has no Client ID (login).")
    if not conn.password:
        raise ConfigurationError(f"The Xero connection '{conn_id}' has no Client Secret (password).")
    return XeroSettings(
        client_id=conn.login,
        client_secret=conn.password,
        scopes=split_scopes(value("scopes")) or DEFAULT_SCOPES,
        tenant_filter=split_tenants(value("tenant_filter")),
        api_base_url=api.rstrip("/"),
        identity_base_url=identity.rstrip("/"),
        login_base_url=given.get("login_base_url", identity if same_host else XERO_LOGIN_BASE_URL).rstrip("/"),
        connections_base_url=given.get("connections_base_url",
                                       identity if same_host else XERO_CONNECTIONS_BASE_URL).rstrip("/"),
        grant_type=value("grant_type"),
        connection_key=conn_id,
        calls_per_minute=value("calls_per_minute"),
        max_attempts=value("max_attempts"),
        connect_timeout=value("connect_timeout"),
        request_timeout=value("read_timeout"),
        sandbox=value("sandbox"),
        project_tracking_category=value("project_tracking_category"),
        project_reference_pattern=value("project_reference_pattern"),
        ledger_source=value("ledger_source").strip().lower(),
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
