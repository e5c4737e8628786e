"""Each project's money, per month and to date, and receivables by age: built from a tenant's documents.

Accrual basis, tax exclusive, in the organisation's base currency, as Xero's Profit and Loss by
the project tracking category shows it: revenue is what documents post to revenue-class
accounts, costs what they post to expense-class accounts, each line converted to base currency
at its document's rate and rounded to the cent as Xero posts it. Documents count once
authorised (invoices, bills and credit notes AUTHORISED or PAID, bank transactions AUTHORISED,
manual journals POSTED); drafts, voided and deleted ones never do.

Every figure is in whole cents while it is computed, so sums are exact on both backends.
A line without a project (no option of the tenant's project category) is left out of the
project tables; the P&L check compares projects only, as Xero's report does beside its
"Unassigned" column.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, and_, delete, select

from intoaec_xero import schema as s
from intoaec_xero.db import upsert

log = logging.getLogger(__name__)

MONEY_COLUMNS = ("invoiced", "credited", "other_income", "revenue", "received", "outstanding", "costs_bills",
                 "costs_spend_money", "costs_manual_journals", "costs_other", "costs", "gross_margin", "committed",
                 "unbilled_expenses", "deposits_held")
AGING_BUCKETS = ("current", "days_1_30", "days_31_60", "days_61_90", "days_over_90")
POSTED_INVOICE = ("AUTHORISED", "PAID")
# Xero's account classes whose movements make up the Profit and Loss.
REVENUE, EXPENSE = "REVENUE", "EXPENSE"
ONE = Decimal(1)


def cents(value: Any) -> int:
    """A 2-place amount as whole cents: exact from a Decimal (PostgreSQL), and from SQLite's REAL, whose
    amount times 100 lies within a rounding error of its whole number of cents."""
    if value is None:
        return 0
    if type(value) is float:
        return round(value * 100)
    return int(Decimal(value).scaleb(2).to_integral_value(ROUND_HALF_UP))


@lru_cache(maxsize=4096)
def _rate(rate: Any) -> Decimal:
    return Decimal(str(rate)) if rate not in (None, 0, "") else ONE


def to_base(amount_cents: int, rate: Any) -> int:
    """Foreign cents to base cents; Xero's CurrencyRate is foreign units per base unit."""
    if rate is None or rate == 1:
        return amount_cents
    r = _rate(rate)
    if r == ONE:
        return amount_cents
    return int((Decimal(amount_cents) / r).to_integral_value(ROUND_HALF_UP))


@dataclass
class Figures:
    """One tenant's project figures: money by (project, month), and what describes each project."""

    monthly: dict[tuple[str, date], dict[str, int]] = field(default_factory=lambda: defaultdict(
        lambda: dict.fromkeys(MONEY_COLUMNS, 0)))
    activity: dict[str, tuple[date, date]] = field(default_factory=dict)  # first and last document date
    client_revenue: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))

    def add(self, project: str | None, day: date | None, column: str, amount: int) -> None:
        if not project or day is None or not amount:
            return
        self.monthly[(project, day.replace(day=1))][column] += amount
        seen = self.activity.get(project)
        if seen is None:
            self.activity[project] = (day, day)
        elif day < seen[0] or day > seen[1]:
            self.activity[project] = (min(seen[0], day), max(seen[1], day))


def _split(total: int, weights: dict[str, int]) -> dict[str, int]:
    """``total`` cents over ``weights`` pro rata, to the cent (largest remainder), signs kept."""
    if len(weights) == 1:  # most invoices are for one project
        return dict.fromkeys(weights, total) if total and next(iter(weights.values())) else {}
    whole = sum(weights.values())
    if not whole or not total:
        return {}
    shares = {k: Decimal(total) * w / whole for k, w in weights.items()}
    floored = {k: int(v.to_integral_value(rounding="ROUND_FLOOR")) for k, v in shares.items()}
    left = total - sum(floored.values())
    for k in sorted(shares, key=lambda k: shares[k] - floored[k], reverse=True)[:abs(left)]:
        floored[k] += 1 if left > 0 else -1
    return floored


