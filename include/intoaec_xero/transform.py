"""Xero JSON records to typed rows of IntoAEC's tables.

Each transform takes one record (parsed with exact decimals) and returns rows per target
table. Dates become ``date``, timestamps aware UTC ``datetime``, money ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from intoaec_xero.parsing import parse_date, parse_datetime, parse_money

Rows = dict[str, list[dict[str, Any]]]
Transform = Callable[[str, dict[str, Any]], Rows]

# Projects are a tracking category in AEC firms' Xero files; this is its usual name.
PROJECT_CATEGORY = "project"


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


def _project(tracking: list[dict[str, Any]] | None) -> str | None:
    for item in tracking or ():
        if str(item.get("Name", "")).strip().lower() == PROJECT_CATEGORY:
            return item.get("Option")
    return None


def invoices(tenant_id: str, record: dict[str, Any]) -> Rows:
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
    lines = []
    for number, line in enumerate(record.get("LineItems") or (), start=1):
        tracking = line.get("Tracking") or []
        lines.append(
            {
                "tenant_id": tenant_id,
                "line_item_id": _required(line, "LineItemID"),
                "invoice_id": invoice_id,
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
                "project": _project(tracking),
                "tracking": [
                    {"category": t.get("Name"), "option": t.get("Option"),
                     "tracking_category_id": t.get("TrackingCategoryID")}
                    for t in tracking
                ],
            }
        )
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


def credit_notes(tenant_id: str, record: dict[str, Any]) -> Rows:
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
                "credit_note_id": _required(record, "CreditNoteID"),
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
                "updated_at": parse_datetime(record.get("UpdatedDateUTC")),
            }
        ]
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


def journals(tenant_id: str, record: dict[str, Any]) -> Rows:
    journal_id = _required(record, "JournalID")
    number = _required(record, "JournalNumber")
    if isinstance(number, bool) or not str(number).lstrip("-").isdigit():
        raise RecordError(f"JournalNumber is not a whole number: {number!r}")
    return {
        "journals": [
            {
                "tenant_id": tenant_id,
                "journal_id": journal_id,
                "journal_number": int(number),
                "journal_date": parse_date(record.get("JournalDate")),
                "created_at": parse_datetime(record.get("CreatedDateUTC")),
                "reference": record.get("Reference") or None,
                "source_type": record.get("SourceType"),
                "source_id": record.get("SourceID"),
            }
        ],
        "journal_lines": [
            {
                "tenant_id": tenant_id,
                "journal_line_id": _required(line, "JournalLineID"),
                "journal_id": journal_id,
                "account_id": line.get("AccountID"),
                "account_code": line.get("AccountCode"),
                "account_type": line.get("AccountType"),
                "description": line.get("Description") or None,
                "net_amount": parse_money(line.get("NetAmount")),
                "gross_amount": parse_money(line.get("GrossAmount")),
                "tax_amount": parse_money(line.get("TaxAmount")),
                "tax_type": line.get("TaxType"),
            }
            for line in record.get("JournalLines") or ()
        ],
    }


TRANSFORMS: dict[str, Transform] = {
    "contacts": contacts,
    "invoices": invoices,
    "payments": payments,
    "credit_notes": credit_notes,
    "accounts": accounts,
    "tracking_categories": tracking_categories,
    "journals": journals,
}


def transform_record(stream_name: str, tenant_id: str, record: dict[str, Any]) -> Rows:
    try:
        return TRANSFORMS[stream_name](tenant_id, record)
    except (ValueError, TypeError, AttributeError) as error:
        raise RecordError(f"{stream_name} record cannot be read: {error}") from error
