"""Xero's ``where`` and ``order`` query forms, compiled to Python predicates and sort keys.

Xero accepts a small C#-like expression language, e.g.
``Type=="ACCREC" && Status!="DRAFT"``, ``Date >= DateTime(2024,01,01) && Date < DateTime(2024,02,01)``,
``Contact.ContactID==Guid("...")``, ``Name.Contains("Trust")``, combined with ``&&``/``AND``,
``||``/``OR``, ``!`` and parentheses; ``order=UpdatedDateUTC DESC, InvoiceNumber``. Unknown fields
or malformed text raise :class:`QueryError`, which the API turns into Xero's 400
``QueryParseException``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from . import ids
from .ids import DAY_MS
from .model import (
    ACCOUNT_CLASS,
    Account,
    BankTransaction,
    BankTransfer,
    Books,
    Contact,
    CreditNote,
    Invoice,
    ManualJournal,
    Payment,
    Prepayment,
    PurchaseOrder,
    TaxRate,
    TrackingCategory,
)


class QueryError(ValueError):
    pass


def _dt_day(day: int) -> datetime:
    return datetime.fromtimestamp(day * 86400, tz=UTC)


def _dt_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _money(c: int) -> Decimal:
    return Decimal(c) / 100


# A field's value on one record. Each entity's table below is typed by its record class; a compiled
# clause is applied to whichever records its endpoint lists, so here the record is Any.
Accessor = Callable[[Books, Any], object]

_INVOICE_FIELDS: dict[str, Callable[[Books, Invoice], object]] = {
    "type": lambda b, r: r.type,
    "status": lambda b, r: r.status,
    "date": lambda b, r: _dt_day(r.date),
    "duedate": lambda b, r: _dt_day(r.due),
    "updateddateutc": lambda b, r: _dt_ms(r.updated_ms),
    "invoicenumber": lambda b, r: r.number,
    "reference": lambda b, r: r.reference,
    "invoiceid": lambda b, r: b.guid(ids.INVOICE, r.idx),
    "contact.contactid": lambda b, r: b.guid(ids.CONTACT, r.contact),
    "contact.name": lambda b, r: b.contacts[r.contact].name,
    "contactid": lambda b, r: b.guid(ids.CONTACT, r.contact),
    "amountdue": lambda b, r: _money(r.due_amount),
    "amountpaid": lambda b, r: _money(r.paid),
    "amountcredited": lambda b, r: _money(r.credited),
    "total": lambda b, r: _money(r.total),
    "subtotal": lambda b, r: _money(r.sub_total),
    "currencycode": lambda b, r: r.currency,
    "senttocontact": lambda b, r: r.sent,
}

_CONTACT_FIELDS: dict[str, Callable[[Books, Contact], object]] = {
    "name": lambda b, r: r.name,
    "contactstatus": lambda b, r: r.status,
    "emailaddress": lambda b, r: r.email,
    "iscustomer": lambda b, r: r.is_customer,
    "issupplier": lambda b, r: r.is_supplier,
    "contactid": lambda b, r: b.guid(ids.CONTACT, r.idx),
    "updateddateutc": lambda b, r: _dt_ms(r.updated_ms),
    "firstname": lambda b, r: r.first,
    "lastname": lambda b, r: r.last,
    "contactnumber": lambda b, r: r.number,
    "defaultcurrency": lambda b, r: r.currency,
}

_PAYMENT_FIELDS: dict[str, Callable[[Books, Payment], object]] = {
    "status": lambda b, r: r.status,
    "paymenttype": lambda b, r: "ACCRECPAYMENT" if b.invoices[r.invoice].type == "ACCREC" else "ACCPAYPAYMENT",
    "date": lambda b, r: _dt_day(r.date),
    "amount": lambda b, r: _money(r.amount),
    "reference": lambda b, r: r.reference,
    "updateddateutc": lambda b, r: _dt_ms(r.updated_ms),
    "invoice.invoiceid": lambda b, r: b.guid(ids.INVOICE, r.invoice),
    "invoice.type": lambda b, r: b.invoices[r.invoice].type,
    "invoice.contact.contactid": lambda b, r: b.guid(ids.CONTACT, b.invoices[r.invoice].contact),
    "isreconciled": lambda b, r: r.reconciled,
    "paymentid": lambda b, r: b.guid(ids.PAYMENT, r.idx),
}

_CREDIT_NOTE_FIELDS: dict[str, Callable[[Books, CreditNote], object]] = {
    "type": lambda b, r: r.type,
    "status": lambda b, r: r.status,
    "date": lambda b, r: _dt_day(r.date),
    "total": lambda b, r: _money(r.total),
    "remainingcredit": lambda b, r: _money(r.remaining),
    "creditnotenumber": lambda b, r: r.number,
    "reference": lambda b, r: r.reference,
    "contact.contactid": lambda b, r: b.guid(ids.CONTACT, r.contact),
    "updateddateutc": lambda b, r: _dt_ms(r.updated_ms),
    "creditnoteid": lambda b, r: b.guid(ids.CREDIT_NOTE, r.idx),
    "currencycode": lambda b, r: r.currency,
}

_ACCOUNT_FIELDS: dict[str, Callable[[Books, Account], object]] = {
    "code": lambda b, r: r.code,
    "name": lambda b, r: r.name,
    "type": lambda b, r: r.type,
    "class": lambda b, r: ACCOUNT_CLASS[r.type],
    "status": lambda b, r: r.status,
    "taxtype": lambda b, r: r.tax_type,
    "accountid": lambda b, r: b.guid(ids.ACCOUNT, r.idx),
    "systemaccount": lambda b, r: r.system,
    "enablepaymentstoaccount": lambda b, r: r.enable_payments,
    "updateddateutc": lambda b, r: _dt_ms(r.updated_ms),
}

_TRACKING_CATEGORY_FIELDS: dict[str, Callable[[Books, TrackingCategory], object]] = {
    "name": lambda b, r: r.name,
    "status": lambda b, r: r.status,
    "trackingcategoryid": lambda b, r: b.guid(ids.TRACKING_CATEGORY, r.idx),
}

_BANK_TRANSACTION_FIELDS: dict[str, Callable[[Books, BankTransaction], object]] = {
    "type": lambda b, r: r.type,
    "status": lambda b, r: r.status,
    "date": lambda b, r: _dt_day(r.date),
    "reference": lambda b, r: r.reference,
    "contact.contactid": lambda b, r: b.guid(ids.CONTACT, r.contact),
    "contact.name": lambda b, r: b.contacts[r.contact].name,
    "bankaccount.accountid": lambda b, r: b.guid(ids.ACCOUNT, r.account),
    "bankaccount.code": lambda b, r: b.accounts[r.account].code,
    "total": lambda b, r: _money(r.total),
    "subtotal": lambda b, r: _money(r.sub_total),
    "isreconciled": lambda b, r: r.reconciled,
    "currencycode": lambda b, r: r.currency,
    "updateddateutc": lambda b, r: _dt_ms(r.updated_ms),
    "banktransactionid": lambda b, r: b.guid(ids.BANK_TRANSACTION, r.idx),
}

_MANUAL_JOURNAL_FIELDS: dict[str, Callable[[Books, ManualJournal], object]] = {
    "status": lambda b, r: r.status,
    "date": lambda b, r: _dt_day(r.date),
    "narration": lambda b, r: b.strings[r.narration],
    "updateddateutc": lambda b, r: _dt_ms(r.updated_ms),
    "manualjournalid": lambda b, r: b.guid(ids.MANUAL_JOURNAL, r.idx),
}

_PURCHASE_ORDER_FIELDS: dict[str, Callable[[Books, PurchaseOrder], object]] = {
    "status": lambda b, r: r.status,
    "date": lambda b, r: _dt_day(r.date),
    "deliverydate": lambda b, r: _dt_day(r.delivery),
    "purchaseordernumber": lambda b, r: r.number,
    "reference": lambda b, r: r.reference,
    "contact.contactid": lambda b, r: b.guid(ids.CONTACT, r.contact),
    "contact.name": lambda b, r: b.contacts[r.contact].name,
    "total": lambda b, r: _money(r.total),
    "subtotal": lambda b, r: _money(r.sub_total),
    "currencycode": lambda b, r: r.currency,
    "updateddateutc": lambda b, r: _dt_ms(r.updated_ms),
    "purchaseorderid": lambda b, r: b.guid(ids.PURCHASE_ORDER, r.idx),
}


_BANK_TRANSFER_FIELDS: dict[str, Callable[[Books, BankTransfer], object]] = {
    "amount": lambda b, r: _money(r.amount),
    "date": lambda b, r: _dt_day(r.date),
    "reference": lambda b, r: r.reference,
    "hasattachments": lambda b, r: r.has_attachments,
    "status": lambda b, r: "AUTHORISED",
    "frombankaccount.accountid": lambda b, r: b.guid(ids.ACCOUNT, r.from_account),
    "frombankaccount.code": lambda b, r: b.accounts[r.from_account].code,
    "tobankaccount.accountid": lambda b, r: b.guid(ids.ACCOUNT, r.to_account),
    "tobankaccount.code": lambda b, r: b.accounts[r.to_account].code,
    "createddateutc": lambda b, r: _dt_ms(r.created_ms),
    "banktransferid": lambda b, r: b.guid(ids.BANK_TRANSFER, r.idx),
}

_TAX_RATE_FIELDS: dict[str, Callable[[Books, TaxRate], object]] = {
    "name": lambda b, r: r.name,
    "taxtype": lambda b, r: r.code,
    "status": lambda b, r: "ACTIVE",
    "effectiverate": lambda b, r: Decimal(r.bp) / 100,
    "displaytaxrate": lambda b, r: Decimal(r.bp) / 100,
}


def _deposit_fields(kind: int, id_name: str) -> dict[str, Callable[[Books, Prepayment], object]]:
    def bt(b: Books, r: Prepayment) -> BankTransaction:
        return b.bank_transactions[r.bank_txn]
    return {
        "type": lambda b, r: bt(b, r).type,
        "status": lambda b, r: "PAID" if b.deposit_remaining(r) == 0 else "AUTHORISED",
        "date": lambda b, r: _dt_day(bt(b, r).date),
        "reference": lambda b, r: bt(b, r).reference,
        "contact.contactid": lambda b, r: b.guid(ids.CONTACT, bt(b, r).contact),
        "contact.name": lambda b, r: b.contacts[bt(b, r).contact].name,
        "total": lambda b, r: _money(bt(b, r).total),
        "remainingcredit": lambda b, r: _money(b.deposit_remaining(r)),
        "currencycode": lambda b, r: bt(b, r).currency,
        "updateddateutc": lambda b, r: _dt_ms(r.updated_ms),
        "invoicenumber": lambda b, r: r.number,
        id_name: lambda b, r: b.guid(kind, r.idx),
    }


FIELDS: dict[str, Mapping[str, Accessor]] = {
    "BankTransactions": _BANK_TRANSACTION_FIELDS,
    "ManualJournals": _MANUAL_JOURNAL_FIELDS,
    "PurchaseOrders": _PURCHASE_ORDER_FIELDS,
    "Prepayments": _deposit_fields(ids.PREPAYMENT, "prepaymentid"),
    "Overpayments": _deposit_fields(ids.OVERPAYMENT, "overpaymentid"),
    "Invoices": _INVOICE_FIELDS,
    "Contacts": _CONTACT_FIELDS,
    "Payments": _PAYMENT_FIELDS,
    "CreditNotes": _CREDIT_NOTE_FIELDS,
    "Accounts": _ACCOUNT_FIELDS,
    "TrackingCategories": _TRACKING_CATEGORY_FIELDS,
    "BankTransfers": _BANK_TRANSFER_FIELDS,
    "TaxRates": _TAX_RATE_FIELDS,
}

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<str>"(?:[^"\\]|\\.)*")
     |(?P<num>-?\d+(?:\.\d+)?)
     |(?P<op>==|!=|>=|<=|&&|\|\||[<>!(),.])
     |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""", re.VERBOSE)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        # every alternative of _TOKEN is a named group, so a match always names its kind
        if not m or m.end() == pos or m.lastgroup is None:
            raise QueryError(f"Unexpected character at position {pos} in where clause")
        pos = m.end()
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
    return out


