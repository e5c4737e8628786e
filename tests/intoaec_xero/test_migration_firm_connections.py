"""Migration 0008 (firms' organisations and sign-ins) goes up and down on SQLite and PostgreSQL and makes the
schema exactly as the code declares it."""

from __future__ import annotations

from intoaec_xero import db
from sqlalchemy import inspect

from tests.harness.migrations import HEAD, alembic, differences

NEW_TABLES = {"intoaec_firm_tenants", "intoaec_connect_sessions"}


def test_0008_upgrades_and_downgrades_on_both_backends(empty_db_url):
    engine = db.create_db_engine(empty_db_url)
    try:
        alembic(engine, "upgrade", "0007")
        assert not NEW_TABLES & set(inspect(engine).get_table_names())
        alembic(engine, "upgrade", "0008")
        assert NEW_TABLES <= set(inspect(engine).get_table_names())
        assert differences(engine, NEW_TABLES) == []
        alembic(engine, "downgrade", "0007")
        assert not NEW_TABLES & set(inspect(engine).get_table_names())
        alembic(engine, "upgrade", HEAD)
        assert differences(engine) == []
    finally:
        engine.dispose()
