"""IntoAEC's project tables (project_financials, project_summary, ar_aging); credit notes keep their rate

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-12 12:00:00

The project tables are rebuilt per tenant after each load, so they fill at the next sync. Credit notes
gain reference, line_amount_types and currency_rate, which a credit note's lines need to be converted
to base currency tax exclusive; the next full reconcile (or a --full sync) fills them in for old rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PROJECT_MONEY = ("invoiced", "credited", "other_income", "revenue", "received", "outstanding", "costs_bills",
                 "costs_spend_money", "costs_manual_journals", "costs_other", "costs", "gross_margin", "committed",
                 "unbilled_expenses", "deposits_held")
AGING = ("current", "days_1_30", "days_31_60", "days_61_90", "days_over_90", "total")


def _money(names) -> list[sa.Column]:
    return [sa.Column(n, sa.Numeric(precision=18, scale=2), nullable=False) for n in names]


def _key(name: str) -> sa.Column:
    return sa.Column(name, sa.String(length=64), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("credit_notes") as batch:
        batch.add_column(sa.Column("reference", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("line_amount_types", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("currency_rate", sa.Numeric(precision=18, scale=10), nullable=True))
    op.create_table(
        "project_financials",
        _key("tenant_id"),
        _key("project"),
        sa.Column("month", sa.Date(), nullable=False),
        *_money(PROJECT_MONEY),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "project", "month"),
    )
    op.create_table(
        "project_summary",
        _key("tenant_id"),
        _key("project"),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("client_name", sa.String(length=500), nullable=True),
        sa.Column("first_activity", sa.Date(), nullable=True),
        sa.Column("last_activity", sa.Date(), nullable=True),
        *_money(PROJECT_MONEY),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "project"),
    )
    op.create_table(
        "ar_aging",
        _key("tenant_id"),
        _key("contact_id"),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("contact_name", sa.String(length=500), nullable=True),
        *_money(AGING),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "contact_id", "as_of"),
    )


def downgrade() -> None:
    op.drop_table("ar_aging")
    op.drop_table("project_summary")
    op.drop_table("project_financials")
    with op.batch_alter_table("credit_notes") as batch:
        batch.drop_column("currency_rate")
        batch.drop_column("line_amount_types")
        batch.drop_column("reference")
