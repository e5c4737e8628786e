"""The cost side: bank transactions, manual journals, purchase orders, overpayments, prepayments (with their
allocations) and linked transactions

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-12 10:00:00

New tables only: nothing that is there changes. The first sync after the upgrade reads each new stream
whole (it has no watermark yet). A grant made before the sync asked for accounting.banktransactions.read
and accounting.manualjournals.read lacks them until the organisation consents again; those two streams
are skipped until then, saying so, and the rest syncs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _money(name: str) -> sa.Column:
    return sa.Column(name, sa.Numeric(precision=18, scale=2), nullable=True)


def _text(name: str, length: int) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=True)


def _key(name: str) -> sa.Column:
    return sa.Column(name, sa.String(length=64), nullable=False)


def _updated() -> sa.Column:
    return sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True)


def _document_lines(table: str, parent_key: str) -> None:
    op.create_table(
        table,
        _key("tenant_id"),
        _key("line_item_id"),
        _key(parent_key),
        sa.Column("line_number", sa.Integer(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("quantity", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("unit_amount", sa.Numeric(precision=18, scale=4), nullable=True),
        _text("item_code", 100),
        _text("account_code", 50),
        _text("tax_type", 50),
        _money("tax_amount"),
        _money("line_amount"),
        sa.Column("discount_rate", sa.Numeric(precision=9, scale=4), nullable=True),
        _text("project", 255),
        sa.Column("tracking", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "line_item_id"),
    )
    with op.batch_alter_table(table) as batch:
        batch.create_index(f"ix_{table}_{parent_key.removesuffix('_id')}", ["tenant_id", parent_key], unique=False)


def _deposits(table: str, key: str, *extra: sa.Column) -> None:
    op.create_table(
        table,
        _key("tenant_id"),
        _key(key),
        _text("type", 32),
        _text("contact_id", 64),
        _text("status", 32),
        _text("line_amount_types", 16),
        sa.Column("date", sa.Date(), nullable=True),
        _text("reference", 500),
        *extra,
        _text("currency_code", 3),
        sa.Column("currency_rate", sa.Numeric(precision=18, scale=10), nullable=True),
        _money("sub_total"),
        _money("total_tax"),
        _money("total"),
        _money("remaining_credit"),
        _money("applied_amount"),
        _updated(),
        sa.PrimaryKeyConstraint("tenant_id", key),
    )
    with op.batch_alter_table(table) as batch:
        batch.create_index(f"ix_{table}_contact", ["tenant_id", "contact_id"], unique=False)


def _allocations(table: str, parent_key: str) -> None:
    op.create_table(
        table,
        _key("tenant_id"),
        _key("allocation_id"),
        _key(parent_key),
        _text("invoice_id", 64),
        _money("amount"),
        sa.Column("date", sa.Date(), nullable=True),
        sa.Column("is_deleted", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "allocation_id"),
    )
    with op.batch_alter_table(table) as batch:
        batch.create_index(f"ix_{table}_{parent_key.removesuffix('_id')}", ["tenant_id", parent_key], unique=False)
        batch.create_index(f"ix_{table}_invoice", ["tenant_id", "invoice_id"], unique=False)


# (table, its indexes), in the order they are created; dropped in reverse.
INDEXES = {
    "bank_transactions": ["ix_bank_transactions_contact"],
    "bank_transaction_lines": ["ix_bank_transaction_lines_bank_transaction"],
    "manual_journals": [],
    "manual_journal_lines": ["ix_manual_journal_lines_manual_journal"],
    "purchase_orders": ["ix_purchase_orders_contact"],
    "purchase_order_lines": ["ix_purchase_order_lines_purchase_order"],
    "overpayments": ["ix_overpayments_contact"],
    "overpayment_allocations": ["ix_overpayment_allocations_overpayment", "ix_overpayment_allocations_invoice"],
    "prepayments": ["ix_prepayments_contact"],
    "prepayment_allocations": ["ix_prepayment_allocations_prepayment", "ix_prepayment_allocations_invoice"],
    "linked_transactions": ["ix_linked_transactions_source"],
}


def upgrade() -> None:
    op.create_table(
        "bank_transactions",
        _key("tenant_id"),
        _key("bank_transaction_id"),
        _text("type", 32),
        _text("contact_id", 64),
        _text("bank_account_id", 64),
        _text("bank_account_code", 50),
        _text("status", 32),
        _text("line_amount_types", 16),
        sa.Column("date", sa.Date(), nullable=True),
        _text("reference", 500),
        _text("currency_code", 3),
        sa.Column("currency_rate", sa.Numeric(precision=18, scale=10), nullable=True),
        _money("sub_total"),
        _money("total_tax"),
        _money("total"),
        sa.Column("is_reconciled", sa.Boolean(), nullable=True),
        _text("prepayment_id", 64),
        _text("overpayment_id", 64),
        _updated(),
        sa.PrimaryKeyConstraint("tenant_id", "bank_transaction_id"),
    )
    with op.batch_alter_table("bank_transactions") as batch:
        batch.create_index("ix_bank_transactions_contact", ["tenant_id", "contact_id"], unique=False)
    _document_lines("bank_transaction_lines", "bank_transaction_id")

    op.create_table(
        "manual_journals",
        _key("tenant_id"),
        _key("manual_journal_id"),
        sa.Column("narration", sa.Text(), nullable=True),
        sa.Column("date", sa.Date(), nullable=True),
        _text("status", 32),
        _text("line_amount_types", 16),
        sa.Column("show_on_cash_basis_reports", sa.Boolean(), nullable=True),
        _updated(),
        sa.PrimaryKeyConstraint("tenant_id", "manual_journal_id"),
    )
    op.create_table(
        "manual_journal_lines",
        _key("tenant_id"),
        _key("manual_journal_line_id"),
        _key("manual_journal_id"),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        _text("account_id", 64),
        _text("account_code", 50),
        _text("tax_type", 50),
        _money("tax_amount"),
        _money("line_amount"),
        sa.Column("is_blank", sa.Boolean(), nullable=True),
        _text("project", 255),
        sa.Column("tracking", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "manual_journal_line_id"),
    )
    with op.batch_alter_table("manual_journal_lines") as batch:
        batch.create_index("ix_manual_journal_lines_manual_journal", ["tenant_id", "manual_journal_id"],
                           unique=False)

    op.create_table(
        "purchase_orders",
        _key("tenant_id"),
        _key("purchase_order_id"),
        _text("purchase_order_number", 255),
        _text("reference", 500),
        _text("contact_id", 64),
        _text("status", 32),
        _text("line_amount_types", 16),
        sa.Column("date", sa.Date(), nullable=True),
        sa.Column("delivery_date", sa.Date(), nullable=True),
        sa.Column("expected_arrival_date", sa.Date(), nullable=True),
        _text("currency_code", 3),
        sa.Column("currency_rate", sa.Numeric(precision=18, scale=10), nullable=True),
        _money("sub_total"),
        _money("total_tax"),
        _money("total"),
        sa.Column("sent_to_contact", sa.Boolean(), nullable=True),
        _updated(),
        sa.PrimaryKeyConstraint("tenant_id", "purchase_order_id"),
    )
    with op.batch_alter_table("purchase_orders") as batch:
        batch.create_index("ix_purchase_orders_contact", ["tenant_id", "contact_id"], unique=False)
    _document_lines("purchase_order_lines", "purchase_order_id")

    _deposits("overpayments", "overpayment_id")
    _allocations("overpayment_allocations", "overpayment_id")
    _deposits("prepayments", "prepayment_id", _text("invoice_number", 255))
    _allocations("prepayment_allocations", "prepayment_id")

    op.create_table(
        "linked_transactions",
        _key("tenant_id"),
        _key("linked_transaction_id"),
        _text("type", 32),
        _text("status", 32),
        _text("source_transaction_id", 64),
        _text("source_line_item_id", 64),
        _text("source_transaction_type_code", 16),
        _text("contact_id", 64),
        _text("target_transaction_id", 64),
        _text("target_line_item_id", 64),
        _updated(),
        sa.PrimaryKeyConstraint("tenant_id", "linked_transaction_id"),
    )
    with op.batch_alter_table("linked_transactions") as batch:
        batch.create_index("ix_linked_transactions_source", ["tenant_id", "source_transaction_id"], unique=False)


def downgrade() -> None:
    for table, indexes in reversed(INDEXES.items()):
        if indexes:
            with op.batch_alter_table(table) as batch:
                for name in reversed(indexes):
                    batch.drop_index(name)
        op.drop_table(table)