class _Accounts:
    def __init__(self, conn, tenant_id: str):
        self.by_code: dict[str, str] = {code: class_ for code, class_ in conn.execute(
            select(s.accounts.c.code, s.accounts.c["class"]).where(s.accounts.c.tenant_id == tenant_id)) if code}

    def pnl(self, code: str | None) -> str | None:
        class_ = self.by_code.get(code or "")
        return class_ if class_ in (REVENUE, EXPENSE) else None


def _net(line_amount: Any, tax_amount: Any, line_amount_types: str | None) -> int:
    amount = cents(line_amount)
    return amount - cents(tax_amount) if line_amount_types == "Inclusive" else amount


def _gross(line_amount: Any, tax_amount: Any, line_amount_types: str | None) -> int:
    amount = cents(line_amount)
    return amount + cents(tax_amount) if line_amount_types == "Exclusive" else amount


def _lines(conn, tenant_id: str, doc, lines, key: str, *where, extra: tuple = ()):
    """A document table's lines with what converting them needs: date, rate, line-amount type, amounts, project."""
    return conn.execute(
        select(doc.c.date, doc.c.currency_rate, doc.c.line_amount_types, lines.c.line_amount, lines.c.tax_amount,
               lines.c.account_code, lines.c.project, *extra)
        .join(lines, and_(lines.c.tenant_id == doc.c.tenant_id, lines.c[key] == doc.c[key]))
        .where(doc.c.tenant_id == tenant_id, *where))


def _base_net(row) -> int:
    """A line's tax-exclusive amount in base-currency cents, as Xero posts it."""
    return to_base(_net(row.line_amount, row.tax_amount, row.line_amount_types), row.currency_rate)


def compute(conn, tenant_id: str) -> Figures:
    """Every project figure of one tenant, from the documents IntoAEC holds."""
    figures = Figures()
    accounts = _Accounts(conn, tenant_id)

    # Revenue (credits to revenue accounts) and cost (debits to expense accounts), per source.
    def post(project, day, class_, debit_cents: int, revenue_column: str, cost_column: str) -> None:
        if class_ == REVENUE:
            figures.add(project, day, revenue_column, -debit_cents)
            figures.add(project, day, "revenue", -debit_cents)
        elif class_ == EXPENSE:
            figures.add(project, day, cost_column, debit_cents)
            figures.add(project, day, "costs", debit_cents)

    inv = s.invoices
    invoice_shares: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in _lines(conn, tenant_id, inv, s.invoice_lines, "invoice_id", inv.c.status.in_(POSTED_INVOICE),
                      extra=(inv.c.invoice_id, inv.c.type, inv.c.contact_id)):
        net, class_ = _base_net(row), accounts.pnl(row.account_code)
        if row.type == "ACCREC":
            post(row.project, row.date, class_, -net, "invoiced", "costs_other")
            if row.project:
                invoice_shares[row.invoice_id][row.project] += _gross(row.line_amount, row.tax_amount,
                                                                      row.line_amount_types)
                if class_ == REVENUE:
                    figures.client_revenue[row.project][row.contact_id] += net
        else:  # ACCPAY: a bill
            post(row.project, row.date, class_, net, "other_income", "costs_bills")

    cn = s.credit_notes
    for row in _lines(conn, tenant_id, cn, s.credit_note_lines, "credit_note_id", cn.c.status.in_(POSTED_INVOICE),
                      extra=(cn.c.type,)):
        net, class_ = _base_net(row), accounts.pnl(row.account_code)
        if row.type == "ACCRECCREDIT":  # a sales credit: revenue debited
            if class_ == REVENUE:
                figures.add(row.project, row.date, "credited", net)
                figures.add(row.project, row.date, "revenue", -net)
            else:
                post(row.project, row.date, class_, net, "other_income", "costs_other")
        else:  # ACCPAYCREDIT: a supplier's credit, cost credited
            post(row.project, row.date, class_, -net, "other_income", "costs_bills")

    bt = s.bank_transactions
    for row in _lines(conn, tenant_id, bt, s.bank_transaction_lines, "bank_transaction_id",
                      bt.c.status == "AUTHORISED", bt.c.type.in_(("SPEND", "RECEIVE")), extra=(bt.c.type,)):
        net = _base_net(row)
        post(row.project, row.date, accounts.pnl(row.account_code), net if row.type == "SPEND" else -net,
             "other_income", "costs_spend_money")

    mj, mjl = s.manual_journals, s.manual_journal_lines
    for row in conn.execute(
            select(mj.c.date, mj.c.line_amount_types, mjl.c.line_amount, mjl.c.tax_amount, mjl.c.account_code,
                   mjl.c.project)
            .join(mjl, and_(mjl.c.tenant_id == mj.c.tenant_id, mjl.c.manual_journal_id == mj.c.manual_journal_id))
            .where(mj.c.tenant_id == tenant_id, mj.c.status == "POSTED")):
        debit = _net(row.line_amount, row.tax_amount, row.line_amount_types)
        post(row.project, row.date, accounts.pnl(row.account_code), debit, "other_income", "costs_manual_journals")

    _received_and_outstanding(conn, tenant_id, figures, invoice_shares)
    _committed(conn, tenant_id, figures)
    _unbilled(conn, tenant_id, figures)
    _deposits(conn, tenant_id, figures, invoice_shares)
    for money in figures.monthly.values():
        money["gross_margin"] = money["revenue"] - money["costs"]
    return figures


