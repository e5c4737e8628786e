"""Project tracking: credit_note_lines, journal_lines.tracking/project, project_dimension_overrides

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10 10:00:00

Journal lines already loaded keep NULL tracking and project: journals never change, so only a
re-read of the ledger fills them. Invoice lines get the new default names (Projects, Job, Jobs)
and a configured category when their invoice is read again (at the latest, the weekly full
reconcile).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit_note_lines",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("line_item_id", sa.String(length=64), nullable=False),
        sa.Column("credit_note_id", sa.String(length=64), nullable=False),
        sa.Column("line_number", sa.Integer(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("quantity", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("unit_amount", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("item_code", sa.String(length=100), nullable=True),
        sa.Column("account_code", sa.String(length=50), nullable=True),
        sa.Column("tax_type", sa.String(length=50), nullable=True),
        sa.Column("tax_amount", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("line_amount", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("discount_rate", sa.Numeric(precision=9, scale=4), nullable=True),
        sa.Column("project", sa.String(length=255), nullable=True),
        sa.Column("tracking", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "line_item_id"),
    )
    with op.batch_alter_table("credit_note_lines") as batch:
        batch.create_index("ix_credit_note_lines_credit_note", ["tenant_id", "credit_note_id"], unique=False)

    with op.batch_alter_table("journal_lines") as batch:
        batch.add_column(sa.Column("project", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("tracking", sa.JSON(), nullable=True))

    op.create_table(
        "project_dimension_overrides",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("tracking_category", sa.String(length=255), nullable=True),
        sa.Column("reference_pattern", sa.String(length=500), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id"),
    )


def downgrade() -> None:
    op.drop_table("project_dimension_overrides")
    with op.batch_alter_table("journal_lines") as batch:
        batch.drop_column("tracking")
        batch.drop_column("project")
    with op.batch_alter_table("credit_note_lines") as batch:
        batch.drop_index("ix_credit_note_lines_credit_note")
    op.drop_table("credit_note_lines")
