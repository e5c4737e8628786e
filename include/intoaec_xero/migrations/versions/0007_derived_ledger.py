"""Bank transfers, tax rates and the organisation; journals say where they came from, and journal lines carry
their journal's date and source

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-19 10:00:00

New tables bank_transfers, tax_rates and organisations fill at the next sync (the first reads each new stream
whole). journals.origin says whether a journal was read from Xero ('xero', every journal there so far) or
built by IntoAEC ('derived', 'balancing'). journal_lines gains journal_date, source_type and source_id, copied
from its journal here and by every load after, and an index on (tenant_id, account_id).

The copy is one UPDATE … FROM, which PostgreSQL and SQLite (3.33 and later) both run as a join.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

NEW_TABLES = ("organisations", "tax_rates", "bank_transfers")
LINE_COLUMNS = ("journal_date", "source_type", "source_id")


def _text(name: str, length: int) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=True)


def _key(name: str) -> sa.Column:
    return sa.Column(name, sa.String(length=64), nullable=False)


def upgrade() -> None:
    op.create_table(
        "organisations",
        _key("tenant_id"),
        _key("organisation_id"),
        _text("name", 255),
        _text("legal_name", 255),
        _text("base_currency", 3),
        _text("country_code", 8),
        sa.Column("financial_year_end_day", sa.Integer(), nullable=True),
        sa.Column("financial_year_end_month", sa.Integer(), nullable=True),
        _text("organisation_class", 32),
        _text("timezone", 64),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    op.create_table(
        "tax_rates",
        _key("tenant_id"),
        _key("tax_type"),
        _text("name", 255),
        _text("status", 32),
        _text("report_tax_type", 50),
        sa.Column("effective_rate", sa.Numeric(precision=9, scale=4), nullable=True),
        sa.Column("display_tax_rate", sa.Numeric(precision=9, scale=4), nullable=True),
        sa.Column("components", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "tax_type"),
    )
    op.create_table(
        "bank_transfers",
        _key("tenant_id"),
        _key("bank_transfer_id"),
        _text("from_bank_account_id", 64),
        _text("from_bank_account_code", 50),
        _text("to_bank_account_id", 64),
        _text("to_bank_account_code", 50),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("date", sa.Date(), nullable=True),
        sa.Column("currency_rate", sa.Numeric(precision=18, scale=10), nullable=True),
        _text("from_bank_transaction_id", 64),
        _text("to_bank_transaction_id", 64),
        _text("reference", 500),
        _text("status", 32),
        sa.Column("has_attachments", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "bank_transfer_id"),
    )

    # Every journal so far was read from Xero: the default says so for them, and the load says it from now on.
    with op.batch_alter_table("journals") as batch:
        batch.add_column(sa.Column("origin", sa.String(length=16), nullable=False, server_default="xero"))

    with op.batch_alter_table("journal_lines") as batch:
        batch.add_column(sa.Column("journal_date", sa.Date(), nullable=True))
        batch.add_column(_text("source_type", 50))
        batch.add_column(_text("source_id", 64))
        batch.create_index("ix_journal_lines_account_id", ["tenant_id", "account_id"], unique=False)
    op.execute(
        "UPDATE journal_lines SET journal_date = journals.journal_date, source_type = journals.source_type, "
        "source_id = journals.source_id FROM journals "
        "WHERE journals.tenant_id = journal_lines.tenant_id AND journals.journal_id = journal_lines.journal_id"
    )


def downgrade() -> None:
    with op.batch_alter_table("journal_lines") as batch:
        batch.drop_index("ix_journal_lines_account_id")
        for name in reversed(LINE_COLUMNS):
            batch.drop_column(name)
    with op.batch_alter_table("journals") as batch:
        batch.drop_column("origin")
    for table in reversed(NEW_TABLES):
        op.drop_table(table)
