"""IntoAEC's financial tracking tables, as one SQLAlchemy metadata for SQLite and PostgreSQL.

Money is NUMERIC with Xero's scale (2 places; 4 for unit amounts and quantities). Every row
carries ``tenant_id``; keys are (tenant_id, Xero id). Xero "dates" are DATE, timestamps are
timezone-aware UTC.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)

metadata = MetaData()


def money() -> Numeric:
    return Numeric(18, 2, asdecimal=True)


def amount4() -> Numeric:
    """Unit amounts and quantities: Xero allows 4 decimal places (unitdp=4)."""
    return Numeric(18, 4, asdecimal=True)


def utc() -> DateTime:
    return DateTime(timezone=True)


def _key(*names: str) -> list[Column]:
    return [Column(name, String(64), primary_key=True) for name in names]


xero_tenants = Table(
    "xero_tenants",
    metadata,
    *_key("tenant_id"),
    Column("tenant_name", String(255), nullable=False),
    Column("tenant_type", String(32)),
    Column("connection_id", String(64)),
    Column("connection_key", String(128), nullable=False, doc="The Airflow connection that reaches it"),
    Column("connection_status", String(32), nullable=False),
    Column("sync_enabled", Boolean, nullable=False, default=True),
    Column("connected_at", utc()),
    Column("updated_at", utc()),
)

clients = Table(
    "clients",
    metadata,
    *_key("tenant_id", "contact_id"),
    Column("name", String(500)),
    Column("contact_number", String(100)),
    Column("email", String(500)),
    Column("is_customer", Boolean),
    Column("is_supplier", Boolean),
    Column("status", String(32)),
    Column("default_currency", String(3)),
    Column("updated_at", utc()),
)

invoices = Table(
    "invoices",
    metadata,
    *_key("tenant_id", "invoice_id"),
    Column("type", String(16)),
    Column("invoice_number", String(255)),
    Column("reference", String(500)),
    Column("contact_id", String(64)),
    Column("status", String(32)),
    Column("line_amount_types", String(16)),
    Column("date", Date),
    Column("due_date", Date),
    Column("currency_code", String(3)),
    Column("currency_rate", Numeric(18, 10)),
    Column("sub_total", money()),
    Column("total_tax", money()),
    Column("total", money()),
    Column("amount_due", money()),
    Column("amount_paid", money()),
    Column("amount_credited", money()),
    Column("fully_paid_on_date", Date),
    Column("updated_at", utc()),
    Index("ix_invoices_contact", "tenant_id", "contact_id"),
)

invoice_lines = Table(
    "invoice_lines",
    metadata,
    *_key("tenant_id", "line_item_id"),
    Column("invoice_id", String(64), nullable=False),
    Column("line_number", Integer),
    Column("description", Text),
    Column("quantity", amount4()),
    Column("unit_amount", amount4()),
    Column("item_code", String(100)),
    Column("account_code", String(50)),
    Column("tax_type", String(50)),
    Column("tax_amount", money()),
    Column("line_amount", money()),
    Column("discount_rate", Numeric(9, 4)),
    Column("project", String(255), doc="Option of the 'Project' tracking category"),
    Column("tracking", JSON, doc="Every tracking category/option on the line"),
    Index("ix_invoice_lines_invoice", "tenant_id", "invoice_id"),
)

payments = Table(
    "payments",
    metadata,
    *_key("tenant_id", "payment_id"),
    Column("invoice_id", String(64)),
    Column("credit_note_id", String(64)),
    Column("account_id", String(64)),
    Column("date", Date),
    Column("amount", money()),
    Column("currency_rate", Numeric(18, 10)),
    Column("reference", String(500)),
    Column("status", String(32)),
    Column("payment_type", String(32)),
    Column("is_reconciled", Boolean),
    Column("updated_at", utc()),
    Index("ix_payments_invoice", "tenant_id", "invoice_id"),
)

credit_notes = Table(
    "credit_notes",
    metadata,
    *_key("tenant_id", "credit_note_id"),
    Column("credit_note_number", String(255)),
    Column("type", String(16)),
    Column("contact_id", String(64)),
    Column("status", String(32)),
    Column("date", Date),
    Column("currency_code", String(3)),
    Column("sub_total", money()),
    Column("total_tax", money()),
    Column("total", money()),
    Column("remaining_credit", money()),
    Column("allocations", JSON, doc="[{invoice_id, amount, date}] as Xero lists them"),
    Column("updated_at", utc()),
)

accounts = Table(
    "accounts",
    metadata,
    *_key("tenant_id", "account_id"),
    Column("code", String(50)),
    Column("name", String(255)),
    Column("type", String(50)),
    Column("class", String(50)),
    Column("status", String(32)),
    Column("tax_type", String(50)),
    Column("system_account", String(50)),
    Column("updated_at", utc()),
)

tracking_categories = Table(
    "tracking_categories",
    metadata,
    *_key("tenant_id", "tracking_category_id"),
    Column("name", String(255)),
    Column("status", String(32)),
)

tracking_options = Table(
    "tracking_options",
    metadata,
    *_key("tenant_id", "tracking_option_id"),
    Column("tracking_category_id", String(64), nullable=False),
    Column("name", String(255)),
    Column("status", String(32)),
)

journals = Table(
    "journals",
    metadata,
    *_key("tenant_id", "journal_id"),
    Column("journal_number", BigInteger, nullable=False),
    Column("journal_date", Date),
    Column("created_at", utc()),
    Column("reference", String(500)),
    Column("source_type", String(50)),
    Column("source_id", String(64)),
    Index("ix_journals_number", "tenant_id", "journal_number"),
)

journal_lines = Table(
    "journal_lines",
    metadata,
    *_key("tenant_id", "journal_line_id"),
    Column("journal_id", String(64), nullable=False),
    Column("account_id", String(64)),
    Column("account_code", String(50)),
    Column("account_type", String(50)),
    Column("description", Text),
    Column("net_amount", money()),
    Column("gross_amount", money()),
    Column("tax_amount", money()),
    Column("tax_type", String(50)),
    Index("ix_journal_lines_journal", "tenant_id", "journal_id"),
    Index("ix_journal_lines_account", "tenant_id", "account_code"),
)

sync_state = Table(
    "sync_state",
    metadata,
    *_key("tenant_id", "stream"),
    Column("watermark", utc(), doc="Highest UpdatedDateUTC loaded (If-Modified-Since source)"),
    Column("journal_offset", BigInteger, doc="Last JournalNumber loaded"),
    Column("last_success_at", utc()),
    Column("last_full_sync_at", utc()),
    Column("last_error", Text),
    Column("last_error_at", utc()),
    Column("details", JSON, doc="Stream-specific progress, e.g. a backfill's target and ETA"),
    Column("updated_at", utc()),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("run_id", String(250), primary_key=True),
    Column("tenant_id", String(64), primary_key=True),
    Column("stream", String(64), primary_key=True),
    Column("started_at", utc()),
    Column("finished_at", utc()),
    Column("status", String(32), nullable=False),
    Column("rows_extracted", Integer),
    Column("rows_loaded", Integer),
    Column("rows_inserted", Integer),
    Column("rows_updated", Integer),
    Column("api_calls", Integer),
    Column("rate_limited", Integer, doc="429 answers met"),
    Column("quota_day_remaining", Integer),
    Column("quota_minute_remaining", Integer),
    Column("quality_verdict", String(32)),
    Column("quality_summary", JSON),
    Column("message", Text),
    Column("kind", String(16), doc="'sync' (xero_sync, intoaec-xero sync) or 'backfill'; health reads syncs only"),
    Index("ix_sync_runs_tenant_started", "tenant_id", "started_at"),
)

dq_results = Table(
    "dq_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(250), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("table_name", String(64), nullable=False),
    Column("check_name", String(128), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("observed", Text),
    Column("expected", Text),
    Column("failing_keys", JSON),
    Column("checked_at", utc()),
    # One verdict per check of a run: a retried load task replaces its rows instead of adding to them.
    Index("uq_dq_results_check", "run_id", "tenant_id", "table_name", "check_name", unique=True),
)

quarantine_batches = Table(
    "quarantine_batches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(250), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("stream", String(64), nullable=False),
    Column("checks", JSON, doc="Names of the error checks that failed"),
    Column("message", Text),
    Column("records", Integer),
    Column("status", String(32), nullable=False, doc="quarantined / released"),
    Column("quarantined_at", utc()),
    Column("released_at", utc()),
    Column("released_by_run", String(250)),
    Index("ix_quarantine_batches_tenant", "tenant_id", "stream", "status"),
)

quarantine_records = Table(
    "quarantine_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", Integer, nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("table_name", String(64)),
    Column("record_key", String(255)),
    Column("check_name", String(128), doc="The failing check, or null for a record of the batch that passed"),
    Column("reason", Text),
    Column("raw_record", JSON),
    Index("ix_quarantine_records_batch", "batch_id"),
)

held_records = Table(
    "held_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(250), nullable=False, doc="The run whose raw pages hold the record"),
    Column("tenant_id", String(64), nullable=False),
    Column("stream", String(64), nullable=False),
    Column("record_key", String(255), nullable=False, doc="The Xero id, or 'page N record M' without a readable one"),
    Column("page", Integer),
    Column("position", Integer, doc="1-based place of the record on its page"),
    Column("checks", JSON, doc="Names of the record-level checks it failed"),
    Column("reasons", JSON, doc="[{table, check, reason}]: every check it failed, and why"),
    Column("raw_record", Text, doc="The record as Xero sent it: JSON text, amounts exact, non-ASCII escaped"),
    Column("status", String(32), nullable=False, doc="held / released / superseded"),
    Column("held_at", utc()),
    Column("released_at", utc()),
    Column("released_by_run", String(250)),
    Column("note", Text, doc="What the release did (accepted checks, a corrected record)"),
    # A retried load task finds its held records again instead of holding them twice.
    Index("uq_held_records_record", "run_id", "tenant_id", "stream", "record_key", unique=True),
    Index("ix_held_records_open", "tenant_id", "stream", "status"),
)

xero_tokens = Table(
    "xero_tokens",
    metadata,
    Column("connection_key", String(128), primary_key=True),
    Column("token", LargeBinary, nullable=False, doc="Token set; Fernet-encrypted when a key is set"),
    Column("encrypted", Boolean, nullable=False),
    Column("expires_at", utc()),
    Column("status", String(32), nullable=False),
    Column("refreshed_at", utc()),
    Column("updated_at", utc()),
)

TARGET_TABLES = (
    "xero_tenants",
    "clients",
    "invoices",
    "invoice_lines",
    "payments",
    "credit_notes",
    "accounts",
    "tracking_categories",
    "tracking_options",
    "journals",
    "journal_lines",
)
