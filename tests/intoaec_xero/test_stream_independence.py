"""Streams are independent within a tenant: one that fails, is missing or is refused lets the rest land."""

from __future__ import annotations

import pytest
from intoaec_xero import report
from intoaec_xero.client import XeroClient
from intoaec_xero.pipeline import extract_tenant, load_tenant, run_sync, selected_streams
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import dq_results, sync_runs
from sqlalchemy import select

from tests.harness.xero import connect

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # repeated full syncs


def _runs(engine, run_id):
    with engine.connect() as conn:
        return {(r.tenant_id, r.stream): r for r in conn.execute(select(sync_runs).where(sync_runs.c.run_id == run_id))}


def test_a_missing_resource_fails_its_stream_alone(engine, tmp_path):
    """A server without /Accounts (404): every other stream of the tenant is still read and loaded."""
    from xero_sandbox.testing import running_sandbox

    with running_sandbox(dataset="small", seed=31, limits=False) as sandbox:
        truth = sandbox.truth()
        first, second = sorted(truth["tenants"])
        settings, store = connect(sandbox, engine, calls_per_minute=0)
        sandbox.faults(endpoint="Accounts", status=404, tenant_id=first)
        client = XeroClient(settings, store, sleep=lambda s: None)
        summary = run_sync(client, settings, engine, RawStore(tmp_path), "r1")
        requests = sandbox.stats()["requests"]

    assert not summary.ok
    [failure] = summary.failures
    assert "accounts extract failed" in failure and first in failure and "404" in failure
    runs = _runs(engine, "r1")
    assert runs[(first, "accounts")].status == "failed"
    for stream in ("contacts", "invoices", "payments", "credit_notes", "journals"):
        assert runs[(first, stream)].status == "success", stream
    # The other streams were requested and landed to the cent; accounts is all that is missing.
    assert any(label.endswith("/Contacts") for label in requests), requests
    mismatches = report.compare_with_truth(engine, truth, {"clients", "invoices", "invoice_lines", "payments",
                                                           "credit_notes"})
    assert mismatches == []
    with engine.connect() as conn:
        ar = conn.execute(select(dq_results).where(dq_results.c.run_id == "r1", dq_results.c.tenant_id == first,
                                                   dq_results.c.check_name == "ar_matches_ledger")).one()
    # A check that needs the missing stream is skipped, saying why, not failed.
    assert ar.passed and "accounts" in ar.observed and "not loaded" in ar.observed


def test_a_retry_reads_only_the_streams_that_failed(engine, tmp_path):
    """An earlier try's extracted streams are kept; only the failed one costs calls again."""
    from xero_sandbox.testing import running_sandbox

    with running_sandbox(dataset="small", seed=32, limits=False) as sandbox:
        tenant_id = sorted(sandbox.truth()["tenants"])[0]
        settings, store = connect(sandbox, engine, calls_per_minute=0, max_attempts=2)
        raw = RawStore(tmp_path)
        tenant = {"tenant_id": tenant_id, "tenant_name": "First firm"}
        sandbox.faults(endpoint="Payments", status=500, tenant_id=tenant_id, count=2)
        client = XeroClient(settings, store, sleep=lambda s: None)
        first_try = extract_tenant(client, engine, raw, "r1", tenant, selected_streams())
        assert [f["stream"] for f in first_try["failed"]] == ["payments"]
        assert first_try["failed"][0]["retriable"] is True
        assert _runs(engine, "r1")[(tenant_id, "payments")].status == "failed"

        retry = XeroClient(settings, store, sleep=lambda s: None)
        second_try = extract_tenant(retry, engine, raw, "r1", tenant, selected_streams())
        assert second_try["failed"] == []
        assert retry.stats.calls == 1  # payments only: the other streams were kept
        summary = load_tenant(engine, raw, second_try)
    assert summary["failed"] == []
    assert {r.status for (t, _), r in _runs(engine, "r1").items() if t == tenant_id} == {"success"}
