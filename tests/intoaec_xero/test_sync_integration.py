"""The pipeline against the local Xero sandbox, into SQLite and a real PostgreSQL.

What landed must equal the sandbox's ground truth (counts and money to the cent), and a second
run must change nothing.
"""

from __future__ import annotations

import time

import pytest
from intoaec_xero import db, report
from intoaec_xero.client import XeroClient
from intoaec_xero.errors import XeroAuthError, XeroUnavailable
from intoaec_xero.oauth import finish_authorization, start_authorization
from intoaec_xero.pipeline import run_sync
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import clients, invoice_lines, invoices, sync_runs, sync_state
from intoaec_xero.settings import XeroSettings
from intoaec_xero.streams import STREAMS
from intoaec_xero.tokens import TokenCipher, TokenStore
from sqlalchemy import select

pytestmark = pytest.mark.integration

SYNCED_TABLES = {t for s in STREAMS.values() for t in s.targets}


@pytest.fixture(scope="module")
def sandbox():
    from xero_sandbox.testing import running_sandbox

    # Limits off: these tests sync the same tenants many times a minute; pacing has its own tests.
    with running_sandbox(dataset="small", seed=3, limits=False) as handle:
        yield handle


def _connect(sandbox, engine) -> tuple[XeroSettings, TokenStore]:
    from xero_sandbox.testing import sign_in_and_consent

    settings = XeroSettings.for_single_host(sandbox.base_url, client_id="sandbox-client",
                                            client_secret="sandbox-secret", calls_per_minute=0)
    store = TokenStore(engine, settings.connection_key, TokenCipher.from_environment())
    request = start_authorization(settings, "http://127.0.0.1:9/callback")
    store.save(finish_authorization(settings, request, sign_in_and_consent(request.url)))
    return settings, store


def _sync(settings, store, engine, tmp_path, run_id):
    client = XeroClient(settings, store, sleep=lambda s: None)
    return run_sync(client, settings, engine, RawStore(tmp_path / "raw"), run_id), client


def test_full_sync_equals_the_truth_and_a_second_run_changes_nothing(sandbox, engine, tmp_path):
    settings, store = _connect(sandbox, engine)
    summary, client = _sync(settings, store, engine, tmp_path, "run-1")
    assert summary.ok, summary.failures
    truth = sandbox.truth()
    assert len(summary.tenants) == len(truth["tenants"]) == 2
    assert report.compare_with_truth(engine, truth, SYNCED_TABLES) == []
    first_counts = report.row_counts(engine)
    with engine.connect() as conn:
        before = {t.name: conn.execute(select(t).order_by(*t.primary_key.columns)).all()
                  for t in (clients, invoices, invoice_lines)}

    summary, client = _sync(settings, store, engine, tmp_path, "run-2")
    assert summary.ok, summary.failures
    assert report.row_counts(engine) == first_counts
    with engine.connect() as conn:
        after = {t.name: conn.execute(select(t).order_by(*t.primary_key.columns)).all()
                 for t in (clients, invoices, invoice_lines)}
    assert after == before
    # the second run is incremental: If-Modified-Since from the stored watermark
    with engine.connect() as conn:
        marks = conn.execute(select(sync_state.c.stream, sync_state.c.watermark)).all()
        runs = conn.execute(select(sync_runs).where(sync_runs.c.run_id == "run-2")).mappings().all()
    cursor_streams = {s.name for s in STREAMS.values() if s.cursor}
    assert {m.stream for m in marks if m.watermark is not None} == cursor_streams
    assert {r["status"] for r in runs} == {"success"}
    # a run with no changes costs one call per stream and tenant; LinkedTransactions (no If-Modified-Since,
    # no pagination object) are read whole, and only an empty page ends them: one page of them and the empty one
    assert {r["stream"]: r["api_calls"] for r in runs if r["tenant_id"] == runs[0]["tenant_id"]} == {
        name: 2 if name == "linked_transactions" else 1 for name in STREAMS}


def test_money_and_dates_are_typed_on_both_backends(sandbox, engine, tmp_path):
    settings, store = _connect(sandbox, engine)
    summary, _ = _sync(settings, store, engine, tmp_path, "run-types")
    assert summary.ok
    with engine.connect() as conn:
        row = conn.execute(select(invoices.c.total, invoices.c.date, invoices.c.updated_at).limit(1)).one()
    from datetime import date, datetime
    from decimal import Decimal

    assert isinstance(row.total, Decimal) and row.total == row.total.quantize(Decimal("0.01"))
    assert isinstance(row.date, date) and not isinstance(row.date, datetime)
    assert isinstance(row.updated_at, datetime)


def test_an_unreachable_xero_fails_with_one_clear_sentence(engine):
    settings = XeroSettings.for_single_host("http://127.0.0.1:9", client_id="x", client_secret="y", max_attempts=2)
    store = TokenStore(engine, settings.connection_key, TokenCipher.from_environment())
    from intoaec_xero.tokens import TokenSet

    store.save(TokenSet(access_token="a", refresh_token="r", expires_at=time.time() + 3600))
    client = XeroClient(settings, store, sleep=lambda s: None)
    with pytest.raises(XeroUnavailable, match="cannot reach Xero .connection refused."):
        client.connections()


