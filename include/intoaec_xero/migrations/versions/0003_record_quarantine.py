"""held_records (record-level quarantine); one dq_results row per run, tenant, table and check

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "held_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("record_key", sa.String(length=255), nullable=False),
        sa.Column("page", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("checks", sa.JSON(), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=True),
        sa.Column("raw_record", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by_run", sa.String(length=250), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("held_records") as batch:
        batch.create_index("uq_held_records_record", ["run_id", "tenant_id", "stream", "record_key"], unique=True)
        batch.create_index("ix_held_records_open", ["tenant_id", "stream", "status"], unique=False)

    # Retried load tasks used to add a second set of verdicts: keep each check's latest row.
    op.execute(
        "DELETE FROM dq_results WHERE id NOT IN (SELECT keep FROM (SELECT MAX(id) AS keep FROM dq_results "
        "GROUP BY run_id, tenant_id, table_name, check_name) AS latest)"
    )
    with op.batch_alter_table("dq_results") as batch:
        batch.drop_index("ix_dq_results_run")
        batch.create_index("uq_dq_results_check", ["run_id", "tenant_id", "table_name", "check_name"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("dq_results") as batch:
        batch.drop_index("uq_dq_results_check")
        batch.create_index("ix_dq_results_run", ["run_id", "tenant_id"], unique=False)
    with op.batch_alter_table("held_records") as batch:
        batch.drop_index("ix_held_records_open")
        batch.drop_index("uq_held_records_record")
    op.drop_table("held_records")
