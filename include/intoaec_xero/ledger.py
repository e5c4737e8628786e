"""The general ledger built from the documents, for apps Xero refuses Journals to.

Since March 2026 Xero serves ``GET /Journals`` only to apps on its Advanced tier. Every other app
still reads the documents, and those are what Xero journals: this module posts them the way Xero
does, so ``journals`` / ``journal_lines`` hold a ledger either way (``journals.origin`` says which).

How each document posts (amounts in base currency, each line converted at its document's rate):

- sales invoices (ACCREC) debit Accounts Receivable (the DEBTORS system account) with the total and
  credit each line's account with its net and the tax account (GST/VAT system account) with the
  tax, by line-amount type; what converting line by line leaves over goes to Rounding. Bills
  (ACCPAY) mirror it on Accounts Payable (CREDITORS); credit notes reverse their kind.
- payments move the amount between their bank account and AR/AP. A foreign invoice's payments take
  off AR/AP what the invoice put on, converted cumulatively after its credit; the difference from
  the bank side is a Realised Currency Gain (or loss).
- spend and receive money post the bank account against their lines (retainers and overpayments
  received are receive money whose line is the liability or AR they wait on); applying a retainer
  to an invoice moves it from that account to AR/AP. Transfers move money between bank accounts.
- manual journals post as written.

Drafts, voided and deleted documents post nothing (Xero reverses what they posted). Only the
documents' final state is needed: the ledger is rebuilt per tenant after a load changed a document.
What no document shows (payroll, fixed-asset depreciation, conversion balances) cannot be derived;
the Trial Balance check finds it and one ``balancing`` line per such account ties the totals to Xero.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import Engine, Text, and_, cast, delete, or_, select, update

from intoaec_xero import schema as s
from intoaec_xero.db import copy_text
from intoaec_xero.errors import IntoAECXeroError
from intoaec_xero.project_finance import cents, to_base

log = logging.getLogger(__name__)

XERO, DERIVED, BALANCING = "xero", "derived", "balancing"
# The exact words the data team reads in status, sync_runs and the Xero page.
JOURNALS_REFUSED = ("this Xero app is not approved for the Journals endpoint (Xero's Advanced tier): "
                    "the ledger is derived from documents")
JOURNALS_NOT_USED = ("the Xero connection's ledger_source is 'documents': the ledger is derived from documents "
                     "and Journals are not read")

POSTED_DOCUMENT = ("AUTHORISED", "PAID")
# Deposit and refund kinds of bank transaction: the source Xero's journal names is the deposit.
BANK_SOURCE = {"SPEND": "CASHPAID", "RECEIVE": "CASHREC", "RECEIVE-PREPAYMENT": "ARPREPAYMENT",
               "RECEIVE-OVERPAYMENT": "AROVERPAYMENT", "SPEND-PREPAYMENT": "APPREPAYMENT",
               "SPEND-OVERPAYMENT": "APOVERPAYMENT"}
PAYMENT_SOURCE = {"ACCREC": "ACCRECPAYMENT", "ACCPAY": "ACCPAYPAYMENT", "ACCRECCREDIT": "ARCREDITPAYMENT",
                  "ACCPAYCREDIT": "APCREDITPAYMENT"}
CHUNK = 20_000

# (account code, net cents, tax cents, tax type, project, tracking)
Line = tuple[str, int, int, str | None, str | None, Any]


@dataclass
class Journal:
    journal_id: str
    source_type: str
    source_id: str
    day: date | None
    reference: str | None
    lines: list[Line]


class LedgerError(IntoAECXeroError):
    """The documents cannot be posted (an account the rules need is missing)."""


@dataclass
class Accounts:
    """The tenant's chart: codes, ids and the system accounts the posting rules use."""

    by_code: dict[str, tuple[str, str | None]]  # code -> (account_id, type)
    code_of: dict[str, str]  # account_id -> code
    system: dict[str, str]  # DEBTORS, CREDITORS, GST, ROUNDING, REALISEDCURRENCYGAIN -> code
    tenant_id: str

    @classmethod
    def read(cls, conn, tenant_id: str) -> Accounts:
        a = s.accounts
        by_code, code_of, system = {}, {}, {}
        for account_id, code, type_, system_account in conn.execute(
                select(a.c.account_id, a.c.code, a.c.type, a.c.system_account).where(a.c.tenant_id == tenant_id)):
            if code:
                by_code[code] = (account_id, type_)
                code_of[account_id] = code
            if system_account and code:
                system[system_account] = code
        return cls(by_code, code_of, system, tenant_id)

    def system_code(self, name: str, what: str) -> str:
        code = self.system.get(name)
        if code is None:
            raise LedgerError(f"Tenant {self.tenant_id}: the ledger cannot be derived: no {what} ({name} system "
                              "account) among the accounts; sync the accounts stream first.")
        return code