def _received_and_outstanding(conn, tenant_id: str, figures: Figures, shares: dict[str, dict[str, int]]) -> None:
    """Money received against each project's invoices (payments and deposits applied), and what is still owed.

    A payment is not made per line: it is shared among the invoice's projects in proportion to
    their lines' tax-inclusive amounts, to the cent. Deposits are applied at the invoice's rate.
    """
    p, inv = s.payments, s.invoices
    rates = dict(conn.execute(select(inv.c.invoice_id, inv.c.currency_rate).where(
        inv.c.tenant_id == tenant_id, inv.c.type == "ACCREC")).all())
    amounts = [("received", conn.execute(
        select(p.c.invoice_id, p.c.date, p.c.amount, p.c.currency_rate)
        .where(p.c.tenant_id == tenant_id, p.c.status == "AUTHORISED", p.c.payment_type == "ACCRECPAYMENT")))]
    for table in (s.prepayment_allocations, s.overpayment_allocations):
        amounts.append(("received", ((i, d, a, rates.get(i)) for i, d, a in conn.execute(
            select(table.c.invoice_id, table.c.date, table.c.amount)
            .where(table.c.tenant_id == tenant_id, table.c.is_deleted.isnot(True))))))
    amounts.append(("outstanding", conn.execute(
        select(inv.c.invoice_id, inv.c.date, inv.c.amount_due, inv.c.currency_rate)
        .where(inv.c.tenant_id == tenant_id, inv.c.type == "ACCREC", inv.c.status == "AUTHORISED"))))
    for column, rows in amounts:
        for invoice_id, day, amount, rate in rows:
            if invoice_id in shares:
                for project, part in _split(to_base(cents(amount), rate), shares[invoice_id]).items():
                    figures.add(project, day, column, part)


def _committed(conn, tenant_id: str, figures: Figures) -> None:
    """Approved purchase orders not yet billed: cost the project has promised but not incurred."""
    po = s.purchase_orders
    for row in _lines(conn, tenant_id, po, s.purchase_order_lines, "purchase_order_id", po.c.status == "AUTHORISED"):
        figures.add(row.project, row.date, "committed", _base_net(row))


