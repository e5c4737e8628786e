"""Scratch PostgreSQL databases for the benchmarks, on the local server."""

from __future__ import annotations

PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def _admin_run(*statements: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        admin.dispose()


def fresh_database(name: str) -> str:
    """An empty database called ``name`` (any old one dropped); returns its URL."""
    _admin_run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def drop_database(name: str) -> None:
    _admin_run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