def _document_lines(sign: int, control: str, total: int, rate: Any, lat: str | None,
                    lines: Iterable[tuple], accounts: Accounts) -> list[Line]:
    """An invoice, bill, credit note or bank transaction: its lines against ``control``.

    ``lines``: (account code, line amount cents, tax cents, tax type, project, tracking). ``sign`` +1
    credits the lines (a sale, money received), -1 debits them (a purchase, money spent).
    """
    out: list[Line] = []
    tax_total = net_total = 0
    inclusive = lat == "Inclusive"
    for code, amount, tax, tax_type, project, tracking in lines:
        if lat == "NoTax":
            tax = 0
        net = to_base(amount - tax if inclusive else amount, rate)
        tax_base = to_base(tax, rate)
        tax_total += tax_base
        net_total += net
        if net or tax_base:
            out.append((code, -sign * net, -sign * tax_base, tax_type, project, tracking))
    if tax_total:
        out.append((accounts.system_code("GST", "tax account"), -sign * tax_total, 0, None, None, None))
    posted = sign * to_base(total, rate)
    leftover = -posted + sign * (net_total + tax_total)
    if leftover:
        out.append((accounts.system_code("ROUNDING", "rounding account"), leftover, 0, None, None, None))
    if posted:
        out.insert(0, (control, posted, 0, None, None, None))
    return out


def _text(column):
    """JSON as the text it is stored as: copied to the journal lines as it is, never parsed and dumped."""
    return cast(column, Text).label(column.name)


def _grouped(rows: Iterable[Any], key: str) -> Iterator[tuple[Any, list[Any]]]:
    for parent, group in groupby(rows, key=lambda r: getattr(r, key)):
        yield parent, list(group)


def _lines_of(group: list[Any]) -> list[tuple]:
    return [(r.account_code, cents(r.line_amount), cents(r.tax_amount), r.tax_type, r.project, r.tracking)
            for r in group if r.line_amount is not None or r.tax_amount is not None]


def _stream(conn, query):
    # On the statement, not the connection: Connection.execution_options changes the connection itself,
    # and every later statement on it would then run through a server-side cursor.
    return conn.execute(query.execution_options(stream_results=True, yield_per=CHUNK))


def derive(conn, tenant_id: str) -> Iterator[Journal]:
    """Every journal the tenant's documents post, one document (or allocation) at a time."""
    accounts = Accounts.read(conn, tenant_id)
    yield from _invoices(conn, tenant_id, accounts)
    yield from _credit_notes(conn, tenant_id, accounts)
    yield from _payments(conn, tenant_id, accounts)
    yield from _bank_transactions(conn, tenant_id, accounts)
    yield from _deposit_allocations(conn, tenant_id, accounts)
    yield from _transfers(conn, tenant_id, accounts)
    yield from _manual_journals(conn, tenant_id, accounts)


def _controls(accounts: Accounts) -> dict[str, tuple[int, str]]:
    """Document type -> (sign, control account code)."""
    ar = lambda: accounts.system_code("DEBTORS", "accounts receivable")  # noqa: E731
    ap = lambda: accounts.system_code("CREDITORS", "accounts payable")  # noqa: E731
    return {"ACCREC": (1, ar()), "ACCPAY": (-1, ap()), "ACCRECCREDIT": (-1, ar()), "ACCPAYCREDIT": (1, ap())}


def _invoices(conn, tenant_id: str, accounts: Accounts) -> Iterator[Journal]:
    yield from _sales_and_purchases(conn, tenant_id, accounts, s.invoices, s.invoice_lines, "invoice_id",
                                    s.invoices.c.invoice_number)


def _credit_notes(conn, tenant_id: str, accounts: Accounts) -> Iterator[Journal]:
    yield from _sales_and_purchases(conn, tenant_id, accounts, s.credit_notes, s.credit_note_lines, "credit_note_id",
                                    s.credit_notes.c.credit_note_number)


