"""The general ledger derived from documents, for apps Xero refuses Journals to, against the sandbox's books.

The sandbox posts every document through its own journals (as Xero does) and its truth gives each
tenant's net by account code. With its app gate on, /Journals answers 401 for every tenant, so the
pipeline derives the ledger from the synced documents alone: equality per account means every
document of every kind was synced and posted as Xero posts it (control accounts, tax, rounding,
payments and realised currency gains, spend and receive money, transfers, manual journals, retainers
applied).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from intoaec_xero import ledger
from intoaec_xero.health import format_table, tenant_health
from intoaec_xero.pipeline import run_sync
from intoaec_xero.project_finance import cents
from intoaec_xero.quality import ledger_checks
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import dq_results, invoices, journal_lines, journals, sync_runs
from sqlalchemy import delete, func, select

from tests.harness.databases import migrated_engine
from tests.harness.xero import connect
from tests.intoaec_xero.backfill.conftest import sync_client

pytestmark = pytest.mark.integration


def _net_by_code(engine, tenant_id: str) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    with engine.connect() as conn:
        for code, net in conn.execute(select(journal_lines.c.account_code, journal_lines.c.net_amount)
                                      .where(journal_lines.c.tenant_id == tenant_id)):
            out[code] += cents(net)
    return {code: v for code, v in out.items() if v}


def _truth_by_code(books: dict) -> dict[str, int]:
    return {code: int(Decimal(v) * 100) for code, v in books["journal_lines"]["net_by_account_code"].items()
            if Decimal(v)}


def _checks(engine, run_id: str, name: str) -> dict[str, tuple[bool, str, list]]:
    with engine.connect() as conn:
        return {r.tenant_id: (r.passed, r.observed, r.failing_keys or []) for r in conn.execute(
            select(dq_results).where(dq_results.c.run_id == run_id, dq_results.c.check_name == name))}


def _assert_ledger_equals_the_books(engine, truth: dict, run_id: str) -> None:
    for tenant_id, books in truth["tenants"].items():
        assert _net_by_code(engine, tenant_id) == _truth_by_code(books), tenant_id
    with engine.connect() as conn:
        origins = dict(conn.execute(select(journals.c.origin, func.count()).group_by(journals.c.origin)).all())
        assert set(origins) == {ledger.DERIVED}, origins
        statuses = conn.execute(select(sync_runs.c.status, sync_runs.c.message).where(
            sync_runs.c.run_id == run_id, sync_runs.c.stream == "journals")).all()
    assert statuses and all(s.status == "derived" and ledger.JOURNALS_REFUSED in s.message for s in statuses)
    for name in ("ledger_matches_trial_balance", "journal_balances"):
        verdicts = _checks(engine, run_id, name)
        assert set(verdicts) == set(truth["tenants"]), name
        assert all(passed and "skipped" not in observed for passed, observed, _ in verdicts.values()), verdicts


@pytest.mark.parametrize("dataset", ["small", pytest.param("medium", marks=pytest.mark.slow)])
def test_the_derived_ledger_equals_the_books_before_and_after_activity(db_url, dataset, tmp_path):
    from xero_sandbox.testing import running_sandbox

    with migrated_engine(db_url) as engine, running_sandbox(dataset=dataset, seed=4, limits=False,
                                                            app_without_journals=True) as sandbox:
        settings, store = connect(sandbox, engine, calls_per_minute=0)
        client = sync_client(settings, store)
        raw = RawStore(tmp_path / "raw")
        summary = run_sync(client, settings, engine, raw, "run-1")
        assert summary.ok, summary.failures
        _assert_ledger_equals_the_books(engine, sandbox.truth(), "run-1")

        sandbox.activity(invoices=10, payments=8, bank_transfers=3)
        summary = run_sync(client, settings, engine, raw, "run-2")
        assert summary.ok, summary.failures
        _assert_ledger_equals_the_books(engine, sandbox.truth(), "run-2")
        # Nothing changed: the ledger is left as it is, and says so.
        summary = run_sync(client, settings, engine, raw, "run-3")
        assert summary.ok, summary.failures
        assert all("no document changed" in t["streams"]["journals"]["reason"] for t in summary.tenants)
        for tenant_id, books in sandbox.truth()["tenants"].items():
            assert _net_by_code(engine, tenant_id) == _truth_by_code(books)


def test_payroll_no_document_shows_is_named_and_balanced_never_hidden(tmp_path):
    from xero_sandbox.testing import running_sandbox

    sqlite = f"sqlite:///{tmp_path / 'intoaec.db'}"
    with migrated_engine(sqlite) as engine, running_sandbox(dataset="small", seed=6, limits=False,
                                                            app_without_journals=True) as sandbox:
        settings, store = connect(sandbox, engine, calls_per_minute=0)
        client = sync_client(settings, store)
        raw = RawStore(tmp_path / "raw")
        assert run_sync(client, settings, engine, raw, "run-1").ok
        # Payslips post to Xero's ledger (wages against the bank) with no document the API shows.
        sandbox.activity(invoices=1, payments=0, payslips=2)
        summary = run_sync(client, settings, engine, raw, "run-2")
        truth = sandbox.truth()["tenants"]
        verdicts = _checks(engine, "run-2", "ledger_matches_trial_balance")
        for tenant_id, (passed, observed, keys) in verdicts.items():
            assert not passed, observed
            assert "balancing line" in observed
            named = {key.split(" ")[0] for key in keys}
            assert named == {"477", "090"}, keys  # wages and the bank, nothing else
            assert all("not explained" in key for key in keys)
            # The balancing lines tie the ledger's totals to Xero's books.
            assert _net_by_code(engine, tenant_id) == _truth_by_code(truth[tenant_id])
            with engine.connect() as conn:
                balancing = conn.execute(select(journal_lines.c.account_code, journal_lines.c.net_amount).where(
                    journal_lines.c.tenant_id == tenant_id, journal_lines.c.source_type == "BALANCING")).all()
            assert {code for code, _ in balancing} == {"477", "090"}
            assert sum(cents(v) for _, v in balancing) == 0
        # A warning, not a failure: the run did what it could, and the gap is on the page and in status.
        assert summary.ok, summary.failures
        text = format_table(tenant_health(engine))
        assert ledger.JOURNALS_REFUSED in text and "not explained by any document" in text and "477" in text


def test_where_xero_serves_journals_the_derived_ledger_is_compared_and_a_missed_document_is_named(tmp_path):
    from xero_sandbox.testing import running_sandbox

    sqlite = f"sqlite:///{tmp_path / 'intoaec.db'}"
    with migrated_engine(sqlite) as engine, running_sandbox(dataset="small", seed=8, limits=False) as sandbox:
        settings, store = connect(sandbox, engine, calls_per_minute=0)
        client = sync_client(settings, store)
        summary = run_sync(client, settings, engine, RawStore(tmp_path / "raw"), "run-1")
        assert summary.ok, summary.failures
        verdicts = _checks(engine, "run-1", "derived_ledger_matches_journals")
        assert len(verdicts) == 2 and all(passed and "skipped" not in obs for passed, obs, _ in verdicts.values())
        with engine.connect() as conn:
            assert set(conn.execute(select(journals.c.origin).distinct()).scalars()) == {ledger.XERO}
        # An invoice the sync "missed": its journal in Xero has no document behind it here.
        tenant_id = next(iter(verdicts))
        with engine.begin() as conn:
            invoice_id = conn.execute(select(invoices.c.invoice_id).where(
                invoices.c.tenant_id == tenant_id, invoices.c.status == "AUTHORISED", invoices.c.type == "ACCREC",
                invoices.c.amount_paid == 0, invoices.c.amount_credited == 0).limit(1)).scalar_one()
            conn.execute(delete(invoices).where(invoices.c.tenant_id == tenant_id,
                                                invoices.c.invoice_id == invoice_id))
        with engine.connect() as conn:
            outcomes = dict.fromkeys((*ledger_checks.LEDGER_DOCUMENT_STREAMS, "accounts"), "success")
            result = ledger_checks.derived_matches_journals(conn, tenant_id, {"invoices"}, outcomes)
        assert not result.passed
        assert result.failing_keys and all(f"ACCREC {invoice_id}" in key for key in result.failing_keys)


def test_a_connection_set_to_documents_never_reads_journals(tmp_path):
    from xero_sandbox.testing import running_sandbox

    sqlite = f"sqlite:///{tmp_path / 'intoaec.db'}"
    with migrated_engine(sqlite) as engine, running_sandbox(dataset="small", seed=9, limits=False) as sandbox:
        settings, store = connect(sandbox, engine, calls_per_minute=0, ledger_source="documents")
        summary = run_sync(sync_client(settings, store), settings, engine, RawStore(tmp_path / "raw"), "run-1")
        assert summary.ok, summary.failures
        assert not any(label.endswith("/Journals") for label in sandbox.stats()["requests"])
        for tenant_id, books in sandbox.truth()["tenants"].items():
            assert _net_by_code(engine, tenant_id) == _truth_by_code(books)
        with engine.connect() as conn:
            messages = conn.execute(select(sync_runs.c.message).where(sync_runs.c.stream == "journals")).scalars()
            assert all(ledger.JOURNALS_NOT_USED in m for m in messages)
        # A backfill window that loads history marks the ledger stale: the next run rebuilds it, though no
        # document changed since the last sync.
        summary = run_sync(sync_client(settings, store), settings, engine, RawStore(tmp_path / "raw"), "run-2")
        assert all("no document changed" in t["streams"]["journals"]["reason"] for t in summary.tenants)
        stale = summary.tenants[0]["tenant_id"]
        ledger.mark_stale(engine, stale)
        summary = run_sync(sync_client(settings, store), settings, engine, RawStore(tmp_path / "raw"), "run-3")
        reasons = {t["tenant_id"]: t["streams"]["journals"]["reason"] for t in summary.tenants}
        assert "lines derived in" in reasons.pop(stale)
        assert all("no document changed" in r for r in reasons.values())
        assert not ledger.is_stale(engine, stale)


def test_the_ledger_source_is_journals_or_documents():
    from intoaec_xero.errors import ConfigurationError
    from intoaec_xero.settings import XeroSettings

    assert XeroSettings(client_id="c", client_secret="s").ledger_source == "journals"
    with pytest.raises(ConfigurationError, match="'xero_default' has ledger_source = 'xero': it must be"):
        XeroSettings(client_id="c", client_secret="s", ledger_source="xero")
