"""Checks across tables, run on a tenant's whole ledger after each load.

A batch can pass every row check and the ledger still be wrong: a journal line lost on the way,
a payment whose invoice was edited in a way that did not reach us. These compare the loaded
tables with each other and with Xero's own Trial Balance. A check that cannot be run (the plan
hides the journals, a batch was quarantined this run, the report was not granted) is recorded
as skipped with the reason, never silently absent.
"""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

from sqlalchemy import Engine, and_, func, select

from intoaec_xero.db import cents_to_decimal, money_sum
from intoaec_xero.payloads import Manifest
from intoaec_xero.quality import ledger_checks, project_pnl, reports
from intoaec_xero.quality.model import ERROR, SAMPLE_KEYS, WARN, CheckResult
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import accounts, credit_notes, invoices, journal_lines, journals, payments

log = logging.getLogger(__name__)

# Where each reconciliation's verdict is filed (dq_results' table, and the stream's sync_runs row).
CHECK_TABLES = {
    "journal_balances": "journal_lines",
    "trial_balance": "journal_lines",
    "ar_matches_ledger": "invoices",
    "payments_match_amount_paid": "payments",
    "project_pnl_matches_xero": "project_financials",
    "ar_aging_matches_trial_balance": "ar_aging",
    "ledger_matches_trial_balance": "journal_lines",
    "derived_ledger_matches_journals": "journal_lines",
}

# Invoice payments (not refunds of credit notes or overpayments) make up an invoice's AmountPaid.
INVOICE_PAYMENT_TYPES = ("ACCRECPAYMENT", "ACCPAYPAYMENT")
# FX: Xero posts a foreign invoice at its rate and revalues it; our base-currency view of amount_due
# cannot follow to the cent, so foreign documents get this much slack (base-currency ones none).
FX_TOLERANCE = Decimal("0.01")


def reconcile_tenant(engine: Engine, raw: RawStore, manifest: Manifest,
                     outcomes: dict[str, str], ledger_pending: str | None = None, *,
                     changed: set[str] | None = None) -> list[CheckResult]:
    """Every reconciliation for one tenant; ``outcomes`` is each stream's status in this load.

    ``ledger_pending`` says why the ledger is knowingly incomplete (a journal backfill still
    walking its history), which skips the ledger checks rather than failing them.
    """
    run_id, tenant_id = manifest["run_id"], manifest["tenant_id"]
    items = {s["stream"]: s for s in manifest.get("streams", [])}
    if is_backfill(manifest):
        # One page of history: its rows were checked; the ledger as a whole is not complete yet, and
        # scanning it after each of thousands of pages would cost more than the backfill itself.
        reason = "a backfill page; the scheduled sync reconciles the whole ledger once the backfill is done"
        return [_skip(check, severity, reason) for check, severity in (
            ("journal_balances", ERROR), ("trial_balance", ERROR), ("ar_matches_ledger", WARN),
            ("payments_match_amount_paid", WARN), ("project_pnl_matches_xero", WARN),
            ("ar_aging_matches_trial_balance", WARN), ("ledger_matches_trial_balance", WARN),
            ("derived_ledger_matches_journals", WARN))]
    ledger_gap = (_ledger_unavailable(items.get("journals"), outcomes.get("journals"))
                  or ledger_pending)
    results = []
    with engine.connect() as conn:
        ledger = _Ledger(conn, tenant_id)
        derived = outcomes.get("journals") == "derived"
        if ledger_gap:
            results.append(_skip("journal_balances", ERROR, ledger_gap))
            results.append(_skip("trial_balance", ERROR, ledger_gap))
        elif derived:
            results.append(_journal_balances(conn, tenant_id))
            results.append(_skip("trial_balance", ERROR, "the ledger is derived from documents: "
                                                         "ledger_matches_trial_balance compares it with Xero's"))
            results.append(ledger_checks.matches_trial_balance(conn, raw, run_id, tenant_id,
                                                               items["journals"]))
        else:
            results.append(_journal_balances(conn, tenant_id))
            results.append(_trial_balance(conn, raw, run_id, tenant_id, items["journals"], ledger))
            if changed is None:
                changed = {name for name, item in items.items() if item.get("records")}
            results.append(ledger_checks.derived_matches_journals(conn, tenant_id, changed, outcomes))
        ar_gap = ledger_gap or _stream_gap(outcomes, "invoices", "credit_notes", "accounts")
        results.append(_skip("ar_matches_ledger", WARN, ar_gap) if ar_gap
                       else _ar_matches_ledger(conn, tenant_id, ledger))
        pay_gap = _stream_gap(outcomes, "invoices", "payments")
        results.append(_skip("payments_match_amount_paid", WARN, pay_gap) if pay_gap
                       else _payments_match(conn, tenant_id))
        results.append(project_pnl.check_project_pnl(conn, raw, run_id, tenant_id, manifest.get("project_pnl")))
        results.append(project_pnl.check_ar_aging(conn, raw, run_id, tenant_id, items.get("journals")))
    return results


