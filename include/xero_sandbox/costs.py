"""The cost side of an AEC firm's books, its clients' deposits and its billable expenses.

What a practice tracks per project besides fees: spend money (site-visit flights, plotting paid
by card), monthly payroll imported as a manual journal with each project's share of staff time,
depreciation and the odd reallocation between projects, purchase orders to sub-consultants
(committed cost), retainers taken at the start of a project and applied to later invoices
(prepayments), clients' overpayments applied to their next invoice, bill or spend-money
lines re-billed to the client (linked transactions, "billable expenses"), and transfers between
the cheque and savings accounts (from a stream of their own).

Everything here draws from its own random stream and runs after the fee invoices and bills are
settled, so the existing documents, payments, credit notes and contacts are exactly what they
were before this module existed; what changes is the ledger (new postings) and, for the
invoices a retainer or overpayment is applied to, their AmountCredited/AmountDue. Postings go
through the same event replay as everything else (``generate.post_event``).
"""

from __future__ import annotations

import bisect
import random
from datetime import date

from .clock import DATA_END_MS
from .generate import END_DAY, MONTHS, NOTAX, PURCHASE, SALE, bill_lines, project_at
from .ids import DAY_MS, date_of, day_of
from .model import (
    RATE_ONE,
    BankTransaction,
    BankTransfer,
    Books,
    CreditAllocation,
    Invoice,
    LinkedTransaction,
    ManualJournal,
    Prepayment,
    PurchaseOrder,
)

# Card purchases that skip the bills ledger: (supplier spec name, account, description, tracked, cents range).
SPEND_SOURCES = [
    ("Air New Zealand", "493", "Site visit — flights and taxis, {p}", True, (18000, 140000)),
    ("PlotRoom Print Co", "320", "Plotting on the card — {p}", True, (4500, 90000)),
    ("PlotRoom Print Co", "320", "Consent set printing — {p}", True, (12000, 160000)),
    ("Officeworks", "461", "Stationery (card)", False, (2500, 38000)),
]
# Money received that is not a client paying an invoice (never tracked to a project, so a
# project's revenue is its invoices less its credit notes).
RECEIVE_SOURCES = [
    ("", "260", "Desk space sublease — {m}", (60000, 180000), "Exclusive"),
    ("Vero Liability Insurance", "433", "Insurance claim settlement", (50000, 900000), "NoTax"),
]
PAYROLL_BUREAU = "Baker Tilly Accountants"
PAYROLL_TAXES = {"NZ": "PAYE and KiwiSaver", "AU": "PAYG and super", "GB": "PAYE, NI and pension"}
# Sub-consultants and surveyors a firm raises purchase orders with.
PO_ACCOUNTS = {"310", "330"}


def allocate_credit(b: Books, kind: str, source: Prepayment, inv: Invoice, amount: int, day: int, ms: int,
                    events: list | None = None) -> CreditAllocation:
    """Apply a prepayment or overpayment to an invoice (AmountCredited, as Xero counts them).

    A retainer waits on its own liability account, so applying it posts a journal from there to
    Accounts Receivable; an overpayment already sits on Accounts Receivable, so nothing is posted.
    ``events``: queue the posting (generation); None: post it now (activity).
    """
    from .generate import post_event

    a = CreditAllocation(len(b.credit_allocations), kind, source.idx, inv.idx, amount, day)
    b.credit_allocations.append(a)
    source.allocations.append(a.idx)
    source.allocated += amount
    source.updated_ms = max(source.updated_ms, ms)
    inv.credit_allocs = [*inv.credit_allocs, a.idx]
    inv.credited += amount
    inv.updated_ms = max(inv.updated_ms, ms)
    if inv.due_amount == 0 and inv.total > 0:
        inv.status = "PAID"
        inv.fully_paid_day = day
    if kind == "PREPAYMENT":
        if events is None:
            post_event(b, "alloc", a.idx, ms)
        else:
            events.append((ms, len(events), "alloc", a.idx))
    return a