def _sales_and_purchases(conn, tenant_id: str, accounts: Accounts, documents, lines, key: str,
                         number) -> Iterator[Journal]:
    """Invoices, bills and credit notes: each against AR or AP by its type (see ``_controls``)."""
    d, ln = documents, lines
    controls = _controls(accounts)
    query = (select(d.c[key].label("document_id"), d.c.type, d.c.date, d.c.currency_rate, d.c.total,
                    d.c.line_amount_types, number.label("number"), d.c.reference, ln.c.account_code,
                    ln.c.line_amount, ln.c.tax_amount, ln.c.tax_type, ln.c.project, _text(ln.c.tracking))
             .select_from(d.outerjoin(ln, and_(ln.c.tenant_id == d.c.tenant_id, ln.c[key] == d.c[key])))
             .where(d.c.tenant_id == tenant_id, d.c.status.in_(POSTED_DOCUMENT))
             .order_by(d.c[key], ln.c.line_number, ln.c.line_item_id))
    for document_id, group in _grouped(_stream(conn, query), "document_id"):
        head = group[0]
        if head.type not in controls:
            continue
        sign, control = controls[head.type]
        lines_posted = _document_lines(sign, control, cents(head.total), head.currency_rate, head.line_amount_types,
                                       _lines_of(group), accounts)
        yield Journal(f"d-{document_id}", head.type, document_id, head.date, head.reference or head.number,
                      lines_posted)


def _payments(conn, tenant_id: str, accounts: Accounts) -> Iterator[Journal]:
    """Invoice payments, and refunds of credit notes; converted cumulatively per document (see the module)."""
    p, i, c = s.payments, s.invoices, s.credit_notes
    controls = _controls(accounts)
    fx = accounts.system.get("REALISEDCURRENCYGAIN")
    query = (select(p.c.payment_id, p.c.invoice_id, p.c.credit_note_id, p.c.account_id, p.c.date, p.c.amount,
                    p.c.currency_rate, p.c.reference, i.c.type.label("invoice_type"),
                    i.c.currency_rate.label("invoice_rate"), i.c.amount_credited, c.c.type.label("credit_type"),
                    c.c.currency_rate.label("credit_rate"))
             .select_from(p.outerjoin(i, and_(i.c.tenant_id == p.c.tenant_id, i.c.invoice_id == p.c.invoice_id))
                          .outerjoin(c, and_(c.c.tenant_id == p.c.tenant_id, c.c.credit_note_id == p.c.credit_note_id)))
             .where(p.c.tenant_id == tenant_id, p.c.status == "AUTHORISED")
             .order_by(p.c.invoice_id, p.c.credit_note_id, p.c.date, p.c.payment_id))
    for _, group in groupby(_stream(conn, query), key=itemgetter(1, 2)):
        before = None
        for r in group:
            doc_type = r.invoice_type or r.credit_type
            if doc_type not in controls or r.account_id not in accounts.code_of:
                continue  # not an invoice's or credit note's payment, or its document is not synced
            sign, control = controls[doc_type]
            doc_rate = r.invoice_rate if r.invoice_type else r.credit_rate
            amount = cents(r.amount)
            if before is None:
                before = cents(r.amount_credited) if r.invoice_type else 0
            cleared = to_base(before + amount, doc_rate) - to_base(before, doc_rate)
            before += amount
            bank = to_base(amount, r.currency_rate)
            lines: list[Line] = [(accounts.code_of[r.account_id], sign * bank, 0, None, None, None),
                                 (control, -sign * cleared, 0, None, None, None)]
            if cleared != bank:
                if fx is None:
                    fx = accounts.system_code("REALISEDCURRENCYGAIN", "realised currency gains account")
                lines.append((fx, sign * (cleared - bank), 0, None, None, None))
            yield Journal(f"d-{r.payment_id}", PAYMENT_SOURCE[doc_type], r.payment_id, r.date, r.reference,
                          [ln for ln in lines if ln[1]])


