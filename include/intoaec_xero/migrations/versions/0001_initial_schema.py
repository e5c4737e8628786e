"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 17:05:38.473204
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('accounts',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('code', sa.String(length=50), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('type', sa.String(length=50), nullable=True),
    sa.Column('class', sa.String(length=50), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.Column('tax_type', sa.String(length=50), nullable=True),
    sa.Column('system_account', sa.String(length=50), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'account_id')
    )
    op.create_table('clients',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('contact_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=True),
    sa.Column('contact_number', sa.String(length=100), nullable=True),
    sa.Column('email', sa.String(length=500), nullable=True),
    sa.Column('is_customer', sa.Boolean(), nullable=True),
    sa.Column('is_supplier', sa.Boolean(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.Column('default_currency', sa.String(length=3), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'contact_id')
    )
    op.create_table('credit_notes',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('credit_note_id', sa.String(length=64), nullable=False),
    sa.Column('credit_note_number', sa.String(length=255), nullable=True),
    sa.Column('type', sa.String(length=16), nullable=True),
    sa.Column('contact_id', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.Column('date', sa.Date(), nullable=True),
    sa.Column('currency_code', sa.String(length=3), nullable=True),
    sa.Column('sub_total', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('total_tax', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('total', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('remaining_credit', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('allocations', sa.JSON(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'credit_note_id')
    )
    op.create_table('dq_results',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=250), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('table_name', sa.String(length=64), nullable=False),
    sa.Column('check_name', sa.String(length=128), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('observed', sa.Text(), nullable=True),
    sa.Column('expected', sa.Text(), nullable=True),
    sa.Column('failing_keys', sa.JSON(), nullable=True),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('dq_results', schema=None) as batch_op:
        batch_op.create_index('ix_dq_results_run', ['run_id', 'tenant_id'], unique=False)

    op.create_table('invoice_lines',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('line_item_id', sa.String(length=64), nullable=False),
    sa.Column('invoice_id', sa.String(length=64), nullable=False),
    sa.Column('line_number', sa.Integer(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('quantity', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('unit_amount', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('item_code', sa.String(length=100), nullable=True),
    sa.Column('account_code', sa.String(length=50), nullable=True),
    sa.Column('tax_type', sa.String(length=50), nullable=True),
    sa.Column('tax_amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('line_amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('discount_rate', sa.Numeric(precision=9, scale=4), nullable=True),
    sa.Column('project', sa.String(length=255), nullable=True),
    sa.Column('tracking', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'line_item_id')
    )
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.create_index('ix_invoice_lines_invoice', ['tenant_id', 'invoice_id'], unique=False)

    op.create_table('invoices',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('invoice_id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=True),
    sa.Column('invoice_number', sa.String(length=255), nullable=True),
    sa.Column('reference', sa.String(length=500), nullable=True),
    sa.Column('contact_id', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.Column('line_amount_types', sa.String(length=16), nullable=True),
    sa.Column('date', sa.Date(), nullable=True),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('currency_code', sa.String(length=3), nullable=True),
    sa.Column('currency_rate', sa.Numeric(precision=18, scale=10), nullable=True),
    sa.Column('sub_total', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('total_tax', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('total', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('amount_due', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('amount_paid', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('amount_credited', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('fully_paid_on_date', sa.Date(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'invoice_id')
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index('ix_invoices_contact', ['tenant_id', 'contact_id'], unique=False)

    op.create_table('journal_lines',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('journal_line_id', sa.String(length=64), nullable=False),
    sa.Column('journal_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=True),
    sa.Column('account_code', sa.String(length=50), nullable=True),
    sa.Column('account_type', sa.String(length=50), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('net_amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('gross_amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('tax_amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('tax_type', sa.String(length=50), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'journal_line_id')
    )
    with op.batch_alter_table('journal_lines', schema=None) as batch_op:
        batch_op.create_index('ix_journal_lines_account', ['tenant_id', 'account_code'], unique=False)
        batch_op.create_index('ix_journal_lines_journal', ['tenant_id', 'journal_id'], unique=False)

    op.create_table('journals',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('journal_id', sa.String(length=64), nullable=False),
    sa.Column('journal_number', sa.BigInteger(), nullable=False),
    sa.Column('journal_date', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reference', sa.String(length=500), nullable=True),
    sa.Column('source_type', sa.String(length=50), nullable=True),
    sa.Column('source_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'journal_id')
    )
    with op.batch_alter_table('journals', schema=None) as batch_op:
        batch_op.create_index('ix_journals_number', ['tenant_id', 'journal_number'], unique=False)

    op.create_table('payments',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('payment_id', sa.String(length=64), nullable=False),
    sa.Column('invoice_id', sa.String(length=64), nullable=True),
    sa.Column('credit_note_id', sa.String(length=64), nullable=True),
    sa.Column('account_id', sa.String(length=64), nullable=True),
    sa.Column('date', sa.Date(), nullable=True),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('currency_rate', sa.Numeric(precision=18, scale=10), nullable=True),
    sa.Column('reference', sa.String(length=500), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.Column('payment_type', sa.String(length=32), nullable=True),
    sa.Column('is_reconciled', sa.Boolean(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'payment_id')
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index('ix_payments_invoice', ['tenant_id', 'invoice_id'], unique=False)

    op.create_table('quarantine_batches',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=250), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('stream', sa.String(length=64), nullable=False),
    sa.Column('checks', sa.JSON(), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('records', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('quarantined_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('released_by_run', sa.String(length=250), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('quarantine_batches', schema=None) as batch_op:
        batch_op.create_index('ix_quarantine_batches_tenant', ['tenant_id', 'stream', 'status'], unique=False)

    op.create_table('quarantine_records',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('table_name', sa.String(length=64), nullable=True),
    sa.Column('record_key', sa.String(length=255), nullable=True),
    sa.Column('check_name', sa.String(length=128), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('raw_record', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('quarantine_records', schema=None) as batch_op:
        batch_op.create_index('ix_quarantine_records_batch', ['batch_id'], unique=False)

    op.create_table('sync_runs',
    sa.Column('run_id', sa.String(length=250), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('stream', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('rows_extracted', sa.Integer(), nullable=True),
    sa.Column('rows_loaded', sa.Integer(), nullable=True),
    sa.Column('rows_inserted', sa.Integer(), nullable=True),
    sa.Column('rows_updated', sa.Integer(), nullable=True),
    sa.Column('api_calls', sa.Integer(), nullable=True),
    sa.Column('rate_limited', sa.Integer(), nullable=True),
    sa.Column('quota_day_remaining', sa.Integer(), nullable=True),
    sa.Column('quota_minute_remaining', sa.Integer(), nullable=True),
    sa.Column('quality_verdict', sa.String(length=32), nullable=True),
    sa.Column('quality_summary', sa.JSON(), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('run_id', 'tenant_id', 'stream')
    )
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.create_index('ix_sync_runs_tenant_started', ['tenant_id', 'started_at'], unique=False)

    op.create_table('sync_state',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('stream', sa.String(length=64), nullable=False),
    sa.Column('watermark', sa.DateTime(timezone=True), nullable=True),
    sa.Column('journal_offset', sa.BigInteger(), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_full_sync_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'stream')
    )
    op.create_table('tracking_categories',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('tracking_category_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'tracking_category_id')
    )
    op.create_table('tracking_options',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('tracking_option_id', sa.String(length=64), nullable=False),
    sa.Column('tracking_category_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'tracking_option_id')
    )
    op.create_table('xero_tenants',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('tenant_name', sa.String(length=255), nullable=False),
    sa.Column('tenant_type', sa.String(length=32), nullable=True),
    sa.Column('connection_id', sa.String(length=64), nullable=True),
    sa.Column('connection_key', sa.String(length=128), nullable=False),
    sa.Column('connection_status', sa.String(length=32), nullable=False),
    sa.Column('sync_enabled', sa.Boolean(), nullable=False),
    sa.Column('connected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id')
    )
    op.create_table('xero_tokens',
    sa.Column('connection_key', sa.String(length=128), nullable=False),
    sa.Column('token', sa.LargeBinary(), nullable=False),
    sa.Column('encrypted', sa.Boolean(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('connection_key')
    )



def downgrade() -> None:

    op.drop_table('xero_tokens')
    op.drop_table('xero_tenants')
    op.drop_table('tracking_options')
    op.drop_table('tracking_categories')
    op.drop_table('sync_state')
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_runs_tenant_started')

    op.drop_table('sync_runs')
    with op.batch_alter_table('quarantine_records', schema=None) as batch_op:
        batch_op.drop_index('ix_quarantine_records_batch')

    op.drop_table('quarantine_records')
    with op.batch_alter_table('quarantine_batches', schema=None) as batch_op:
        batch_op.drop_index('ix_quarantine_batches_tenant')

    op.drop_table('quarantine_batches')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('ix_payments_invoice')

    op.drop_table('payments')
    with op.batch_alter_table('journals', schema=None) as batch_op:
        batch_op.drop_index('ix_journals_number')

    op.drop_table('journals')
    with op.batch_alter_table('journal_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_journal_lines_journal')
        batch_op.drop_index('ix_journal_lines_account')

    op.drop_table('journal_lines')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index('ix_invoices_contact')

    op.drop_table('invoices')
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_invoice_lines_invoice')

    op.drop_table('invoice_lines')
    with op.batch_alter_table('dq_results', schema=None) as batch_op:
        batch_op.drop_index('ix_dq_results_run')

    op.drop_table('dq_results')
    op.drop_table('credit_notes')
    op.drop_table('clients')
    op.drop_table('accounts')

