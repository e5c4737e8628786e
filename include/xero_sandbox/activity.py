"""Realistic change in the books, stamped with the sandbox clock's "now".

``POST /_sandbox/activity`` calls :func:`apply_activity` per tenant. Invoice actions create,
approve, edit, void and delete invoices and bills, raise credit notes and archive contacts;
payment actions pay open invoices (fully or partly) and delete payments. Cost-side actions
(``COST_STREAMS``, after those, from their own random stream) add and delete spend/receive
money, post, draft and void manual journals, raise, approve and bill purchase orders, take
retainers and apply them, apply overpayments, and record and re-bill billable expenses. Bank
transfers and payslips (``LEDGER_STREAMS``, 0 unless asked, from a stream of their own again)
move money between the bank accounts and post payroll that no document shows. Every change that
Xero would journal posts its journal (edits of approved invoices post a reversal plus a new
journal), and every change bumps ``UpdatedDateUTC`` the way Xero does, except the ones Xero
is known not to bump (a due date or "sent" flag on a part-paid invoice, a contact's
customer/supplier flags), so an incremental sync misses them and a full reconcile does not.
"""

from __future__ import annotations

import random

from .costs import (
    PO_ACCOUNTS,
    RECEIVE_SOURCES,
    SPEND_SOURCES,
    allocate_credit,
    new_bank_transaction,
    new_deposit,
    overpayment_specs,
    retainer_specs,
)
from .generate import EXPORT, FOREIGN, NOTAX, PURCHASE, SALE, allocate, bill_lines, fee_lines, post_event
from .ids import DAY_MS
from .model import (
    RATE_ONE,
    BankTransfer,
    Books,
    Contact,
    CreditNote,
    Invoice,
    LinkedTransaction,
    ManualJournal,
    Payment,
    PurchaseOrder,
)

#: The cost-side streams ``/_sandbox/activity`` can touch, each a number of actions.
COST_STREAMS = ("bank_transactions", "manual_journals", "purchase_orders", "prepayments", "overpayments",
                "linked_transactions")
#: Streams that only post journals (and a transfer record): never done unless asked for.
LEDGER_STREAMS = ("bank_transfers", "payslips")


def default_costs(n_invoices: int) -> dict[str, int]:
    """What an activity call that names no cost stream does to each: a fifth of its invoice actions."""
    n = (n_invoices + 4) // 5
    return {name: n for name in COST_STREAMS}


def apply_activity(b: Books, n_invoices: int, n_payments: int, seed: int, run_no: int, now_ms: int,
                   costs: dict[str, int] | None = None, bank_transfers: int = 0, payslips: int = 0) -> dict:
    rng = random.Random(f"xero-sandbox:activity:{seed}:{b.no}:{run_no}")
    act = _Activity(b, rng, now_ms)
    for _ in range(n_invoices):
        act.invoice_action()
    for _ in range(n_payments):
        act.payment_action()
    if n_invoices and rng.random() < 0.5:
        act.archive_contact()
    if n_invoices and rng.random() < 0.5:
        act.silent_contact_edit()
    costs = default_costs(n_invoices) if costs is None else costs
    if any(costs.values()):
        # Its own stream: the invoice and payment actions above are what they were before.
        act.rng = random.Random(f"xero-sandbox:activity-costs:{seed}:{b.no}:{run_no}")
        for name in COST_STREAMS:
            for _ in range(costs.get(name, 0)):
                getattr(act, f"{name}_action")()
    if bank_transfers or payslips:
        act.rng = random.Random(f"xero-sandbox:activity-ledger:{seed}:{b.no}:{run_no}")
        for _ in range(bank_transfers):
            act.bank_transfer()
        for _ in range(payslips):
            act.payslip()
    b.version += 1
    return act.summary


