"""Xero JSON records to typed rows of IntoAEC's tables.

Each transform takes one record (parsed with exact decimals) and returns rows per target
table. Dates become ``date``, timestamps aware UTC ``datetime``, money ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from intoaec_xero.parsing import parse_date, parse_datetime, parse_money
from intoaec_xero.projects import DEFAULT_DIMENSION, ProjectDimension

Rows = dict[str, list[dict[str, Any]]]
# (tenant_id, record) -> rows; transforms of documents with lines also take ``projects=``.
Transform = Callable[..., Rows]


class RecordError(ValueError):
    """A record that cannot be turned into rows; names the field and the record."""


def _required(record: dict[str, Any], field_name: str) -> Any:
    value = record.get(field_name)
    if value in (None, ""):
        raise RecordError(f"missing {field_name}")
    return value


def _bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise RecordError(f"not a boolean: {value!r}")


def contacts(tenant_id: str, record: dict[str, Any]) -> Rows:
    return {
        "clients": [
            {
                "tenant_id": tenant_id,
                "contact_id": _required(record, "ContactID"),
                "name": record.get("Name"),
                "contact_number": record.get("ContactNumber"),
                "email": record.get("EmailAddress") or None,
                "is_customer": _bool(record.get("IsCustomer")),
                "is_supplier": _bool(record.get("IsSupplier")),
                "status": record.get("ContactStatus"),
                "default_currency": record.get("DefaultCurrency"),
                "updated_at": parse_datetime(record.get("UpdatedDateUTC")),
            }
        ]
    }


def line_tracking(tracking: Any, reference: Any, projects: ProjectDimension) -> dict[str, Any]:
    """A line's ``project`` and ``tracking`` columns, the same for every table with lines.

    ``tracking`` is the line's list as Xero sends it (``Tracking`` on document lines,
    ``TrackingCategories`` on journal lines); ``reference`` the document's Reference, which the
    tenant's Reference pattern may read the project from.
    """
    if not tracking and projects.pattern is None:  # most journal lines: nothing to read
        return {"project": None, "tracking": []}
    items = tracking or []
    return {
        "project": projects.project(items, reference),
        "tracking": [
            {"category": t.get("Name"), "option": t.get("Option"), "tracking_category_id": t.get("TrackingCategoryID")}
            for t in items
        ],
    }


def document_lines(tenant_id: str, parent_key: str, parent_id: str, record: dict[str, Any],
                   projects: ProjectDimension) -> list[dict[str, Any]]:
    """The rows of a document's ``LineItems`` (invoices, credit notes; the same shape on bank
    transactions and purchase orders), numbered from 1 in Xero's order."""
    reference = record.get("Reference")
    lines = []
    for number, line in enumerate(record.get("LineItems") or (), start=1):
        lines.append(
            {
                "tenant_id": tenant_id,
                "line_item_id": _required(line, "LineItemID"),
                parent_key: parent_id,
                "line_number": number,
                "description": line.get("Description"),
                "quantity": parse_money(line.get("Quantity")),
                "unit_amount": parse_money(line.get("UnitAmount")),
                "item_code": line.get("ItemCode"),
                "account_code": line.get("AccountCode"),
                "tax_type": line.get("TaxType"),
                "tax_amount": parse_money(line.get("TaxAmount")),
                "line_amount": parse_money(line.get("LineAmount")),
                "discount_rate": parse_money(line.get("DiscountRate")),
                **line_tracking(line.get("Tracking"), reference, projects),
            }
        )
    return lines


def invoices(tenant_id: str, record: dict[str, Any], projects: ProjectDimension = DEFAULT_DIMENSION) -> Rows:
    invoice_id = _required(record, "InvoiceID")
    contact = record.get("Contact") or {}
    invoice = {
        "tenant_id": tenant_id,
        "invoice_id": invoice_id,
        "type": record.get("Type"),
        "invoice_number": record.get("InvoiceNumber"),
        "reference": record.get("Reference"),
        "contact_id": contact.get("ContactID"),
        "status": record.get("Status"),
        "line_amount_types": record.get("LineAmountTypes"),
        "date": parse_date(record.get("Date")),
        "due_date": parse_date(record.get("DueDate")),
        "currency_code": record.get("CurrencyCode"),
        "currency_rate": parse_money(record.get("CurrencyRate")),
        "sub_total": parse_money(record.get("SubTotal")),
        "total_tax": parse_money(record.get("TotalTax")),
        "total": parse_money(record.get("Total")),
        "amount_due": parse_money(record.get("AmountDue")),
        "amount_paid": parse_money(record.get("AmountPaid")),
        "amount_credited": parse_money(record.get("AmountCredited")),
        "fully_paid_on_date": parse_date(record.get("FullyPaidOnDate")),
        "updated_at": parse_datetime(record.get("UpdatedDateUTC")),
    }
    lines = document_lines(tenant_id, "invoice_id", invoice_id, record, projects)
    return {"invoices": [invoice], "invoice_lines": lines}