def is_backfill(manifest: Manifest) -> bool:
    return any((s.get("extra") or {}).get("backfill") for s in manifest.get("streams", []))


def _skip(check: str, severity: str, reason: str) -> CheckResult:
    return CheckResult.skip(CHECK_TABLES[check], check, severity, reason)


def _ledger_unavailable(item: dict | None, outcome: str | None) -> str | None:
    if item is None:
        return "the journals stream was not part of this run"
    if outcome == "derived":
        return None
    if item.get("unavailable"):
        return item["unavailable"]
    if outcome == "rejected":
        return "this run's journals batch was quarantined, so the ledger is incomplete"
    if outcome != "success":
        return "the journals were not loaded in this run"
    return None


def _stream_gap(outcomes: dict[str, str], *streams: str) -> str | None:
    for stream in streams:
        status = outcomes.get(stream)
        if status == "rejected":
            return f"this run's {stream} batch was quarantined"
        if status != "success":
            return f"the {stream} stream was not loaded in this run"
    return None


def _journal_balances(conn, tenant_id: str) -> CheckResult:
    net = money_sum(journal_lines.c.net_amount)
    unbalanced = conn.execute(
        select(journal_lines.c.journal_id, net)
        .where(journal_lines.c.tenant_id == tenant_id)
        .group_by(journal_lines.c.journal_id)
        .having(net != 0)
    ).all()
    total = conn.execute(select(func.count()).select_from(journals)
                         .where(journals.c.tenant_id == tenant_id)).scalar_one()
    numbers = {}
    if unbalanced:
        ids = [row[0] for row in unbalanced[:SAMPLE_KEYS]]
        numbers = dict(conn.execute(select(journals.c.journal_id, journals.c.journal_number)
                                    .where(journals.c.tenant_id == tenant_id, journals.c.journal_id.in_(ids))).all())
    keys = [f"journal {numbers.get(r[0], '?')} ({r[0]}): off by {cents_to_decimal(r[1])}" for r in unbalanced]
    return CheckResult("journal_lines", "journal_balances", ERROR, not unbalanced,
                       observed=f"{len(unbalanced)} of {total} journals do not sum to zero",
                       expected="every journal's line net amounts sum to zero",
                       failing_keys=keys[:SAMPLE_KEYS])


def _trial_balance(conn, raw: RawStore, run_id: str, tenant_id: str, item: dict, ledger: _Ledger) -> CheckResult:
    info = (item.get("extra") or {}).get("trial_balance") or {}
    if "date" not in info:
        return _skip("trial_balance", ERROR, info.get("skipped") or "Xero's trial balance was not fetched")
    try:
        report = reports.read_trial_balance(raw, run_id, tenant_id, info["date"])
    except ValueError as error:
        return _skip("trial_balance", ERROR, str(error))
    net = ledger.by_account(report.as_at)
    codes = dict(conn.execute(select(accounts.c.account_id, accounts.c.code)
                              .where(accounts.c.tenant_id == tenant_id)).all())
    differences = []
    for account_id in sorted(set(net) | set(report.accounts)):
        ours = net.get(account_id, Decimal("0.00"))
        label, theirs = report.accounts.get(account_id, (codes.get(account_id) or account_id, Decimal("0.00")))
        if ours != theirs:
            differences.append(f"{codes.get(account_id) or label}: ledger {ours}, Xero {theirs}")
    accounts_seen = len(set(net) | set(report.accounts))
    return CheckResult("journal_lines", "trial_balance", ERROR, not differences,
                       observed=f"{len(differences)} of {accounts_seen} accounts differ as at {report.as_at}"
                       + (f" ({differences[0]})" if differences else ""),
                       expected="the ledger's net by account equals Xero's Trial Balance (YTD) for the same date",
                       failing_keys=differences[:SAMPLE_KEYS])


class _Ledger:
    """The tenant's ledger net by account, read once for the checks that need it.

    Each read scans every journal line of the tenant; the trial balance's as-at date only needs
    the join to journals when some journal is dated after it.
    """

    def __init__(self, conn, tenant_id: str) -> None:
        self.conn, self.tenant_id = conn, tenant_id
        self._all: dict[str | None, int] | None = None

    def _net(self, as_at: date | None) -> dict[str | None, int]:
        lines = journal_lines
        query = select(lines.c.account_id, money_sum(lines.c.net_amount)).where(lines.c.tenant_id == self.tenant_id)
        if as_at is not None:
            query = query.select_from(lines.join(journals, and_(journals.c.tenant_id == lines.c.tenant_id,
                                                                journals.c.journal_id == lines.c.journal_id))
                                      ).where(journals.c.journal_date <= as_at)
        return {account_id: value for account_id, value in self.conn.execute(query.group_by(lines.c.account_id))}

    def _everything(self) -> dict[str | None, int]:
        if self._all is None:
            self._all = self._net(None)
        return self._all

    def by_account(self, as_at: date) -> dict[str, Decimal]:
        latest = self.conn.execute(select(func.max(journals.c.journal_date))
                                   .where(journals.c.tenant_id == self.tenant_id)).scalar_one()
        net = self._everything() if latest is None or latest <= as_at else self._net(as_at)
        return {account_id: cents_to_decimal(value) for account_id, value in net.items() if account_id is not None}

    def balance(self, account_ids: list[str]) -> Decimal:
        """Every line of these accounts, whatever its date."""
        net = self._everything()
        return cents_to_decimal(sum(int(net.get(a) or 0) for a in account_ids))


