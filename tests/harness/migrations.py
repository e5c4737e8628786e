"""Alembic from tests: move a database to a revision, and what differs between it and the code."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from intoaec_xero import db
from intoaec_xero.schema import metadata

HEAD = ScriptDirectory.from_config(db._alembic_config(None)).get_current_head()


def alembic(engine, action: str, revision: str) -> None:
    """``action`` is "upgrade" or "downgrade"."""
    with engine.begin() as conn:
        getattr(command, action)(db._alembic_config(conn), revision)


def differences(engine, tables: set[str] | None = None) -> list:
    """What differs between the database and the code (only about ``tables``, when given)."""
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    if tables is None:
        return diff

    def table_of(item) -> str | None:
        if isinstance(item, list):  # column changes come grouped: ("modify_type", schema, table, column, ...)
            return table_of(item[0])
        name = item[0]
        if name.endswith("_table"):
            return item[1].name
        if name.endswith("_index"):
            return item[1].table.name
        return item[2] if len(item) > 2 else None

    return [item for item in diff if table_of(item) in tables]
