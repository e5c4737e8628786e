"""Xero's Profit and Loss by the project category, fetched once per tenant and run, and the checks against it.

The extract asks, in one call with ``trackingCategoryID`` set (Xero then answers one column per
project), for the months whose documents this run read: from the first to the last of them,
twelve at most; after a full read, the last twelve months. An hourly run that saw only this
month's documents so checks this month alone. The report is kept with the run's raw pages.
After the load, ``project_pnl_matches_xero`` compares each project's revenue (Income and Other
Income) and costs (Cost of Sales and Operating Expenses) over those months with
``project_financials``, to the cent; ``ar_aging_matches_trial_balance`` compares the
receivables by age with the receivable control account of the Trial Balance kept with the
journals. Neither can fail the extract: without the report the check is skipped and says why.
"""

from __future__ import annotations

import calendar
import logging
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Engine, func, select

from intoaec_xero.errors import XeroAccessDenied, XeroError
from intoaec_xero.parsing import loads
from intoaec_xero.quality import reports
from intoaec_xero.quality.model import SAMPLE_KEYS, WARN, CheckResult
from intoaec_xero.rawstore import RawStore, read_page
from intoaec_xero.schema import accounts, ar_aging, project_financials

log = logging.getLogger(__name__)

PROFIT_AND_LOSS = "reports_profit_and_loss"
PNL_SCOPES = ("accounting.reports.read", "accounting.reports.profitandloss.read")
MONTHS = 12
REVENUE_SECTIONS = ("income", "plus other income", "other income", "revenue", "trading income")
COST_SECTIONS = ("less cost of sales", "cost of sales", "less operating expenses", "operating expenses", "expenses")
NOT_PROJECTS = ("unassigned", "total", "")


def window(today: date) -> tuple[date, date]:
    """The first day of the month eleven months back, and the last day of this month."""
    month = today.month - (MONTHS - 1)
    year = today.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    return date(year, month, 1), today.replace(day=calendar.monthrange(today.year, today.month)[1])


def report_window(today: date, months: tuple[date, date] | None) -> tuple[date, date]:
    """The report's dates: the changed months (twelve at most, up to the last), else the last twelve."""
    if months is None:
        return window(today)
    earliest, latest = months
    return max(earliest, window(latest)[0]), window(latest)[1]


def changed_months(raw: RawStore, run_id: str, tenant_id: str, streams: list[Any]) -> tuple[date, date] | None:
    """The first and last month of the documents this run read (None if none has a date).

    An incremental run reads few documents, so their kept pages are cheap to scan again.
    """
    from intoaec_xero.parsing import parse_date

    days: list[date] = []
    for stream in streams:
        for body in raw.pages(run_id, tenant_id, stream.name):
            payload = loads(body)
            for record in (payload.get(stream.records_key) if isinstance(payload, dict) else None) or ():
                try:
                    day = parse_date(record.get("Date")) if isinstance(record, dict) else None
                except ValueError:
                    continue
                if day:
                    days.append(day)
    if not days:
        return None
    return min(days).replace(day=1), max(days).replace(day=1)


def fetch(client, engine: Engine, raw: RawStore, run_id: str, tenant_id: str, config: Any,
          months: tuple[date, date] | None = None) -> dict[str, Any]:
    """One call for the report; what the load needs to find and read it (or why it was not fetched).

    ``months``: the first and last month whose documents changed; the report covers them (at most
    the twelve months up to the last), or the last twelve months when not given (a full read).
    """
    from intoaec_xero import projects

    with engine.connect() as conn:
        dimension = projects.resolve(conn, tenant_id, config, run_id=run_id)
    if not dimension.category_ids:
        return {"skipped": "the tenant's project category is not known yet (it is read from the tracking "
                           "categories IntoAEC holds, so the first sync's load learns it and the next run checks)"
                if not _has_categories(engine, tenant_id) else
                f"no project tracking category: the project of a line is {dimension.description}"}
    category_id = sorted(dimension.category_ids)[0]
    first, last = report_window(datetime.now(UTC).date(), months)
    try:
        response = client.get("get_report_profit_and_loss", tenant_id, "GET /Reports/ProfitAndLoss",
                              from_date=first.isoformat(), to_date=last.isoformat(),
                              tracking_category_id=category_id)
    except XeroAccessDenied as error:
        return {"skipped": f"Xero refused the Profit and Loss report ({error.status}); the Xero connection needs "
                           f"the {PNL_SCOPES[1]} scope: reconnect to grant it"}
    except XeroError as error:
        return {"skipped": f"the Profit and Loss report could not be read: {error}"}
    raw.write_page(run_id, tenant_id, PROFIT_AND_LOSS, 1, response.body)
    return {"from": first.isoformat(), "to": last.isoformat(), "category_id": category_id}


def _has_categories(engine: Engine, tenant_id: str) -> bool:
    from intoaec_xero.schema import tracking_categories

    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(tracking_categories)
                            .where(tracking_categories.c.tenant_id == tenant_id)).scalar_one() > 0


