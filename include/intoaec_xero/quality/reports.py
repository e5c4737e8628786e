"""Reading Xero's own Trial Balance as kept with a run's raw pages (``trial_balance`` fetches it).

The ledger check compares what IntoAEC holds with what Xero reports for the same date.
"""

from __future__ import annotations

import logging
import re
import zlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from intoaec_xero.parsing import loads
from intoaec_xero.rawstore import RawStore, read_page

log = logging.getLogger(__name__)

# The raw store folder the report is kept in (next to the streams' folders).
TRIAL_BALANCE = "reports_trial_balance"
TRIAL_BALANCE_SCOPES = ("accounting.reports.read", "accounting.reports.trialbalance.read")


@dataclass
class TrialBalance:
    as_at: date
    # account id -> (label, net: YTD debit - YTD credit)
    accounts: dict[str, tuple[str, Decimal]]


def read_trial_balance(raw: RawStore, run_id: str, tenant_id: str, as_at: str) -> TrialBalance:
    """The kept report as net balances per account; raises ValueError if it cannot be read."""
    path = raw.stream_dir(run_id, tenant_id, TRIAL_BALANCE) / "page-000001.json.gz"
    try:
        payload = loads(read_page(path))
    except (OSError, EOFError, zlib.error, ValueError) as error:
        raise ValueError(f"the kept trial balance report cannot be read ({error})") from None
    return parse_trial_balance(payload, date.fromisoformat(as_at))


_CODE = re.compile(r"\(([^()]*)\)\s*$")


def parse_trial_balance(payload: Any, as_at: date) -> TrialBalance:
    """Xero's report layout: a header naming the columns, sections of rows, one cell per column;
    the first cell carries the account id as an attribute."""
    try:
        report = payload["Reports"][0]
        rows = report["Rows"]
    except (KeyError, IndexError, TypeError):
        raise ValueError("the trial balance report has no rows") from None
    header = next((r for r in rows if r.get("RowType") == "Header"), None)
    names = [str(c.get("Value", "")).strip().lower() for c in (header or {}).get("Cells", [])]
    debit = _column(names, "ytd debit", "debit")
    credit = _column(names, "ytd credit", "credit")
    accounts: dict[str, tuple[str, Decimal]] = {}
    for section in rows:
        for row in section.get("Rows", []) if section.get("RowType") == "Section" else []:
            if row.get("RowType") != "Row":
                continue
            cells = row.get("Cells") or []
            account_id = _account_id(cells[0]) if cells else None
            if not account_id:
                continue
            net = _amount(cells, debit) - _amount(cells, credit)
            label = str(cells[0].get("Value", ""))
            match = _CODE.search(label)
            accounts[account_id] = (match.group(1) if match else label, net)
    return TrialBalance(as_at, accounts)


def _column(names: list[str], *wanted: str) -> int:
    for name in wanted:
        if name in names:
            return names.index(name)
    raise ValueError(f"the trial balance report has no {wanted[0]!r} column")


def _account_id(cell: dict) -> str | None:
    for attribute in cell.get("Attributes") or []:
        if attribute.get("Id") == "account":
            return str(attribute.get("Value"))
    return None


def _amount(cells: list, index: int) -> Decimal:
    if index >= len(cells):
        return Decimal(0)
    value = str(cells[index].get("Value") or "").replace(",", "").strip()
    if not value:
        return Decimal(0)
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError(f"the trial balance report holds a non-number {value!r}") from None