def _bank_transactions(conn, tenant_id: str, accounts: Accounts) -> Iterator[Journal]:
    b, ln = s.bank_transactions, s.bank_transaction_lines
    query = (select(b.c.bank_transaction_id, b.c.type, b.c.date, b.c.currency_rate, b.c.total,
                    b.c.line_amount_types, b.c.reference, b.c.bank_account_id, b.c.bank_account_code,
                    b.c.prepayment_id, b.c.overpayment_id, ln.c.account_code, ln.c.line_amount, ln.c.tax_amount,
                    ln.c.tax_type, ln.c.project, _text(ln.c.tracking))
             .select_from(b.outerjoin(ln, and_(ln.c.tenant_id == b.c.tenant_id,
                                               ln.c.bank_transaction_id == b.c.bank_transaction_id)))
             .where(b.c.tenant_id == tenant_id, b.c.status == "AUTHORISED", b.c.type.in_(BANK_SOURCE))
             .order_by(b.c.bank_transaction_id, ln.c.line_number, ln.c.line_item_id))
    for transaction_id, group in _grouped(_stream(conn, query), "bank_transaction_id"):
        head = group[0]
        bank = head.bank_account_code or accounts.code_of.get(head.bank_account_id)
        if not bank:
            continue
        sign = -1 if head.type.startswith("SPEND") else 1
        lines = _document_lines(sign, bank, cents(head.total), head.currency_rate, head.line_amount_types,
                                _lines_of(group), accounts)
        source = head.prepayment_id or head.overpayment_id or transaction_id
        yield Journal(f"d-{transaction_id}", BANK_SOURCE[head.type], source, head.date, head.reference, lines)


def _deposit_allocations(conn, tenant_id: str, accounts: Accounts) -> Iterator[Journal]:
    """A retainer applied to an invoice leaves the account it waited on for AR (AP for a supplier's).

    An overpayment waits on AR itself, so applying it moves nothing and posts nothing.
    """
    controls = _controls(accounts)
    b, ln = s.bank_transactions, s.bank_transaction_lines
    waiting: dict[str, tuple[str, Any, Any]] = {}
    for row in conn.execute(
            select(b.c.prepayment_id, b.c.overpayment_id, ln.c.account_code, ln.c.project, _text(ln.c.tracking))
            .select_from(b.join(ln, and_(ln.c.tenant_id == b.c.tenant_id,
                                         ln.c.bank_transaction_id == b.c.bank_transaction_id)))
            .where(b.c.tenant_id == tenant_id, (b.c.prepayment_id.is_not(None)) | (b.c.overpayment_id.is_not(None)))
            .order_by(b.c.bank_transaction_id, ln.c.line_number.desc(), ln.c.line_item_id.desc())):
        waiting[row.prepayment_id or row.overpayment_id] = (row.account_code, row.project, row.tracking)
    for deposits, allocations, key, kind in ((s.prepayments, s.prepayment_allocations, "prepayment_id", "PREPAYMENT"),
                                             (s.overpayments, s.overpayment_allocations, "overpayment_id",
                                              "OVERPAYMENT")):
        query = (select(allocations.c.allocation_id, allocations.c.amount, allocations.c.date, deposits.c.type,
                        deposits.c.currency_rate, deposits.c.reference, deposits.c[key].label("deposit_id"))
                 .select_from(allocations.join(deposits, and_(deposits.c.tenant_id == allocations.c.tenant_id,
                                                              deposits.c[key] == allocations.c[key])))
                 .where(allocations.c.tenant_id == tenant_id, deposits.c.status.in_(POSTED_DOCUMENT),
                        allocations.c.is_deleted.is_not(True))
                 .order_by(allocations.c.allocation_id))
        for r in _stream(conn, query):
            receivable = (r.type or "").startswith("RECEIVE")
            sign, control = controls["ACCREC" if receivable else "ACCPAY"]
            account, project, tracking = waiting.get(r.deposit_id, (None, None, None))
            if account is None or account == control:
                continue
            amount = to_base(cents(r.amount), r.currency_rate)
            source_type = ("AR" if receivable else "AP") + kind
            yield Journal(f"d-{r.allocation_id}", source_type, r.deposit_id, r.date, r.reference, [
                (account, sign * amount, 0, None, project, tracking), (control, -sign * amount, 0, None, None, None)])


