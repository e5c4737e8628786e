"""Migration 0005 (the cost side's tables) goes up and down on SQLite and PostgreSQL, keeping the rows that
were there before it, and makes those tables exactly as the code declares them."""

from __future__ import annotations

from decimal import Decimal

from intoaec_xero import db
from sqlalchemy import inspect, text

from tests.harness.migrations import HEAD, alembic, differences

NEW_TABLES = {"bank_transactions", "bank_transaction_lines", "manual_journals", "manual_journal_lines",
              "purchase_orders", "purchase_order_lines", "overpayments", "overpayment_allocations", "prepayments",
              "prepayment_allocations", "linked_transactions"}


def test_0005_upgrades_and_downgrades_on_both_backends(empty_db_url):
    engine = db.create_db_engine(empty_db_url)
    try:
        alembic(engine, "upgrade", "0004")
        assert not NEW_TABLES & set(inspect(engine).get_table_names())
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO invoices (tenant_id, invoice_id, total) VALUES ('t', 'inv-1', 115.00)"))
            conn.execute(text("INSERT INTO credit_note_lines (tenant_id, line_item_id, credit_note_id, project) "
                              "VALUES ('t', 'cnl-1', 'cn-1', 'P-1')"))

        alembic(engine, "upgrade", "0005")
        assert db.schema_revision(engine) == "0005"
        assert NEW_TABLES <= set(inspect(engine).get_table_names())
        assert differences(engine, NEW_TABLES) == []  # columns, types, keys and indexes as the code says
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO bank_transactions (tenant_id, bank_transaction_id, type, total, "
                              "is_reconciled) VALUES ('t', 'bt-1', 'SPEND', 12.34, true)"))
            conn.execute(text("INSERT INTO bank_transaction_lines (tenant_id, line_item_id, bank_transaction_id, "
                              "unit_amount, line_amount, project) VALUES ('t', 'btl-1', 'bt-1', 1.2345, 12.34, 'P-1')"))
            conn.execute(text("INSERT INTO manual_journal_lines (tenant_id, manual_journal_line_id, manual_journal_id, "
                              "line_number, line_amount) VALUES ('t', 'mj-1/1', 'mj-1', 1, -5.00)"))
            conn.execute(text("INSERT INTO prepayment_allocations (tenant_id, allocation_id, prepayment_id, "
                              "invoice_id, amount) VALUES ('t', 'a-1', 'pp-1', 'inv-1', 40.00)"))
            conn.execute(text("INSERT INTO linked_transactions (tenant_id, linked_transaction_id, status) "
                              "VALUES ('t', 'lt-1', 'APPROVED')"))
        with engine.connect() as conn:
            unit, amount = conn.execute(text("SELECT unit_amount, line_amount FROM bank_transaction_lines")).one()
            assert (Decimal(str(unit)), Decimal(str(amount))) == (Decimal("1.2345"), Decimal("12.34"))

        db.upgrade(engine)  # to the newest revision: the whole schema is the code's
        assert db.schema_revision(engine) == HEAD
        assert differences(engine) == []

        alembic(engine, "downgrade", "0004")
        assert db.schema_revision(engine) == "0004"
        assert not NEW_TABLES & set(inspect(engine).get_table_names())
        with engine.connect() as conn:  # what was there before 0005 is untouched
            total = conn.execute(text("SELECT total FROM invoices WHERE invoice_id = 'inv-1'")).scalar_one()
            assert Decimal(str(total)) == Decimal("115.00")
            assert conn.execute(text("SELECT project FROM credit_note_lines")).scalar_one() == "P-1"

        assert NEW_TABLES <= set(db.upgrade(engine))  # and up again
        assert db.schema_revision(engine) == HEAD
        assert differences(engine) == []
    finally:
        engine.dispose()
