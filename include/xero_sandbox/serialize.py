"""Model records to Xero's JSON, field for field as the Accounting API returns them.

Money goes out as JSON numbers: ``cents / 100`` is the float nearest the exact two-place
amount, and its shortest repr is that amount, so clients that parse numbers as decimals get the
exact value. Dates are MS-JSON (``/Date(ms+0000)/``). Shapes follow the spec's examples in
``shared/xero-openapi/examples``; fields the pipeline does not read are still present when Xero
sends them, so the SDK's models see realistic payloads.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

try:
    import orjson
    _HAS_ORJSON = True
except ImportError:  # pragma: no cover - a pinned dependency
    _HAS_ORJSON = False

from . import ids
from .ids import ms_date, ms_datetime, ms_plain
from .model import (
    ACCOUNT_CLASS,
    RATE_ONE,
    SOURCE_TYPES,
    BankTransaction,
    BankTransfer,
    Books,
    CreditNote,
    Invoice,
    LinkedTransaction,
    ManualJournal,
    Payment,
    Prepayment,
    PurchaseOrder,
    TaxRate,
    to_base,
)

PROVIDER_NAME = "IntoAEC Xero Sandbox"

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def encode(obj) -> bytes:
    # orjson writes the same compact UTF-8 JSON (floats as their shortest repr) several times
    # faster, so a large dataset is served at a pace closer to Xero's; anything it refuses
    # (e.g. an integer beyond 64 bits) goes through the standard encoder.
    if _HAS_ORJSON:
        try:
            return orjson.dumps(obj)
        except TypeError:
            pass
    return _dumps(obj).encode("utf-8")


def money(cents: int) -> float:
    return cents / 100


def rate(micros: int) -> float:
    return micros / RATE_ONE


def envelope(key: str, items: list, now_ms: int, pagination: dict | None = None) -> dict:
    out: dict[str, object] = {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": PROVIDER_NAME,
                              "DateTimeUTC": ms_plain(now_ms)}
    if pagination is not None:
        out["pagination"] = pagination
    out[key] = items
    return out


# ----------------------------------------------------------------------------- settings

_ORG_COUNTRY = {"NZ": ("NZ", "NEWZEALANDSTANDARDTIME", 31, 3), "AU": ("AU", "AUSEASTERNSTANDARDTIME", 30, 6),
                "GB": ("UK", "GMTSTANDARDTIME", 31, 3)}


_ORG_CLASSES = ("PREMIUM", "STANDARD", "STARTER")


def organisation(b: Books) -> dict:
    version, timezone, fy_day, fy_month = _ORG_COUNTRY[b.country]
    return {
        "OrganisationID": b.tenant_id,
        "APIKey": "",
        "Name": b.name,
        "LegalName": b.name.split(" — ")[0],
        "PaysTax": True,
        "Version": version,
        "OrganisationType": "COMPANY",
        "BaseCurrency": b.base_currency,
        "CountryCode": b.country,
        "IsDemoCompany": False,
        "OrganisationStatus": "ACTIVE",
        "FinancialYearEndDay": fy_day,
        "FinancialYearEndMonth": fy_month,
        "SalesTaxBasis": "ACCRUALS" if b.country != "AU" else "ACCRUAL",
        "SalesTaxPeriod": "TWOMONTHS" if b.country == "NZ" else "QUARTERLY1",
        "DefaultSalesTax": "Tax Exclusive",
        "DefaultPurchasesTax": "Tax Inclusive",
        "CreatedDateUTC": ms_datetime(b.created_ms),
        "OrganisationEntityType": "COMPANY",
        "Timezone": timezone,
        "ShortCode": b.short_code,
        # The organisation's Xero plan. It says nothing about Journals: Xero gates those per app.
        "Class": _ORG_CLASSES[b.no % len(_ORG_CLASSES)],
        "Edition": "BUSINESS",
        "LineOfBusiness": "Architecture, engineering and construction services",
        "Addresses": [],
        "Phones": [],
        "ExternalLinks": [],
        "PaymentTerms": {},
    }


# Per tax type: ReportTaxType and which account classes it applies to (assets, equity, expenses,
# liabilities, revenue), as Xero's own rates say.
_SALE_USE = (True, True, False, True, True)
_PURCHASE_USE = (True, True, True, True, False)
_ANY_USE = (True, True, True, True, True)
_ZERO_SALE_USE = (False, False, False, True, True)
_TAX_TYPES = {
    "OUTPUT2": ("OUTPUT", _SALE_USE), "OUTPUT": ("OUTPUT", _SALE_USE),
    "INPUT2": ("INPUT", _PURCHASE_USE), "INPUT": ("INPUT", _PURCHASE_USE),
    "NONE": ("NONE", _ANY_USE), "BASEXCLUDED": ("BASEXCLUDED", _ANY_USE),
    "ZERORATED": ("OUTPUT", _ZERO_SALE_USE), "EXEMPTEXPORT": ("EXEMPTEXPORT", _ZERO_SALE_USE),
    "ZERORATEDOUTPUT": ("ZERORATEDOUTPUT", _ZERO_SALE_USE),
}
_TAX_WORD = {"NZ": "GST", "AU": "GST", "GB": "VAT"}


def tax_rate(b: Books, t: TaxRate) -> dict:
    report, use = _TAX_TYPES[t.code]
    rate = t.bp / 100
    return {
        "Name": t.name,
        "TaxType": t.code,
        "ReportTaxType": report,
        "CanApplyToAssets": use[0],
        "CanApplyToEquity": use[1],
        "CanApplyToExpenses": use[2],
        "CanApplyToLiabilities": use[3],
        "CanApplyToRevenue": use[4],
        "DisplayTaxRate": rate,
        "EffectiveRate": rate,
        "Status": "ACTIVE",
        "TaxComponents": [{"Name": _TAX_WORD[b.country], "Rate": rate, "IsCompound": False,
                           "IsNonRecoverable": False}],
    }


def account(b: Books, a) -> dict:
    d = {
        "AccountID": b.guid(ids.ACCOUNT, a.idx),
        "Code": a.code,
        "Name": a.name,
        "Status": a.status,
        "Type": a.type,
        "TaxType": a.tax_type,
        "Class": ACCOUNT_CLASS[a.type],
        "EnablePaymentsToAccount": a.enable_payments,
        "ShowInExpenseClaims": a.type in ("EXPENSE", "OVERHEADS", "DIRECTCOSTS"),
        "ReportingCode": _reporting_code(a.type),
        "ReportingCodeName": a.name,
        "HasAttachments": False,
        "UpdatedDateUTC": ms_datetime(a.updated_ms),
        "AddToWatchlist": False,
    }
    if a.description:
        d["Description"] = a.description
    if a.system:
        d["SystemAccount"] = a.system
    if a.type == "BANK":
        d["BankAccountNumber"] = a.bank_number
        d["BankAccountType"] = "BANK"
        d["CurrencyCode"] = a.currency
    return d


def _reporting_code(type_: str) -> str:
    return {"ASSET": "ASS", "LIABILITY": "LIA", "EQUITY": "EQU", "REVENUE": "REV", "EXPENSE": "EXP"}[
        ACCOUNT_CLASS[type_]]


def tracking_category(b: Books, c, include_archived: bool) -> dict:
    opts = [b.options[o] for o in c.options]
    if not include_archived:
        opts = [o for o in opts if o.status == "ACTIVE"]
    return {
        "Name": c.name,
        "Status": c.status,
        "TrackingCategoryID": b.guid(ids.TRACKING_CATEGORY, c.idx),
        "Options": [tracking_option(b, o) for o in opts],
    }


def tracking_option(b: Books, o) -> dict:
    return {
        "TrackingOptionID": b.guid(ids.TRACKING_OPTION, o.idx),
        "Name": o.name,
        "Status": o.status,
        "HasValidationErrors": False,
        "IsDeleted": o.status == "DELETED",
        "IsArchived": o.status == "ARCHIVED",
        "IsActive": o.status == "ACTIVE",
    }


def line_tracking(b: Books, opt: int) -> dict:
    o = b.options[opt]
    return {
        "Name": b.categories[o.category].name,
        "Option": o.name,
        "TrackingCategoryID": b.ref_guid(ids.TRACKING_CATEGORY, o.category),
        "TrackingOptionID": b.ref_guid(ids.TRACKING_OPTION, o.idx),
    }


# ----------------------------------------------------------------------------- contacts

def contact_ref(b: Books, idx: int) -> dict:
    c = b.contacts[idx]
    return {
        "ContactID": b.ref_guid(ids.CONTACT, idx),
        "Name": c.name,
        "Addresses": [],
        "Phones": [],
        "ContactGroups": [],
        "ContactPersons": [],
        "HasValidationErrors": False,
    }


def contact(b: Books, c, summary: bool = False) -> dict:
    d = {
        "ContactID": b.guid(ids.CONTACT, c.idx),
        "ContactStatus": c.status,
        "Name": c.name,
    }
    if c.first:
        d["FirstName"] = c.first
        d["LastName"] = c.last
    d["EmailAddress"] = c.email
    if not summary:
        d["BankAccountDetails"] = ""
        d["Addresses"] = [
            {"AddressType": "POBOX", "City": "", "Region": "", "PostalCode": "", "Country": ""},
            {"AddressType": "STREET", "AddressLine1": c.street, "City": c.city, "Region": c.region,
             "PostalCode": c.postcode, "Country": c.country},
        ]
        d["Phones"] = [
            {"PhoneType": "DEFAULT", "PhoneNumber": c.phone[1], "PhoneAreaCode": c.phone[0],
             "PhoneCountryCode": ""},
            {"PhoneType": "DDI", "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""},
            {"PhoneType": "FAX", "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""},
            {"PhoneType": "MOBILE", "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""},
        ]
    d["UpdatedDateUTC"] = ms_datetime(c.updated_ms, c.tz)
    d["ContactGroups"] = []
    d["IsSupplier"] = c.is_supplier
    d["IsCustomer"] = c.is_customer
    if c.currency != b.base_currency:
        d["DefaultCurrency"] = c.currency
    d["ContactPersons"] = []
    d["HasAttachments"] = False
    d["HasValidationErrors"] = False
    return d


# ----------------------------------------------------------------------------- documents

def line_items(b: Books, doc, unitdp: int) -> list[dict]:
    ln = b.lines
    out = []
    strings = b.strings
    accounts = b.accounts
    taxes = b.tax_rates
    no_tax = doc.lat == "NoTax"
    for i in range(doc.line_start, doc.line_start + doc.line_count):
        unit = ln.unit[i]
        if unitdp < 4 and unit % 100:
            sign = -1 if unit < 0 else 1
            unit = sign * ((abs(unit) + 50) // 100 * 100)
        tracking = []
        if ln.track[i] >= 0:
            tracking.append(line_tracking(b, ln.track[i]))
        if ln.track2[i] >= 0:
            tracking.append(line_tracking(b, ln.track2[i]))
        acct = accounts[ln.account[i]]
        out.append({
            "LineItemID": b.guid(ids.LINE, ln.uid[i]),
            "Description": strings[ln.desc[i]],
            "Quantity": ln.qty[i] / 10000,
            "UnitAmount": unit / 10000,
            "AccountCode": acct.code,
            "AccountID": b.ref_guid(ids.ACCOUNT, acct.idx),
            "TaxType": "NONE" if no_tax else taxes[ln.taxrate[i]].code,
            "TaxAmount": ln.tax[i] / 100,
            "LineAmount": ln.amount[i] / 100,
            "Tracking": tracking,
        })
    return out


def _payment_ref(b: Books, p: Payment) -> dict:
    return {
        "PaymentID": b.guid(ids.PAYMENT, p.idx),
        "Date": ms_date(p.date),
        "Amount": p.amount / 100,
        "Reference": p.reference,
        "CurrencyRate": p.rate / RATE_ONE,
        "HasAccount": False,
        "HasValidationErrors": False,
    }


def invoice(b: Books, inv: Invoice, unitdp: int = 2, summary: bool = False) -> dict:
    live_payments = [b.payments[x] for x in inv.payments if b.payments[x].status == "AUTHORISED"]
    d = {
        "Type": inv.type,
        "InvoiceID": b.guid(ids.INVOICE, inv.idx),
        "InvoiceNumber": inv.number,
        "Reference": inv.reference,
        "Payments": [_payment_ref(b, p) for p in live_payments],
        "CreditNotes": [_allocation_cn_ref(b, a) for a in inv.allocations],
        "Prepayments": [_deposit_ref(b, a) for a in inv.credit_allocs if b.credit_allocations[a].kind == "PREPAYMENT"],
        "Overpayments": [_deposit_ref(b, a) for a in inv.credit_allocs
                         if b.credit_allocations[a].kind == "OVERPAYMENT"],
        "AmountDue": inv.due_amount / 100,
        "AmountPaid": inv.paid / 100,
        "AmountCredited": inv.credited / 100,
        "SentToContact": inv.sent,
        "CurrencyRate": inv.rate / RATE_ONE,
        "IsDiscounted": False,
        "HasAttachments": inv.has_attachments,
        "HasErrors": False,
        "Contact": contact_ref(b, inv.contact),
        "DateString": _date_string(inv.date),
        "Date": ms_date(inv.date),
        "DueDateString": _date_string(inv.due),
        "DueDate": ms_date(inv.due),
        "Status": inv.status,
        "LineAmountTypes": inv.lat,
        "LineItems": [] if summary else line_items(b, inv, unitdp),
        "SubTotal": inv.sub_total / 100,
        "TotalTax": inv.total_tax / 100,
        "Total": inv.total / 100,
        "UpdatedDateUTC": ms_datetime(inv.updated_ms, inv.tz),
        "CurrencyCode": inv.currency,
    }
    if inv.fully_paid_day is not None:
        d["FullyPaidOnDate"] = ms_date(inv.fully_paid_day)
    if summary:
        del d["LineItems"]
    return d


def _date_string(day: int) -> str:
    return ids.date_of(day).isoformat() + "T00:00:00"


def _allocation_cn_ref(b: Books, a_idx: int) -> dict:
    a = b.allocations[a_idx]
    cn = b.credit_notes[a.credit_note]
    return {
        "CreditNoteID": b.guid(ids.CREDIT_NOTE, cn.idx),
        "CreditNoteNumber": cn.number,
        "AppliedAmount": a.amount / 100,
        "Date": ms_date(a.date),
        "Total": cn.total / 100,
        "HasErrors": False,
    }


def _deposit_ref(b: Books, a_idx: int) -> dict:
    """A prepayment or overpayment as an invoice lists it: what was applied, when."""
    a = b.credit_allocations[a_idx]
    kind = "Prepayment" if a.kind == "PREPAYMENT" else "Overpayment"
    table = b.prepayments if a.kind == "PREPAYMENT" else b.overpayments
    dep = table[a.source]
    guid = b.guid(_DEPOSIT_KIND[a.kind], dep.idx)
    return {f"{kind}ID": guid, "ID": guid, "Date": ms_date(a.date), "AppliedAmount": a.amount / 100,
            "Total": b.doc_total(dep) / 100, "Allocations": [], "Payments": [], "LineItems": []}


_DEPOSIT_KIND = {"PREPAYMENT": ids.PREPAYMENT, "OVERPAYMENT": ids.OVERPAYMENT}


def _invoice_stub(b: Books, inv: Invoice) -> dict:
    return {
        "InvoiceID": b.guid(ids.INVOICE, inv.idx),
        "InvoiceNumber": inv.number,
        "Payments": [],
        "CreditNotes": [],
        "Prepayments": [],
        "Overpayments": [],
        "HasErrors": False,
        "IsDiscounted": False,
        "LineItems": [],
    }


def payment(b: Books, p: Payment) -> dict:
    inv = b.invoices[p.invoice]
    acct = b.accounts[p.account]
    return {
        "PaymentID": b.guid(ids.PAYMENT, p.idx),
        "Date": ms_date(p.date),
        "BankAmount": to_base(p.amount, p.rate) / 100,
        "Amount": p.amount / 100,
        "Reference": p.reference,
        "CurrencyRate": p.rate / RATE_ONE,
        "PaymentType": "ACCRECPAYMENT" if inv.type == "ACCREC" else "ACCPAYPAYMENT",
        "Status": p.status,
        "UpdatedDateUTC": ms_datetime(p.updated_ms, p.tz),
        "HasAccount": True,
        "IsReconciled": p.reconciled,
        "Account": {"AccountID": b.guid(ids.ACCOUNT, acct.idx), "Code": acct.code},
        "Invoice": {
            "Type": inv.type,
            "InvoiceID": b.guid(ids.INVOICE, inv.idx),
            "InvoiceNumber": inv.number,
            "Payments": [],
            "CreditNotes": [],
            "Prepayments": [],
            "Overpayments": [],
            "HasErrors": False,
            "IsDiscounted": False,
            "Contact": contact_ref(b, inv.contact),
            "LineItems": [],
            "CurrencyCode": inv.currency,
        },
        "HasValidationErrors": False,
    }


def credit_note(b: Books, cn: CreditNote, unitdp: int = 2) -> dict:
    allocs = []
    for a_idx in cn.allocations:
        a = b.allocations[a_idx]
        inv = b.invoices[a.invoice]
        allocs.append({
            "AllocationID": b.guid(ids.ALLOCATION, a.idx),
            "Amount": a.amount / 100,
            "Date": ms_date(a.date),
            "Invoice": _invoice_stub(b, inv),
            "IsDeleted": False,
        })
    d = {
        "CreditNoteID": b.guid(ids.CREDIT_NOTE, cn.idx),
        "CreditNoteNumber": cn.number,
        "Payments": [],
        "ID": b.guid(ids.CREDIT_NOTE, cn.idx),
        "HasErrors": False,
        "CurrencyRate": cn.rate / RATE_ONE,
        "Type": cn.type,
        "Reference": cn.reference,
        "RemainingCredit": cn.remaining / 100,
        "Allocations": allocs,
        "HasAttachments": False,
        "Contact": contact_ref(b, cn.contact),
        "DateString": _date_string(cn.date),
        "Date": ms_date(cn.date),
        "Status": cn.status,
        "LineAmountTypes": cn.lat,
        "LineItems": line_items(b, cn, unitdp),
        "SubTotal": cn.sub_total / 100,
        "TotalTax": cn.total_tax / 100,
        "Total": cn.total / 100,
        "UpdatedDateUTC": ms_datetime(cn.updated_ms, cn.tz),
        "CurrencyCode": cn.currency,
    }
    if cn.fully_paid_day is not None:
        d["FullyPaidOnDate"] = ms_date(cn.fully_paid_day)
    return d


# ----------------------------------------------------------------------------- cost side

def _utc_string(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def bank_account_ref(b: Books, acct_idx: int) -> dict:
    a = b.accounts[acct_idx]
    return {"AccountID": b.ref_guid(ids.ACCOUNT, a.idx), "Code": a.code, "Name": a.name}


def bank_transaction(b: Books, bt: BankTransaction, unitdp: int = 2) -> dict:
    d = {
        "BankTransactionID": b.guid(ids.BANK_TRANSACTION, bt.idx),
        "BankAccount": bank_account_ref(b, bt.account),
        "Type": bt.type,
        "Reference": bt.reference,
        "IsReconciled": bt.reconciled,
        "HasAttachments": bt.has_attachments,
        "Contact": contact_ref(b, bt.contact),
        "DateString": _date_string(bt.date),
        "Date": ms_date(bt.date),
        "Status": bt.status,
        "LineAmountTypes": bt.lat,
        "LineItems": line_items(b, bt, unitdp),
        "SubTotal": bt.sub_total / 100,
        "TotalTax": bt.total_tax / 100,
        "Total": bt.total / 100,
        "UpdatedDateUTC": ms_datetime(bt.updated_ms, bt.tz),
        "CurrencyCode": bt.currency,
    }
    if bt.type == "RECEIVE-PREPAYMENT":
        d["PrepaymentID"] = b.guid(ids.PREPAYMENT, bt.link)
    elif bt.type == "RECEIVE-OVERPAYMENT":
        d["OverpaymentID"] = b.guid(ids.OVERPAYMENT, bt.link)
    return d


def bank_transfer(b: Books, x: BankTransfer) -> dict:
    return {
        "BankTransferID": b.guid(ids.BANK_TRANSFER, x.idx),
        "CreatedDateUTCString": datetime.fromtimestamp(x.created_ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "CreatedDateUTC": ms_datetime(x.created_ms),
        "DateString": _date_string(x.date),
        "Date": ms_date(x.date),
        "Status": "AUTHORISED",
        "FromBankAccount": bank_account_ref(b, x.from_account),
        "ToBankAccount": bank_account_ref(b, x.to_account),
        "Amount": x.amount / 100,
        "CurrencyRate": x.rate / RATE_ONE,
        "FromBankTransactionID": b.guid(ids.TRANSFER_SIDE, 2 * x.idx),
        "ToBankTransactionID": b.guid(ids.TRANSFER_SIDE, 2 * x.idx + 1),
        "FromIsReconciled": x.reconciled,
        "ToIsReconciled": x.reconciled,
        "Reference": x.reference,
        "HasAttachments": x.has_attachments,
        "FromTracking": [],
        "ToTracking": [],
    }


def manual_journal(b: Books, mj: ManualJournal) -> dict:
    ln = b.lines
    strings, accounts, taxes = b.strings, b.accounts, b.tax_rates
    lines = []
    for i in range(mj.line_start, mj.line_start + mj.line_count):
        acct = accounts[ln.account[i]]
        tracking = []
        if ln.track[i] >= 0:
            tracking.append(line_tracking(b, ln.track[i]))
        if ln.track2[i] >= 0:
            tracking.append(line_tracking(b, ln.track2[i]))
        lines.append({
            "LineAmount": ln.amount[i] / 100,
            "AccountCode": acct.code,
            "AccountID": b.ref_guid(ids.ACCOUNT, acct.idx),
            "Description": strings[ln.desc[i]],
            "TaxType": taxes[ln.taxrate[i]].code,
            "Tracking": tracking,
            "TaxAmount": ln.tax[i] / 100,
            "IsBlank": False,
        })
    return {
        "Date": ms_date(mj.date),
        "Status": mj.status,
        "LineAmountTypes": mj.lat,
        "UpdatedDateUTC": ms_datetime(mj.updated_ms),
        "ManualJournalID": b.guid(ids.MANUAL_JOURNAL, mj.idx),
        "Narration": strings[mj.narration],
        "JournalLines": lines,
        "ShowOnCashBasisReports": mj.cash_basis,
        "HasAttachments": False,
    }


def purchase_order(b: Books, po: PurchaseOrder, unitdp: int = 2) -> dict:
    c = b.contacts[po.contact]
    return {
        "PurchaseOrderID": b.guid(ids.PURCHASE_ORDER, po.idx),
        "PurchaseOrderNumber": po.number,
        "DateString": _date_string(po.date),
        "Date": ms_date(po.date),
        "DeliveryDateString": _date_string(po.delivery),
        "DeliveryDate": ms_date(po.delivery),
        "DeliveryAddress": f"{b.name}, {c.city}",
        "AttentionTo": po.attention,
        "Telephone": f"{c.phone[0]} {c.phone[1]}",
        "DeliveryInstructions": "",
        "HasErrors": False,
        "IsDiscounted": False,
        "Reference": po.reference,
        "Type": "PURCHASEORDER",
        "CurrencyRate": po.rate / RATE_ONE,
        "CurrencyCode": po.currency,
        "Contact": contact_ref(b, po.contact),
        "Status": po.status,
        "LineAmountTypes": po.lat,
        "LineItems": line_items(b, po, unitdp),
        "SubTotal": po.sub_total / 100,
        "TotalTax": po.total_tax / 100,
        "Total": po.total / 100,
        "UpdatedDateUTC": ms_datetime(po.updated_ms),
        "HasAttachments": False,
        "SentToContact": po.sent,
    }


def deposit(b: Books, dep: Prepayment, unitdp: int = 2) -> dict:
    """A prepayment or an overpayment, with its allocations to invoices."""
    bt = b.bank_transactions[dep.bank_txn]
    kind = "Prepayment" if dep.kind == "PREPAYMENT" else "Overpayment"
    guid = b.guid(_DEPOSIT_KIND[dep.kind], dep.idx)
    remaining = bt.total - dep.allocated
    allocs = []
    for a_idx in dep.allocations:
        a = b.credit_allocations[a_idx]
        allocs.append({
            "AllocationID": b.guid(ids.CREDIT_ALLOCATION, a.idx),
            "Amount": a.amount / 100,
            "Date": ms_date(a.date),
            "Invoice": _invoice_stub(b, b.invoices[a.invoice]),
            "IsDeleted": False,
        })
    d: dict[str, object] = {f"{kind}ID": guid, "ID": guid, "Type": bt.type, "Reference": bt.reference}
    if dep.kind == "PREPAYMENT":
        d["InvoiceNumber"] = dep.number
    d.update({
        "RemainingCredit": remaining / 100,
        "Allocations": allocs,
        "Payments": [],
        "HasAttachments": False,
        "Contact": contact_ref(b, bt.contact),
        "DateString": _date_string(bt.date),
        "Date": ms_date(bt.date),
        "Status": "PAID" if remaining == 0 else "AUTHORISED",
        "LineAmountTypes": bt.lat,
        "LineItems": line_items(b, bt, unitdp),
        "SubTotal": bt.sub_total / 100,
        "TotalTax": bt.total_tax / 100,
        "Total": bt.total / 100,
        "UpdatedDateUTC": ms_datetime(dep.updated_ms, dep.tz),
        "UpdatedDateUTCString": _utc_string(dep.updated_ms),
        "CurrencyCode": bt.currency,
    })
    return d


def linked_transaction(b: Books, lt: LinkedTransaction) -> dict:
    if lt.source_type == "ACCPAY":
        source = b.guid(ids.INVOICE, lt.source)
    else:
        source = b.guid(ids.BANK_TRANSACTION, lt.source)
    d = {
        "LinkedTransactionID": b.guid(ids.LINKED_TRANSACTION, lt.idx),
        "SourceTransactionID": source,
        "SourceLineItemID": b.guid(ids.LINE, b.lines.uid[lt.source_line]),
        "ContactID": b.ref_guid(ids.CONTACT, lt.contact),
    }
    if lt.target >= 0:
        d["TargetTransactionID"] = b.guid(ids.INVOICE, lt.target)
        d["TargetLineItemID"] = b.guid(ids.LINE, b.lines.uid[lt.target_line])
    d.update({"Status": lt.status, "Type": "BILLABLEEXPENSE", "UpdatedDateUTC": ms_datetime(lt.updated_ms),
              "SourceTransactionTypeCode": lt.source_type})
    return d


# ----------------------------------------------------------------------------- journals

def journal(b: Books, number: int, with_source: bool = True) -> dict:
    js = b.journals
    j = number - 1
    st = SOURCE_TYPES[js.stype[j]]
    src = js.src[j]
    lines = []
    accounts = b.accounts
    strings = b.strings
    taxes = b.tax_rates
    for i in js.line_range(j):
        acct = accounts[js.l_account[i]]
        net = js.l_net[i]
        tax = js.l_tax[i]
        tracking = []
        if js.l_track[i] >= 0:
            tracking.append(line_tracking(b, js.l_track[i]))
        if js.l_track2[i] >= 0:
            tracking.append(line_tracking(b, js.l_track2[i]))
        line = {
            "JournalLineID": b.guid(ids.JOURNAL_LINE, i),
            "AccountID": b.ref_guid(ids.ACCOUNT, acct.idx),
            "AccountCode": acct.code,
            "AccountType": acct.type,
            "AccountName": acct.name,
            "Description": strings[js.l_desc[i]],
            "NetAmount": net / 100,
            "GrossAmount": (net + tax) / 100,
            "TaxAmount": tax / 100,
            "TrackingCategories": tracking,
        }
        tr = js.l_taxrate[i]
        if tr >= 0:
            line["TaxType"] = taxes[tr].code
            line["TaxName"] = taxes[tr].name
        lines.append(line)
    d = {
        "JournalID": b.guid(ids.JOURNAL, j),
        "JournalDate": ms_date(js.date[j]),
        "JournalNumber": number,
        "CreatedDateUTC": ms_datetime(js.created[j]),
        "Reference": _journal_reference(b, st, src),
    }
    if with_source:
        d["SourceID"] = _source_guid(b, st, src)
        d["SourceType"] = st
    d["JournalLines"] = lines
    return d


def _journal_reference(b: Books, st: str, src: int) -> str:
    if st in ("ACCREC", "ACCPAY"):
        inv = b.invoices[src]
        return inv.reference or inv.number
    if st in ("ACCRECCREDIT", "ACCPAYCREDIT"):
        return b.credit_notes[src].reference
    if st in ("ACCRECPAYMENT", "ACCPAYPAYMENT"):
        return b.payments[src].reference
    if st in ("CASHREC", "CASHPAID"):
        return b.bank_transactions[src].reference
    if st == "ARPREPAYMENT":
        return b.bank_transactions[b.prepayments[src].bank_txn].reference
    if st == "AROVERPAYMENT":
        return b.bank_transactions[b.overpayments[src].bank_txn].reference
    if st == "MANJOURNAL":
        return b.strings[b.manual_journals[src].narration]
    if st == "TRANSFER":
        return b.bank_transfers[src].reference
    if st == "PAYSLIP":
        return f"Pay run {ids.date_of(b.payslips[src][0]).isoformat()}"
    return ""


def _source_guid(b: Books, st: str, src: int) -> str:
    if st in ("ACCREC", "ACCPAY"):
        return b.guid(ids.INVOICE, src)
    if st in ("ACCRECCREDIT", "ACCPAYCREDIT"):
        return b.guid(ids.CREDIT_NOTE, src)
    if st in ("CASHREC", "CASHPAID"):
        return b.guid(ids.BANK_TRANSACTION, src)
    if st == "ARPREPAYMENT":
        return b.guid(ids.PREPAYMENT, src)
    if st == "AROVERPAYMENT":
        return b.guid(ids.OVERPAYMENT, src)
    if st == "MANJOURNAL":
        return b.guid(ids.MANUAL_JOURNAL, src)
    if st == "TRANSFER":
        return b.guid(ids.BANK_TRANSFER, src)
    if st == "PAYSLIP":
        return b.guid(ids.PAYSLIP, src)
    return b.guid(ids.PAYMENT, src)