def payments(tenant_id: str, record: dict[str, Any]) -> Rows:
    invoice = record.get("Invoice") or {}
    credit_note = record.get("CreditNote") or {}
    account = record.get("Account") or {}
    return {
        "payments": [
            {
                "tenant_id": tenant_id,
                "payment_id": _required(record, "PaymentID"),
                "invoice_id": invoice.get("InvoiceID"),
                "credit_note_id": credit_note.get("CreditNoteID"),
                "account_id": account.get("AccountID"),
                "date": parse_date(record.get("Date")),
                "amount": parse_money(record.get("Amount")),
                "currency_rate": parse_money(record.get("CurrencyRate")),
                "reference": record.get("Reference") or None,
                "status": record.get("Status"),
                "payment_type": record.get("PaymentType"),
                "is_reconciled": _bool(record.get("IsReconciled")),
                "updated_at": parse_datetime(record.get("UpdatedDateUTC")),
            }
        ]
    }


def credit_notes(tenant_id: str, record: dict[str, Any], projects: ProjectDimension = DEFAULT_DIMENSION) -> Rows:
    credit_note_id = _required(record, "CreditNoteID")
    contact = record.get("Contact") or {}
    allocations = [
        {
            "invoice_id": (a.get("Invoice") or {}).get("InvoiceID"),
            "amount": str(parse_money(a.get("Amount"))) if a.get("Amount") is not None else None,
            "date": str(parse_date(a.get("Date"))) if a.get("Date") else None,
        }
        for a in record.get("Allocations") or ()
    ]
    return {
        "credit_notes": [
            {
                "tenant_id": tenant_id,
                "credit_note_id": credit_note_id,
                "credit_note_number": record.get("CreditNoteNumber"),
                "type": record.get("Type"),
                "contact_id": contact.get("ContactID"),
                "status": record.get("Status"),
                "date": parse_date(record.get("Date")),
                "currency_code": record.get("CurrencyCode"),
                "sub_total": parse_money(record.get("SubTotal")),
                "total_tax": parse_money(record.get("TotalTax")),
                "total": parse_money(record.get("Total")),
                "remaining_credit": parse_money(record.get("RemainingCredit")),
                "allocations": allocations,
                "reference": record.get("Reference") or None,
                "line_amount_types": record.get("LineAmountTypes"),
                "currency_rate": parse_money(record.get("CurrencyRate")),
                "updated_at": parse_datetime(record.get("UpdatedDateUTC")),
            }
        ],
        "credit_note_lines": document_lines(tenant_id, "credit_note_id", credit_note_id, record, projects),
    }


def accounts(tenant_id: str, record: dict[str, Any]) -> Rows:
    return {
        "accounts": [
            {
                "tenant_id": tenant_id,
                "account_id": _required(record, "AccountID"),
                "code": record.get("Code"),
                "name": record.get("Name"),
                "type": record.get("Type"),
                "class": record.get("Class"),
                "status": record.get("Status"),
                "tax_type": record.get("TaxType"),
                "system_account": record.get("SystemAccount"),
                "updated_at": parse_datetime(record.get("UpdatedDateUTC")),
            }
        ]
    }


def tracking_categories(tenant_id: str, record: dict[str, Any]) -> Rows:
    category_id = _required(record, "TrackingCategoryID")
    return {
        "tracking_categories": [
            {"tenant_id": tenant_id, "tracking_category_id": category_id, "name": record.get("Name"),
             "status": record.get("Status")}
        ],
        "tracking_options": [
            {"tenant_id": tenant_id, "tracking_option_id": _required(option, "TrackingOptionID"),
             "tracking_category_id": category_id, "name": option.get("Name"), "status": option.get("Status")}
            for option in record.get("Options") or ()
        ],
    }