def _transfers(conn, tenant_id: str, accounts: Accounts) -> Iterator[Journal]:
    t = s.bank_transfers
    query = (select(t.c.bank_transfer_id, t.c.from_bank_account_id, t.c.from_bank_account_code,
                    t.c.to_bank_account_id, t.c.to_bank_account_code, t.c.amount, t.c.date, t.c.currency_rate,
                    t.c.reference)
             .where(t.c.tenant_id == tenant_id, or_(t.c.status.is_(None), t.c.status != "DELETED"))
             .order_by(t.c.bank_transfer_id))
    for r in _stream(conn, query):
        source = r.from_bank_account_code or accounts.code_of.get(r.from_bank_account_id)
        target = r.to_bank_account_code or accounts.code_of.get(r.to_bank_account_id)
        if not source or not target:
            continue
        amount = to_base(cents(r.amount), r.currency_rate)
        yield Journal(f"d-{r.bank_transfer_id}", "TRANSFER", r.bank_transfer_id, r.date, r.reference,
                      [(target, amount, 0, None, None, None), (source, -amount, 0, None, None, None)])


def _manual_journals(conn, tenant_id: str, accounts: Accounts) -> Iterator[Journal]:
    m, ln = s.manual_journals, s.manual_journal_lines
    query = (select(m.c.manual_journal_id, m.c.date, m.c.narration, m.c.line_amount_types, ln.c.account_code,
                    ln.c.account_id, ln.c.line_amount, ln.c.tax_amount, ln.c.tax_type, ln.c.project,
                    _text(ln.c.tracking))
             .select_from(m.join(ln, and_(ln.c.tenant_id == m.c.tenant_id,
                                          ln.c.manual_journal_id == m.c.manual_journal_id)))
             .where(m.c.tenant_id == tenant_id, m.c.status == "POSTED")
             .order_by(m.c.manual_journal_id, ln.c.line_number))
    gst = None
    for journal_id, group in _grouped(_stream(conn, query), "manual_journal_id"):
        head = group[0]
        lines: list[Line] = []
        tax_total = 0
        for r in group:
            code = r.account_code or accounts.code_of.get(r.account_id)
            amount, tax = cents(r.line_amount), cents(r.tax_amount)
            if head.line_amount_types == "NoTax" or not code:
                tax = 0
            net = amount - tax if head.line_amount_types == "Inclusive" else amount
            tax_total += tax
            if code and (net or tax):
                lines.append((code, net, tax, r.tax_type, r.project, r.tracking))
        if tax_total:
            gst = gst or accounts.system_code("GST", "tax account")
            lines.append((gst, tax_total, 0, None, None, None))
        narration = head.narration[:500] if head.narration else None
        yield Journal(f"d-{journal_id}", "MANJOURNAL", journal_id, head.date, narration, lines)


# ----------------------------------------------------------------------------- writing it

@dataclass
class Built:
    journals: int = 0
    lines: int = 0
    unbalanced: list[str] = field(default_factory=list)
    seconds: float = 0.0


def rebuild(engine: Engine, tenant_id: str) -> Built:
    """Replace the tenant's derived journals with what its documents post now, in one transaction.

    The balancing journal (see :func:`write_balancing`) is kept: it is rebuilt by the Trial Balance check.
    """
    started = time.perf_counter()
    built = Built()
    with engine.begin() as conn, _reader(engine, conn) as reader:
        accounts = Accounts.read(conn, tenant_id)
        _delete(conn, tenant_id, DERIVED)
        if _delete(conn, tenant_id, XERO):
            # Xero's journals of the time the app could read them: one ledger per tenant, never both.
            # If Xero serves them again, they are walked again from the first.
            conn.execute(update(s.sync_state).where(s.sync_state.c.tenant_id == tenant_id,
                                                    s.sync_state.c.stream == "journals")
                         .values(watermark=None, journal_offset=None, last_full_sync_at=None))
            log.warning("Tenant %s: Xero's journals it held are replaced by the ledger derived from documents.",
                        tenant_id)
        journal_rows: list[tuple] = []
        line_rows: list[tuple] = []
        writer = _Writer(conn)
        for number, journal in enumerate(derive(reader, tenant_id), start=1):
            total = sum(line[1] for line in journal.lines)
            if total:
                built.unbalanced.append(f"{journal.source_type} {journal.source_id}: off by {total / 100:.2f}")
            journal_rows.append((tenant_id, journal.journal_id, number, journal.day, journal.reference,
                                 journal.source_type, journal.source_id, DERIVED))
            line_rows.extend(_line_tuples(tenant_id, journal, accounts))
            if len(line_rows) >= CHUNK:
                writer.write(journal_rows, line_rows)
                built.lines += len(line_rows)
                built.journals += len(journal_rows)
                journal_rows, line_rows = [], []
        writer.write(journal_rows, line_rows)
        built.lines += len(line_rows)
        built.journals += len(journal_rows)
    built.seconds = time.perf_counter() - started
    log.info("Ledger of tenant %s derived from its documents: %d journals, %d lines, in %.1f s.", tenant_id,
             built.journals, built.lines, built.seconds)
    if built.unbalanced:
        log.warning("Tenant %s: %d derived journal(s) do not balance, e.g. %s", tenant_id, len(built.unbalanced),
                    built.unbalanced[0])
    return built