def _unbilled(conn, tenant_id: str, figures: Figures) -> None:
    """Billable expenses approved but not yet on a sales invoice, at their source line's amount."""
    lt = s.linked_transactions
    wanted = (select(lt.c.source_line_item_id)
              .where(lt.c.tenant_id == tenant_id, lt.c.status == "APPROVED", lt.c.source_line_item_id.isnot(None)))
    for doc, lines, key in ((s.invoices, s.invoice_lines, "invoice_id"),
                            (s.bank_transactions, s.bank_transaction_lines, "bank_transaction_id")):
        for row in _lines(conn, tenant_id, doc, lines, key, lines.c.line_item_id.in_(wanted)):
            figures.add(row.project, row.date, "unbilled_expenses", _base_net(row))


def _deposits(conn, tenant_id: str, figures: Figures, shares: dict[str, dict[str, int]]) -> None:
    """Client retainers still held (a prepayment's remaining credit), on the projects of its own lines.

    Xero lists a prepayment's lines on the receive money that created it. A retainer whose lines
    carry no project goes to the one project the client has invoices on, if there is just one;
    otherwise it is left out, because nothing says which project it is for.
    """
    pp, bt, btl, inv = s.prepayments, s.bank_transactions, s.bank_transaction_lines, s.invoices
    own: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for prepayment_id, project, amount in conn.execute(
            select(bt.c.prepayment_id, btl.c.project, btl.c.line_amount)
            .join(btl, and_(btl.c.tenant_id == bt.c.tenant_id, btl.c.bank_transaction_id == bt.c.bank_transaction_id))
            .where(bt.c.tenant_id == tenant_id, bt.c.prepayment_id.isnot(None), btl.c.project.isnot(None))):
        own[prepayment_id][project] += abs(cents(amount))
    projects_of: dict[str, set[str]] = defaultdict(set)
    for invoice_id, contact_id in conn.execute(select(inv.c.invoice_id, inv.c.contact_id).where(
            inv.c.tenant_id == tenant_id, inv.c.type == "ACCREC")):
        projects_of[contact_id].update(shares.get(invoice_id, {}))
    for prepayment_id, contact_id, day, remaining, rate, type_ in conn.execute(
            select(pp.c.prepayment_id, pp.c.contact_id, pp.c.date, pp.c.remaining_credit, pp.c.currency_rate,
                   pp.c.type)
            .where(pp.c.tenant_id == tenant_id, pp.c.status == "AUTHORISED")):
        if not (type_ or "").startswith("RECEIVE"):
            continue
        held = to_base(cents(remaining), rate)
        weights = dict(own.get(prepayment_id) or {})
        if not weights and len(projects_of.get(contact_id, set())) == 1:
            weights = {next(iter(projects_of[contact_id])): 1}
        for project, part in _split(held, weights).items():
            figures.add(project, day, "deposits_held", part)


def aging(conn, tenant_id: str, as_of: date) -> dict[str, dict[str, int]]:
    """Open sales invoices (by days past due) less open sales credit notes, per contact, in base cents."""
    inv, cn = s.invoices, s.credit_notes
    out: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(AGING_BUCKETS, 0))
    for contact_id, due, day, amount_due, total, rate in conn.execute(
            select(inv.c.contact_id, inv.c.due_date, inv.c.date, inv.c.amount_due, inv.c.total, inv.c.currency_rate)
            .where(inv.c.tenant_id == tenant_id, inv.c.type == "ACCREC", inv.c.status == "AUTHORISED")):
        # What is still on Accounts Receivable in base currency, as Xero posts it: the total converted
        # once, less what credit and payments took off, converted cumulatively (not the due converted alone).
        settled = cents(total) - cents(amount_due)
        out[contact_id][_bucket(as_of, due or day)] += to_base(cents(total), rate) - to_base(settled, rate)
    for contact_id, day, remaining, rate in conn.execute(
            select(cn.c.contact_id, cn.c.date, cn.c.remaining_credit, cn.c.currency_rate)
            .where(cn.c.tenant_id == tenant_id, cn.c.type == "ACCRECCREDIT", cn.c.status == "AUTHORISED")):
        out[contact_id][_bucket(as_of, day)] -= to_base(cents(remaining), rate)
    return {k: v for k, v in out.items() if any(v.values())}