class _Activity:
    def __init__(self, b: Books, rng: random.Random, now_ms: int) -> None:
        self.b, self.rng, self.now = b, rng, now_ms
        self.today = now_ms // DAY_MS
        self.summary: dict[str, int] = {}
        self._tick = 0

    def _ms(self) -> int:
        # Distinct, increasing stamps within one call, all at "now".
        self._tick += 1
        return self.now + self._tick

    def _count(self, what: str) -> None:
        self.summary[what] = self.summary.get(what, 0) + 1

    # ------------------------------------------------------------------ invoices
    def invoice_action(self) -> None:
        r = self.rng.random()
        if r < 0.42:
            self.new_sale(approve=True)
        elif r < 0.50:
            self.new_sale(approve=False)
        elif r < 0.58:
            self.approve_draft() or self.new_sale(approve=True)
        elif r < 0.65:
            self.void_invoice() or self.new_sale(approve=True)
        elif r < 0.70:
            self.delete_draft() or self.new_sale(approve=False)
        elif r < 0.78:
            self.edit_invoice() or self.new_sale(approve=True)
        elif r < 0.88:
            self.new_bill()
        elif r < 0.95:
            self.credit_note() or self.new_sale(approve=True)
        else:
            self.silent_invoice_edit() or self.new_sale(approve=True)

    def _project(self):
        return self.rng.choice(self.b.projects)

    def _new_invoice(self, type_: str, contact: int, specs, reference: str, number: str, lat: str) -> Invoice:
        b = self.b
        c = b.contacts[contact]
        cur = c.currency
        rate = 1_000_000
        if cur != b.base_currency:
            rate = int(round(dict(FOREIGN[b.country])[cur] * 1_000_000))
            if type_ == "ACCREC":
                lat = "NoTax"
        inv = Invoice(len(b.invoices), type_, number, reference, contact, self.today,
                      self.today + (20 if type_ == "ACCREC" else 14), lat, cur, rate)
        b.set_lines(inv, specs)
        inv.updated_ms = self._ms()
        b.invoices.append(inv)
        if type_ == "ACCREC":
            c.is_customer = True
        else:
            c.is_supplier = True
        return inv

    def _approve(self, inv: Invoice) -> None:
        inv.status = "AUTHORISED"
        inv.updated_ms = self._ms()
        post_event(self.b, "inv", inv.idx, inv.updated_ms)

    def new_sale(self, approve: bool) -> bool:
        b, rng = self.b, self.rng
        p = self._project()
        if b.contacts[p.client].status == "ARCHIVED":
            b.contacts[p.client].status = "ACTIVE"  # invoicing an archived contact restores it
            b.contacts[p.client].updated_ms = self._ms()
        foreign = b.contacts[p.client].currency != b.base_currency
        specs = fee_lines(b, rng, p, foreign)
        b.invoice_seq += 1
        inv = self._new_invoice("ACCREC", p.client, specs, p.name.split(" · ")[0], f"INV-{b.invoice_seq:05d}",
                                "Exclusive")
        if approve:
            self._approve(inv)
            inv.sent = rng.random() < 0.8
        self._count("invoices_created")
        return True

    def new_bill(self) -> bool:
        b, rng = self.b, self.rng
        sidx, sup = rng.choice(b.suppliers)
        p = self._project()
        specs = bill_lines(b, rng, sup, p, self.today)
        inv = self._new_invoice("ACCPAY", sidx, specs, "", f"BILL-{rng.randint(10000, 99999)}",
                                "Exclusive" if rng.random() < 0.7 else "Inclusive")
        self._approve(inv)
        self._count("bills_created")
        return True

    def _pick(self, pred, tries: int = 400):
        invs = self.b.invoices
        for _ in range(tries):
            inv = invs[self.rng.randrange(len(invs))]
            if pred(inv):
                return inv
        # scan from the newest, as a fallback for rare states
        for inv in reversed(invs):
            if pred(inv):
                return inv
        return None

    def approve_draft(self) -> bool:
        inv = self._pick(lambda i: i.status in ("DRAFT", "SUBMITTED"))
        if inv is None:
            return False
        self._approve(inv)
        self._count("drafts_approved")
        return True

    def void_invoice(self) -> bool:
        inv = self._pick(lambda i: i.status == "AUTHORISED" and not i.payments and not i.allocations
                         and not i.credit_allocs)
        if inv is None:
            return False
        inv.status = "VOIDED"
        inv.updated_ms = self._ms()
        post_event(self.b, "void", inv.idx, inv.updated_ms)
        self._count("invoices_voided")
        return True

    def delete_draft(self) -> bool:
        inv = self._pick(lambda i: i.status in ("DRAFT", "SUBMITTED"))
        if inv is None:
            return False
        inv.status = "DELETED"
        inv.updated_ms = self._ms()
        self._count("drafts_deleted")
        return True

    def edit_invoice(self) -> bool:
        """Change a line on an approved, unpaid invoice: Xero reverses the old journal and posts anew."""
        b = self.b
        inv = self._pick(lambda i: i.status == "AUTHORISED" and not i.payments and not i.allocations
                         and not i.credit_allocs and i.line_count > 0)
        if inv is None:
            return False
        ln = b.lines
        specs = []
        for n, i in enumerate(range(inv.line_start, inv.line_start + inv.line_count)):
            qty = ln.qty[i]
            if n == 0 and ln.unit[i] > 0:
                qty = max(2500, qty + self.rng.choice([-2, -1, 1, 2, 4]) * 2500)
            specs.append((b.strings[ln.desc[i]], qty, ln.unit[i], ln.account[i], ln.taxrate[i], ln.track[i],
                          ln.track2[i]))
        ms = self._ms()
        if inv.journal:
            b.reverse_journal(inv.journal, ms)
        b.set_lines(inv, specs, keep_uids=True)
        inv.updated_ms = ms
        post_event(b, "inv", inv.idx, self._ms())
        self._count("invoices_edited")
        return True

    def _live_payments(self, inv: Invoice) -> list[int]:
        return [p for p in inv.payments if self.b.payments[p].status == "AUTHORISED"]

    def credit_note(self) -> bool:
        b = self.b
        # A foreign invoice's payments clear its control account converted cumulatively after its
        # credit; credit arriving after a payment would make that depend on the order of events,
        # which a ledger derived from the documents cannot know.
        inv = self._pick(lambda i: i.type == "ACCREC" and i.status == "AUTHORISED" and i.due_amount > 1000
                         and i.line_count > 0 and (i.rate == RATE_ONE or not self._live_payments(i)))
        if inv is None:
            return False
        b.credit_seq += 1
        cn = CreditNote(len(b.credit_notes), "ACCRECCREDIT", f"CN-{b.credit_seq:04d}",
                        f"Credit against {inv.number}", inv.contact, self.today, inv.lat, inv.currency, inv.rate)
        amount = max(100, inv.due_amount // 4)
        i0 = inv.line_start
        tr = b.lines.taxrate[i0]
        bp = b.tax_rates[tr].bp if inv.lat == "Exclusive" else 0
        line_cents = amount * 10_000 // (10_000 + bp)
        specs = [("Fee adjustment — agreed scope reduction", 10000, line_cents * 100, b.lines.account[i0], tr,
                  b.lines.track[i0], -1)]
        b.set_lines(cn, specs)
        cn.status = "AUTHORISED"
        cn.updated_ms = self._ms()
        b.credit_notes.append(cn)
        post_event(b, "cn", cn.idx, cn.updated_ms)
        alloc = min(cn.total, inv.due_amount)
        if alloc > 0:
            allocate(b, cn, inv, alloc, self.today)
            self._settle(inv)
            inv.updated_ms = self._ms()
        self._count("credit_notes_created")
        return True

    def silent_invoice_edit(self) -> bool:
        """Edits Xero does not stamp: due date / sent flag on a part-paid invoice."""
        inv = self._pick(lambda i: i.status == "AUTHORISED" and i.paid > 0)
        if inv is None:
            return False
        inv.due += 14
        inv.sent = True
        self._count("silent_invoice_edits")
        return True

    # ------------------------------------------------------------------ payments
    def payment_action(self) -> None:
        if self.rng.random() < 0.12 and self.delete_payment():
            return
        if not self.pay_invoice():
            self.new_sale(approve=True)
            self.pay_invoice()

    def pay_invoice(self) -> bool:
        b, rng = self.b, self.rng
        inv = self._pick(lambda i: i.status == "AUTHORISED" and i.due_amount > 0)
        if inv is None:
            return False
        amount = inv.due_amount if rng.random() < 0.75 else max(1, inv.due_amount * rng.randint(20, 70) // 100)
        ms = self._ms()
        pay = Payment(len(b.payments), inv.idx, self.today, amount, inv.rate,
                      f"{inv.number} payment" if inv.number else "", b.bank_account, ms)
        b.payments.append(pay)
        inv.payments.append(pay.idx)
        inv.paid += amount
        post_event(b, "pay", pay.idx, ms)
        self._settle(inv)
        inv.updated_ms = ms
        self._count("payments_created")
        return True

    def delete_payment(self) -> bool:
        b = self.b
        if not b.payments:
            return False
        for _ in range(200):
            pay = b.payments[self.rng.randrange(len(b.payments))]
            if pay.status == "AUTHORISED" and pay.journal and self._deletable(pay):
                break
        else:
            return False
        ms = self._ms()
        pay.status = "DELETED"
        pay.updated_ms = ms
        inv = b.invoices[pay.invoice]
        inv.paid -= pay.amount
        if inv.status == "PAID":
            inv.status = "AUTHORISED"
            inv.fully_paid_day = None
        inv.updated_ms = ms
        post_event(b, "paydel", pay.idx, ms)
        self._count("payments_deleted")
        return True

    def _deletable(self, pay: Payment) -> bool:
        """Only the last live payment of a foreign invoice may go (the same reason as in credit_note)."""
        inv = self.b.invoices[pay.invoice]
        return inv.rate == RATE_ONE or self._live_payments(inv)[-1] == pay.idx

    def _settle(self, inv: Invoice) -> None:
        if inv.due_amount == 0 and inv.total > 0:
            inv.status = "PAID"
            inv.fully_paid_day = self.today

    # ------------------------------------------------------------------ contacts
    def archive_contact(self) -> None:
        b = self.b
        open_contacts = {i.contact for i in b.invoices if i.status in ("AUTHORISED", "DRAFT", "SUBMITTED")}
        candidates = [c for c in b.contacts if c.status == "ACTIVE" and c.idx not in open_contacts
                      and c.idx not in {s for s, _ in b.suppliers}]
        if candidates:
            c = self.rng.choice(candidates)
            c.status = "ARCHIVED"
            c.updated_ms = self._ms()
            self._count("contacts_archived")
        else:
            idx = len(b.contacts)
            src = b.contacts[self.rng.randrange(len(b.contacts))]
            c = Contact(idx, f"New Client {idx} Ltd", "", "", f"accounts@newclient{idx}.example", "", self._ms(),
                        src.street, src.city, src.region, src.postcode, src.country, src.phone, b.base_currency)
            b.contacts.append(c)
            self._count("contacts_created")

    def silent_contact_edit(self) -> None:
        """IsCustomer/IsSupplier changes do not bump UpdatedDateUTC at Xero."""
        c = self.b.contacts[self.rng.randrange(len(self.b.contacts))]
        c.is_supplier = not c.is_supplier
        self._count("silent_contact_edits")


    # ------------------------------------------------------------------ bank transfers and payroll
    def bank_transfer(self) -> None:
        b, rng = self.b, self.rng
        cheque, savings = b.account_by_code["090"], b.account_by_code["091"]
        amount = rng.randint(500, 20000) * 100
        # only transfers touch savings, so its ledger balance says what can come back out
        outward = rng.random() < 0.6 or b.net_by_account.get(savings, 0) < amount
        src, dst = (cheque, savings) if outward else (savings, cheque)
        x = BankTransfer(len(b.bank_transfers), src, dst, amount, self.today, self._ms(),
                         "Sweep to savings" if outward else "Top-up from savings")
        b.bank_transfers.append(x)
        post_event(b, "xfer", x.idx, x.created_ms)
        self._count("bank_transfers_created")

    def payslip(self) -> None:
        """Payroll journaled by Xero with no document the Accounting API shows."""
        b = self.b
        b.payslips.append((self.today, self.rng.randint(1000, 9000) * 100))
        post_event(b, "payslip", len(b.payslips) - 1, self._ms())
        self._count("payslips_posted")

    # ------------------------------------------------------------------ the cost side
    def _supplier(self, name: str) -> int:
        return next(idx for idx, sup in self.b.suppliers if sup[0] == name)

    def _pick_from(self, table: list, pred, tries: int = 200):
        if not table:
            return None
        for _ in range(tries):
            r = table[self.rng.randrange(len(table))]
            if pred(r):
                return r
        return next((r for r in reversed(table) if pred(r)), None)

    def _post_bank(self, bt) -> None:
        post_event(self.b, "bt", bt.idx, bt.updated_ms)

    def bank_transactions_action(self) -> None:
        b, rng = self.b, self.rng
        r = rng.random()
        if r < 0.12 and self.delete_bank_transaction():
            return
        if r < 0.22 and self.reconcile_bank_transaction():
            return
        if r < 0.85:
            self.new_spend()
        else:
            name, code, text, (lo, hi), lat = rng.choice(RECEIVE_SOURCES)
            specs = [(text.format(m="this month"), 10000, rng.randint(lo, hi) * 100, b.account_by_code[code],
                      SALE if lat != "NoTax" else NOTAX, -1, -1)]
            bt = new_bank_transaction(b, "RECEIVE", self._supplier(name), self.today, specs, lat, "", self._ms())
            bt.reconciled = False
            self._post_bank(bt)
            self._count("receive_money_created")

    def new_spend(self):
        b, rng = self.b, self.rng
        name, code, text, tracked, (lo, hi) = rng.choice([s for s in SPEND_SOURCES if s[3]])
        p = self._project()
        specs = [(text.format(p=p.name), 10000, rng.randint(lo, hi) * 100, b.account_by_code[code], PURCHASE,
                  p.option, p.discipline)]
        bt = new_bank_transaction(b, "SPEND", self._supplier(name), self.today, specs, "Inclusive",
                                  f"Card {rng.randint(1000, 9999)}", self._ms())
        bt.reconciled = False
        self._post_bank(bt)
        self._count("spend_money_created")
        return bt

    def delete_bank_transaction(self) -> bool:
        b = self.b
        linked = {lt.source for lt in b.linked_transactions if lt.source_type == "SPEND"}
        bt = self._pick_from(b.bank_transactions, lambda t: t.status == "AUTHORISED" and t.journal
                             and t.type in ("SPEND", "RECEIVE") and t.idx not in linked)
        if bt is None:
            return False
        bt.status = "DELETED"
        bt.updated_ms = self._ms()
        post_event(b, "btdel", bt.idx, bt.updated_ms)
        self._count("bank_transactions_deleted")
        return True

    def reconcile_bank_transaction(self) -> bool:
        bt = self._pick_from(self.b.bank_transactions, lambda t: t.status == "AUTHORISED" and not t.reconciled)
        if bt is None:
            return False
        bt.reconciled = True
        bt.updated_ms = self._ms()
        self._count("bank_transactions_reconciled")
        return True

    def manual_journals_action(self) -> None:
        b, rng = self.b, self.rng
        r = rng.random()
        if r < 0.15:
            mj = self._pick_from(b.manual_journals, lambda m: m.status == "DRAFT")
            if mj is not None:
                mj.status = "POSTED"
                mj.updated_ms = self._ms()
                post_event(b, "mj", mj.idx, mj.updated_ms)
                self._count("manual_journals_posted")
                return
        if r < 0.3:
            mj = self._pick_from(b.manual_journals, lambda m: m.status == "POSTED" and m.journal)
            if mj is not None:
                mj.status = "VOIDED"
                mj.updated_ms = self._ms()
                post_event(b, "mjvoid", mj.idx, mj.updated_ms)
                self._count("manual_journals_voided")
                return
        p1, p2 = self._project(), self._project()
        amount = rng.randint(200, 5000) * 100
        sub = b.account_by_code["310"]
        mj = ManualJournal(len(b.manual_journals), b.s(f"Reallocate cost from {p1.name[:8]} to {p2.name[:8]}"),
                           self.today)
        b.set_lines(mj, [(f"Sub-consultant cost — {p2.name}", 10000, amount * 100, sub, NOTAX, p2.option,
                          p2.discipline),
                         (f"Sub-consultant cost — {p1.name}", 10000, -amount * 100, sub, NOTAX, p1.option,
                          p1.discipline)])
        mj.updated_ms = self._ms()
        b.manual_journals.append(mj)
        if r < 0.8:
            mj.status = "POSTED"
            post_event(b, "mj", mj.idx, mj.updated_ms)
            self._count("manual_journals_created")
        else:
            self._count("manual_journals_drafted")

    def purchase_orders_action(self) -> None:
        b, rng = self.b, self.rng
        r = rng.random()
        # (below this draw, move an order from one of these statuses to that one), else raise a new order
        for bound, before, after, what in ((0.2, ("DRAFT", "SUBMITTED"), "AUTHORISED", "approved"),
                                           (0.4, ("AUTHORISED",), "BILLED", "billed"),
                                           (0.48, ("DRAFT",), "DELETED", "deleted")):
            if r < bound:
                po = self._pick_from(b.purchase_orders, lambda p, before=before: p.status in before)
                if po is not None:
                    po.status = after
                    po.sent = po.sent or after == "AUTHORISED"
                    po.updated_ms = self._ms()
                    self._count(f"purchase_orders_{what}")
                    return
        sidx, sup = rng.choice([(i, s) for i, s in b.suppliers if s[1] in PO_ACCOUNTS and s[3]])
        p = self._project()
        b.po_seq += 1
        contact = b.contacts[sidx]
        po = PurchaseOrder(len(b.purchase_orders), f"PO-{b.po_seq:05d}", p.name.split(" · ")[0], sidx, self.today,
                           self.today + 30, "Exclusive", contact.currency, contact.first or "Accounts")
        b.set_lines(po, bill_lines(b, rng, sup, p, self.today))
        po.status = "AUTHORISED" if rng.random() < 0.6 else "DRAFT"
        po.sent = po.status == "AUTHORISED"
        po.updated_ms = self._ms()
        b.purchase_orders.append(po)
        self._count("purchase_orders_created")

    def _open_invoice(self, contact: int | None = None):
        b = self.b
        return self._pick(lambda i: i.type == "ACCREC" and i.status == "AUTHORISED" and i.due_amount > 0
                          and i.currency == b.base_currency and (contact is None or i.contact == contact))

    def prepayments_action(self) -> None:
        b, rng = self.b, self.rng
        if rng.random() < 0.5:
            dep = self._pick_from(b.prepayments, lambda d: b.deposit_remaining(d) > 0)
            inv = self._open_invoice(b.bank_transactions[dep.bank_txn].contact) if dep is not None else None
            if dep is not None and inv is not None:
                amount = min(b.deposit_remaining(dep), inv.due_amount)
                allocate_credit(b, "PREPAYMENT", dep, inv, amount, self.today, self._ms())
                self._count("prepayments_applied")
                return
        p = self._project()
        if b.contacts[p.client].currency != b.base_currency:
            p = next((q for q in b.projects if b.contacts[q.client].currency == b.base_currency), p)
        b.prepayment_seq += 1
        ms = self._ms()
        amount = max(50000, p.fee * rng.randint(5, 15) // 100 // 10000 * 10000)
        dep = new_deposit(b, "PREPAYMENT", p.client, self.today, retainer_specs(b, p, amount),
                          f"RET-{b.prepayment_seq:04d}", ms)
        b.bank_transactions[dep.bank_txn].reconciled = False
        self._post_bank(b.bank_transactions[dep.bank_txn])
        self._count("prepayments_received")

    def overpayments_action(self) -> None:
        b = self.b
        inv = self._open_invoice()
        if inv is None:
            self.new_sale(approve=True)
            inv = self._open_invoice()
            if inv is None:
                return
        amount = max(1, inv.due_amount * self.rng.randint(10, 60) // 100)
        ms = self._ms()
        dep = new_deposit(b, "OVERPAYMENT", inv.contact, self.today, overpayment_specs(b, amount),
                          f"Remittance {self.rng.randint(10000, 99999)} — paid twice", ms)
        self._post_bank(b.bank_transactions[dep.bank_txn])
        allocate_credit(b, "OVERPAYMENT", dep, inv, amount, self.today, self._ms())
        self._count("overpayments_applied")

    def linked_transactions_action(self) -> None:
        b, rng = self.b, self.rng
        by_option = {p.option: p for p in b.projects}
        if rng.random() < 0.45:
            lt = self._pick_from(b.linked_transactions, lambda t: t.status == "APPROVED")
            if lt is not None:
                self._rebill(lt, by_option[b.lines.track[lt.source_line]])
                return
        bt = self.new_spend()
        i = bt.line_start
        p = by_option[b.lines.track[i]]
        lt = LinkedTransaction(len(b.linked_transactions), "SPEND", bt.idx, i, p.client)
        lt.updated_ms = self._ms()
        b.linked_transactions.append(lt)
        self._count("billable_expenses_recorded")

    def _rebill(self, lt: LinkedTransaction, p) -> None:
        """Put a billable expense on a new invoice to the client (a reimbursable line, at cost)."""
        b = self.b
        ln = b.lines
        src = lt.source_line
        foreign = b.contacts[p.client].currency != b.base_currency
        doc = b.invoices[lt.source] if lt.source_type == "ACCPAY" else b.bank_transactions[lt.source]
        amount = b.line_net(src, doc.lat)
        specs = [(f"Recharge at cost: {b.strings[ln.desc[src]][:80]}", 10000, max(0, amount) * 100,
                  b.account_by_code["205"], EXPORT if foreign else SALE, p.option, p.discipline)]
        b.invoice_seq += 1
        inv = self._new_invoice("ACCREC", p.client, specs, p.name.split(" · ")[0], f"INV-{b.invoice_seq:05d}",
                                "Exclusive")
        self._approve(inv)
        lt.target, lt.target_line = inv.idx, inv.line_start
        lt.status = "BILLED"
        lt.updated_ms = self._ms()
        self._count("billable_expenses_billed")
