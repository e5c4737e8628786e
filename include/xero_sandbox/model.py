"""The one data model behind every route: a firm's books per tenant.

Records are kept compact because the large dataset holds over a million journal lines:
transactions are small ``__slots__`` objects that refer to each other by index, line items and
journal lines live in column arrays, and GUIDs are computed from indexes (see ``ids``). Money is
integer cents (unit amounts and quantities: ten-thousandths), so every total and the ground
truth are exact.

Journals are posted only through :meth:`Books.post_journal`, which refuses an unbalanced
journal, and they are append-only: a change to a posted transaction posts a reversal and a new
journal, as Xero does. The running ``net_by_account`` is updated on every post, so the truth
and the trial balance agree with the journal lines by construction (and the tests check it).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from decimal import Decimal

from . import ids

# ----------------------------------------------------------------------------- constants

SOURCE_TYPES = (
    "ACCREC", "ACCPAY", "ACCRECCREDIT", "ACCPAYCREDIT", "ACCRECPAYMENT", "ACCPAYPAYMENT",
    "ARCREDITPAYMENT", "APCREDITPAYMENT", "MANJOURNAL",
    # spend / receive money, a client's retainer (prepayment) and overpayment
    "CASHREC", "CASHPAID", "ARPREPAYMENT", "AROVERPAYMENT",
    # a transfer between two bank accounts, and a payslip (payroll: journaled, no document)
    "TRANSFER", "PAYSLIP",
)
ST = {name: i for i, name in enumerate(SOURCE_TYPES)}
PAYMENT_SOURCE_TYPES = frozenset({ST["ACCRECPAYMENT"], ST["ACCPAYPAYMENT"], ST["ARCREDITPAYMENT"],
                                  ST["APCREDITPAYMENT"]})

ACCOUNT_CLASS = {
    "BANK": "ASSET", "CURRENT": "ASSET", "FIXED": "ASSET", "INVENTORY": "ASSET", "NONCURRENT": "ASSET",
    "PREPAYMENT": "ASSET", "CURRLIAB": "LIABILITY", "LIABILITY": "LIABILITY", "TERMLIAB": "LIABILITY",
    "PAYG": "LIABILITY", "EQUITY": "EQUITY", "REVENUE": "REVENUE", "SALES": "REVENUE",
    "OTHERINCOME": "REVENUE", "EXPENSE": "EXPENSE", "OVERHEADS": "EXPENSE", "DIRECTCOSTS": "EXPENSE",
    "DEPRECIATN": "EXPENSE",
}

RATE_ONE = 1_000_000  # CurrencyRate is stored in millionths


def rdiv(a: int, b: int) -> int:
    """Integer a/b rounded half away from zero (b > 0), the way invoices round cents."""
    q, r = divmod(abs(a), b)
    if 2 * r >= b:
        q += 1
    return q if a >= 0 else -q


def to_base(cents: int, rate_micros: int) -> int:
    """Foreign-currency cents to base-currency cents (Xero's rate is foreign units per base unit)."""
    if rate_micros == RATE_ONE:
        return cents
    return rdiv(cents * RATE_ONE, rate_micros)


def dec2(cents: int) -> str:
    """Cents as the truth's decimal string with exactly two places."""
    return str((Decimal(cents) / 100).quantize(Decimal("0.01")))


# ----------------------------------------------------------------------------- records

class Account:
    __slots__ = ("idx", "code", "name", "type", "tax_type", "status", "description", "system",
                 "bank_number", "currency", "updated_ms", "enable_payments")

    def __init__(self, idx, code, name, type_, tax_type, status="ACTIVE", description="", system="",
                 bank_number="", currency="", updated_ms=0, enable_payments=False):
        self.idx, self.code, self.name, self.type, self.tax_type = idx, code, name, type_, tax_type
        self.status, self.description, self.system = status, description, system
        self.bank_number, self.currency, self.updated_ms = bank_number, currency, updated_ms
        self.enable_payments = enable_payments

    @property
    def cls(self) -> str:
        return ACCOUNT_CLASS[self.type]


class TrackingCategory:
    __slots__ = ("idx", "name", "status", "options")

    def __init__(self, idx, name, status="ACTIVE"):
        self.idx, self.name, self.status, self.options = idx, name, status, []


class TrackingOption:
    __slots__ = ("idx", "category", "name", "status")

    def __init__(self, idx, category, name, status="ACTIVE"):
        self.idx, self.category, self.name, self.status = idx, category, name, status


class Contact:
    __slots__ = ("idx", "name", "first", "last", "email", "number", "status", "is_customer",
                 "is_supplier", "updated_ms", "city", "region", "postcode", "country", "street",
                 "phone", "currency", "tz")

    def __init__(self, idx, name, first, last, email, number, updated_ms, street, city, region,
                 postcode, country, phone, currency, tz="+0000"):
        self.idx, self.name, self.first, self.last, self.email = idx, name, first, last, email
        self.number, self.status, self.is_customer, self.is_supplier = number, "ACTIVE", False, False
        self.updated_ms, self.street, self.city, self.region = updated_ms, street, city, region
        self.postcode, self.country, self.phone, self.currency, self.tz = postcode, country, phone, currency, tz


class Invoice:
    """An invoice (ACCREC) or bill (ACCPAY). Money in cents of ``currency``."""

    __slots__ = ("idx", "type", "number", "reference", "contact", "date", "due", "status", "lat",
                 "currency", "rate", "line_start", "line_count", "sub_total", "total_tax", "total",
                 "paid", "credited", "payments", "allocations", "updated_ms", "sent", "fully_paid_day",
                 "has_attachments", "tz", "journal", "credit_allocs")

    def __init__(self, idx, type_, number, reference, contact, date, due, lat, currency, rate):
        self.idx, self.type, self.number, self.reference = idx, type_, number, reference
        self.contact, self.date, self.due, self.status, self.lat = contact, date, due, "DRAFT", lat
        self.currency, self.rate = currency, rate
        self.line_start = self.line_count = self.sub_total = self.total_tax = self.total = 0
        self.paid = self.credited = 0
        self.payments: list[int] = []
        self.allocations: list[int] = []
        self.updated_ms = 0
        self.sent = False
        self.fully_paid_day: int | None = None
        self.has_attachments = False
        self.tz = "+0000"
        self.journal = 0  # number of the journal currently representing it (0: none)
        # prepayments and overpayments applied to it (CreditAllocation indexes); a tuple until one is
        self.credit_allocs: list[int] | tuple = ()

    @property
    def due_amount(self) -> int:
        return self.total - self.paid - self.credited


class CreditNote:
    __slots__ = ("idx", "type", "number", "reference", "contact", "date", "status", "lat", "currency",
                 "rate", "line_start", "line_count", "sub_total", "total_tax", "total", "allocations",
                 "allocated", "updated_ms", "fully_paid_day", "tz", "journal")

    def __init__(self, idx, type_, number, reference, contact, date, lat, currency, rate):
        self.idx, self.type, self.number, self.reference = idx, type_, number, reference
        self.contact, self.date, self.status, self.lat = contact, date, "DRAFT", lat
        self.currency, self.rate = currency, rate
        self.line_start = self.line_count = self.sub_total = self.total_tax = self.total = 0
        self.allocations: list[int] = []
        self.allocated = 0
        self.updated_ms = 0
        self.fully_paid_day: int | None = None
        self.tz = "+0000"
        self.journal = 0

    @property
    def remaining(self) -> int:
        return self.total - self.allocated


class Payment:
    __slots__ = ("idx", "invoice", "date", "amount", "rate", "status", "reference", "account",
                 "updated_ms", "reconciled", "tz", "journal")

    def __init__(self, idx, invoice, date, amount, rate, reference, account, updated_ms):
        self.idx, self.invoice, self.date, self.amount, self.rate = idx, invoice, date, amount, rate
        self.status, self.reference, self.account, self.updated_ms = "AUTHORISED", reference, account, updated_ms
        self.reconciled = False
        self.tz = "+0000"
        self.journal = 0


class Allocation:
    __slots__ = ("idx", "credit_note", "invoice", "amount", "date")

    def __init__(self, idx, credit_note, invoice, amount, date):
        self.idx, self.credit_note, self.invoice, self.amount, self.date = idx, credit_note, invoice, amount, date


class BankTransaction:
    """Spend or receive money; also the bank side of a prepayment or overpayment (``link``).

    ``type``: SPEND, RECEIVE, RECEIVE-PREPAYMENT or RECEIVE-OVERPAYMENT. Lines live in
    ``Books.lines`` like an invoice's; money is base currency (the firm's bank accounts are).
    """

    __slots__ = ("idx", "type", "contact", "date", "status", "lat", "currency", "rate", "reference",
                 "account", "line_start", "line_count", "sub_total", "total_tax", "total", "reconciled",
                 "updated_ms", "tz", "journal", "link", "has_attachments")

    def __init__(self, idx, type_, contact, date, lat, currency, reference, account):
        self.idx, self.type, self.contact, self.date, self.lat = idx, type_, contact, date, lat
        self.currency, self.rate, self.reference, self.account = currency, RATE_ONE, reference, account
        self.status = "AUTHORISED"
        self.line_start = self.line_count = self.sub_total = self.total_tax = self.total = 0
        self.reconciled = True
        self.updated_ms = 0
        self.tz = "+0000"
        self.journal = 0
        self.link = -1  # Prepayment/Overpayment index for the RECEIVE-PREPAYMENT/-OVERPAYMENT types
        self.has_attachments = False


class ManualJournal:
    """A manual journal: signed lines (positive debit) in ``Books.lines``, NoTax, balanced."""

    __slots__ = ("idx", "narration", "date", "status", "lat", "line_start", "line_count", "sub_total",
                 "total_tax", "total", "updated_ms", "journal", "cash_basis")

    def __init__(self, idx, narration, date):
        self.idx, self.narration, self.date = idx, narration, date
        self.status, self.lat = "DRAFT", "NoTax"
        self.line_start = self.line_count = self.sub_total = self.total_tax = self.total = 0
        self.updated_ms = 0
        self.journal = 0
        self.cash_basis = False


class PurchaseOrder:
    """A purchase order to a sub-consultant or supplier: committed cost, never journaled."""

    __slots__ = ("idx", "number", "reference", "contact", "date", "delivery", "status", "lat", "currency",
                 "rate", "line_start", "line_count", "sub_total", "total_tax", "total", "updated_ms", "sent",
                 "attention")

    def __init__(self, idx, number, reference, contact, date, delivery, lat, currency, attention):
        self.idx, self.number, self.reference, self.contact = idx, number, reference, contact
        self.date, self.delivery, self.lat, self.currency = date, delivery, lat, currency
        self.rate, self.status, self.attention = RATE_ONE, "DRAFT", attention
        self.line_start = self.line_count = self.sub_total = self.total_tax = self.total = 0
        self.updated_ms = 0
        self.sent = False


class Prepayment:
    """A client's retainer (``kind`` PREPAYMENT) or overpayment (OVERPAYMENT), received into the bank.

    Its lines and totals are those of the bank transaction ``bank_txn``; allocations to invoices
    are ``CreditAllocation`` indexes.
    """

    __slots__ = ("idx", "kind", "bank_txn", "number", "allocations", "allocated", "updated_ms", "tz")

    def __init__(self, idx, kind, bank_txn, number=""):
        self.idx, self.kind, self.bank_txn, self.number = idx, kind, bank_txn, number
        self.allocations: list[int] = []
        self.allocated = 0
        self.updated_ms = 0
        self.tz = "+0000"


class CreditAllocation:
    """A prepayment or overpayment (``kind``) applied to an invoice."""

    __slots__ = ("idx", "kind", "source", "invoice", "amount", "date", "journal")

    def __init__(self, idx, kind, source, invoice, amount, date):
        self.idx, self.kind, self.source, self.invoice = idx, kind, source, invoice
        self.amount, self.date = amount, date
        self.journal = 0


class LinkedTransaction:
    """A billable expense: a bill or spend-money line (``source_line``: its line index) to re-bill
    to a customer, and once billed the sales invoice line it went onto (``target``/``target_line``)."""

    __slots__ = ("idx", "source_type", "source", "source_line", "contact", "target", "target_line", "status",
                 "updated_ms")

    def __init__(self, idx, source_type, source, source_line, contact):
        self.idx, self.source_type, self.source, self.source_line = idx, source_type, source, source_line
        self.contact = contact
        self.target = self.target_line = -1
        self.status = "APPROVED"
        self.updated_ms = 0


class BankTransfer:
    """Money moved between two of the firm's bank accounts (base currency, never edited)."""

    __slots__ = ("idx", "from_account", "to_account", "amount", "date", "created_ms", "rate", "reference",
                 "has_attachments", "reconciled", "journal")

    def __init__(self, idx, from_account, to_account, amount, date, created_ms, reference=""):
        self.idx, self.from_account, self.to_account = idx, from_account, to_account
        self.amount, self.date, self.created_ms, self.reference = amount, date, created_ms, reference
        self.rate = RATE_ONE
        self.has_attachments = False
        self.reconciled = False
        self.journal = 0

    @property
    def updated_ms(self) -> int:
        # Transfers are never edited, so If-Modified-Since filters on CreatedDateUTC.
        return self.created_ms


@dataclass(frozen=True)
class TaxRate:
    code: str
    name: str
    bp: int  # basis points: 1500 = 15%


# ----------------------------------------------------------------------------- column stores

class LineStore:
    """Line items of invoices and credit notes, one array per column.

    An edit appends a fresh range and repoints the document, so old ranges stay valid for the
    journals that were posted from them; ``uid`` keeps a LineItemID stable across edits.
    """

    def __init__(self) -> None:
        self.uid = array("q")
        self.desc = array("i")
        self.qty = array("q")      # ten-thousandths
        self.unit = array("q")     # ten-thousandths
        self.account = array("h")
        self.taxrate = array("h")  # index into Books.tax_rates
        self.tax = array("q")      # cents
        self.amount = array("q")   # cents (LineAmount)
        self.track = array("i")    # project option idx or -1
        self.track2 = array("i")   # discipline option idx or -1
        self.next_uid = 0

    def __len__(self) -> int:
        return len(self.uid)

    def add(self, uid, desc, qty, unit, account, taxrate, tax, amount, track, track2) -> None:
        if uid < 0:
            uid = self.next_uid
            self.next_uid += 1
        self.uid.append(uid)
        self.desc.append(desc)
        self.qty.append(qty)
        self.unit.append(unit)
        self.account.append(account)
        self.taxrate.append(taxrate)
        self.tax.append(tax)
        self.amount.append(amount)
        self.track.append(track)
        self.track2.append(track2)


class JournalStore:
    """Posted journals (JournalNumber = index + 1) and their lines, append-only."""

    def __init__(self) -> None:
        self.date = array("i")
        self.created = array("q")
        self.stype = array("b")
        self.src = array("i")
        self.start = array("i")   # first line index; the next journal's start ends it
        self.l_account = array("h")
        self.l_net = array("q")
        self.l_tax = array("q")
        self.l_track = array("i")
        self.l_track2 = array("i")
        self.l_desc = array("i")
        self.l_taxrate = array("h")
        self.payment_numbers = array("i")  # JournalNumbers of cash (payment) journals, ascending

    def __len__(self) -> int:
        return len(self.date)

    def line_range(self, j: int) -> range:
        end = self.start[j + 1] if j + 1 < len(self.start) else len(self.l_net)
        return range(self.start[j], end)


# ----------------------------------------------------------------------------- the books

@dataclass
class Books:
    """One Xero organisation (tenant)."""

    no: int
    tenant_id: str
    name: str
    short_code: str
    country: str
    base_currency: str
    idspace: ids.IdSpace
    tax_rates: list[TaxRate] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    categories: list[TrackingCategory] = field(default_factory=list)
    options: list[TrackingOption] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    credit_notes: list[CreditNote] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    allocations: list[Allocation] = field(default_factory=list)
    bank_transactions: list[BankTransaction] = field(default_factory=list)
    manual_journals: list[ManualJournal] = field(default_factory=list)
    purchase_orders: list[PurchaseOrder] = field(default_factory=list)
    prepayments: list[Prepayment] = field(default_factory=list)
    overpayments: list[Prepayment] = field(default_factory=list)
    credit_allocations: list[CreditAllocation] = field(default_factory=list)
    linked_transactions: list[LinkedTransaction] = field(default_factory=list)
    bank_transfers: list[BankTransfer] = field(default_factory=list)
    payslips: list[tuple[int, int]] = field(default_factory=list)  # (day, cents): journaled, no document
    lines: LineStore = field(default_factory=LineStore)
    journals: JournalStore = field(default_factory=JournalStore)
    strings: list[str] = field(default_factory=list)
    net_by_account: dict[int, int] = field(default_factory=dict)
    created_ms: int = 0
    version: int = 0  # bumped on every change; keys cached query results
    _string_ix: dict[str, int] = field(default_factory=dict)
    _guid_memo: dict[tuple[int, int], str] = field(default_factory=dict)
    # indexes filled by the generator
    account_by_code: dict[str, int] = field(default_factory=dict)
    gst_account: int = -1
    ar_account: int = -1
    ap_account: int = -1
    bank_account: int = -1
    fx_gain_account: int = -1
    rounding_account: int = -1
    retainer_account: int = -1       # where client retainers (prepayments) wait until applied
    wages_payable_account: int = -1
    cleared_paid: dict[int, int] = field(default_factory=dict)  # invoice idx -> payments posted, its currency
    project_category: int = -1
    discipline_category: int = -1
    invoice_seq: int = 0
    credit_seq: int = 0
    po_seq: int = 0
    prepayment_seq: int = 0
    projects: list = field(default_factory=list)   # generator's projects, for activity
    suppliers: list = field(default_factory=list)  # (contact idx, supplier spec)

    # -- ids
    def guid(self, kind: int, idx: int) -> str:
        return self.idspace.guid(self.no, kind, idx)

    def ref_guid(self, kind: int, idx: int) -> str:
        """GUID of a record referenced from many others (account, contact, tracking), memoised."""
        key = (kind, idx)
        g = self._guid_memo.get(key)
        if g is None:
            g = self._guid_memo[key] = self.idspace.guid(self.no, kind, idx)
        return g

    def index_of(self, guid: str, kind: int) -> int | None:
        return self.idspace.index_of(guid, self.no, kind)

    # -- strings
    def s(self, text: str) -> int:
        ix = self._string_ix.get(text)
        if ix is None:
            ix = len(self.strings)
            self.strings.append(text)
            self._string_ix[text] = ix
        return ix

    # -- documents
    def set_lines(self, doc, specs, keep_uids: bool = False) -> None:
        """Write a document's line items and recompute its totals.

        ``specs``: (description, qty_1e4, unit_1e4, account_idx, taxrate_idx, track, track2). The
        line amount is qty × unit rounded to cents; tax follows the document's LineAmountTypes.
        """
        old_uids = [self.lines.uid[i] for i in range(doc.line_start, doc.line_start + doc.line_count)]
        start = len(self.lines)
        sub = tax_total = 0
        for n, (desc, qty, unit, acct, tr, track, track2) in enumerate(specs):
            amount = rdiv(qty * unit, 1_000_000)
            bp = self.tax_rates[tr].bp if doc.lat != "NoTax" else 0
            if doc.lat == "Inclusive":
                tax = rdiv(amount * bp, 10_000 + bp)
                net = amount - tax
            else:
                tax = rdiv(amount * bp, 10_000)
                net = amount
            uid = old_uids[n] if keep_uids and n < len(old_uids) else -1
            self.lines.add(uid, self.s(desc), qty, unit, acct, tr, tax, amount, track, track2)
            sub += net
            tax_total += tax
        doc.line_start, doc.line_count = start, len(specs)
        doc.sub_total, doc.total_tax, doc.total = sub, tax_total, sub + tax_total

    def line_net(self, i: int, lat: str) -> int:
        amt = self.lines.amount[i]
        return amt - self.lines.tax[i] if lat == "Inclusive" else amt

    # -- journals
    def post_journal(self, day: int, created_ms: int, stype: str, src: int, lines) -> int:
        """Append a balanced journal; ``lines``: (account, net, tax, track, track2, desc, taxrate).

        Returns its JournalNumber. Lines with neither net nor tax are dropped, as Xero does.
        """
        lines = [ln for ln in lines if ln[1] or ln[2]]
        total = sum(ln[1] for ln in lines)
        if total != 0:
            raise AssertionError(f"unbalanced journal ({total} cents) for {stype} #{src}")
        js = self.journals
        if len(js.created) and created_ms < js.created[-1]:
            created_ms = js.created[-1]  # CreatedDateUTC never goes backwards with JournalNumber
        js.date.append(day)
        js.created.append(created_ms)
        st = ST[stype]
        js.stype.append(st)
        js.src.append(src)
        js.start.append(len(js.l_net))
        nba = self.net_by_account
        for acct, net, tax, track, track2, desc, tr in lines:
            js.l_account.append(acct)
            js.l_net.append(net)
            js.l_tax.append(tax)
            js.l_track.append(track)
            js.l_track2.append(track2)
            js.l_desc.append(desc)
            js.l_taxrate.append(tr)
            nba[acct] = nba.get(acct, 0) + net
        number = len(js.date)
        if st in PAYMENT_SOURCE_TYPES:
            js.payment_numbers.append(number)
        self.version += 1
        return number

    def reverse_journal(self, number: int, created_ms: int) -> int:
        """Post the exact reversal of journal ``number`` (same date, source and accounts)."""
        js = self.journals
        j = number - 1
        lines = [(js.l_account[i], -js.l_net[i], -js.l_tax[i], js.l_track[i], js.l_track2[i],
                  js.l_desc[i], js.l_taxrate[i]) for i in js.line_range(j)]
        return self.post_journal(js.date[j], created_ms, SOURCE_TYPES[js.stype[j]], js.src[j], lines)

    def document_journal_lines(self, doc, control_account: int, sign: int):
        """Journal lines for an invoice/bill/credit note: control account against its lines.

        ``sign`` +1 for a sale (revenue credited), -1 for a purchase (expense debited); credit notes
        pass the opposite sign of the document they credit.
        """
        out = []
        tax_total_base = 0
        ln = self.lines
        for i in range(doc.line_start, doc.line_start + doc.line_count):
            net = to_base(self.line_net(i, doc.lat), doc.rate)
            tax = to_base(ln.tax[i], doc.rate)
            tax_total_base += tax
            out.append((ln.account[i], -sign * net, -sign * tax, ln.track[i], ln.track2[i], ln.desc[i],
                        ln.taxrate[i]))
        if tax_total_base:
            out.append((self.gst_account, -sign * tax_total_base, 0, -1, -1, self.s(""), -1))
        # The control account carries the total converted once; what converting line by line
        # leaves over goes to Rounding, so the document clears to the cent when it is settled.
        control = sign * to_base(doc.total, doc.rate)
        leftover = -control - sum(x[1] for x in out)
        if leftover:
            out.append((self.rounding_account, leftover, 0, -1, -1, self.s(""), -1))
        out.insert(0, (control_account, control, 0, -1, -1, self.s(""), -1))
        return out

    def clear_on_control(self, inv, amount: int) -> int:
        """Base cents a payment of ``amount`` takes off the control account, at the invoice's rate.

        Converted cumulatively (credit applied first, then payments in posting order), so the
        payments and credit that settle an invoice take off exactly what it put on; the payment's
        own conversion can differ by a cent, which the payment posts to Realised Currency Gains.
        """
        paid = self.cleared_paid.get(inv.idx, 0)
        self.cleared_paid[inv.idx] = paid + amount
        before = inv.credited + paid
        return to_base(before + amount, inv.rate) - to_base(before, inv.rate)

    # -- truth
    def truth(self) -> dict:
        t: dict = {
            "clients": {"count": len(self.contacts)},
            "invoices": {"count": len(self.invoices), "total": dec2(sum(i.total for i in self.invoices))},
            "invoice_lines": {"count": sum(i.line_count for i in self.invoices)},
            "payments": {"count": len(self.payments), "amount": dec2(sum(p.amount for p in self.payments))},
            "credit_notes": {"count": len(self.credit_notes),
                             "total": dec2(sum(c.total for c in self.credit_notes))},
        }
        t.update(self.cost_truth())
        t["bank_transfers"] = {"count": len(self.bank_transfers),
                               "amount": dec2(sum(x.amount for x in self.bank_transfers))}
        # Every organisation keeps a ledger, whether or not an app may read it: a ledger derived
        # from the documents must equal net_by_account_code.
        by_code: dict[str, int] = {}
        for acct, cents in self.net_by_account.items():
            code = self.accounts[acct].code
            by_code[code] = by_code.get(code, 0) + cents
        t["journals"] = {"count": len(self.journals)}
        t["journal_lines"] = {
            "count": len(self.journals.l_net),
            "net_by_account_code": {c: dec2(v) for c, v in sorted(by_code.items())},
        }
        return t

    def cost_truth(self) -> dict:
        """Truth of the cost side, deposits and project P&L (see STATUS.md for each key)."""
        ln_amount = self.lines.amount

        def lines_of(docs) -> dict:
            count = total = 0
            for d in docs:
                count += d.line_count
                total += sum(ln_amount[d.line_start:d.line_start + d.line_count])
            return {"count": count, "line_amount": dec2(total)}

        def docs_of(docs) -> dict:
            return {"count": len(docs), "total": dec2(sum(self.doc_total(d) for d in docs))}

        def allocs(kind: str) -> dict:
            got = [a.amount for a in self.credit_allocations if a.kind == kind]
            return {"count": len(got), "amount": dec2(sum(got))}

        revenue, cost = self.project_pnl()
        return {
            "credit_note_lines": lines_of(self.credit_notes),
            "bank_transactions": docs_of(self.bank_transactions),
            "bank_transaction_lines": lines_of(self.bank_transactions),
            "manual_journals": {"count": len(self.manual_journals)},
            "manual_journal_lines": {"count": sum(m.line_count for m in self.manual_journals)},
            "purchase_orders": docs_of(self.purchase_orders),
            "purchase_order_lines": lines_of(self.purchase_orders),
            "prepayments": docs_of(self.prepayments),
            "prepayment_allocations": allocs("PREPAYMENT"),
            "overpayments": docs_of(self.overpayments),
            "overpayment_allocations": allocs("OVERPAYMENT"),
            "linked_transactions": {"count": len(self.linked_transactions)},
            "project_pnl": {
                "revenue": {name: dec2(v) for name, v in sorted(revenue.items()) if v},
                "cost": {name: dec2(v) for name, v in sorted(cost.items()) if v},
            },
        }

    def doc_total(self, d) -> int:
        return self.bank_transactions[d.bank_txn].total if isinstance(d, Prepayment) else d.total

    def deposit_remaining(self, p: Prepayment) -> int:
        return self.bank_transactions[p.bank_txn].total - p.allocated

    def project_pnl(self, first_day: int | None = None, last_day: int | None = None
                    ) -> tuple[dict[str, int], dict[str, int]]:
        """Revenue and cost (base cents) per project option from the ledger, as the Profit and
        Loss report by the project category shows them: revenue = credits to revenue-class
        accounts, cost = debits to expense-class accounts, on lines tracked to the option."""
        js = self.journals
        cls = [ACCOUNT_CLASS[a.type] for a in self.accounts]
        proj = {o.idx for o in self.options if o.category == self.project_category}
        revenue: dict[int, int] = {}
        cost: dict[int, int] = {}
        n = len(js.date)
        total_lines = len(js.l_net)
        for j in range(n):
            d = js.date[j]
            if (first_day is not None and d < first_day) or (last_day is not None and d > last_day):
                continue
            end = js.start[j + 1] if j + 1 < n else total_lines
            for i in range(js.start[j], end):
                opt = js.l_track[i]
                if opt < 0 or opt not in proj:
                    opt = js.l_track2[i]
                    if opt < 0 or opt not in proj:
                        continue
                c = cls[js.l_account[i]]
                if c == "REVENUE":
                    revenue[opt] = revenue.get(opt, 0) - js.l_net[i]
                elif c == "EXPENSE":
                    cost[opt] = cost.get(opt, 0) + js.l_net[i]
        names = self.options
        return ({names[o].name: v for o, v in revenue.items()}, {names[o].name: v for o, v in cost.items()})


@dataclass
class Dataset:
    """Everything one sandbox serves: the organisations in /connections order."""

    name: str
    seed: int
    idspace: ids.IdSpace
    tenants: list[Books]

    def by_id(self, tenant_id: str) -> Books | None:
        for b in self.tenants:
            if b.tenant_id == tenant_id:
                return b
        return None

    def truth(self) -> dict:
        return {"tenants": {b.tenant_id: b.truth() for b in self.tenants}}
