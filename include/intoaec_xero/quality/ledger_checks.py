"""The ledger derived from documents, checked against Xero: its Trial Balance, and its Journals where both exist.

``ledger_matches_trial_balance`` (tenants whose ledger is derived): per account, the derived ledger's
balance at the report's date against Xero's Trial Balance for that date, to the cent. An account
that differs is moved by something no document of the Accounting API shows (payroll, fixed-asset
depreciation, conversion balances) or by a document the sync does not have: each is named with the
amount not explained, and one ``balancing`` journal line per such account ties the ledger's totals
to Xero (rebuilt on every check).

``derived_ledger_matches_journals`` (tenants whose Journals Xero serves): the ledger derived from
the documents against Xero's journals, per account and month; a difference names the documents
(source type and id) whose postings differ, which is also how a document the sync missed shows.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select

from intoaec_xero import ledger
from intoaec_xero.db import money_sum
from intoaec_xero.project_finance import cents
from intoaec_xero.quality import reports
from intoaec_xero.quality.model import WARN, CheckResult
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import accounts, journal_lines

log = logging.getLogger(__name__)

LEDGER_CHECK = "ledger_matches_trial_balance"
JOURNALS_CHECK = "derived_ledger_matches_journals"
# A difference names at most this many documents per account and month.
DOCUMENTS_NAMED = 5


def _money(value: int) -> str:
    return f"{Decimal(value).scaleb(-2):.2f}"


def matches_trial_balance(conn, raw: RawStore, run_id: str, tenant_id: str,
                          item: dict[str, Any]) -> CheckResult:
    info = (item.get("extra") or {}).get("trial_balance") or {}
    if "date" not in info:
        return CheckResult.skip("journal_lines", LEDGER_CHECK, WARN,
                                info.get("skipped") or "Xero's trial balance was not fetched")
    try:
        report = reports.read_trial_balance(raw, run_id, tenant_id, info["date"])
    except ValueError as error:
        return CheckResult.skip("journal_lines", LEDGER_CHECK, WARN, str(error))
    derived = _derived_by_account(conn, tenant_id, report.as_at)
    chart = {account_id: (code, name) for account_id, code, name in conn.execute(
        select(accounts.c.account_id, accounts.c.code, accounts.c.name).where(accounts.c.tenant_id == tenant_id))}
    unexplained: dict[str, int] = {}
    keys = []
    for account_id in sorted(set(derived) | set(report.accounts)):
        ours = derived.get(account_id, 0)
        label, theirs_decimal = report.accounts.get(account_id, ("", Decimal("0.00")))
        theirs = cents(theirs_decimal)
        if ours == theirs:
            continue
        code, name = chart.get(account_id, (None, None))
        if code is None:
            keys.append(f"{label or account_id}: Xero {_money(theirs)}, documents {_money(ours)} "
                        "(an account IntoAEC does not have: sync the accounts stream)")
            continue
        unexplained[code] = theirs - ours
        keys.append(f"{code} {name}: {_money(theirs - ours)} not explained (Xero {_money(theirs)}, "
                    f"documents {_money(ours)})")
    # On the check's own connection: SQLite lets one writer in at a time, and this one holds the lock.
    written = ledger.write_balancing(conn, tenant_id, report.as_at, unexplained)
    conn.commit()
    seen = len(set(derived) | set(report.accounts))
    return CheckResult(
        "journal_lines", LEDGER_CHECK, WARN, not keys,
        observed=(f"{len(keys)} of {seen} accounts differ from Xero's Trial Balance as at {report.as_at}"
                  + (f"; {written} balancing line(s) tie them to Xero" if written else "")),
        expected="the ledger derived from documents equals Xero's Trial Balance (YTD) per account, to the cent",
        failing_keys=keys)


def _derived_by_account(conn, tenant_id: str, as_at: date) -> dict[str, int]:
    """Account id -> cents of the derived lines dated on or before ``as_at`` (balancing lines left out)."""
    lines = journal_lines
    query = (select(lines.c.account_id, money_sum(lines.c.net_amount))
             .where(lines.c.tenant_id == tenant_id, lines.c.journal_date <= as_at,
                    or_(lines.c.source_type.is_(None), lines.c.source_type != "BALANCING"))
             .group_by(lines.c.account_id))
    return {account_id: int(net or 0) for account_id, net in conn.execute(query) if account_id is not None}


LEDGER_DOCUMENT_STREAMS = ("invoices", "credit_notes", "payments", "bank_transactions", "bank_transfers",
                           "manual_journals", "prepayments", "overpayments")


def derived_matches_journals(conn, tenant_id: str, changed: set[str], outcomes: dict[str, str]) -> CheckResult:
    """``changed``: the streams whose load wrote rows in this run; without one of the ledger's, nothing to compare."""
    def skip(reason: str) -> CheckResult:
        return CheckResult.skip("journal_lines", JOURNALS_CHECK, WARN, reason)

    missing = [s for s in (*LEDGER_DOCUMENT_STREAMS, "accounts") if outcomes.get(s) != "success"]
    if missing:
        return skip(f"{', '.join(missing)} not loaded in this run, so the documents are not all there")
    if not changed & {*LEDGER_DOCUMENT_STREAMS, "accounts", "journals"}:
        return skip("neither a journal nor a document changed since the last run")
    try:
        derived = ledger.net_by_account_month(ledger.derive(conn, tenant_id))
    except ledger.LedgerError as error:
        return skip(str(error))
    xero = _journals_by_account_month(conn, tenant_id)
    differing = {key for key in set(derived) | set(xero) if derived.get(key, 0) != xero.get(key, 0)}
    if not differing:
        return CheckResult("journal_lines", JOURNALS_CHECK, WARN, True,
                           observed=f"{len(xero)} account-months equal",
                           expected="the ledger derived from documents equals Xero's journals per account and month")
    ours = ledger.by_source(ledger.derive(conn, tenant_id), differing)
    theirs = _journals_by_source(conn, tenant_id, differing)
    keys = []
    for code, month in sorted(differing, key=lambda k: (k[0], k[1] or date.min)):
        mine, xeros = ours.get((code, month), {}), theirs.get((code, month), {})
        documents = sorted(d for d in set(mine) | set(xeros) if mine.get(d, 0) != xeros.get(d, 0))
        named = ", ".join(f"{d} (Xero {_money(xeros.get(d, 0))}, documents {_money(mine.get(d, 0))})"
                          for d in documents[:DOCUMENTS_NAMED])
        more = f" and {len(documents) - DOCUMENTS_NAMED} more" if len(documents) > DOCUMENTS_NAMED else ""
        keys.append(f"{code} {month:%Y-%m}: Xero {_money(xero.get((code, month), 0))}, documents "
                    f"{_money(derived.get((code, month), 0))}: {named or 'no single document'}{more}")
    return CheckResult("journal_lines", JOURNALS_CHECK, WARN, False,
                       observed=f"{len(differing)} of {len(set(derived) | set(xero))} account-months differ"
                                + (f" ({keys[0]})" if keys else ""),
                       expected="the ledger derived from documents equals Xero's journals per account and month",
                       failing_keys=keys)


def _xero_sums(conn, tenant_id: str, *by_source: Any):
    """Xero's journal lines summed per account and day (and source, when asked): few rows, no cursor held."""
    lines = journal_lines
    keys = (lines.c.account_code, lines.c.journal_date, *by_source)
    return conn.execute(select(*keys, money_sum(lines.c.net_amount))
                        .where(lines.c.tenant_id == tenant_id,
                               or_(lines.c.source_type.is_(None), lines.c.source_type != "BALANCING"))
                        .group_by(*keys))


def _journals_by_account_month(conn, tenant_id: str) -> dict[tuple[str, date | None], int]:
    out: dict[tuple[str, date | None], int] = defaultdict(int)
    for code, day, net in _xero_sums(conn, tenant_id):
        out[code, day.replace(day=1) if day else None] += int(net or 0)
    return out


def _journals_by_source(conn, tenant_id: str, wanted: set) -> dict[tuple, dict[str, int]]:
    out: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for code, day, source_type, source_id, net in _xero_sums(conn, tenant_id, journal_lines.c.source_type,
                                                             journal_lines.c.source_id):
        key = (code, day.replace(day=1) if day else None)
        if key in wanted:
            out[key][f"{source_type} {source_id}"] += int(net or 0)
    return out