def new_bank_transaction(b: Books, type_: str, contact: int, day: int, specs, lat: str, reference: str,
                         ms: int) -> BankTransaction:
    bt = BankTransaction(len(b.bank_transactions), type_, contact, day, lat, b.base_currency, reference,
                         b.bank_account)
    b.set_lines(bt, specs)
    bt.updated_ms = ms
    b.bank_transactions.append(bt)
    return bt


def new_deposit(b: Books, kind: str, contact: int, day: int, specs, reference: str, ms: int) -> Prepayment:
    """A retainer (PREPAYMENT) or overpayment (OVERPAYMENT) received into the bank (NoTax)."""
    table = b.prepayments if kind == "PREPAYMENT" else b.overpayments
    bt = new_bank_transaction(b, f"RECEIVE-{kind}", contact, day, specs, "NoTax", reference, ms)
    p = Prepayment(len(table), kind, bt.idx, reference if kind == "PREPAYMENT" else "")
    p.updated_ms = ms
    bt.link = p.idx
    table.append(p)
    return p


def retainer_specs(b: Books, project, amount: int) -> list[tuple]:
    return [(f"Retainer — {project.name}", 10000, amount * 100, b.retainer_account, NOTAX, project.option,
             project.discipline)]


def overpayment_specs(b: Books, amount: int) -> list[tuple]:
    return [("Overpayment received", 10000, amount * 100, b.ar_account, NOTAX, -1, -1)]


def month_end(y: int, m: int) -> int:
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    return day_of(nxt) - 1


