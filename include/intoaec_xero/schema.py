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

PROJECT_DOC = "The line's project: its option of the tenant's project tracking category (see intoaec_xero.projects)"
TRACKING_DOC = "Every tracking category/option on the line: [{category, option, tracking_category_id}]"

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
    Column("project", String(255), doc=PROJECT_DOC),
    Column("tracking", JSON, doc=TRACKING_DOC),
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
    Column("reference", String(500)),
    Column("line_amount_types", String(16)),
    Column("currency_rate", Numeric(18, 10)),
    Column("updated_at", utc()),
)

credit_note_lines = Table(
    "credit_note_lines",
    metadata,
    *_key("tenant_id", "line_item_id"),
    Column("credit_note_id", String(64), nullable=False),
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
    Column("project", String(255), doc=PROJECT_DOC),
    Column("tracking", JSON, doc=TRACKING_DOC),
    Index("ix_credit_note_lines_credit_note", "tenant_id", "credit_note_id"),
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

organisations = Table(
    "organisations",
    metadata,
    # One row per tenant: Xero lists exactly one Organisation for a tenant.
    *_key("tenant_id"),
    Column("organisation_id", String(64), nullable=False),
    Column("name", String(255)),
    Column("legal_name", String(255)),
    Column("base_currency", String(3)),
    Column("country_code", String(8)),
    Column("financial_year_end_day", Integer),
    Column("financial_year_end_month", Integer),
    Column("organisation_class", String(32), doc="Xero's Class: the organisation's plan (STARTER, PREMIUM, …)"),
    Column("timezone", String(64)),
    Column("created_at", utc()),
)

tax_rates = Table(
    "tax_rates",
    metadata,
    *_key("tenant_id", "tax_type"),
    Column("name", String(255)),
    Column("status", String(32)),
    Column("report_tax_type", String(50)),
    Column("effective_rate", Numeric(9, 4)),
    Column("display_tax_rate", Numeric(9, 4)),
    Column("components", JSON, doc="[{name, rate, is_compound, is_non_recoverable}] as Xero lists them; rate as text"),
)

JOURNAL_ORIGIN_DOC = (
    "'xero' (read from Xero's Journals), 'derived' (built from the documents when Xero refuses Journals to "
    "the app), 'balancing' (one line per account the documents cannot explain, so totals tie to Xero's "
    "Trial Balance)"
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
    Column("origin", String(16), nullable=False, server_default="xero", doc=JOURNAL_ORIGIN_DOC),
    Index("ix_journals_number", "tenant_id", "journal_number"),
)

journal_lines = Table(
    "journal_lines",
    metadata,
    *_key("tenant_id", "journal_line_id"),
    Column("journal_id", String(64), nullable=False),
    # The journal's own, repeated on its lines so per-account, per-month sums need no join.
    Column("journal_date", Date, doc="The journal's date"),
    Column("source_type", String(50), doc="The journal's source type"),
    Column("source_id", String(64), doc="The journal's source document"),
    Column("account_id", String(64)),
    Column("account_code", String(50)),
    Column("account_type", String(50)),
    Column("description", Text),
    Column("net_amount", money()),
    Column("gross_amount", money()),
    Column("tax_amount", money()),
    Column("tax_type", String(50)),
    Column("project", String(255), doc=PROJECT_DOC),
    Column("tracking", JSON, doc=TRACKING_DOC),
    Index("ix_journal_lines_journal", "tenant_id", "journal_id"),
    Index("ix_journal_lines_account", "tenant_id", "account_code"),
    Index("ix_journal_lines_account_id", "tenant_id", "account_id"),
)

# -- the cost side: spend/receive money, manual journals, committed costs, deposits, billable expenses

def _document_lines(table: str, parent_key: str) -> Table:
    """A document's ``LineItems`` (the shape of invoice_lines), numbered from 1 in Xero's order."""
    return Table(
        table,
        metadata,
        *_key("tenant_id", "line_item_id"),
        Column(parent_key, String(64), nullable=False),
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
        Column("project", String(255), doc=PROJECT_DOC),
        Column("tracking", JSON, doc=TRACKING_DOC),
        Index(f"ix_{table}_{parent_key.removesuffix('_id')}", "tenant_id", parent_key),
    )


bank_transactions = Table(
    "bank_transactions",
    metadata,
    *_key("tenant_id", "bank_transaction_id"),
    Column("type", String(32), doc="SPEND, RECEIVE, their -PREPAYMENT / -OVERPAYMENT / -TRANSFER kinds"),
    Column("contact_id", String(64)),
    Column("bank_account_id", String(64)),
    Column("bank_account_code", String(50)),
    Column("status", String(32)),
    Column("line_amount_types", String(16)),
    Column("date", Date),
    Column("reference", String(500)),
    Column("currency_code", String(3)),
    Column("currency_rate", Numeric(18, 10)),
    Column("sub_total", money()),
    Column("total_tax", money()),
    Column("total", money()),
    Column("is_reconciled", Boolean),
    Column("prepayment_id", String(64), doc="The prepayment a RECEIVE/SPEND-PREPAYMENT created"),
    Column("overpayment_id", String(64), doc="The overpayment a RECEIVE/SPEND-OVERPAYMENT created"),
    Column("updated_at", utc()),
    Index("ix_bank_transactions_contact", "tenant_id", "contact_id"),
)

bank_transaction_lines = _document_lines("bank_transaction_lines", "bank_transaction_id")

bank_transfers = Table(
    "bank_transfers",
    metadata,
    *_key("tenant_id", "bank_transfer_id"),
    Column("from_bank_account_id", String(64)),
    Column("from_bank_account_code", String(50)),
    Column("to_bank_account_id", String(64)),
    Column("to_bank_account_code", String(50)),
    Column("amount", money()),
    Column("date", Date),
    Column("currency_rate", Numeric(18, 10)),
    Column("from_bank_transaction_id", String(64), doc="The SPEND-TRANSFER bank transaction Xero made for it"),
    Column("to_bank_transaction_id", String(64), doc="The RECEIVE-TRANSFER bank transaction Xero made for it"),
    Column("reference", String(500)),
    Column("status", String(32), doc="AUTHORISED (DELETED ones are listed only on request)"),
    Column("has_attachments", Boolean),
    Column("created_at", utc(), doc="CreatedDateUTC: a transfer has no UpdatedDateUTC (the stream's cursor)"),
)

manual_journals = Table(
    "manual_journals",
    metadata,
    *_key("tenant_id", "manual_journal_id"),
    Column("narration", Text),
    Column("date", Date),
    Column("status", String(32)),
    Column("line_amount_types", String(16)),
    Column("show_on_cash_basis_reports", Boolean),
    Column("updated_at", utc()),
)

manual_journal_lines = Table(
    "manual_journal_lines",
    metadata,
    # Xero gives manual journal lines no id: the key is the journal's id and the line's place in it,
    # stable because a journal's lines are replaced whole whenever it is read again.
    *_key("tenant_id", "manual_journal_line_id"),
    Column("manual_journal_id", String(64), nullable=False),
    Column("line_number", Integer, nullable=False),
    Column("description", Text),
    Column("account_id", String(64)),
    Column("account_code", String(50)),
    Column("tax_type", String(50)),
    Column("tax_amount", money()),
    Column("line_amount", money(), doc="Debit positive, credit negative"),
    Column("is_blank", Boolean),
    Column("project", String(255), doc=PROJECT_DOC),
    Column("tracking", JSON, doc=TRACKING_DOC),
    Index("ix_manual_journal_lines_manual_journal", "tenant_id", "manual_journal_id"),
)

purchase_orders = Table(
    "purchase_orders",
    metadata,
    *_key("tenant_id", "purchase_order_id"),
    Column("purchase_order_number", String(255)),
    Column("reference", String(500)),
    Column("contact_id", String(64)),
    Column("status", String(32)),
    Column("line_amount_types", String(16)),
    Column("date", Date),
    Column("delivery_date", Date),
    Column("expected_arrival_date", Date),
    Column("currency_code", String(3)),
    Column("currency_rate", Numeric(18, 10)),
    Column("sub_total", money()),
    Column("total_tax", money()),
    Column("total", money()),
    Column("sent_to_contact", Boolean),
    Column("updated_at", utc()),
    Index("ix_purchase_orders_contact", "tenant_id", "contact_id"),
)

purchase_order_lines = _document_lines("purchase_order_lines", "purchase_order_id")


def _deposits(table: str, key: str, *extra: Column) -> Table:
    """Prepayments and overpayments: money received (or paid) ahead, left as credit until allocated."""
    return Table(
        table,
        metadata,
        *_key("tenant_id", key),
        Column("type", String(32)),
        Column("contact_id", String(64)),
        Column("status", String(32)),
        Column("line_amount_types", String(16)),
        Column("date", Date),
        Column("reference", String(500)),
        *extra,
        Column("currency_code", String(3)),
        Column("currency_rate", Numeric(18, 10)),
        Column("sub_total", money()),
        Column("total_tax", money()),
        Column("total", money()),
        Column("remaining_credit", money()),
        Column("applied_amount", money()),
        Column("updated_at", utc()),
        Index(f"ix_{table}_contact", "tenant_id", "contact_id"),
    )


ALLOCATION_ID_DOC = "Xero's AllocationID; without one, the deposit's id and the allocation's place in its list"


def _allocations(table: str, parent_key: str) -> Table:
    """A deposit's allocations to invoices, replaced whole with their deposit."""
    return Table(
        table,
        metadata,
        *_key("tenant_id"),
        Column("allocation_id", String(64), primary_key=True, doc=ALLOCATION_ID_DOC),
        Column(parent_key, String(64), nullable=False),
        Column("invoice_id", String(64)),
        Column("amount", money()),
        Column("date", Date),
        Column("is_deleted", Boolean),
        Index(f"ix_{table}_{parent_key.removesuffix('_id')}", "tenant_id", parent_key),
        Index(f"ix_{table}_invoice", "tenant_id", "invoice_id"),
    )


overpayments = _deposits("overpayments", "overpayment_id")
overpayment_allocations = _allocations("overpayment_allocations", "overpayment_id")
prepayments = _deposits("prepayments", "prepayment_id", Column("invoice_number", String(255)))
prepayment_allocations = _allocations("prepayment_allocations", "prepayment_id")

linked_transactions = Table(
    "linked_transactions",
    metadata,
    *_key("tenant_id", "linked_transaction_id"),
    Column("type", String(32), doc="BILLABLEEXPENSE"),
    Column("status", String(32)),
    Column("source_transaction_id", String(64), doc="The bill (ACCPAY) or spend money (SPEND) the cost is on"),
    Column("source_line_item_id", String(64)),
    Column("source_transaction_type_code", String(16)),
    Column("contact_id", String(64), doc="The customer the cost is billable to"),
    Column("target_transaction_id", String(64), doc="The sales invoice it was billed on, once billed"),
    Column("target_line_item_id", String(64)),
    Column("updated_at", utc()),
    Index("ix_linked_transactions_source", "tenant_id", "source_transaction_id"),
)


# Edited by the data team, never by the sync: which tracking category (or Reference pattern) is a
# tenant's project, over the Xero connection's project_* extras (see intoaec_xero.projects).
project_dimension_overrides = Table(
    "project_dimension_overrides",
    metadata,
    *_key("tenant_id"),
    Column("tracking_category", String(255),
           doc="The project tracking category, by name or TrackingCategoryID; NULL: the connection's setting; "
               "'': none (the Reference pattern alone)"),
    Column("reference_pattern", String(500),
           doc="A regex searched in a document's Reference, first group = the project; NULL: the connection's; "
               "'': none"),
    Column("updated_at", utc()),
    Column("note", Text, doc="Who set it and why"),
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

# Which IntoAEC firm connected which organisation through the connect API (IntoAEC joins on it).
# ``status`` is the organisation's, in the help page's words, kept in step with xero_tenants;
# "Disconnected" set by the firm stays until the firm connects the organisation again.
intoaec_firm_tenants = Table(
    "intoaec_firm_tenants",
    metadata,
    *_key("firm_id", "tenant_id"),
    Column("tenant_name", String(255)),
    Column("connection_id", String(64), doc="Xero's connection id of the firm's grant to the organisation"),
    Column("status", String(32), nullable=False),
    Column("sync_enabled", Boolean, nullable=False, default=True, doc="The firm's Sync Enabled toggle"),
    Column("connected_at", utc()),
    Column("updated_at", utc()),
    Index("ix_intoaec_firm_tenants_tenant", "tenant_id"),
)

# A firm's sign-in in progress: the callback's signed state names the row; used once, short-lived.
intoaec_connect_sessions = Table(
    "intoaec_connect_sessions",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("firm_id", String(64), nullable=False),
    Column("return_url", Text, nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("verifier", LargeBinary, nullable=False, doc="The PKCE verifier, encrypted"),
    Column("created_at", utc(), nullable=False),
    Column("expires_at", utc(), nullable=False),
    Column("used_at", utc()),
    Column("outcome", String(64)),
    Index("ix_intoaec_connect_sessions_firm", "firm_id"),
)

TARGET_TABLES = (
    "xero_tenants",
    "clients",
    "invoices",
    "invoice_lines",
    "payments",
    "credit_notes",
    "credit_note_lines",
    "accounts",
    "tracking_categories",
    "tracking_options",
    "organisations",
    "tax_rates",
    "journals",
    "journal_lines",
    "bank_transactions",
    "bank_transaction_lines",
    "bank_transfers",
    "manual_journals",
    "manual_journal_lines",
    "purchase_orders",
    "purchase_order_lines",
    "overpayments",
    "overpayment_allocations",
    "prepayments",
    "prepayment_allocations",
    "linked_transactions",
)


# -- IntoAEC's project tables: rebuilt per tenant after each load (intoaec_xero.project_finance), never synced.
PROJECT_MONEY_DOCS = {
    "invoiced": "Sales invoice lines on revenue accounts",
    "credited": "Sales credit note lines on revenue accounts",
    "other_income": "Revenue from anything else: receive money, manual journals, bills coded to revenue",
    "revenue": "invoiced - credited + other_income: the project's income in Xero's Profit and Loss",
    "received": "Payments and applied deposits on the project's sales invoices, shared by line amounts",
    "outstanding": "Still owed on the project's authorised sales invoices, shared by line amounts",
    "costs_bills": "Bill lines (less supplier credits) on expense accounts",
    "costs_spend_money": "Spend money lines (less receive money) on expense accounts",
    "costs_manual_journals": "Posted manual journal debits (less credits) on expense accounts",
    "costs_other": "Expense-account lines of sales documents",
    "costs": "Every cost above: the project's expenses in Xero's Profit and Loss",
    "gross_margin": "revenue - costs",
    "committed": "Approved purchase orders not yet billed",
    "unbilled_expenses": "Billable expenses approved and not yet invoiced to the client",
    "deposits_held": "Client retainers (prepayments) not yet applied, on the projects of their lines",
}


def _project_money() -> list[Column]:
    return [Column(name, money(), nullable=False, default=0, doc=doc) for name, doc in PROJECT_MONEY_DOCS.items()]


project_financials = Table(
    "project_financials",
    metadata,
    *_key("tenant_id", "project"),
    Column("month", Date, primary_key=True, doc="First day of the month of the documents' dates"),
    *_project_money(),
    Column("updated_at", utc()),
)

project_summary = Table(
    "project_summary",
    metadata,
    *_key("tenant_id", "project"),
    Column("client_id", String(64), doc="The contact the project's revenue is mostly invoiced to"),
    Column("client_name", String(500)),
    Column("first_activity", Date),
    Column("last_activity", Date),
    *_project_money(),
    Column("updated_at", utc()),
)

AGING_DOCS = {
    "current": "Not yet due",
    "days_1_30": "1 to 30 days past due",
    "days_31_60": "31 to 60 days past due",
    "days_61_90": "61 to 90 days past due",
    "days_over_90": "More than 90 days past due",
    "total": "All of the above: what the contact owes, less its open credit notes",
}

ar_aging = Table(
    "ar_aging",
    metadata,
    *_key("tenant_id", "contact_id"),
    Column("as_of", Date, primary_key=True),
    Column("contact_name", String(500)),
    *[Column(name, money(), nullable=False, default=0, doc=doc) for name, doc in AGING_DOCS.items()],
    Column("updated_at", utc()),
)

PROJECT_TABLES = ("project_financials", "project_summary", "ar_aging")