_CMP = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b,
}
_METHODS = {"contains": lambda a, b: b.lower() in a.lower(), "startswith": lambda a, b: a.lower().startswith(b.lower()),
            "endswith": lambda a, b: a.lower().endswith(b.lower())}

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _norm(v):
    if isinstance(v, str) and _GUID.match(v):
        return v.lower()
    if isinstance(v, date) and not isinstance(v, datetime):
        return datetime(v.year, v.month, v.day, tzinfo=UTC)
    if isinstance(v, float):
        return Decimal(str(v))
    return v


class _Parser:
    def __init__(self, entity: str, text: str) -> None:
        self.fields = FIELDS[entity]
        self.entity = entity
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, k: int = 0):
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else (None, None)

    def take(self, value: str | None = None):
        tok = self.peek()
        if tok[0] is None or (value is not None and tok[1].upper() != value.upper()):
            raise QueryError(f"Expected {value or 'more input'} in where clause")
        self.i += 1
        return tok

    def parse(self):
        fn = self.or_()
        if self.i != len(self.toks):
            raise QueryError(f"Syntax error near '{self.peek()[1]}'")
        return fn

    def or_(self):
        parts = [self.and_()]
        while self.peek()[1] in ("||",) or (self.peek()[0] == "name" and self.peek()[1].upper() == "OR"):
            self.i += 1
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else (lambda b, r: any(p(b, r) for p in parts))

    def and_(self):
        parts = [self.unary()]
        while self.peek()[1] in ("&&",) or (self.peek()[0] == "name" and self.peek()[1].upper() == "AND"):
            self.i += 1
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda b, r: all(p(b, r) for p in parts))

    def unary(self):
        if self.peek()[1] == "!":
            self.i += 1
            inner = self.unary()
            return lambda b, r: not inner(b, r)
        if self.peek()[1] == "(":
            self.i += 1
            inner = self.or_()
            self.take(")")
            return inner
        return self.comparison()

    def comparison(self):
        left = self.operand()
        kind, op = self.peek()
        if kind == "op" and op in _CMP:
            self.i += 1
            right = self.operand()
            cmp = _CMP[op]

            def pred(b, r, left=left, right=right, cmp=cmp, op=op):
                a, c = _norm(left(b, r)), _norm(right(b, r))
                if a is None or c is None:
                    return cmp(a, c) if op in ("==", "!=") else False
                try:
                    return cmp(a, c)
                except TypeError:
                    return False
            return pred
        return lambda b, r: bool(left(b, r))

    def operand(self):
        kind, val = self.take()
        if kind == "str":
            s = bytes(val[1:-1], "utf-8").decode("unicode_escape") if "\\" in val else val[1:-1]
            return lambda b, r: s
        if kind == "num":
            d = Decimal(val)
            return lambda b, r: d
        if kind == "op" and val == "(":
            self.i -= 1
            inner = self.unary()
            return inner
        if kind != "name":
            raise QueryError(f"Unexpected '{val}' in where clause")
        up = val.upper()
        if up in ("TRUE", "FALSE"):
            v = up == "TRUE"
            return lambda b, r: v
        if up == "NULL":
            return lambda b, r: None
        if up in ("DATETIME", "DATE", "DATETIMEOFFSET") and self.peek()[1] == "(":
            self.take("(")
            nums = []
            while self.peek()[1] != ")":
                k2, v2 = self.take()
                if k2 == "num":
                    nums.append(int(Decimal(v2)))
                elif v2 != ",":
                    raise QueryError("DateTime() takes numbers")
            self.take(")")
            if len(nums) < 3:
                raise QueryError("DateTime() needs year, month, day")
            year, month, day, hour, minute, second = (nums + [0, 0, 0])[:6]
            try:
                dt = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
            except (TypeError, ValueError) as e:
                raise QueryError(f"Invalid DateTime: {e}") from None
            return lambda b, r: dt
        if up == "GUID" and self.peek()[1] == "(":
            self.take("(")
            _, g = self.take()
            self.take(")")
            g = g.strip('"').lower()
            return lambda b, r: g
        # a (dotted) field, maybe followed by .Method("x")
        path = [val]
        method = None
        while self.peek()[1] == ".":
            self.i += 1
            _, nxt = self.take()
            if self.peek()[1] == "(" and nxt.lower() in _METHODS:
                method = nxt.lower()
                break
            path.append(nxt)
        key = ".".join(path).lower()
        acc = self.fields.get(key)
        if acc is None:
            raise QueryError(f"No property or field '{'.'.join(path)}' exists in type '{self.entity[:-1]}'")
        if method:
            self.take("(")
            k3, arg = self.take()
            self.take(")")
            arg = arg.strip('"')
            m = _METHODS[method]
            return lambda b, r: m(str(acc(b, r) or ""), arg)
        return acc


def compile_where(entity: str, text: str | None):
    if not text or not text.strip():
        return None
    return _Parser(entity, text).parse()


def compile_order(entity: str, text: str | None):
    """Return a list of (accessor, descending) or None."""
    if not text or not text.strip():
        return None
    out = []
    for part in text.split(","):
        bits = part.split()
        if not bits:
            continue
        key = bits[0].lower()
        acc = FIELDS[entity].get(key)
        if acc is None:
            raise QueryError(f"No property or field '{bits[0]}' exists in type '{entity[:-1]}'")
        desc = len(bits) > 1 and bits[1].upper() == "DESC"
        out.append((acc, desc))
    return out


def sort_records(b: Books, recs: list, order) -> list:
    for acc, desc in reversed(order):
        def key(r, acc=acc):
            v = _norm(acc(b, r))
            return (v is None, v if v is not None else 0)
        recs = sorted(recs, key=key, reverse=desc)
    return recs


__all__ = ["QueryError", "compile_where", "compile_order", "sort_records", "FIELDS", "DAY_MS"]
