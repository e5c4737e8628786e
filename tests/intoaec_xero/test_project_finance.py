"""IntoAEC's project tables against the sandbox's books: each project's revenue and costs to the cent.

The sandbox's truth holds, per tenant, each project's revenue and cost as its Profit and Loss by
the project tracking category shows them (from its ledger, all dates), and the receivable
control account's balance. The project tables are built from the synced documents alone, so
equality means every document of every kind was synced, projected, converted and signed as
Xero posts it. The two tenants of ``small`` name their project category "Job" and "Projects".
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from intoaec_xero import project_finance
from intoaec_xero.pipeline import run_sync
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import accounts, ar_aging, invoices, project_financials, project_summary, tracking_categories
from sqlalchemy import func, select

from tests.harness.databases import migrated_engine
from tests.harness.xero import connect
from tests.intoaec_xero.backfill.conftest import sync_client

pytestmark = pytest.mark.integration


def _assert_equal_to_the_books(engine, truth: dict) -> None:
    with engine.connect() as conn:
        categories = {tid: name for tid, name in conn.execute(select(tracking_categories.c.tenant_id,
                                                                     tracking_categories.c.name))
                      if name in ("Job", "Projects")}
        assert sorted(categories.values()) == ["Job", "Projects"]  # the two names firms use, one per tenant
        for tenant_id, books in truth["tenants"].items():
            pnl = books["project_pnl"]
            rows = {r.project: r for r in conn.execute(
                select(project_summary).where(project_summary.c.tenant_id == tenant_id))}
            assert rows, f"no project of tenant {tenant_id}"
            revenue = {p: str(r.revenue) for p, r in rows.items() if r.revenue}
            costs = {p: str(r.costs) for p, r in rows.items() if r.costs}
            assert revenue == {p: v for p, v in pnl["revenue"].items() if Decimal(v)}, tenant_id
            assert costs == {p: v for p, v in pnl["cost"].items() if Decimal(v)}, tenant_id
            for r in rows.values():
                assert r.gross_margin == r.revenue - r.costs
                assert r.revenue == r.invoiced - r.credited + r.other_income
                assert r.costs == r.costs_bills + r.costs_spend_money + r.costs_manual_journals + r.costs_other
                assert r.first_activity <= r.last_activity
            # The months add up to the summary.
            monthly = dict(conn.execute(select(project_financials.c.project, func.sum(project_financials.c.revenue))
                                        .where(project_financials.c.tenant_id == tenant_id)
                                        .group_by(project_financials.c.project)).all())
            assert {p: Decimal(str(v)).quantize(Decimal("0.01")) for p, v in monthly.items()} == {
                p: r.revenue for p, r in rows.items()}
            assert sum(r.received for r in rows.values()) > 0 and sum(r.committed for r in rows.values()) > 0
            assert sum(r.unbilled_expenses for r in rows.values()) > 0
            # Every retainer's lines name a project in these books, so all the credit still held is on one.
            assert sum(r.deposits_held for r in rows.values()) == (
                Decimal(books["prepayments"]["total"]) - Decimal(books["prepayment_allocations"]["amount"]))
            # Receivables by age add up to the receivable control account's balance in the books.
            code = conn.execute(select(accounts.c.code).where(accounts.c.tenant_id == tenant_id,
                                                              accounts.c.system_account == "DEBTORS")).scalar_one()
            owed = conn.execute(select(func.sum(ar_aging.c.total)).where(ar_aging.c.tenant_id == tenant_id)).scalar()
            assert Decimal(str(owed)).quantize(Decimal("0.01")) == Decimal(
                books["journal_lines"]["net_by_account_code"][code])


def test_project_tables_equal_xero_profit_and_loss_by_project_before_and_after_activity(db_url, tmp_path):
    from xero_sandbox.testing import running_sandbox

    with migrated_engine(db_url) as engine, running_sandbox(dataset="small", seed=21, limits=False) as sandbox:
        settings, store = connect(sandbox, engine, calls_per_minute=0)
        client = sync_client(settings, store)
        summary = run_sync(client, settings, engine, RawStore(tmp_path / "raw"), "run-1")
        assert summary.ok, summary.failures
        _assert_equal_to_the_books(engine, sandbox.truth())

        sandbox.activity(invoices=12, payments=8)  # also new spend money, manual journals, POs, deposits
        summary = run_sync(client, settings, engine, RawStore(tmp_path / "raw"), "run-2")
        assert summary.ok, summary.failures
        _assert_equal_to_the_books(engine, sandbox.truth())
        _assert_months_equal_xero(engine, client)


def _assert_months_equal_xero(engine, client) -> None:
    """Month by month: Xero's Profit and Loss by the project category for a month equals that month's rows."""
    import calendar

    from intoaec_xero.parsing import loads
    from intoaec_xero.quality import project_pnl

    with engine.connect() as conn:
        tc = tracking_categories
        categories = dict(conn.execute(select(tc.c.tenant_id, tc.c.tracking_category_id)
                                       .where(tc.c.name.in_(("Job", "Projects")))).all())
        for tenant_id, category_id in categories.items():
            busiest = [m for (m,) in conn.execute(
                select(project_financials.c.month).where(project_financials.c.tenant_id == tenant_id)
                .group_by(project_financials.c.month).order_by(func.count().desc(), project_financials.c.month)
                .limit(3))]
            assert busiest
            for month in busiest:
                month = month if isinstance(month, date) else date.fromisoformat(str(month))
                last = month.replace(day=calendar.monthrange(month.year, month.month)[1])
                body = client.get("get_report_profit_and_loss", tenant_id, "GET /Reports/ProfitAndLoss",
                                  from_date=month.isoformat(), to_date=last.isoformat(),
                                  tracking_category_id=category_id).body
                xero = {p: v for p, v in project_pnl.parse(loads(body)).items() if any(v)}
                ours = {r.project: (r.revenue, r.costs) for r in conn.execute(
                    select(project_financials).where(project_financials.c.tenant_id == tenant_id,
                                                     project_financials.c.month == month))
                        if r.revenue or r.costs}
                assert ours == xero, (tenant_id, month)


def test_a_failed_rebuild_fails_the_tenant_and_says_so(tmp_path, monkeypatch):
    from xero_sandbox.testing import running_sandbox

    def broken(engine, tenant_id, as_of=None):
        raise RuntimeError("disk full")

    monkeypatch.setattr(project_finance, "rebuild", broken)
    with (migrated_engine(f"sqlite:///{tmp_path / 'intoaec.db'}") as engine,
          running_sandbox(dataset="small", seed=21, limits=False) as sandbox):
        settings, store = connect(sandbox, engine, calls_per_minute=0)
        summary = run_sync(sync_client(settings, store), settings, engine, RawStore(tmp_path / "raw"), "run-1")
    assert not summary.ok
    assert any("the project tables could not be rebuilt: disk full" in f for f in summary.failures), summary.failures


@pytest.mark.parametrize(("total", "weights"), [(1000, {"a": 1, "b": 1, "c": 1}), (-1001, {"a": 2, "b": 1}),
                                                (7, {"a": 5}), (100, {"a": 333, "b": 333, "c": 334})])
def test_a_payment_is_shared_among_projects_to_the_cent(total, weights):
    parts = project_finance._split(total, weights)
    assert sum(parts.values()) == total
    whole = sum(weights.values())
    for key, part in parts.items():
        assert abs(part - total * weights[key] / whole) < 1


def test_ages_and_base_currency_rounding():
    as_of = date(2026, 6, 30)
    assert project_finance._bucket(as_of, date(2026, 6, 30)) == "current"
    assert project_finance._bucket(as_of, date(2026, 6, 29)) == "days_1_30"
    assert project_finance._bucket(as_of, date(2026, 5, 31)) == "days_1_30"
    assert project_finance._bucket(as_of, date(2026, 5, 30)) == "days_31_60"
    assert project_finance._bucket(as_of, date(2026, 4, 1)) == "days_61_90"
    assert project_finance._bucket(as_of, date(2026, 3, 1)) == "days_over_90"
    # Xero's CurrencyRate is foreign units per base unit; halves round away from zero.
    assert project_finance.to_base(1000, Decimal("2")) == 500
    assert project_finance.to_base(1, Decimal("2")) == 1
    assert project_finance.to_base(-1, Decimal("2")) == -1
    assert project_finance.to_base(1234, None) == 1234


def test_the_checks_compare_with_xero_reports_in_one_call_per_run(tmp_path):
    """project_pnl_matches_xero and ar_aging_matches_trial_balance in dq_results; the P&L costs one call a
    tenant and run at most, and none in a run that read no document."""
    from intoaec_xero.schema import dq_results
    from xero_sandbox.testing import running_sandbox

    verdicts, pnl_calls = {}, {}
    with (migrated_engine(f"sqlite:///{tmp_path / 'intoaec.db'}") as engine,
          running_sandbox(dataset="small", seed=21, limits=False) as sandbox):
        settings, store = connect(sandbox, engine, calls_per_minute=0)
        client = sync_client(settings, store)
        for run in ("run-1", "run-2", "run-3", "run-4"):
            if run == "run-3":
                sandbox.activity(invoices=5)
            if run == "run-4":  # one new invoice and nothing else: its month alone is checked
                sandbox.activity(invoices=1, bank_transactions=0, manual_journals=0, purchase_orders=0,
                                 prepayments=0, overpayments=0, linked_transactions=0)
            sandbox.reset_stats()
            assert run_sync(client, settings, engine, RawStore(tmp_path / "raw"), run).ok
            pnl_calls[run] = sum(sum(by_status.values()) for label, by_status in sandbox.stats()["requests"].items()
                                 if "ProfitAndLoss" in label)
            with engine.connect() as conn:
                verdicts[run] = {(r.check_name, r.tenant_id): r for r in conn.execute(
                    select(dq_results).where(dq_results.c.run_id == run,
                                             dq_results.c.check_name.in_(("project_pnl_matches_xero",
                                                                          "ar_aging_matches_trial_balance"))))}
        windows = {t["tenant_id"]: RawStore(tmp_path / "raw").manifest("run-4", t["tenant_id"])["project_pnl"]
                   for t in sandbox.health()["tenants"] for t in [{"tenant_id": t["tenantId"]}]}
        newest = {}
        with engine.connect() as conn:
            for tenant_id in windows:
                newest[tenant_id] = conn.execute(select(func.max(invoices.c.updated_at), func.max(invoices.c.date))
                                                 .where(invoices.c.tenant_id == tenant_id)).one()
    tenants = {t for _, t in verdicts["run-1"]}
    assert len(tenants) == 2
    # At most one call a tenant and run: none before the category is known, one once documents were read
    # (an incremental read overlaps the last one by a little, so it may re-read a few unchanged ones).
    assert pnl_calls["run-1"] == 0 and pnl_calls["run-2"] <= 2 and pnl_calls["run-3"] == 2, pnl_calls
    for tenant_id, info in windows.items():  # the report reached the newest document's month
        assert date.fromisoformat(info["to"]) >= newest[tenant_id][1]
    for tenant in tenants:
        # The first run learns the project category with its load.
        assert "project category is not known yet" in verdicts["run-1"][("project_pnl_matches_xero", tenant)].observed
        second = verdicts["run-2"][("project_pnl_matches_xero", tenant)]
        assert second.passed and (pnl_calls["run-2"] or "no document" in second.observed), second.observed
        third = verdicts["run-3"][("project_pnl_matches_xero", tenant)]
        assert third.passed and third.observed.startswith("0 difference(s) over "), third.observed
        fourth = verdicts["run-4"][("project_pnl_matches_xero", tenant)]
        assert fourth.passed and fourth.observed.startswith("0 difference(s) over "), fourth.observed
        aging = verdicts["run-1"][("ar_aging_matches_trial_balance", tenant)]
        assert aging.passed and not aging.observed.startswith("skipped"), aging.observed


def test_the_report_covers_the_months_the_run_read_and_no_more(tmp_path):
    from intoaec_xero.quality import project_pnl
    from intoaec_xero.streams import get_stream

    raw = RawStore(tmp_path / "raw")
    raw.write_page("run", "t", "invoices", 1, json.dumps({"Invoices": [
        {"InvoiceID": "a", "Date": "/Date(1772928000000+0000)/"},  # 2026-03-08
        {"InvoiceID": "b", "Date": "2026-05-20T00:00:00"}]}).encode())
    raw.write_page("run", "t", "bank_transactions", 1, json.dumps({"BankTransactions": [
        {"BankTransactionID": "c", "Date": "/Date(1775001600000+0000)/"}]}).encode())  # 2026-04-01
    months = project_pnl.changed_months(raw, "run", "t", [get_stream("invoices"), get_stream("bank_transactions")])
    assert months == (date(2026, 3, 1), date(2026, 5, 1))
    today = date(2026, 12, 4)
    assert project_pnl.report_window(today, months) == (date(2026, 3, 1), date(2026, 5, 31))
    assert project_pnl.report_window(today, (date(2026, 12, 1), date(2026, 12, 1))) == (
        date(2026, 12, 1), date(2026, 12, 31))  # an hourly run's usual case: this month alone
    assert project_pnl.report_window(today, (date(2019, 1, 1), date(2026, 6, 1))) == (
        date(2025, 7, 1), date(2026, 6, 30))  # twelve months at most
    assert project_pnl.report_window(today, None) == (date(2026, 1, 1), date(2026, 12, 31))