def _whole(record: dict[str, Any], field_name: str) -> int | None:
    value = record.get(field_name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not str(value).lstrip("-").isdigit():
        raise RecordError(f"{field_name} is not a whole number: {value!r}")
    return int(value)


def organisation(tenant_id: str, record: dict[str, Any]) -> Rows:
    """The tenant's one Organisation record, keyed by the tenant (Xero lists exactly one per tenant)."""
    return {
        "organisations": [
            {
                "tenant_id": tenant_id,
                "organisation_id": _required(record, "OrganisationID"),
                "name": record.get("Name"),
                "legal_name": record.get("LegalName") or None,
                "base_currency": record.get("BaseCurrency"),
                "country_code": record.get("CountryCode"),
                "financial_year_end_day": _whole(record, "FinancialYearEndDay"),
                "financial_year_end_month": _whole(record, "FinancialYearEndMonth"),
                "organisation_class": record.get("Class"),
                "timezone": record.get("Timezone"),
                "created_at": parse_datetime(record.get("CreatedDateUTC")),
            }
        ]
    }


def tax_rates(tenant_id: str, record: dict[str, Any]) -> Rows:
    components = []
    for number, component in enumerate(record.get("TaxComponents") or (), start=1):
        if not isinstance(component, dict):
            raise RecordError(f"tax component {number} is not an object")
        rate = parse_money(component.get("Rate"))
        components.append({
            "name": component.get("Name"),
            # Text, so the JSON keeps the rate exactly as Xero wrote it (a float might not).
            "rate": None if rate is None else str(rate),
            "is_compound": _bool(component.get("IsCompound")),
            "is_non_recoverable": _bool(component.get("IsNonRecoverable")),
        })
    return {
        "tax_rates": [
            {
                "tenant_id": tenant_id,
                "tax_type": _required(record, "TaxType"),
                "name": record.get("Name"),
                "status": record.get("Status"),
                "report_tax_type": record.get("ReportTaxType"),
                "effective_rate": parse_money(record.get("EffectiveRate")),
                "display_tax_rate": parse_money(record.get("DisplayTaxRate")),
                "components": components,
            }
        ]
    }


def journals(tenant_id: str, record: dict[str, Any], projects: ProjectDimension = DEFAULT_DIMENSION) -> Rows:
    journal_id = _required(record, "JournalID")
    number = _required(record, "JournalNumber")
    if isinstance(number, bool) or not str(number).lstrip("-").isdigit():
        raise RecordError(f"JournalNumber is not a whole number: {number!r}")
    reference = record.get("Reference")
    journal_date = parse_date(record.get("JournalDate"))
    source_type, source_id = record.get("SourceType"), record.get("SourceID")
    return {
        "journals": [
            {
                "tenant_id": tenant_id,
                "journal_id": journal_id,
                "journal_number": int(number),
                "journal_date": journal_date,
                "created_at": parse_datetime(record.get("CreatedDateUTC")),
                "reference": record.get("Reference") or None,
                "source_type": source_type,
                "source_id": source_id,
                "origin": "xero",  # read from Xero's Journals (see schema.JOURNAL_ORIGIN_DOC)
            }
        ],
        "journal_lines": [
            {
                "tenant_id": tenant_id,
                "journal_line_id": _required(line, "JournalLineID"),
                "journal_id": journal_id,
                # The journal's, on each line: per-account, per-month sums need no join.
                "journal_date": journal_date,
                "source_type": source_type,
                "source_id": source_id,
                "account_id": line.get("AccountID"),
                "account_code": line.get("AccountCode"),
                "account_type": line.get("AccountType"),
                "description": line.get("Description") or None,
                "net_amount": parse_money(line.get("NetAmount")),
                "gross_amount": parse_money(line.get("GrossAmount")),
                "tax_amount": parse_money(line.get("TaxAmount")),
                "tax_type": line.get("TaxType"),
                **line_tracking(line.get("TrackingCategories"), reference, projects),
            }
            for line in record.get("JournalLines") or ()
        ],
    }


def _document_fields(record: dict[str, Any]) -> dict[str, Any]:
    """What every money document of the cost side carries: contact, status, date, currency and totals."""
    return {
        "contact_id": (record.get("Contact") or {}).get("ContactID"),
        "status": record.get("Status"),
        "line_amount_types": record.get("LineAmountTypes"),
        "date": parse_date(record.get("Date")),
        "reference": record.get("Reference") or None,
        "currency_code": record.get("CurrencyCode"),
        "currency_rate": parse_money(record.get("CurrencyRate")),
        "sub_total": parse_money(record.get("SubTotal")),
        "total_tax": parse_money(record.get("TotalTax")),
        "total": parse_money(record.get("Total")),
        "updated_at": parse_datetime(record.get("UpdatedDateUTC")),
    }


def bank_transactions(tenant_id: str, record: dict[str, Any],
                      projects: ProjectDimension = DEFAULT_DIMENSION) -> Rows:
    transaction_id = _required(record, "BankTransactionID")
    account = record.get("BankAccount") or {}
    return {
        "bank_transactions": [
            {
                "tenant_id": tenant_id,
                "bank_transaction_id": transaction_id,
                "type": record.get("Type"),
                **_document_fields(record),
                "bank_account_id": account.get("AccountID"),
                "bank_account_code": account.get("Code"),
                "is_reconciled": _bool(record.get("IsReconciled")),
                "prepayment_id": record.get("PrepaymentID"),
                "overpayment_id": record.get("OverpaymentID"),
            }
        ],
        "bank_transaction_lines": document_lines(tenant_id, "bank_transaction_id", transaction_id, record, projects),
    }


def bank_transfers(tenant_id: str, record: dict[str, Any]) -> Rows:
    source = record.get("FromBankAccount") or {}
    target = record.get("ToBankAccount") or {}
    return {
        "bank_transfers": [
            {
                "tenant_id": tenant_id,
                "bank_transfer_id": _required(record, "BankTransferID"),
                "from_bank_account_id": source.get("AccountID"),
                "from_bank_account_code": source.get("Code"),
                "to_bank_account_id": target.get("AccountID"),
                "to_bank_account_code": target.get("Code"),
                "amount": parse_money(record.get("Amount")),
                "date": parse_date(record.get("Date")),
                "currency_rate": parse_money(record.get("CurrencyRate")),
                "from_bank_transaction_id": record.get("FromBankTransactionID"),
                "to_bank_transaction_id": record.get("ToBankTransactionID"),
                "reference": record.get("Reference") or None,
                "status": record.get("Status"),
                "has_attachments": _bool(record.get("HasAttachments")),
                "created_at": parse_datetime(record.get("CreatedDateUTC")),
            }
        ]
    }


def manual_journals(tenant_id: str, record: dict[str, Any],
                    projects: ProjectDimension = DEFAULT_DIMENSION) -> Rows:
    journal_id = _required(record, "ManualJournalID")
    # The narration is the Reference of the journal Xero posts for it: a project pattern reads it there too.
    narration = record.get("Narration")
    lines = []
    for number, line in enumerate(record.get("JournalLines") or (), start=1):
        if not isinstance(line, dict):
            raise RecordError(f"journal line {number} is not an object")
        lines.append(
            {
                "tenant_id": tenant_id,
                "manual_journal_line_id": f"{journal_id}/{number}",
                "manual_journal_id": journal_id,
                "line_number": number,
                "description": line.get("Description") or None,
                "account_id": line.get("AccountID"),
                "account_code": line.get("AccountCode"),
                "tax_type": line.get("TaxType"),
                "tax_amount": parse_money(line.get("TaxAmount")),
                "line_amount": parse_money(line.get("LineAmount")),
                "is_blank": _bool(line.get("IsBlank")),
                **line_tracking(line.get("Tracking"), narration, projects),
            }
        )
    return {
        "manual_journals": [
            {
                "tenant_id": tenant_id,
                "manual_journal_id": journal_id,
                "narration": narration,
                "date": parse_date(record.get("Date")),
                "status": record.get("Status"),
                "line_amount_types": record.get("LineAmountTypes"),
                "show_on_cash_basis_reports": _bool(record.get("ShowOnCashBasisReports")),
                "updated_at": parse_datetime(record.get("UpdatedDateUTC")),
            }
        ],
        "manual_journal_lines": lines,
    }


def purchase_orders(tenant_id: str, record: dict[str, Any],
                    projects: ProjectDimension = DEFAULT_DIMENSION) -> Rows:
    order_id = _required(record, "PurchaseOrderID")
    return {
        "purchase_orders": [
            {
                "tenant_id": tenant_id,
                "purchase_order_id": order_id,
                "purchase_order_number": record.get("PurchaseOrderNumber"),
                **_document_fields(record),
                "delivery_date": parse_date(record.get("DeliveryDate")),
                "expected_arrival_date": parse_date(record.get("ExpectedArrivalDate")),
                "sent_to_contact": _bool(record.get("SentToContact")),
            }
        ],
        "purchase_order_lines": document_lines(tenant_id, "purchase_order_id", order_id, record, projects),
    }


def _deposit(tenant_id: str, record: dict[str, Any], kind: str) -> Rows:
    """A prepayment or an overpayment (``kind``) and its allocations to invoices.

    Its line items are the receive (or spend) money transaction's, already in bank_transaction_lines.
    An allocation without Xero's AllocationID is keyed by the deposit's id and its place in the list,
    stable because a deposit's allocations are replaced whole whenever it is read again.
    """
    key = f"{kind}_id"
    deposit_id = _required(record, f"{kind.capitalize()}ID")
    allocations = []
    for number, allocation in enumerate(record.get("Allocations") or (), start=1):
        if not isinstance(allocation, dict):
            raise RecordError(f"allocation {number} is not an object")
        allocation_id = allocation.get("AllocationID")
        if allocation_id is not None and not isinstance(allocation_id, str):
            raise RecordError(f"AllocationID is not text: {allocation_id!r}")
        allocations.append(
            {
                "tenant_id": tenant_id,
                "allocation_id": allocation_id or f"{deposit_id}/{number}",
                key: deposit_id,
                "invoice_id": (allocation.get("Invoice") or {}).get("InvoiceID"),
                "amount": parse_money(allocation.get("Amount")),
                "date": parse_date(allocation.get("Date")),
                "is_deleted": _bool(allocation.get("IsDeleted")),
            }
        )
    deposit = {
        "tenant_id": tenant_id,
        key: deposit_id,
        "type": record.get("Type"),
        **_document_fields(record),
        "remaining_credit": parse_money(record.get("RemainingCredit")),
        "applied_amount": parse_money(record.get("AppliedAmount")),
    }
    if kind == "prepayment":
        deposit["invoice_number"] = record.get("InvoiceNumber")
    return {f"{kind}s": [deposit], f"{kind}_allocations": allocations}


def overpayments(tenant_id: str, record: dict[str, Any]) -> Rows:
    return _deposit(tenant_id, record, "overpayment")


def prepayments(tenant_id: str, record: dict[str, Any]) -> Rows:
    return _deposit(tenant_id, record, "prepayment")


def linked_transactions(tenant_id: str, record: dict[str, Any]) -> Rows:
    return {
        "linked_transactions": [
            {
                "tenant_id": tenant_id,
                "linked_transaction_id": _required(record, "LinkedTransactionID"),
                "type": record.get("Type"),
                "status": record.get("Status"),
                "source_transaction_id": record.get("SourceTransactionID"),
                "source_line_item_id": record.get("SourceLineItemID"),
                "source_transaction_type_code": record.get("SourceTransactionTypeCode"),
                "contact_id": record.get("ContactID"),
                "target_transaction_id": record.get("TargetTransactionID"),
                "target_line_item_id": record.get("TargetLineItemID"),
                "updated_at": parse_datetime(record.get("UpdatedDateUTC")),
            }
        ]
    }


TRANSFORMS: dict[str, Transform] = {
    "contacts": contacts,
    "invoices": invoices,
    "payments": payments,
    "credit_notes": credit_notes,
    "accounts": accounts,
    "tracking_categories": tracking_categories,
    "organisation": organisation,
    "tax_rates": tax_rates,
    "journals": journals,
    "bank_transactions": bank_transactions,
    "bank_transfers": bank_transfers,
    "manual_journals": manual_journals,
    "purchase_orders": purchase_orders,
    "overpayments": overpayments,
    "prepayments": prepayments,
    "linked_transactions": linked_transactions,
}


def transform_record(stream_name: str, tenant_id: str, record: dict[str, Any],
                     projects: ProjectDimension | None = None) -> Rows:
    """Rows of one record. ``projects`` is the tenant's project dimension, for streams whose lines have a
    project (the load resolves it once per stream, see :mod:`intoaec_xero.projects`); without it
    lines take the default category names."""
    try:
        if projects is not None:
            return TRANSFORMS[stream_name](tenant_id, record, projects=projects)
        return TRANSFORMS[stream_name](tenant_id, record)
    except (ValueError, TypeError, AttributeError) as error:
        raise RecordError(f"{stream_name} record cannot be read: {error}") from error