def test_a_failed_stream_fails_alone_and_the_rest_lands(sandbox, engine, tmp_path):
    settings, store = _connect(sandbox, engine)
    truth = sandbox.truth()
    failing, healthy = sorted(truth["tenants"])
    sandbox.faults(endpoint="Payments", status=500, tenant_id=failing)
    try:
        summary, _ = _sync(settings, store, engine, tmp_path, "run-fault")
    finally:
        sandbox.clear_faults()
    assert len(summary.failures) == 1 and "payments extract failed" in summary.failures[0]
    assert "500" in summary.failures[0] and failing in summary.failures[0]
    assert report.compare_with_truth(engine, {"tenants": {healthy: truth["tenants"][healthy]}}, SYNCED_TABLES) == []
    # The failing tenant's other streams landed too; only its payments are missing.
    without_payments = SYNCED_TABLES - {"payments"}
    assert report.compare_with_truth(engine, {"tenants": {failing: truth["tenants"][failing]}}, without_payments) == []
    assert "payments" not in report.row_counts(engine)[failing]
    with engine.connect() as conn:
        failed = conn.execute(select(sync_runs.c.status).where(sync_runs.c.tenant_id == failing,
                                                               sync_runs.c.stream == "payments")).scalar_one()
        error = conn.execute(select(sync_state.c.last_error).where(sync_state.c.tenant_id == failing,
                                                                   sync_state.c.stream == "payments")).scalar_one()
    assert failed == "failed" and "500" in error


def test_a_revoked_grant_is_an_auth_error_not_a_retry_loop(sandbox, engine, tmp_path):
    settings, store = _connect(sandbox, engine)
    tokens = store.load()
    tokens.refresh_token = "not-a-real-refresh-token"
    tokens.expires_at = 0
    store.save(tokens)
    client = XeroClient(settings, store, sleep=lambda s: None)
    with pytest.raises(XeroAuthError, match="invalid_grant"):
        client.connections()
    assert store.status() == "reconnect_needed"
    assert db.describe(engine)


def test_an_invoice_listed_twice_keeps_only_its_latest_lines(engine, tmp_path):
    """Xero can list an invoice on two pages when it is edited mid-read; the later version wins whole."""
    import gzip
    import json

    from intoaec_xero.extract import StreamExtract
    from intoaec_xero.load import load_stream
    from intoaec_xero.streams import get_stream

    def invoice(lines):
        return {"InvoiceID": "inv-1", "Type": "ACCREC", "Status": "AUTHORISED", "Total": 10,
                "UpdatedDateUTC": "/Date(1700000000000+0000)/",
                "LineItems": [{"LineItemID": line, "LineAmount": 5} for line in lines]}

    raw = RawStore(tmp_path)
    raw.write_page("r", "t", "invoices", 1, json.dumps({"Invoices": [invoice(["a", "b"])]}).encode())
    raw.write_page("r", "t", "invoices", 2, json.dumps({"Invoices": [invoice(["c"])]}).encode())
    assert gzip  # pages are gzipped by the store
    load_stream(engine, raw, "r", "t", get_stream("invoices"), StreamExtract(stream="invoices"))
    with engine.connect() as conn:
        lines = conn.execute(select(invoice_lines.c.line_item_id)).scalars().all()
    assert lines == ["c"]


def test_a_failed_stream_is_named_and_the_run_counts_as_partly_failed(sandbox, engine, tmp_path):
    """Every other stream loads and reads as success; the failed one is the tenant's reason."""
    from intoaec_xero.health import FAILING, run_history, tenant_health

    settings, store = _connect(sandbox, engine)
    failing, healthy = sorted(sandbox.truth()["tenants"])
    sandbox.faults(endpoint="Payments", status=500, tenant_id=failing)
    try:
        summary, _ = _sync(settings, store, engine, tmp_path, "run-partial")
    finally:
        sandbox.clear_faults()
    assert len(summary.failures) == 1 and "payments extract failed" in summary.failures[0]
    with engine.connect() as conn:
        runs = conn.execute(select(sync_runs).where(sync_runs.c.run_id == "run-partial")).mappings().all()
    mine = {r["stream"]: r for r in runs if r["tenant_id"] == failing}
    assert {s: r["status"] for s, r in mine.items()} == {**dict.fromkeys(STREAMS, "success"), "payments": "failed"}
    assert mine["payments"]["finished_at"] is not None and mine["payments"]["rows_loaded"] is None
    assert {r["status"] for r in runs if r["tenant_id"] == healthy} == {"success"}

    health = {h.tenant_id: h for h in tenant_health(engine)}[failing]
    assert health.verdict == FAILING
    assert len(health.reasons) == 1 and health.reasons[0].startswith("payments: ") and "500" in health.reasons[0]
    assert {s.stream: s.last_status for s in health.streams}["payments"] == "failed"
    [run] = run_history(engine)[failing]
    assert (run.status, run.problem_streams, run.skipped_streams) == ("partial", 1, 0)