class CostGenerator:
    """Adds the cost side and deposits to books whose invoices and bills are already settled."""

    def __init__(self, b: Books, rng: random.Random, start_day: int, projects: list, suppliers: list,
                 events: list, size: int, tz: str, transfer_rng: random.Random | None = None) -> None:
        self.b, self.rng, self.start_day = b, rng, start_day
        self.transfer_rng = transfer_rng or random.Random(f"xero-sandbox:transfers:{b.no}")
        self.projects, self.suppliers, self.events = projects, suppliers, events
        self.size, self.tz = size, tz
        self.by_option = {p.option: p for p in projects}
        self.supplier_by_name = {sup[0]: idx for idx, sup in suppliers}
        self.created_ms = {idx: ms for ms, _, kind, idx in events if kind == "inv"}

    def run(self) -> None:
        self._spend_and_receive()
        self._payroll_and_journals()
        self._purchase_orders()
        self._retainers()
        self._overpayments()
        self._linked_transactions()
        # Last, from its own stream: every record above is what it was before transfers existed.
        self._bank_transfers()

    # ------------------------------------------------------------------ helpers
    def _stamp(self, day: int, lo_h: int = 1, hi_h: int = 40) -> int:
        ms = day * DAY_MS + self.rng.randint(lo_h * 3600, hi_h * 3600) * 1000 + self.rng.randint(0, 999)
        return min(ms, DATA_END_MS - self.rng.randint(60_000, 3_600_000))

    def _event(self, ms: int, kind: str, idx: int) -> None:
        self.events.append((ms, len(self.events), kind, idx))

    def _project_at(self, day: int):
        return project_at(self.rng, self.projects, day)

    def _month_text(self, day: int) -> str:
        d = date_of(day)
        return f"{MONTHS[d.month - 1]} {d.year}"

    # ------------------------------------------------------------------ spend / receive money
    def _spend_and_receive(self) -> None:
        b, rng = self.b, self.rng
        n = max(12, self.size // 2)
        days = sorted(rng.randint(self.start_day, END_DAY) for _ in range(n))
        for day in days:
            ms = self._stamp(day)
            if rng.random() < 0.85:
                name, code, text, tracked, (lo, hi) = rng.choice(SPEND_SOURCES)
                contact = self.supplier_by_name[name]
                p = self._project_at(day)
                acct = b.account_by_code[code]
                slot = NOTAX if b.accounts[acct].tax_type == b.tax_rates[NOTAX].code else PURCHASE
                specs = [(text.format(p=p.name), 10000, rng.randint(lo, hi) * 100, acct, slot,
                          p.option if tracked else -1, p.discipline if tracked else -1)]
                bt = new_bank_transaction(b, "SPEND", contact, day, specs,
                                          "Inclusive" if rng.random() < 0.7 else "Exclusive",
                                          f"Card {rng.randint(1000, 9999)}" if rng.random() < 0.6 else "", ms)
            else:
                name, code, text, (lo, hi), lat = rng.choice(RECEIVE_SOURCES)
                contact = self.supplier_by_name[name]
                slot = SALE if lat != "NoTax" else NOTAX
                specs = [(text.format(m=self._month_text(day)), 10000, rng.randint(lo, hi) * 100,
                          b.account_by_code[code], slot, -1, -1)]
                bt = new_bank_transaction(b, "RECEIVE", contact, day, specs, lat, "", ms)
            bt.tz = self.tz if bt.idx % 9 == 4 else "+0000"
            bt.reconciled = rng.random() < (0.95 if END_DAY - day > 30 else 0.4)
            bt.has_attachments = rng.random() < 0.3
            self._event(ms, "bt", bt.idx)
            if rng.random() < 0.03:  # keyed twice, the duplicate deleted
                del_ms = min(DATA_END_MS - 1000, ms + rng.randint(1, 96) * 3_600_000)
                bt.status = "DELETED"
                bt.updated_ms = del_ms
                self._event(del_ms, "btdel", bt.idx)

    # ------------------------------------------------------------------ manual journals
    def _payroll_and_journals(self) -> None:
        b, rng = self.b, self.rng
        revenue: dict[tuple[int, int], int] = {}
        for inv in b.invoices:
            if inv.type == "ACCREC" and inv.status in ("AUTHORISED", "PAID"):
                d = date_of(inv.date)
                key = (d.year, d.month)
                revenue[key] = revenue.get(key, 0) + inv.sub_total * RATE_ONE // inv.rate
        labour = b.account_by_code["315"]
        admin = b.account_by_code["477"]
        payable = b.wages_payable_account
        bureau = self.supplier_by_name[PAYROLL_BUREAU]
        first = date_of(max(self.start_day, 0))
        y, m = first.year, first.month
        months = 0
        while True:
            last = month_end(y, m)
            if last > END_DAY:
                break
            months += 1
            first_day = max(self.start_day, day_of(date(y, m, 1)))
            wages = max(1_200_000, revenue.get((y, m), 0) * rng.randint(35, 50) // 100) // 100 * 100
            active = [p for p in self.projects if p.start <= last and p.end >= first_day]
            rng.shuffle(active)
            active = active[:8]
            text = self._month_text(last)
            specs = []
            project_share = wages * rng.randint(60, 80) // 100 if active else 0
            weights = [rng.randint(1, 10) for _ in active]
            left = project_share
            for k, (p, w) in enumerate(zip(active, weights, strict=True)):
                part = left if k == len(active) - 1 else project_share * w // sum(weights)
                left -= part
                if part:
                    specs.append((f"Project staff time — {p.name}", 10000, part * 100, labour, NOTAX, p.option,
                                  p.discipline))
            specs.append(("Administration and business development staff", 10000, (wages - project_share) * 100,
                          admin, NOTAX, -1, -1))
            specs.append((f"Net wages and {PAYROLL_TAXES[b.country]} payable — {text}", 10000, -wages * 100,
                          payable, NOTAX, -1, -1))
            recent = END_DAY - last < 25
            self._manual_journal(f"Payroll — {text} (imported from payroll)", last, specs,
                                 "DRAFT" if recent and rng.random() < 0.5 else "POSTED")
            fund_day = min(END_DAY, last + rng.randint(0, 3))
            ms = self._stamp(fund_day)
            bt = new_bank_transaction(b, "SPEND", bureau, fund_day,
                                      [(f"Payroll funding — {text}", 10000, wages * 100,
                                        payable, NOTAX, -1, -1)], "NoTax", f"PAYROLL {y}-{m:02d}", ms)
            bt.reconciled = not recent
            self._event(ms, "bt", bt.idx)
            if m % 3 == 0:
                dep = rng.randint(1200, 4500) * 100
                self._manual_journal(f"Depreciation — quarter to {text}", last, [
                    ("Depreciation — computer equipment", 10000, dep * 100, b.account_by_code["416"], NOTAX, -1, -1),
                    ("Accumulated depreciation — computer equipment", 10000, -dep * 100, b.account_by_code["721"],
                     NOTAX, -1, -1)], "POSTED")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        sub = b.account_by_code["310"]
        for _ in range(max(3, months // 4)):
            day = rng.randint(self.start_day, END_DAY)
            p1, p2 = self._project_at(day), self._project_at(day)
            if p1 is p2:
                continue
            amount = rng.randint(200, 5000) * 100
            r = rng.random()
            status = "POSTED" if r < 0.8 else "VOIDED" if r < 0.9 else "DRAFT" if r < 0.95 else "DELETED"
            self._manual_journal(f"Reallocate sub-consultant cost from {p1.name[:8]} to {p2.name[:8]}", day, [
                (f"Sub-consultant cost — {p2.name}", 10000, amount * 100, sub, NOTAX, p2.option, p2.discipline),
                (f"Sub-consultant cost — {p1.name}", 10000, -amount * 100, sub, NOTAX, p1.option, p1.discipline)],
                status)

    def _manual_journal(self, narration: str, day: int, specs, status: str) -> ManualJournal:
        b, rng = self.b, self.rng
        mj = ManualJournal(len(b.manual_journals), b.s(narration), day)
        b.set_lines(mj, specs)
        ms = self._stamp(day)
        mj.updated_ms = ms
        mj.status = status
        mj.cash_basis = rng.random() < 0.5
        b.manual_journals.append(mj)
        if status in ("POSTED", "VOIDED"):
            self._event(ms, "mj", mj.idx)
        if status == "VOIDED":
            void_ms = min(DATA_END_MS - 1000, ms + rng.randint(1, 30) * DAY_MS)
            mj.updated_ms = void_ms
            self._event(void_ms, "mjvoid", mj.idx)
        elif status == "DELETED":
            mj.updated_ms = min(DATA_END_MS - 1000, ms + rng.randint(1, 10) * DAY_MS)
        return mj

    # ------------------------------------------------------------------ purchase orders
    def _purchase_orders(self) -> None:
        b, rng = self.b, self.rng
        sources = [(idx, sup) for idx, sup in self.suppliers if sup[1] in PO_ACCOUNTS and sup[3]]
        days = sorted(rng.randint(self.start_day, END_DAY) for _ in range(max(6, self.size // 5)))
        for day in days:
            sidx, sup = rng.choice(sources)
            p = self._project_at(day)
            specs = bill_lines(b, rng, sup, p, day)
            b.po_seq += 1
            contact = b.contacts[sidx]
            po = PurchaseOrder(len(b.purchase_orders), f"PO-{b.po_seq:05d}", p.name.split(" · ")[0], sidx, day,
                               day + rng.randint(14, 60), "Exclusive", contact.currency,
                               contact.first or "Accounts")
            b.set_lines(po, specs)
            ms = self._stamp(day)
            po.updated_ms = ms
            age = END_DAY - day
            r = rng.random()
            if age > 120:
                status = "BILLED" if r < 0.75 else "AUTHORISED" if r < 0.85 else "DELETED" if r < 0.93 else "DRAFT"
            else:
                status = "DRAFT" if r < 0.2 else "SUBMITTED" if r < 0.4 else "AUTHORISED" if r < 0.95 else "DELETED"
            po.status = status
            po.sent = status in ("AUTHORISED", "BILLED") and rng.random() < 0.9
            if status in ("BILLED", "DELETED"):
                po.updated_ms = max(ms, self._stamp(min(END_DAY, day + rng.randint(5, 90))))
            b.purchase_orders.append(po)

    # ------------------------------------------------------------------ deposits
    def _open_invoices(self) -> dict[int, list[Invoice]]:
        """Approved, unpaid base-currency invoices by contact, oldest first (what credit can settle)."""
        b = self.b
        out: dict[int, list[Invoice]] = {}
        for inv in b.invoices:
            if inv.type == "ACCREC" and inv.status == "AUTHORISED" and inv.due_amount > 0 \
                    and inv.currency == b.base_currency and inv.idx in self.created_ms:
                out.setdefault(inv.contact, []).append(inv)
        return out

    def _apply(self, kind: str, dep: Prepayment, inv: Invoice, amount: int, not_before_day: int,
               not_before_ms: int) -> None:
        day = max(inv.date, not_before_day)
        ms = max(not_before_ms, self.created_ms[inv.idx]) + self.rng.randint(60_000, 3_600_000)
        ms = max(ms, self._stamp(day))
        ms = min(ms, DATA_END_MS - self.rng.randint(1000, 60_000))
        allocate_credit(self.b, kind, dep, inv, amount, day, ms, self.events)

    def _retainers(self) -> None:
        b, rng = self.b, self.rng
        open_by_contact = self._open_invoices()
        for p in self.projects:
            client = b.contacts[p.client]
            if client.currency != b.base_currency or p.start > END_DAY - 5:
                continue
            waiting = [i for i in open_by_contact.get(p.client, []) if i.date >= p.start]
            if rng.random() >= (0.6 if waiting else 0.2):
                continue
            day = min(END_DAY, max(self.start_day, p.start + rng.randint(-10, 20)))
            amount = max(50000, p.fee * rng.randint(5, 15) // 100 // 10000 * 10000)
            ms = self._stamp(day)
            b.prepayment_seq += 1
            dep = new_deposit(b, "PREPAYMENT", p.client, day, retainer_specs(b, p, amount),
                              f"RET-{b.prepayment_seq:04d}", ms)
            dep.tz = self.tz if dep.idx % 5 == 1 else "+0000"
            bt = b.bank_transactions[dep.bank_txn]
            bt.reconciled = END_DAY - day > 10
            self._event(ms, "bt", bt.idx)
            for inv in waiting:
                left = b.deposit_remaining(dep)
                if left <= 0:
                    break
                if inv.date < day or inv.due_amount <= 0:
                    continue
                self._apply("PREPAYMENT", dep, inv, min(left, inv.due_amount), day, ms)

    def _overpayments(self) -> None:
        b, rng = self.b, self.rng
        for contact, invs in sorted(self._open_invoices().items()):
            for inv in invs:
                if inv.due_amount <= 100 or rng.random() >= 0.15:
                    continue
                day = max(self.start_day, inv.date - rng.randint(0, 45))
                amount = max(100, inv.due_amount * rng.randint(10, 60) // 100 // 100 * 100)
                ms = self._stamp(day)
                dep = new_deposit(b, "OVERPAYMENT", contact, day, overpayment_specs(b, amount),
                                  f"Remittance {rng.randint(10000, 99999)} — paid twice", ms)
                self._event(ms, "bt", dep.bank_txn)
                self._apply("OVERPAYMENT", dep, inv, amount, day, ms)

    # ------------------------------------------------------------------ bank transfers
    def _bank_transfers(self) -> None:
        """A few sweeps a month between the cheque and savings accounts, in both directions; the
        savings account never goes below zero."""
        b, rng = self.b, self.transfer_rng
        cheque, savings = b.account_by_code["090"], b.account_by_code["091"]
        in_savings = 0
        d = date_of(max(self.start_day, 0))
        y, m = d.year, d.month
        while True:
            first = max(self.start_day, day_of(date(y, m, 1)))
            if first > END_DAY:
                break
            last = min(END_DAY, month_end(y, m))
            for day in sorted(rng.randint(first, last) for _ in range(rng.randint(1, 4))):
                amount = rng.randint(500, 20000) * 100
                outward = in_savings < amount or rng.random() < 0.6
                src, dst = (cheque, savings) if outward else (savings, cheque)
                in_savings += amount if outward else -amount
                ms = day * DAY_MS + rng.randint(3600, 40 * 3600) * 1000 + rng.randint(0, 999)
                ms = min(ms, DATA_END_MS - rng.randint(60_000, 3_600_000))
                reference = ("Sweep to savings" if outward else "Top-up from savings") if rng.random() < 0.8 else ""
                x = BankTransfer(len(b.bank_transfers), src, dst, amount, day, ms, reference)
                x.has_attachments = rng.random() < 0.05
                x.reconciled = END_DAY - day > 30 or rng.random() < 0.5
                b.bank_transfers.append(x)
                self._event(ms, "xfer", x.idx)
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)

    # ------------------------------------------------------------------ billable expenses
    def _linked_transactions(self) -> None:
        b, rng = self.b, self.rng
        ln = b.lines
        recovered = b.account_by_code["205"]
        targets: dict[int, list[tuple[int, int, int]]] = {}  # project option -> (date, invoice, line)
        for inv in b.invoices:
            if inv.type != "ACCREC" or inv.status in ("VOIDED", "DELETED"):
                continue
            for i in range(inv.line_start, inv.line_start + inv.line_count):
                if ln.account[i] == recovered and ln.track[i] >= 0 and ln.amount[i] > 0:
                    targets.setdefault(ln.track[i], []).append((inv.date, inv.idx, i))
        for lst in targets.values():
            lst.sort()
        used: set[int] = set()
        sources: list[tuple[int, str, int, int]] = []  # (date, type, document, line)
        for inv in b.invoices:
            if inv.type == "ACCPAY" and inv.status in ("AUTHORISED", "PAID", "DRAFT", "SUBMITTED"):
                for i in range(inv.line_start, inv.line_start + inv.line_count):
                    if ln.track[i] in self.by_option and rng.random() < 0.15:
                        sources.append((inv.date, "ACCPAY", inv.idx, i))
        for bt in b.bank_transactions:
            if bt.type == "SPEND" and bt.status == "AUTHORISED":
                for i in range(bt.line_start, bt.line_start + bt.line_count):
                    if ln.track[i] in self.by_option and rng.random() < 0.3:
                        sources.append((bt.date, "SPEND", bt.idx, i))
        sources.sort()
        for day, stype, doc, i in sources:
            p = self.by_option[ln.track[i]]
            lt = LinkedTransaction(len(b.linked_transactions), stype, doc, i, p.client)
            lt.updated_ms = self._stamp(day)
            if stype == "ACCPAY" and b.invoices[doc].status in ("DRAFT", "SUBMITTED"):
                lt.status = "DRAFT"
            else:
                cands = targets.get(p.option, [])
                k = bisect.bisect_left(cands, (day, -1, -1))
                while k < len(cands) and cands[k][2] in used:
                    k += 1
                if k < len(cands):
                    _, target, t_line = cands[k]
                    used.add(t_line)
                    lt.target, lt.target_line = target, t_line
                    inv = b.invoices[target]
                    lt.status = "ONDRAFT" if inv.status in ("DRAFT", "SUBMITTED") else "BILLED"
                    lt.updated_ms = max(lt.updated_ms, min(DATA_END_MS - 1000, self._stamp(inv.date)))
            b.linked_transactions.append(lt)
