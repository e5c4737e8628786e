"""Migration 0007 (bank transfers, tax rates, the organisation; journals' origin; journal lines carrying their
journal's date and source) goes up and down on SQLite and PostgreSQL, fills what it adds for the rows already
there, and makes the schema exactly as the code declares it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from intoaec_xero import db
from sqlalchemy import inspect, text

from tests.harness.migrations import HEAD, alembic, differences

NEW_TABLES = {"bank_transfers", "tax_rates", "organisations"}
CHANGED_TABLES = {"journals", "journal_lines"}
LINE_COLUMNS = {"journal_date", "source_type", "source_id"}


def _columns(engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def _date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)  # SQLite hands back text


def test_0007_upgrades_and_downgrades_on_both_backends(empty_db_url):
    engine = db.create_db_engine(empty_db_url)
    try:
        alembic(engine, "upgrade", "0006")
        assert not NEW_TABLES & set(inspect(engine).get_table_names())
        assert "origin" not in _columns(engine, "journals")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO journals (tenant_id, journal_id, journal_number, journal_date, "
                              "source_type, source_id) VALUES ('t', 'j-1', 1, '2024-03-01', 'ACCREC', 'inv-1')"))
            # Another tenant's journal with the same id: each line takes its own tenant's.
            conn.execute(text("INSERT INTO journals (tenant_id, journal_id, journal_number, journal_date, "
                              "source_type, source_id) VALUES ('u', 'j-1', 7, '2023-12-31', 'CASHPAID', 'bt-9')"))
            conn.execute(text("INSERT INTO journal_lines (tenant_id, journal_line_id, journal_id, account_id, "
                              "account_code, net_amount) VALUES ('t', 'jl-1', 'j-1', 'acc-ar', '610', 115.00)"))
            conn.execute(text("INSERT INTO journal_lines (tenant_id, journal_line_id, journal_id, account_id, "
                              "account_code, net_amount) VALUES ('t', 'jl-2', 'j-1', 'acc-sales', '200', -115.00)"))
            conn.execute(text("INSERT INTO journal_lines (tenant_id, journal_line_id, journal_id, account_id, "
                              "net_amount) VALUES ('u', 'jl-1', 'j-1', 'acc-bank', -10.00)"))
            # A line whose journal is not there (never expected, but the copy must leave it alone).
            conn.execute(text("INSERT INTO journal_lines (tenant_id, journal_line_id, journal_id, net_amount) "
                              "VALUES ('t', 'jl-9', 'j-missing', 1.00)"))

        alembic(engine, "upgrade", "0007")
        assert db.schema_revision(engine) == "0007"
        assert NEW_TABLES <= set(inspect(engine).get_table_names())
        # Columns, types, keys and indexes as the code says.
        assert differences(engine, NEW_TABLES | CHANGED_TABLES) == []
        assert "ix_journal_lines_account_id" in {i["name"] for i in inspect(engine).get_indexes("journal_lines")}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT tenant_id, origin FROM journals ORDER BY tenant_id")).all() == [
                ("t", "xero"), ("u", "xero")]
            lines = {(r.tenant_id, r.journal_line_id): (r.journal_date and _date(r.journal_date), r.source_type,
                                                        r.source_id)
                     for r in conn.execute(text("SELECT * FROM journal_lines"))}
        assert lines == {
            ("t", "jl-1"): (dt.date(2024, 3, 1), "ACCREC", "inv-1"),
            ("t", "jl-2"): (dt.date(2024, 3, 1), "ACCREC", "inv-1"),
            ("u", "jl-1"): (dt.date(2023, 12, 31), "CASHPAID", "bt-9"),
            ("t", "jl-9"): (None, None, None),
        }
        with engine.begin() as conn:
            # A journal written without an origin (as by code from before 0007) is Xero's.
            conn.execute(text("INSERT INTO journals (tenant_id, journal_id, journal_number) VALUES ('t', 'j-2', 2)"))
            conn.execute(text("INSERT INTO journals (tenant_id, journal_id, journal_number, origin) "
                              "VALUES ('t', 'j-3', 3, 'derived')"))
            conn.execute(text("INSERT INTO bank_transfers (tenant_id, bank_transfer_id, amount, date, currency_rate, "
                              "has_attachments) VALUES ('t', 'x-1', 20.05, '2024-03-01', 1.2345678901, false)"))
            conn.execute(text("INSERT INTO tax_rates (tenant_id, tax_type, effective_rate, display_tax_rate) "
                              "VALUES ('t', 'INPUT2', 15.0000, 12.3456)"))
            conn.execute(text("INSERT INTO organisations (tenant_id, organisation_id, base_currency, "
                              "financial_year_end_day, financial_year_end_month) VALUES ('t', 'org-1', 'NZD', 31, 3)"))
        with engine.connect() as conn:
            assert dict(conn.execute(text("SELECT journal_id, origin FROM journals WHERE tenant_id = 't'")).all()) == {
                "j-1": "xero", "j-2": "xero", "j-3": "derived"}
            amount, rate = conn.execute(text("SELECT amount, currency_rate FROM bank_transfers")).one()
            assert (Decimal(str(amount)), Decimal(str(rate))) == (Decimal("20.05"), Decimal("1.2345678901"))
            assert Decimal(str(conn.execute(text("SELECT display_tax_rate FROM tax_rates")).scalar_one())) == Decimal(
                "12.3456")

        db.upgrade(engine)  # to the newest revision: the whole schema is the code's
        assert db.schema_revision(engine) == HEAD
        assert differences(engine) == []

        alembic(engine, "downgrade", "0006")
        assert db.schema_revision(engine) == "0006"
        assert not NEW_TABLES & set(inspect(engine).get_table_names())
        assert "origin" not in _columns(engine, "journals")
        assert not LINE_COLUMNS & _columns(engine, "journal_lines")
        assert "ix_journal_lines_account_id" not in {i["name"] for i in inspect(engine).get_indexes("journal_lines")}
        with engine.connect() as conn:  # what was there before 0007 is untouched
            assert conn.execute(text("SELECT count(*) FROM journals")).scalar_one() == 4
            net = conn.execute(text("SELECT net_amount FROM journal_lines WHERE tenant_id = 't' "
                                    "AND journal_line_id = 'jl-2'")).scalar_one()
            assert Decimal(str(net)) == Decimal("-115.00")
        assert {i["name"] for i in inspect(engine).get_indexes("journal_lines")} >= {
            "ix_journal_lines_journal", "ix_journal_lines_account"}

        assert NEW_TABLES <= set(db.upgrade(engine))  # and up again
        assert db.schema_revision(engine) == HEAD
        assert differences(engine) == []
        with engine.connect() as conn:
            assert conn.execute(text("SELECT DISTINCT origin FROM journals")).scalars().all() == ["xero"]
            assert _date(conn.execute(text("SELECT journal_date FROM journal_lines WHERE tenant_id = 'u'"))
                         .scalar_one()) == dt.date(2023, 12, 31)
    finally:
        engine.dispose()