def _ar_matches_ledger(conn, tenant_id: str, ledger: _Ledger) -> CheckResult:
    debtors = [r[0] for r in conn.execute(select(accounts.c.account_id).where(
        accounts.c.tenant_id == tenant_id, accounts.c.system_account == "DEBTORS"))]
    if not debtors:
        return _skip("ar_matches_ledger", WARN, "no accounts receivable (DEBTORS) account among the accounts")
    balance = ledger.balance(debtors)
    open_invoices = conn.execute(
        select(invoices.c.amount_due, invoices.c.currency_rate, invoices.c.currency_code)
        .where(invoices.c.tenant_id == tenant_id, invoices.c.type == "ACCREC", invoices.c.status == "AUTHORISED")
    ).all()
    expected, foreign, foreign_docs = Decimal(0), Decimal(0), 0
    base_currencies = set()
    for amount_due, rate, currency in open_invoices:
        rate = Decimal(str(rate)) if rate else Decimal(1)
        amount = Decimal(str(amount_due or 0))
        if rate == 1:
            expected += amount
            base_currencies.add(currency)
        else:
            expected += amount / rate
            foreign += abs(amount / rate)
            foreign_docs += 1
    for remaining, currency in conn.execute(
        select(credit_notes.c.remaining_credit, credit_notes.c.currency_code)
        .where(credit_notes.c.tenant_id == tenant_id, credit_notes.c.type == "ACCRECCREDIT",
               credit_notes.c.status == "AUTHORISED")
    ):
        amount = Decimal(str(remaining or 0))
        expected -= amount  # no rate is kept for credit notes: foreign ones count at face value, with slack
        if base_currencies and currency not in base_currencies:
            foreign += abs(amount)
            foreign_docs += 1
    expected = expected.quantize(Decimal("0.01"))
    tolerance = (FX_TOLERANCE * foreign_docs + foreign / 100).quantize(Decimal("0.01"))
    difference = balance - expected
    passed = abs(difference) <= tolerance
    return CheckResult("invoices", "ar_matches_ledger", WARN, passed,
                       observed=f"receivable per invoices and credit notes {expected}, DEBTORS balance in the "
                                f"journals {balance} (difference {difference})",
                       expected=f"equal within {tolerance} (foreign-currency documents: {foreign_docs}; "
                                "Xero revalues them, IntoAEC keeps their own rate)",
                       failing_keys=[] if passed else [f"difference {difference}"])


def _payments_match(conn, tenant_id: str) -> CheckResult:
    paid = money_sum(payments.c.amount).label("paid")
    per_invoice = (
        select(payments.c.invoice_id, paid)
        .where(payments.c.tenant_id == tenant_id, payments.c.status == "AUTHORISED",
               payments.c.payment_type.in_(INVOICE_PAYMENT_TYPES), payments.c.invoice_id.is_not(None))
        .group_by(payments.c.invoice_id)
        .subquery()
    )
    stated = func.round(invoices.c.amount_paid * 100)
    received = func.coalesce(per_invoice.c.paid, 0)
    mismatched = conn.execute(
        select(invoices.c.invoice_id, invoices.c.invoice_number, stated, received)
        .select_from(invoices.outerjoin(per_invoice, per_invoice.c.invoice_id == invoices.c.invoice_id))
        .where(invoices.c.tenant_id == tenant_id, func.coalesce(stated, 0) != received)
    ).all()
    total = conn.execute(select(func.count()).select_from(invoices)
                         .where(invoices.c.tenant_id == tenant_id)).scalar_one()
    keys = [f"{r.invoice_number or r.invoice_id}: amount_paid {cents_to_decimal(r[2])}, "
            f"payments {cents_to_decimal(r[3])}" for r in mismatched[:SAMPLE_KEYS]]
    return CheckResult("payments", "payments_match_amount_paid", WARN, not mismatched,
                       observed=f"{len(mismatched)} of {total} invoices"
                       + (f" (e.g. {keys[0]})" if keys else ""),
                       expected="the authorised payments of each invoice add up to its amount_paid",
                       failing_keys=keys)