def parse(payload: Any) -> dict[str, tuple[Decimal, Decimal]]:
    """Xero's report as {project: (revenue, costs)} from each section's summary row, per column."""
    try:
        rows = payload["Reports"][0]["Rows"]
    except (KeyError, IndexError, TypeError):
        raise ValueError("the Profit and Loss report has no rows") from None
    header = next((r for r in rows if r.get("RowType") == "Header"), None)
    if header is None:
        raise ValueError("the Profit and Loss report has no header row")
    names = [str(c.get("Value", "")).strip() for c in header.get("Cells", [])]
    revenue = [Decimal(0)] * len(names)
    costs = [Decimal(0)] * len(names)
    for section in rows:
        if section.get("RowType") != "Section":
            continue
        title = str(section.get("Title", "")).strip().lower()
        target = revenue if title in REVENUE_SECTIONS else costs if title in COST_SECTIONS else None
        if target is None:
            continue
        summary = next((r for r in section.get("Rows", []) if r.get("RowType") == "SummaryRow"), None)
        for i, cell in enumerate((summary or {}).get("Cells", [])[1:], start=1):
            if i < len(names):
                target[i] += _amount(cell.get("Value"))
    return {name: (revenue[i], costs[i]) for i, name in enumerate(names)
            if i > 0 and name.lower() not in NOT_PROJECTS}


def _amount(value: Any) -> Decimal:
    text = str(value or "0").replace(",", "").strip()
    try:
        return Decimal(text or "0").quantize(Decimal("0.01"))
    except InvalidOperation:
        raise ValueError(f"the Profit and Loss report has an amount that is not a number: {value!r}") from None


def check_project_pnl(conn, raw: RawStore, run_id: str, tenant_id: str, info: dict[str, Any] | None) -> CheckResult:
    def skip(reason: str) -> CheckResult:
        return CheckResult.skip("project_financials", "project_pnl_matches_xero", WARN, reason)

    if not info:
        return skip("Xero's Profit and Loss by project was not fetched in this run")
    if "from" not in info:
        return skip(info.get("skipped") or "Xero's Profit and Loss by project was not fetched")
    try:
        theirs = parse(loads(read_page(raw.stream_dir(run_id, tenant_id, PROFIT_AND_LOSS) / "page-000001.json.gz")))
    except (OSError, ValueError, EOFError) as error:
        return skip(f"the kept Profit and Loss report cannot be read ({error})")
    first, last = date.fromisoformat(info["from"]), date.fromisoformat(info["to"])
    pf = project_financials
    ours = {project: (Decimal(str(rev or 0)).quantize(Decimal("0.01")), Decimal(str(cost or 0)).quantize(
        Decimal("0.01"))) for project, rev, cost in conn.execute(
        select(pf.c.project, func.sum(pf.c.revenue), func.sum(pf.c.costs))
        .where(pf.c.tenant_id == tenant_id, pf.c.month >= first, pf.c.month <= last).group_by(pf.c.project))}
    zero = (Decimal("0.00"), Decimal("0.00"))
    differences = []
    for project in sorted(set(ours) | set(theirs)):
        mine, xero = ours.get(project, zero), theirs.get(project, zero)
        if mine[0] != xero[0]:
            differences.append(f"{project}: revenue {mine[0]} here, {xero[0]} in Xero")
        if mine[1] != xero[1]:
            differences.append(f"{project}: costs {mine[1]} here, {xero[1]} in Xero")
    projects = len(set(ours) | set(theirs))
    return CheckResult("project_financials", "project_pnl_matches_xero", WARN, not differences,
                       observed=f"{len(differences)} difference(s) over {projects} project(s), {first} to {last}"
                       + (f" ({differences[0]})" if differences else ""),
                       expected="each project's revenue and costs equal Xero's Profit and Loss by the project "
                                "category, to the cent",
                       failing_keys=differences[:SAMPLE_KEYS])


def check_ar_aging(conn, raw: RawStore, run_id: str, tenant_id: str, journals_item: dict | None) -> CheckResult:
    def skip(reason: str) -> CheckResult:
        return CheckResult.skip("ar_aging", "ar_aging_matches_trial_balance", WARN, reason)

    info = ((journals_item or {}).get("extra") or {}).get("trial_balance") or {}
    if "date" not in info:
        return skip(info.get("skipped") or "Xero's Trial Balance was not fetched in this run (it comes with the "
                                           "journals)")
    try:
        report = reports.read_trial_balance(raw, run_id, tenant_id, info["date"])
    except ValueError as error:
        return skip(str(error))
    debtors = [r[0] for r in conn.execute(select(accounts.c.account_id).where(
        accounts.c.tenant_id == tenant_id, accounts.c.system_account == "DEBTORS"))]
    if not debtors:
        return skip("no accounts receivable (DEBTORS) account among the accounts")
    xero = sum((report.accounts.get(a, ("", Decimal(0)))[1] for a in debtors), Decimal(0)).quantize(Decimal("0.01"))
    # The total owed does not depend on the day it is aged on: the latest build is compared.
    latest = select(func.max(ar_aging.c.as_of)).where(ar_aging.c.tenant_id == tenant_id).scalar_subquery()
    ours = conn.execute(select(func.sum(ar_aging.c.total)).where(
        ar_aging.c.tenant_id == tenant_id, ar_aging.c.as_of == latest)).scalar()
    ours = Decimal(str(ours or 0)).quantize(Decimal("0.01"))
    return CheckResult("ar_aging", "ar_aging_matches_trial_balance", WARN, ours == xero,
                       observed=f"receivables by age {ours}, accounts receivable in Xero's Trial Balance {xero} "
                                f"as at {report.as_at}",
                       expected="equal to the cent",
                       failing_keys=[] if ours == xero else [f"difference {ours - xero}"])
