"""Which Xero connections the Xero page can show, and where Airflow finds the one it shows.

Airflow looks a connection up in a secrets backend, then in ``AIRFLOW_CONN_<ID>`` variables,
then in its metadata database. A connection set by a variable is not listed in Admin ▸
Connections, and one added there under the same id is silently ignored; the page says so.
Runs in the API server, which owns the metadata database.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from intoaec_xero.airflow.connections import CONN_IDS_VARIABLE, XERO_CONN_ID, configured_conn_ids

CONN_TYPE = "xero"
ENV_PREFIX = "AIRFLOW_CONN_"


@dataclass(frozen=True)
class ConnectionSource:
    """Where ``conn_id`` comes from, as far as this server can tell."""

    conn_id: str
    env_var: str | None  # the variable that defines it here, if any
    stored: bool  # a row in Admin ▸ Connections

    @property
    def shadow_warning(self) -> str | None:
        if self.env_var is None:
            return None
        if self.stored:
            return (f"The connection '{self.conn_id}' is set by the environment variable {self.env_var} on this "
                    "server, which Airflow reads before Admin ▸ Connections: the stored connection of that name is "
                    f"ignored, and edits to it have no effect until {self.env_var} is unset.")
        return (f"The connection '{self.conn_id}' is set by the environment variable {self.env_var} on this "
                "server, so Admin ▸ Connections does not list it; change it where that variable is set.")


def env_var(conn_id: str) -> str:
    return f"{ENV_PREFIX}{conn_id.upper()}"


def source(conn_id: str, stored_ids: Iterable[str]) -> ConnectionSource:
    name = env_var(conn_id)
    return ConnectionSource(conn_id, name if os.environ.get(name) else None, conn_id in set(stored_ids))


def stored_xero_ids() -> list[str]:
    """The Xero connections in Admin ▸ Connections (the metadata database)."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session(scoped=False) as session:
        return sorted(session.scalars(select(Connection.conn_id).where(Connection.conn_type == CONN_TYPE)))


def environment_xero_ids() -> list[str]:
    """The Xero connections set by ``AIRFLOW_CONN_*`` variables in this server's environment."""
    from airflow.secrets.environment_variables import EnvironmentVariablesBackend

    backend, found = EnvironmentVariablesBackend(), []
    for name in os.environ:
        if not name.startswith(ENV_PREFIX):
            continue
        conn_id = name[len(ENV_PREFIX):].lower()
        try:
            conn = backend.get_connection(conn_id)
        except Exception:  # noqa: BLE001 - a malformed variable is Airflow's to report, not the page's
            continue
        if conn is not None and conn.conn_type == CONN_TYPE:
            found.append(conn_id)
    return sorted(found)


def configured_ids() -> list[str]:
    """The connections ``xero_sync`` reads (INTOAEC_XERO_CONN_IDS, else the Variable), as the API server sees them."""
    from airflow.models.variable import Variable

    return configured_conn_ids(lambda: Variable.get(CONN_IDS_VARIABLE, default_var=None))


def choices(current: str, configured: Iterable[str], stored: Iterable[str], from_env: Iterable[str],
            may_see: Callable[[str], bool]) -> list[str]:
    """The connections the page offers: the one shown, the synced ones (``intoaec_xero_conn_ids``),
    every Xero connection stored or set by a variable, and ``xero_default``; those the user may see."""
    ids = dict.fromkeys([current, *configured, XERO_CONN_ID, *sorted({*stored, *from_env})])
    return [conn_id for conn_id in ids if conn_id == current or may_see(conn_id)]