def _bucket(as_of: date, due: date | None) -> str:
    days = (as_of - due).days if due else 0
    if days <= 0:
        return "current"
    if days <= 30:
        return "days_1_30"
    if days <= 60:
        return "days_31_60"
    if days <= 90:
        return "days_61_90"
    return "days_over_90"


def _decimal(amount: int) -> Decimal:
    return (Decimal(amount) / 100).quantize(Decimal("0.01"))


def rebuild(engine: Engine, tenant_id: str, as_of: date | None = None) -> dict[str, float]:
    """Replace the tenant's rows of project_financials, project_summary and ar_aging, in one transaction."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    as_of = as_of or now.date()
    with engine.begin() as conn:
        figures = compute(conn, tenant_id)
        owed = aging(conn, tenant_id, as_of)
        names = dict(conn.execute(select(s.clients.c.contact_id, s.clients.c.name)
                                  .where(s.clients.c.tenant_id == tenant_id)).all())
        monthly_rows = [{"tenant_id": tenant_id, "project": project, "month": month, "updated_at": now,
                         **{k: _decimal(v) for k, v in money.items()}}
                        for (project, month), money in sorted(figures.monthly.items())]
        to_date: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(MONEY_COLUMNS, 0))
        for (project, _), money in figures.monthly.items():
            totals = to_date[project]
            for k, v in money.items():
                totals[k] += v
        summary_rows = []
        for project in sorted(figures.activity):
            clients = figures.client_revenue.get(project) or {}
            client_id = max(clients, key=lambda c: (clients[c], c)) if clients else None
            first, last = figures.activity[project]
            summary_rows.append({"tenant_id": tenant_id, "project": project, "client_id": client_id,
                                 "client_name": names.get(client_id), "first_activity": first,
                                 "last_activity": last, "updated_at": now,
                                 **{k: _decimal(v) for k, v in to_date[project].items()}})
        aging_rows = [{"tenant_id": tenant_id, "contact_id": contact_id, "contact_name": names.get(contact_id),
                       "as_of": as_of, "updated_at": now, **{k: _decimal(v) for k, v in buckets.items()},
                       "total": _decimal(sum(buckets.values()))}
                      for contact_id, buckets in sorted(owed.items())]
        for table in (s.project_financials, s.project_summary):
            conn.execute(delete(table).where(table.c.tenant_id == tenant_id))
        conn.execute(delete(s.ar_aging).where(s.ar_aging.c.tenant_id == tenant_id, s.ar_aging.c.as_of == as_of))
        _insert(conn, s.project_financials, monthly_rows)
        _insert(conn, s.project_summary, summary_rows)
        _insert(conn, s.ar_aging, aging_rows)
    seconds = time.perf_counter() - started
    log.info("Project finances of tenant %s: %d project(s), %d project-month(s), receivables of %d contact(s) "
             "as of %s, built in %.1f s.", tenant_id, len(summary_rows), len(monthly_rows), len(aging_rows), as_of,
             seconds)
    return {"projects": len(summary_rows), "project_months": len(monthly_rows), "aging_contacts": len(aging_rows),
            "seconds": round(seconds, 3)}


def _insert(conn, table, rows: Iterable[dict[str, Any]]) -> None:
    """The tenant's rows were deleted just before: on PostgreSQL they go in by COPY (``db.upsert``)."""
    rows = list(rows)
    for start in range(0, len(rows), 20_000):
        upsert(conn, table, rows[start:start + 20_000])