@contextmanager
def _reader(engine: Engine, writer) -> Iterator[Any]:
    """Where the documents are read from while the ledger is written.

    PostgreSQL streams them through a server-side cursor, which cannot stay open across the
    writes' savepoints on one connection: a second connection reads. SQLite lets one writer in at
    a time and reads lazily anyway: the writer's own connection reads.
    """
    if writer.dialect.name != "postgresql":
        yield writer
        return
    with engine.connect() as reader:
        yield reader


def _delete(conn, tenant_id: str, origin: str) -> int:
    j, ln = s.journals, s.journal_lines
    ids = select(j.c.journal_id).where(j.c.tenant_id == tenant_id, j.c.origin == origin).scalar_subquery()
    conn.execute(delete(ln).where(ln.c.tenant_id == tenant_id, ln.c.journal_id.in_(ids)))
    return conn.execute(delete(j).where(j.c.tenant_id == tenant_id, j.c.origin == origin)).rowcount or 0


def drop_derived(engine: Engine, tenant_id: str) -> int:
    """Xero's journals are loaded for the tenant again: the derived ledger and its balancing lines go."""
    with engine.begin() as conn:
        return _delete(conn, tenant_id, DERIVED) + _delete(conn, tenant_id, BALANCING)


JOURNAL_COLUMNS = ("tenant_id", "journal_id", "journal_number", "journal_date", "reference", "source_type",
                   "source_id", "origin")
LINE_COLUMNS = ("tenant_id", "journal_line_id", "journal_id", "account_id", "account_code", "account_type",
                "net_amount", "gross_amount", "tax_amount", "tax_type", "project", "tracking", "journal_date",
                "source_type", "source_id")
_MONEY = frozenset({6, 7, 8})  # net, gross and tax, in cents in the tuples
_TRACKING = 11


class _Writer:
    """Rows straight into tables the rebuild has just emptied of them: no upsert to decide, no per-row
    objects. PostgreSQL takes them by COPY; SQLite by one prepared INSERT per batch."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.postgres = conn.dialect.name == "postgresql"

    def write(self, journal_rows: list[tuple], line_rows: list[tuple]) -> None:
        if not journal_rows and not line_rows:
            return
        cursor = self.conn.connection.dbapi_connection.cursor()
        try:
            for table, columns, rows in (("journals", JOURNAL_COLUMNS, journal_rows),
                                         ("journal_lines", LINE_COLUMNS, line_rows)):
                if not rows:
                    continue
                if self.postgres:
                    self._copy(cursor, table, columns, rows)
                else:
                    marks = ", ".join("?" * len(columns))
                    values = ([_sqlite_row(row) for row in rows] if table == "journal_lines" else
                              [tuple(v.isoformat() if isinstance(v, date) else v for v in row) for row in rows])
                    cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values)
        finally:
            cursor.close()

    @staticmethod
    def _copy(cursor, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        text = "".join("\t".join(_copy_field(i, v, table) for i, v in enumerate(row)) + "\n" for row in rows)
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        if hasattr(cursor, "copy_expert"):  # psycopg2
            cursor.copy_expert(sql, io.StringIO(text))
        else:  # psycopg 3
            with cursor.copy(sql) as copy:
                copy.write(text)


def _cents_text(value: int) -> str:
    sign = "-" if value < 0 else ""
    whole, part = divmod(abs(value), 100)
    return f"{sign}{whole}.{part:02d}"


def _copy_field(i: int, value: Any, table: str) -> str:
    if value is None:
        return "\\N"
    if table == "journal_lines" and i in _MONEY:
        return _cents_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return copy_text(value)
    return str(value)


def _sqlite_row(row: tuple) -> tuple:
    """SQLite keeps money as REAL and dates as ISO text, as SQLAlchemy's types write them."""
    values = list(row)
    for i in _MONEY:
        values[i] = values[i] / 100
    day = values[12]
    values[12] = day.isoformat() if day is not None else None
    return tuple(values)


