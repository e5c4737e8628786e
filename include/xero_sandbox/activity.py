"""Realistic change in the books, stamped with the sandbox clock's "now".

``POST /_sandbox/activity`` calls :func:`apply_activity` per tenant. Invoice actions create,
approve, edit, void and delete invoices and bills, raise credit notes and archive contacts;
payment actions pay open invoices (fully or partly) and delete payments. Every change that
Xero would journal posts its journal (edits of approved invoices post a reversal plus a new
journal), and every change bumps ``UpdatedDateUTC`` the way Xero does, except the ones Xero
is known not to bump (a due date or "sent" flag on a part-paid invoice, a contact's
customer/supplier flags), so an incremental sync misses them and a full reconcile does not.
"""

from __future__ import annotations

import random

from .generate import FOREIGN, allocate, bill_lines, fee_lines, post_event
from .ids import DAY_MS
from .model import Books, Contact, CreditNote, Invoice, Payment


def apply_activity(b: Books, n_invoices: int, n_payments: int, seed: int, run_no: int, now_ms: int) -> dict:
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
        inv = self._pick(lambda i: i.status == "AUTHORISED" and not i.payments and not i.allocations)
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
                         and i.line_count > 0)
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

    def credit_note(self) -> bool:
        b = self.b
        inv = self._pick(lambda i: i.type == "ACCREC" and i.status == "AUTHORISED" and i.due_amount > 1000
                         and i.line_count > 0)
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
            if pay.status == "AUTHORISED" and pay.journal:
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

