"""Migration 0004 (credit_note_lines, journal_lines tracking/project, project_dimension_overrides) goes up
and down on SQLite and PostgreSQL, keeping the rows that were there before it."""

from __future__ import annotations

from decimal import Decimal

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from intoaec_xero import db
from intoaec_xero.schema import metadata
from sqlalchemy import inspect, text

NEW_TABLES = {"credit_note_lines", "project_dimension_overrides"}
# db.upgrade goes to the newest revision, which later migrations move past 0004.
HEAD = ScriptDirectory.from_config(db._alembic_config(None)).get_current_head()


def _alembic(engine, action: str, revision: str) -> None:
    with engine.begin() as conn:
        getattr(command, action)(db._alembic_config(conn), revision)


def _journal_line_columns(engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("journal_lines")}


def test_0004_upgrades_and_downgrades_on_both_backends(empty_db_url):
    engine = db.create_db_engine(empty_db_url)
    try:
        _alembic(engine, "upgrade", "0003")
        assert not NEW_TABLES & set(inspect(engine).get_table_names())
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO journal_lines (tenant_id, journal_line_id, journal_id, account_code, "
                              "net_amount) VALUES ('t', 'jl-1', 'j-1', '200', 12.34)"))

        assert "credit_note_lines" in db.upgrade(engine)
        assert db.schema_revision(engine) == HEAD
        assert NEW_TABLES <= set(inspect(engine).get_table_names())
        assert {"project", "tracking"} <= _journal_line_columns(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
            assert diff == []
            # The line from before is kept, with no tracking until its journal is read again.
            net, project, tracking = conn.execute(text("SELECT net_amount, project, tracking FROM journal_lines")).one()
            assert (Decimal(str(net)), project, tracking) == (Decimal("12.34"), None, None)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO credit_note_lines (tenant_id, line_item_id, credit_note_id, unit_amount, "
                              "project) VALUES ('t', 'cnl-1', 'cn-1', 1.2345, 'P-1')"))
            conn.execute(text("INSERT INTO project_dimension_overrides (tenant_id, tracking_category) "
                              "VALUES ('t', 'Job')"))

        _alembic(engine, "downgrade", "0003")
        assert db.schema_revision(engine) == "0003"
        assert not NEW_TABLES & set(inspect(engine).get_table_names())
        assert not {"project", "tracking"} & _journal_line_columns(engine)
        indexes = {i["name"] for i in inspect(engine).get_indexes("journal_lines")}
        assert {"ix_journal_lines_journal", "ix_journal_lines_account"} <= indexes
        with engine.connect() as conn:
            line_id, net = conn.execute(text("SELECT journal_line_id, net_amount FROM journal_lines")).one()
            assert (line_id, Decimal(str(net))) == ("jl-1", Decimal("12.34"))

        db.upgrade(engine)  # and up again
        assert db.schema_revision(engine) == HEAD
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata) == []
    finally:
        engine.dispose()