def _line_tuples(tenant_id: str, journal: Journal, accounts: Accounts) -> list[tuple]:
    """The journal's lines in ``LINE_COLUMNS`` order, money in cents, tracking as the JSON text it was read as."""
    rows = []
    by_code = accounts.by_code
    jid, day, stype, sid = journal.journal_id, journal.day, journal.source_type, journal.source_id
    for n, (code, net, tax, tax_type, project, tracking) in enumerate(journal.lines, start=1):
        account_id, account_type = by_code.get(code, (None, None))
        if tracking is not None and not isinstance(tracking, str):
            tracking = json.dumps(tracking)
        rows.append((tenant_id, f"{jid}/{n}", jid, account_id, code, account_type, net, net + tax, tax, tax_type,
                     project, tracking, day, stype, sid))
    return rows


def write_balancing(conn, tenant_id: str, as_at: date, unexplained: dict[str, int]) -> int:
    """One ``balancing`` line per account the documents cannot explain, dated the Trial Balance's date.

    ``unexplained``: account code -> cents (Xero's balance less the derived one). Replaces the last
    ones; the caller commits.
    """
    accounts = Accounts.read(conn, tenant_id)
    _delete(conn, tenant_id, BALANCING)
    if not unexplained:
        return 0
    journal = Journal(f"balancing-{tenant_id}", "BALANCING", tenant_id, as_at,
                      "What the documents cannot explain (payroll, depreciation, conversion balances …)",
                      [(code, cents_, 0, None, None, None) for code, cents_ in sorted(unexplained.items())])
    rows = _line_tuples(tenant_id, journal, accounts)
    _Writer(conn).write([(tenant_id, journal.journal_id, 0, as_at, journal.reference, journal.source_type,
                          journal.source_id, BALANCING)], rows)
    return len(rows)


# ----------------------------------------------------------------------------- comparing it

def net_by_account_month(journals: Iterable[Journal]) -> dict[tuple[str, date | None], int]:
    """(account code, first day of the month) -> net cents."""
    out: dict[tuple[str, date | None], int] = defaultdict(int)
    for journal in journals:
        month = journal.day.replace(day=1) if journal.day else None
        for code, net, *_ in journal.lines:
            out[code, month] += net
    return out


def by_source(journals: Iterable[Journal], wanted: set[tuple[str, date | None]]) -> dict[tuple, dict[str, int]]:
    """For the (account, month) pairs in ``wanted``: source document -> net cents."""
    out: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for journal in journals:
        month = journal.day.replace(day=1) if journal.day else None
        for code, net, *_ in journal.lines:
            if (code, month) in wanted:
                out[code, month][f"{journal.source_type} {journal.source_id}"] += net
    return out


def has_derived(engine: Engine, tenant_id: str, *, with_balancing: bool = False) -> bool:
    origins = (DERIVED, BALANCING) if with_balancing else (DERIVED,)
    with engine.connect() as conn:
        return conn.execute(select(s.journals.c.journal_id).where(
            s.journals.c.tenant_id == tenant_id, s.journals.c.origin.in_(origins)).limit(1)).first() is not None


# Where a backfill window notes that history came in after the ledger was last derived.
STATE_STREAM = "_derived_ledger"


def mark_stale(engine: Engine, tenant_id: str) -> None:
    from intoaec_xero.backfill import progress

    progress.update(engine, tenant_id, STATE_STREAM, lambda entry: {**entry, "history_loaded_at": progress.iso(
        progress.now())})


def is_stale(engine: Engine, tenant_id: str) -> bool:
    from intoaec_xero.backfill import progress

    entry = progress.read(engine, tenant_id, STATE_STREAM)
    return bool(entry.get("history_loaded_at")) and entry.get("history_loaded_at", "") >= entry.get("built_at", "")


def mark_built(engine: Engine, tenant_id: str) -> None:
    from intoaec_xero.backfill import progress

    progress.update(engine, tenant_id, STATE_STREAM, lambda entry: {**entry, "built_at": progress.iso(progress.now())})
