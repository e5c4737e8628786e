"""Firms connecting their own Xero: which firm connected which organisation, and sign-ins in progress

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-20 10:00:00

intoaec_firm_tenants maps IntoAEC's firms to the organisations they connected through the connect API;
intoaec_connect_sessions holds each firm's sign-in until its callback uses it. Both start empty: firms
connect after the upgrade. A firm's grant is an ordinary xero_tokens row keyed 'firm:<firm_id>'.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intoaec_firm_tenants",
        sa.Column("firm_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_name", sa.String(length=255), nullable=True),
        sa.Column("connection_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("sync_enabled", sa.Boolean(), nullable=False),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("firm_id", "tenant_id"),
    )
    op.create_index("ix_intoaec_firm_tenants_tenant", "intoaec_firm_tenants", ["tenant_id"])
    op.create_table(
        "intoaec_connect_sessions",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("firm_id", sa.String(length=64), nullable=False),
        sa.Column("return_url", sa.Text(), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("verifier", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("session_id"),
    )
    op.create_index("ix_intoaec_connect_sessions_firm", "intoaec_connect_sessions", ["firm_id"])


def downgrade() -> None:
    op.drop_index("ix_intoaec_connect_sessions_firm", table_name="intoaec_connect_sessions")
    op.drop_table("intoaec_connect_sessions")
    op.drop_index("ix_intoaec_firm_tenants_tenant", table_name="intoaec_firm_tenants")
    op.drop_table("intoaec_firm_tenants")
