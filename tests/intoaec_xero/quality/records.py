"""Xero records as the API sends them (the spec's examples, trimmed), for checks to break one at a time."""

from __future__ import annotations

import copy
import json
from typing import Any

from intoaec_xero.rawstore import RawStore

TENANT = "tenant-q"
MS_2024_03_01 = "/Date(1709251200000+0000)/"
UPDATED = "/Date(1709290000000+0000)/"


def contact(n: int = 1, **changes: Any) -> dict[str, Any]:
    record = {"ContactID": f"c-{n}", "Name": f"Client {n}", "EmailAddress": f"c{n}@example.test",
              "IsCustomer": True, "IsSupplier": False, "ContactStatus": "ACTIVE", "UpdatedDateUTC": UPDATED}
    record.update(changes)
    return record


def invoice(n: int = 1, **changes: Any) -> dict[str, Any]:
    """An authorised sale of 100.00 + 15.00 tax, 40.00 paid, in two lines."""
    record = {
        "Type": "ACCREC", "InvoiceID": f"inv-{n}", "InvoiceNumber": f"INV-{n:04d}", "Reference": "Stage 2",
        "Contact": {"ContactID": "c-1"}, "Status": "AUTHORISED", "LineAmountTypes": "Exclusive",
        "Date": MS_2024_03_01, "DueDate": MS_2024_03_01, "CurrencyCode": "NZD", "CurrencyRate": 1,
        "SubTotal": 100.00, "TotalTax": 15.00, "Total": 115.00, "AmountDue": 75.00, "AmountPaid": 40.00,
        "AmountCredited": 0.00, "UpdatedDateUTC": UPDATED,
        "LineItems": [
            {"LineItemID": f"li-{n}-1", "Description": "Design", "Quantity": 1.0, "UnitAmount": 60.00,
             "AccountCode": "200", "TaxAmount": 9.00, "LineAmount": 60.00,
             "Tracking": [{"Name": "Project", "Option": "Harbour Bridge", "TrackingCategoryID": "tc-1"}]},
            {"LineItemID": f"li-{n}-2", "Description": "Site visits", "Quantity": 2.0, "UnitAmount": 20.00,
             "AccountCode": "200", "TaxAmount": 6.00, "LineAmount": 40.00, "Tracking": []},
        ],
    }
    record.update(changes)
    return record


def payment(n: int = 1, invoice_id: str = "inv-1", **changes: Any) -> dict[str, Any]:
    record = {"PaymentID": f"pay-{n}", "Invoice": {"InvoiceID": invoice_id}, "Account": {"AccountID": "acc-bank"},
              "Date": MS_2024_03_01, "Amount": 40.00, "CurrencyRate": 1.0, "Reference": "",
              "Status": "AUTHORISED", "PaymentType": "ACCRECPAYMENT", "IsReconciled": True, "UpdatedDateUTC": UPDATED}
    record.update(changes)
    return record


def account(account_id: str = "acc-sales", code: str = "200", **changes: Any) -> dict[str, Any]:
    record = {"AccountID": account_id, "Code": code, "Name": f"Account {code}", "Type": "REVENUE",
              "Class": "REVENUE", "Status": "ACTIVE", "TaxType": "OUTPUT2", "UpdatedDateUTC": UPDATED}
    record.update(changes)
    return record


def journal(number: int = 1, **changes: Any) -> dict[str, Any]:
    record = {
        "JournalID": f"j-{number}", "JournalDate": MS_2024_03_01, "JournalNumber": number,
        "CreatedDateUTC": UPDATED, "Reference": "INV-0001", "SourceID": "inv-1", "SourceType": "ACCREC",
        "JournalLines": [
            {"JournalLineID": f"jl-{number}-1", "AccountID": "acc-ar", "AccountCode": "610", "AccountType": "CURRENT",
             "NetAmount": 115.00, "GrossAmount": 115.00, "TaxAmount": 0.00},
            {"JournalLineID": f"jl-{number}-2", "AccountID": "acc-sales", "AccountCode": "200",
             "AccountType": "REVENUE", "NetAmount": -100.00, "GrossAmount": -115.00, "TaxAmount": -15.00,
             "TaxType": "OUTPUT2"},
            {"JournalLineID": f"jl-{number}-3", "AccountID": "acc-gst", "AccountCode": "820", "AccountType": "CURRLIAB",
             "NetAmount": -15.00, "GrossAmount": -15.00, "TaxAmount": 0.00},
        ],
    }
    record.update(changes)
    return record


KEYS = {"contacts": "Contacts", "invoices": "Invoices", "payments": "Payments", "accounts": "Accounts",
        "journals": "Journals", "credit_notes": "CreditNotes", "tracking_categories": "TrackingCategories"}


def page(stream: str, records: list[Any], **envelope: Any) -> bytes:
    return json.dumps({"Id": "x", "Status": "OK", **envelope, KEYS[stream]: records}).encode()


def keep(raw: RawStore, run_id: str, stream: str, *pages: bytes, tenant_id: str = TENANT) -> None:
    raw.reset(run_id, tenant_id, stream)
    for number, body in enumerate(pages, start=1):
        raw.write_page(run_id, tenant_id, stream, number, body)


def broken(record: dict[str, Any], path: str, value: Any = ...) -> dict[str, Any]:
    """A copy with one field (``a.b.0.c``) set to ``value``, or removed when no value is given."""
    record = copy.deepcopy(record)
    *parents, last = path.split(".")
    target: Any = record
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is ...:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return record
