"""Reconciliation on the sandbox's ``mixed`` books (two organisations whose Journals Xero serves):
the ledger equals Xero's own Trial Balance, every journal balances, receivables and payments
agree, and the ledger derived from the documents equals Xero's journals; one altered row is
enough to fail them."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from intoaec_xero import db, report
from intoaec_xero.client import XeroClient
from intoaec_xero.pipeline import run_sync
from intoaec_xero.quality import docs
from intoaec_xero.quality.reconcile import reconcile_tenant
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import dq_results, invoices, journal_lines, sync_runs
from intoaec_xero.streams import STREAMS
from sqlalchemy import select, update

from tests.harness.xero import connect

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    from xero_sandbox.testing import running_sandbox

    root = tmp_path_factory.mktemp("mixed")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep(level=logging.INFO)
    logger = logging.getLogger("intoaec_xero")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    with pytest.MonkeyPatch.context() as env, running_sandbox(dataset="mixed", seed=1, limits=False) as sandbox:
        env.setenv("INTOAEC_DATA_DIR", str(root / "var"))
        engine = db.create_db_engine(f"sqlite:///{root / 'intoaec.db'}")
        db.upgrade(engine)
        settings, store = connect(sandbox, engine, calls_per_minute=0)
        raw = RawStore(root / "raw")
        summary = run_sync(XeroClient(settings, store, sleep=lambda s: None), settings, engine, raw, "full")
        again = run_sync(XeroClient(settings, store, sleep=lambda s: None), settings, engine, raw, "again")
        truth = sandbox.truth()
        connections = [c["tenantId"] for c in sandbox.health()["tenants"]]
    logger.removeHandler(handler)
    logger.setLevel(previous)
    yield {"engine": engine, "raw": raw, "summary": summary, "again": again, "truth": truth, "root": root / "var",
           "ledgers": connections, "log": records}
    engine.dispose()


def _verdicts(engine, run_id: str) -> dict[tuple[str, str], dict]:
    with engine.connect() as conn:
        rows = conn.execute(select(dq_results).where(dq_results.c.run_id == run_id)).mappings().all()
    return {(r["tenant_id"], r["check_name"]): dict(r) for r in rows}


def test_the_books_pass_every_check_and_the_ledger_equals_xeros_trial_balance(books):
    engine = books["engine"]
    assert books["summary"].ok, books["summary"].failures
    assert report.compare_with_truth(engine, books["truth"]) == []
    verdicts = _verdicts(engine, "full")
    failed = [(t, c, v["observed"]) for (t, c), v in verdicts.items() if not v["passed"]]
    assert failed == []
    for tenant in books["ledgers"]:
        for check in ("trial_balance", "journal_balances", "ar_matches_ledger", "payments_match_amount_paid",
                      "lines_sum_to_invoice", "journal_balances"):
            verdict = verdicts[(tenant, check)]
            assert verdict["passed"] and not verdict["observed"].startswith("skipped"), (check, verdict)
        assert verdicts[(tenant, "trial_balance")]["observed"].startswith("0 of ")
    with engine.connect() as conn:
        quality = dict(conn.execute(select(sync_runs.c.stream, sync_runs.c.quality_verdict).where(
            sync_runs.c.run_id == "full", sync_runs.c.tenant_id == books["ledgers"][0])).all())
    assert set(quality.values()) == {"passed"}


def test_where_xero_serves_journals_the_ledger_derived_from_documents_equals_them(books):
    verdicts = _verdicts(books["engine"], "full")
    for tenant in books["ledgers"]:
        verdict = verdicts[(tenant, "derived_ledger_matches_journals")]
        assert verdict["passed"] and verdict["observed"].endswith("account-months equal"), verdict
    # The next run read no document and no journal: nothing to compare, and it says so.
    again = _verdicts(books["engine"], "again")
    for tenant in books["ledgers"]:
        assert again[(tenant, "derived_ledger_matches_journals")]["observed"].startswith("skipped: ")


def test_a_run_without_new_journals_spends_no_call_on_the_trial_balance(books):
    assert books["again"].ok, books["again"].failures
    verdict = _verdicts(books["engine"], "again")[(books["ledgers"][0], "trial_balance")]
    assert verdict["observed"] == ("skipped: no new journals since the last run, so neither the ledger nor "
                                   "Xero's trial balance changed")


def test_data_docs_are_built_and_their_path_is_logged(books):
    index = docs.latest_index(books["root"])
    assert index is not None and index.read_text().count("xero.") > 0
    assert any("Data Docs: file://" in line and str(index) in line for line in books["log"])
    # Both runs are kept (the newest few are), each with a page for every stream it read rows of,
    # under the stream's table.
    validations = books["root"] / "data_docs" / "validations" / "xero"
    pages = {p.relative_to(validations).parts[:2] for p in validations.rglob("*.html")}
    with books["engine"].connect() as conn:
        validated = {(STREAMS[stream].targets[0], run) for stream, run in conn.execute(
            select(sync_runs.c.stream, sync_runs.c.run_id).where(sync_runs.c.rows_extracted > 0))}
    assert {run for _, run in validated} == {"full", "again"}
    assert validated <= pages


@pytest.fixture
def altered(books):
    """Undo whatever a test changes in the loaded tables."""
    engine = books["engine"]
    undo = []
    yield engine, undo
    with engine.begin() as conn:
        for statement in undo:
            conn.execute(statement)


def _reconcile(books, tenant_id):
    manifest = next(m for m in books["raw"].manifests("full") if m["tenant_id"] == tenant_id)
    outcomes = {s["stream"]: "success" for s in manifest["streams"]}
    return {r.check: r for r in reconcile_tenant(books["engine"], books["raw"], manifest, outcomes)}


def test_one_altered_journal_line_fails_the_trial_balance_and_its_journal(books, altered):
    engine, undo = altered
    tenant = books["ledgers"][0]
    assert _reconcile(books, tenant)["trial_balance"].passed
    with engine.begin() as conn:
        line = conn.execute(select(journal_lines.c.journal_line_id, journal_lines.c.net_amount,
                                   journal_lines.c.account_code)
                            .where(journal_lines.c.tenant_id == tenant).limit(1)).one()
        conn.execute(update(journal_lines).where(journal_lines.c.journal_line_id == line.journal_line_id)
                     .values(net_amount=line.net_amount + Decimal("0.01")))
    undo.append(update(journal_lines).where(journal_lines.c.journal_line_id == line.journal_line_id)
                .values(net_amount=line.net_amount))
    checks = _reconcile(books, tenant)
    tb = checks["trial_balance"]
    assert not tb.passed and tb.severity == "error"
    assert tb.observed.startswith("1 of ") and tb.failing_keys[0].startswith(f"{line.account_code}: ledger ")
    assert not checks["journal_balances"].passed and "off by 0.01" in checks["journal_balances"].failing_keys[0]


def test_payments_and_receivables_fail_when_an_invoice_disagrees(books, altered):
    engine, undo = altered
    tenant = books["ledgers"][0]
    with engine.begin() as conn:
        paid = conn.execute(select(invoices.c.invoice_id, invoices.c.invoice_number, invoices.c.amount_paid,
                                   invoices.c.amount_due)
                            .where(invoices.c.tenant_id == tenant, invoices.c.status == "AUTHORISED",
                                   invoices.c.type == "ACCREC", invoices.c.amount_paid > 0).limit(1)).one()
        conn.execute(update(invoices).where(invoices.c.invoice_id == paid.invoice_id)
                     .values(amount_paid=paid.amount_paid + 1, amount_due=paid.amount_due + 250000))
    undo.append(update(invoices).where(invoices.c.invoice_id == paid.invoice_id)
                .values(amount_paid=paid.amount_paid, amount_due=paid.amount_due))
    checks = _reconcile(books, tenant)
    payments = checks["payments_match_amount_paid"]
    assert not payments.passed and payments.severity == "warn"
    assert payments.failing_keys == [f"{paid.invoice_number}: amount_paid {paid.amount_paid + 1}, "
                                     f"payments {paid.amount_paid}"]
    assert not checks["ar_matches_ledger"].passed and "difference" in checks["ar_matches_ledger"].observed
