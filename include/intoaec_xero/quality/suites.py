"""The Great Expectations suites, one per target table, kept as code.

Each check has a name (what ``dq_results`` and the quarantine tables say), a severity and the
expectation that decides it. Severity follows two questions:

- would loading the row make IntoAEC's money wrong, or could the row not be stored faithfully
  (a status that changes what an amount means, a value the column would truncate, text the
  database refuses)? Then the record may not load. If the verdict is about that one record
  alone, the check is ``hold``: the record, with its lines, is held back in quarantine and the
  rest of the batch loads. If it is an invariant of the batch as a whole (Xero's own arithmetic
  across a document's lines, a journal that must balance), it is ``error``: the batch is
  rejected whole, since a broken invariant usually means something systematic;
- otherwise the row is still right on its own (a duplicate the upsert folds, a reference to a
  record that is elsewhere or late, a descriptive enum Xero has grown): ``warn``.

Expectations that would make GX loop over Python objects row by row (types, decimal places,
sums across tables, text the database refuses) read a column :mod:`intoaec_xero.quality.frames`
derives in one pass; the rest (keys, enums) run natively on the table's own columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

from sqlalchemy import Date, DateTime, Numeric

from intoaec_xero.quality import enums
from intoaec_xero.quality.model import ERROR, HOLD, WARN
from intoaec_xero.schema import metadata

# Derived columns (see frames.py). Each holds, per row, the names of the offending columns, or null.
VALUES_NOT_FITTING = "values_not_fitting"
MONEY_NOT_EXACT = "money_not_exact"
DATES_OUT_OF_RANGE = "dates_out_of_range"
MISSING_REQUIRED = "missing_required"
MISSING_EXPECTED = "missing_expected"
TEXT_NOT_STORABLE = "text_not_storable"


@dataclass(frozen=True)
class TableSpec:
    """What the checks need to know about a table beyond its SQL schema."""

    table: str
    key: str  # the Xero id column (besides tenant_id)
    record_key: str  # the id of the Xero record the row came from (an invoice line's invoice)
    required: tuple[str, ...] = ()  # without these the row's money means nothing: error
    expected: tuple[str, ...] = ()  # Xero always sends these; a gap is recorded (warn)
    # A child table's parent: every row must belong to a parent of the batch (record_key is its key column).
    parent: str | None = None
    # A document's lines table, for the checks that add its lines up.
    lines: str | None = None


TABLES: dict[str, TableSpec] = {
    spec.table: spec
    for spec in (
        TableSpec("clients", "contact_id", "contact_id"),
        TableSpec("invoices", "invoice_id", "invoice_id", required=("type", "status", "total"),
                  expected=("line_amount_types", "sub_total", "total_tax", "amount_due", "amount_paid", "date")),
        TableSpec("invoice_lines", "line_item_id", "invoice_id", required=("invoice_id",), expected=("line_amount",)),
        TableSpec("payments", "payment_id", "payment_id", required=("status", "amount"),
                  expected=("date", "payment_type")),
        TableSpec("credit_notes", "credit_note_id", "credit_note_id", required=("type", "status", "total"),
                  expected=("sub_total", "total_tax", "date")),
        TableSpec("credit_note_lines", "line_item_id", "credit_note_id", required=("credit_note_id",),
                  expected=("line_amount",)),
        TableSpec("accounts", "account_id", "account_id"),
        TableSpec("tracking_categories", "tracking_category_id", "tracking_category_id"),
        TableSpec("tracking_options", "tracking_option_id", "tracking_category_id"),
        TableSpec("organisations", "organisation_id", "organisation_id",
                  expected=("name", "base_currency", "financial_year_end_day", "financial_year_end_month")),
        TableSpec("tax_rates", "tax_type", "tax_type", expected=("name", "status", "effective_rate")),
        TableSpec("journals", "journal_id", "journal_id", required=("journal_number", "journal_date")),
        TableSpec("journal_lines", "journal_line_id", "journal_id",
                  required=("journal_id", "account_id", "net_amount")),
        TableSpec("bank_transactions", "bank_transaction_id", "bank_transaction_id",
                  required=("type", "status", "total"),
                  expected=("line_amount_types", "sub_total", "total_tax", "date", "bank_account_id"),
                  lines="bank_transaction_lines"),
        TableSpec("bank_transaction_lines", "line_item_id", "bank_transaction_id", required=("bank_transaction_id",),
                  expected=("line_amount",), parent="bank_transactions"),
        # Money between two bank accounts: without either account, the amount or the date it posts nowhere.
        TableSpec("bank_transfers", "bank_transfer_id", "bank_transfer_id",
                  required=("from_bank_account_id", "to_bank_account_id", "amount", "date"),
                  expected=("created_at",)),
        TableSpec("manual_journals", "manual_journal_id", "manual_journal_id", required=("status",),
                  expected=("narration", "date", "line_amount_types"), lines="manual_journal_lines"),
        # A blank line may have no account; an amount without one is still recorded (expected, not required).
        TableSpec("manual_journal_lines", "manual_journal_line_id", "manual_journal_id",
                  required=("manual_journal_id", "line_amount"), expected=("account_code",),
                  parent="manual_journals"),
        TableSpec("purchase_orders", "purchase_order_id", "purchase_order_id", required=("status", "total"),
                  expected=("line_amount_types", "sub_total", "total_tax", "date"), lines="purchase_order_lines"),
        TableSpec("purchase_order_lines", "line_item_id", "purchase_order_id", required=("purchase_order_id",),
                  expected=("line_amount",), parent="purchase_orders"),
        TableSpec("overpayments", "overpayment_id", "overpayment_id", required=("type", "status", "total"),
                  expected=("sub_total", "total_tax", "date", "remaining_credit")),
        TableSpec("overpayment_allocations", "allocation_id", "overpayment_id",
                  required=("overpayment_id", "amount"), expected=("invoice_id", "date"), parent="overpayments"),
        TableSpec("prepayments", "prepayment_id", "prepayment_id", required=("type", "status", "total"),
                  expected=("sub_total", "total_tax", "date", "remaining_credit")),
        TableSpec("prepayment_allocations", "allocation_id", "prepayment_id",
                  required=("prepayment_id", "amount"), expected=("invoice_id", "date"), parent="prepayments"),
        TableSpec("linked_transactions", "linked_transaction_id", "linked_transaction_id",
                  required=("source_transaction_id",), expected=("status", "type", "contact_id",
                                                                  "source_line_item_id")),
    )
}

# Derived columns the cost-side suites read (see frames.py): per document, total - sub_total - total_tax
# and its lines' sum less what they must add up to, in cents; per line or allocation, whether its
# parent is in the batch; per manual journal, its lines' sum in cents.
TOTAL_GAP = "total_gap_cents"
LINES_GAP = "lines_gap_cents"
PARENT_RESOLVES = "parent_resolves"
LINE_SUM = "line_sum_cents"


@dataclass(frozen=True)
class Check:
    name: str
    severity: str
    column: str
    rule: str  # what passing means, in words: dq_results' "expected"
    build: Callable[[Any, str, str], Any]  # (gx.expectations, description, severity) -> Expectation
    show: str | None = None  # the column whose values explain a failure, when ``column`` is a derived flag

    def expectation(self, gx_expectations: Any) -> Any:
        expectation = self.build(gx_expectations, f"{self.name}: {self.rule}",
                                 "warning" if self.severity == WARN else "critical")
        expectation.meta = {"check": self.name, "severity": self.severity}
        return expectation


def _not_null(name: str, column: str, severity: str, rule: str) -> Check:
    return Check(name, severity, column, rule,
                 lambda e, d, s: e.ExpectColumnValuesToNotBeNull(column=column, description=d, severity=s))


def _null(name: str, column: str, severity: str, rule: str) -> Check:
    return Check(name, severity, column, rule,
                 lambda e, d, s: e.ExpectColumnValuesToBeNull(column=column, description=d, severity=s))


def _unique(name: str, column: str, severity: str, rule: str) -> Check:
    return Check(name, severity, column, rule,
                 lambda e, d, s: e.ExpectColumnValuesToBeUnique(column=column, description=d, severity=s))


def _in_set(name: str, column: str, values: tuple, severity: str, rule: str, show: str | None = None) -> Check:
    return Check(name, severity, column, rule,
                 lambda e, d, s: e.ExpectColumnValuesToBeInSet(column=column, value_set=list(values),
                                                               description=d, severity=s), show)


def _between(name: str, column: str, low: Any, high: Any, severity: str, rule: str) -> Check:
    return Check(name, severity, column, rule,
                 lambda e, d, s: e.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high,
                                                                 description=d, severity=s))


def _keys(key: str) -> list[Check]:
    return [
        _not_null("key_present", key, HOLD, f"every row has its Xero id ({key})"),
        # Xero may list a record twice when it changes between pages; the upsert keeps one.
        _unique("key_unique", key, WARN, f"{key} is unique per tenant"),
    ]


def _enum(column: str, values: tuple, severity: str) -> Check:
    return _in_set(f"{column}_in_enum", column, values, severity, f"{column} is one of Xero's values")


def _shape(spec: TableSpec) -> list[Check]:
    """What every table gets: values fit their columns, text is storable, money is exact, dates are sane."""
    types = [c.type for c in metadata.tables[spec.table].columns]
    checks = [_null("values_fit_columns", VALUES_NOT_FITTING, HOLD,
                    "every value has its column's type and fits it (text length, integer range)"),
              # SQLite would keep a NUL; PostgreSQL refuses it. Both backends hold the record alike.
              _null("text_storable", TEXT_NOT_STORABLE, HOLD,
                    "text holds no NUL character and no unpaired surrogate (PostgreSQL stores neither)")]
    if any(isinstance(t, Numeric) for t in types):
        checks.append(_null("money_exact", MONEY_NOT_EXACT, HOLD,
                            "amounts are exact decimals with no more places than Xero allows (2; 4 for unit "
                            "amounts and quantities) and within the column's precision"))
    if any(isinstance(t, (Date, DateTime)) for t in types):
        checks.append(_null("dates_in_range", DATES_OUT_OF_RANGE, HOLD,
                            "dates and timestamps fall in 1900-01-01..2100-12-31"))
    if spec.required:
        checks.append(_null("required_present", MISSING_REQUIRED, HOLD, "present: " + ", ".join(spec.required)))
    if spec.expected:
        checks.append(_null("fields_present", MISSING_EXPECTED, WARN, "present: " + ", ".join(spec.expected)))
    return checks


def _zero(name: str, column: str, rule: str, severity: str = ERROR) -> Check:
    return _between(name, column, 0, 0, severity, rule)


def _suite_clients(spec: TableSpec) -> list[Check]:
    return [*_keys(spec.key), *_shape(spec), _enum("status", enums.CONTACT_STATUS, WARN)]


def _suite_invoices(spec: TableSpec) -> list[Check]:
    return [
        *_keys(spec.key),
        *_shape(spec),
        # Status and type decide whether an amount is receivable, payable, owed or void.
        _enum("status", enums.INVOICE_STATUS, HOLD),
        _enum("type", enums.INVOICE_TYPE, HOLD),
        _enum("line_amount_types", enums.LINE_AMOUNT_TYPES, HOLD),
        _zero("total_equals_parts", "total_gap_cents", "total = sub_total + total_tax"),
        _zero("amount_due_consistent", "amount_due_gap_cents",
              "amount_due = total - amount_paid - amount_credited"),
        _zero("lines_sum_to_invoice", "lines_gap_cents",
              "the line amounts add up to sub_total (Exclusive, NoTax) or total (Inclusive)"),
    ]


def _suite_invoice_lines(spec: TableSpec) -> list[Check]:
    return [
        *_keys(spec.key),
        *_shape(spec),
        _in_set("invoice_exists", "invoice_resolves", (True,), ERROR, "every line belongs to an invoice of the batch",
                show="invoice_id"),
    ]


def _suite_payments(spec: TableSpec) -> list[Check]:
    return [
        *_keys(spec.key),
        *_shape(spec),
        _enum("status", enums.PAYMENT_STATUS, HOLD),
        _enum("payment_type", enums.PAYMENT_TYPE, HOLD),
        # The invoice may be in a quarantined batch or arrive next run; the payment is still true.
        _in_set("invoice_exists", "invoice_resolves", (True,), WARN,
                "the paid invoice is in IntoAEC's invoices (or the payment has none)", show="invoice_id"),
    ]


def _suite_credit_notes(spec: TableSpec) -> list[Check]:
    return [
        *_keys(spec.key),
        *_shape(spec),
        _enum("status", enums.CREDIT_NOTE_STATUS, HOLD),
        _enum("type", enums.CREDIT_NOTE_TYPE, HOLD),
        _zero("total_equals_parts", "total_gap_cents", "total = sub_total + total_tax"),
    ]


def _suite_credit_note_lines(spec: TableSpec) -> list[Check]:
    return [
        *_keys(spec.key),
        *_shape(spec),
        _in_set("credit_note_exists", "credit_note_resolves", (True,), ERROR,
                "every line belongs to a credit note of the batch", show="credit_note_id"),
    ]


def _suite_accounts(spec: TableSpec) -> list[Check]:
    return [
        *_keys(spec.key),
        *_shape(spec),
        _enum("status", enums.ACCOUNT_STATUS, WARN),
        _enum("type", enums.ACCOUNT_TYPE, WARN),
        _enum("class", enums.ACCOUNT_CLASS, WARN),
    ]


def _suite_tracking_categories(spec: TableSpec) -> list[Check]:
    return [*_keys(spec.key), *_shape(spec), _enum("status", enums.TRACKING_STATUS, WARN)]


def _suite_tracking_options(spec: TableSpec) -> list[Check]:
    return [*_keys(spec.key), *_shape(spec), _enum("status", enums.TRACKING_STATUS, WARN)]


def _suite_organisations(spec: TableSpec) -> list[Check]:
    return [
        *_keys(spec.key),
        *_shape(spec),
        _enum("organisation_class", enums.ORGANISATION_CLASS, WARN),
        _between("financial_year_end_month_valid", "financial_year_end_month", 1, 12, WARN,
                 "the financial year ends in a month 1..12"),
        _between("financial_year_end_day_valid", "financial_year_end_day", 1, 31, WARN,
                 "the financial year ends on a day 1..31"),
    ]


def _suite_tax_rates(spec: TableSpec) -> list[Check]:
    return [*_keys(spec.key), *_shape(spec), _enum("status", enums.TAX_RATE_STATUS, WARN)]


def _suite_journals(spec: TableSpec) -> list[Check]:
    return [
        *_keys(spec.key),
        *_shape(spec),
        _between("journal_number_positive", "journal_number", 1, None, HOLD,
                 "journal numbers are positive (they are the offset the ledger resumes from)"),
        _enum("source_type", enums.JOURNAL_SOURCE_TYPE, WARN),
        # Double entry: a journal whose lines do not sum to zero would skew every balance.
        _zero("journal_balances", "net_sum_cents", "the journal's line net amounts sum to zero"),
    ]


def _suite_journal_lines(spec: TableSpec) -> list[Check]:
    return [
        *_keys(spec.key),
        *_shape(spec),
        _enum("account_type", enums.ACCOUNT_TYPE, WARN),
        _in_set("account_exists", "account_resolves", (True,), WARN,
                "the line's account is in IntoAEC's accounts", show="account_id"),
    ]


def _suite_document(status: tuple, spec: TableSpec) -> list[Check]:
    """Spend/receive money and purchase orders: money that changes meaning with status, type and
    line-amount type, whose total and lines Xero keeps in agreement."""
    checks = [*_keys(spec.key), *_shape(spec), _enum("status", status, HOLD)]
    if spec.table == "bank_transactions":  # spend or receive: which way the money went
        checks.append(_enum("type", enums.BANK_TRANSACTION_TYPE, HOLD))
    return [
        *checks,
        _enum("line_amount_types", enums.LINE_AMOUNT_TYPES, HOLD),
        _zero("total_equals_parts", TOTAL_GAP, "total = sub_total + total_tax"),
        _zero("lines_sum_to_document", LINES_GAP,
              "the line amounts add up to sub_total (Exclusive, NoTax) or total (Inclusive)"),
    ]


def _suite_child(spec: TableSpec) -> list[Check]:
    """Lines and allocations: loaded with their parent, so a row without one in the batch is an error."""
    parent = (spec.parent or "").removesuffix("s")
    return [
        *_keys(spec.key),
        *_shape(spec),
        _in_set(f"{parent}_exists", PARENT_RESOLVES, (True,), ERROR,
                f"every row's {parent.replace('_', ' ')} is in the batch", show=spec.record_key),
    ]


def _suite_bank_transfers(spec: TableSpec) -> list[Check]:
    # The status only describes: Xero lists DELETED transfers only with includeDeleted, which the stream
    # does not send, so every transfer read is AUTHORISED.
    return [*_keys(spec.key), *_shape(spec), _enum("status", enums.BANK_TRANSFER_STATUS, WARN)]


def _suite_manual_journals(spec: TableSpec) -> list[Check]:
    return [
        *_keys(spec.key),
        *_shape(spec),
        # A voided or deleted journal no longer moves money; a draft does not yet.
        _enum("status", enums.MANUAL_JOURNAL_STATUS, HOLD),
        _enum("line_amount_types", enums.LINE_AMOUNT_TYPES, HOLD),
        # Xero posts only balanced journals, but a draft may be saved unbalanced: recorded, never held.
        _zero("manual_journal_balances", LINE_SUM, "the journal's line amounts sum to zero", severity=WARN),
    ]


def _suite_deposits(types: tuple, spec: TableSpec) -> list[Check]:
    return [
        *_keys(spec.key),
        *_shape(spec),
        _enum("status", enums.DEPOSIT_STATUS, HOLD),
        _enum("type", types, HOLD),
        _zero("total_equals_parts", TOTAL_GAP, "total = sub_total + total_tax"),
    ]


def _suite_linked_transactions(spec: TableSpec) -> list[Check]:
    # No money of their own: every value only describes the billable expense.
    return [
        *_keys(spec.key),
        *_shape(spec),
        _enum("status", enums.LINKED_TRANSACTION_STATUS, WARN),
        _enum("type", enums.LINKED_TRANSACTION_TYPE, WARN),
        _enum("source_transaction_type_code", enums.LINKED_TRANSACTION_SOURCE_TYPE, WARN),
    ]


_SUITES: dict[str, Callable[[TableSpec], list[Check]]] = {
    "clients": _suite_clients,
    "invoices": _suite_invoices,
    "invoice_lines": _suite_invoice_lines,
    "payments": _suite_payments,
    "credit_notes": _suite_credit_notes,
    "credit_note_lines": _suite_credit_note_lines,
    "accounts": _suite_accounts,
    "tracking_categories": _suite_tracking_categories,
    "tracking_options": _suite_tracking_options,
    "organisations": _suite_organisations,
    "tax_rates": _suite_tax_rates,
    "journals": _suite_journals,
    "journal_lines": _suite_journal_lines,
    "bank_transactions": partial(_suite_document, enums.BANK_TRANSACTION_STATUS),
    "bank_transaction_lines": _suite_child,
    "bank_transfers": _suite_bank_transfers,
    "manual_journals": _suite_manual_journals,
    "manual_journal_lines": _suite_child,
    "purchase_orders": partial(_suite_document, enums.PURCHASE_ORDER_STATUS),
    "purchase_order_lines": _suite_child,
    "overpayments": partial(_suite_deposits, enums.OVERPAYMENT_TYPE),
    "overpayment_allocations": _suite_child,
    "prepayments": partial(_suite_deposits, enums.PREPAYMENT_TYPE),
    "prepayment_allocations": _suite_child,
    "linked_transactions": _suite_linked_transactions,
}


@cache
def checks_for(table: str) -> tuple[Check, ...]:
    return tuple(_SUITES[table](TABLES[table]))


def suite_name(table: str) -> str:
    return f"xero.{table}"


def columns_used(table: str) -> set[str]:
    return {c.column for c in checks_for(table)} | {c.show for c in checks_for(table) if c.show}
