"""sync_runs.kind: tell the sync's runs from the backfill's

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 20:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_runs") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=16), nullable=True))
    # Rows from before: the backfill's are the ones whose message says so.
    op.execute("UPDATE sync_runs SET kind = 'backfill' WHERE message LIKE 'backfill window%' "
               "OR message LIKE 'journal backfill%'")
    op.execute("UPDATE sync_runs SET kind = 'sync' WHERE kind IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("sync_runs") as batch:
        batch.drop_column("kind")
