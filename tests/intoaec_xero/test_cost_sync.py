"""The cost side (bank transactions, manual journals, purchase orders, overpayments, prepayments and their
allocations, linked transactions) synced from the sandbox into SQLite and PostgreSQL.

A full sync equals the sandbox's truth for every new table; after ``/_sandbox/activity`` a second sync
reads only what changed (If-Modified-Since from the watermark, on the wire) and lands only the changes,
and again equals the truth. A grant without ``accounting.banktransactions.read`` syncs everything else and
says, for bank transactions, that the organisation needs re-consent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from intoaec_xero import health, report
from intoaec_xero.client import XeroClient
from intoaec_xero.extract import WATERMARK_OVERLAP
from intoaec_xero.oauth import finish_authorization, start_authorization
from intoaec_xero.parsing import format_if_modified_since
from intoaec_xero.pipeline import run_sync
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import metadata, sync_runs, sync_state
from intoaec_xero.settings import DEFAULT_SCOPES, XeroSettings
from intoaec_xero.streams import STREAMS, get_stream
from intoaec_xero.tokens import TokenCipher, TokenStore
from sqlalchemy import func, select

pytestmark = pytest.mark.integration

COST_STREAMS = ("bank_transactions", "manual_journals", "purchase_orders", "overpayments", "prepayments",
                "linked_transactions")
COST_TABLES = {t for name in COST_STREAMS for t in STREAMS[name].targets}
SYNCED_TABLES = {t for s in STREAMS.values() for t in s.targets}
# The endpoints whose SDK method (and Xero's spec) take unitdp; PurchaseOrders and ManualJournals do not.
UNITDP = {"bank_transactions", "overpayments", "prepayments"}


@pytest.fixture(scope="module")
def sandbox():
    from xero_sandbox.testing import running_sandbox

    with running_sandbox(dataset="small", seed=3, limits=False) as handle:
        yield handle


def _connect(sandbox, engine, scopes: tuple[str, ...] = DEFAULT_SCOPES) -> tuple[XeroSettings, TokenStore]:
    from xero_sandbox.testing import sign_in_and_consent

    settings = XeroSettings.for_single_host(sandbox.base_url, client_id="sandbox-client",
                                            client_secret="sandbox-secret", calls_per_minute=0, scopes=scopes)
    store = TokenStore(engine, settings.connection_key, TokenCipher.from_environment())
    request = start_authorization(settings, "http://127.0.0.1:9/callback")
    store.save(finish_authorization(settings, request, sign_in_and_consent(request.url)))
    return settings, store


class Wire:
    """What the SDK hands urllib3 for each Xero call: path, query string and headers."""

    def __init__(self, client: XeroClient):
        self.calls: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        rest = client._api_client.rest_client
        send = rest.request

        def request(method, url, query_params=None, headers=None, *args, **kwargs):
            self.calls.append((urlsplit(url).path, dict(query_params or ()), dict(headers or {})))
            return send(method, url, query_params, headers, *args, **kwargs)

        rest.request = request

    def to(self, stream: str, tenant_id: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
        path = "/api.xro/2.0" + get_stream(stream).path
        return [(q, h) for p, q, h in self.calls if p == path and h.get("xero-tenant-id") == tenant_id]


def _sync(settings, store, engine, tmp_path, run_id: str):
    client = XeroClient(settings, store, sleep=lambda s: None)
    wire = Wire(client)
    summary = run_sync(client, settings, engine, RawStore(tmp_path / "raw"), run_id)
    return summary, wire


def _snapshot(engine, table_name: str, tenant_id: str) -> dict[str, tuple]:
    table = metadata.tables[table_name]
    key = [c for c in table.primary_key.columns if c.name != "tenant_id"][0]
    with engine.connect() as conn:
        return {row._mapping[key.name]: tuple(row) for row in conn.execute(
            select(table).where(table.c.tenant_id == tenant_id))}


def _runs(engine, run_id: str) -> dict[tuple[str, str], Any]:
    with engine.connect() as conn:
        return {(r.tenant_id, r.stream): r for r in conn.execute(select(sync_runs).where(sync_runs.c.run_id == run_id))}


def _watermarks(engine) -> dict[tuple[str, str], datetime]:
    with engine.connect() as conn:
        return {(r.tenant_id, r.stream): r.watermark for r in conn.execute(select(sync_state))}


def test_the_cost_side_lands_as_the_truth_says_and_a_second_sync_lands_only_the_changes(sandbox, engine, tmp_path):
    settings, store = _connect(sandbox, engine)
    summary, wire = _sync(settings, store, engine, tmp_path, "cost-1")
    assert summary.ok, summary.failures
    truth = sandbox.truth()
    for tenant in truth["tenants"].values():  # the sandbox publishes a figure for every new table
        assert COST_TABLES <= set(tenant) and set(tenant) & COST_TABLES <= set(report.TRUTH_FIGURES)
    assert report.compare_with_truth(engine, truth, SYNCED_TABLES) == []
    counts = report.row_counts(engine)
    assert all(counts[t].get(table) for t in truth["tenants"] for table in COST_TABLES - {
        "overpayments", "overpayment_allocations"})  # one organisation of `small` has no overpayments

    # Every call of the first (full) sync: the largest page, four-place unit amounts, no If-Modified-Since.
    for tenant_id in truth["tenants"]:
        for name in COST_STREAMS:
            calls = wire.to(name, tenant_id)
            assert calls, name
            for query, headers in calls:
                assert query["page"] >= 1 and "If-Modified-Since" not in headers, name
                assert query.get("unitdp") == (4 if name in UNITDP else None), name
                assert query.get("pageSize") == (None if name == "linked_transactions" else 1000), name

    marks = _watermarks(engine)
    before = {(t, s): _snapshot(engine, STREAMS[s].targets[0], t) for t in truth["tenants"] for s in COST_STREAMS}
    sandbox.advance_clock(3600)
    changed = sandbox.activity(invoices=10, payments=5, bank_transactions=6, manual_journals=6, purchase_orders=6,
                               prepayments=4, overpayments=4, linked_transactions=4)["changes"]
    assert all(changed.values())

    summary, wire = _sync(settings, store, engine, tmp_path, "cost-2")
    assert summary.ok, summary.failures
    assert report.compare_with_truth(engine, sandbox.truth(), SYNCED_TABLES) == []
    runs = _runs(engine, "cost-2")
    landed = dict.fromkeys(COST_STREAMS, 0)
    read = held = 0
    for tenant_id in truth["tenants"]:
        for name in COST_STREAMS:
            stream = STREAMS[name]
            main = stream.targets[0]
            after = _snapshot(engine, main, tenant_id)
            new = set(after) - set(before[tenant_id, name])
            edited = {k for k in set(after) & set(before[tenant_id, name]) if after[k] != before[tenant_id, name][k]}
            run = runs[tenant_id, name]
            # Only the changes landed: the run's counts are exactly the rows that differ.
            assert (run.status, run.rows_inserted, run.rows_updated) == ("success", len(new), len(edited)), name
            landed[name] += len(new) + len(edited)
            calls = wire.to(name, tenant_id)
            if not stream.supports_if_modified_since:
                # Read whole (no If-Modified-Since at Xero): 100 a page, and an empty page ends the walk.
                assert run.rows_extracted == len(after) and run.api_calls == -(-len(after) // 100) + 1, name
                assert all("If-Modified-Since" not in headers for _, headers in calls), name
                continue
            if marks.get((tenant_id, name)) is None:  # nothing read the first time (no overpayments yet): whole
                assert not before[tenant_id, name] and run.rows_extracted == len(after), name
                assert all("If-Modified-Since" not in headers for _, headers in calls), name
                continue
            # Changes only: If-Modified-Since from the first run's watermark (less the overlap) on every call ...
            since = marks[tenant_id, name] - WATERMARK_OVERLAP
            assert {headers["If-Modified-Since"] for _, headers in calls} == {format_if_modified_since(since)}, name
            assert all(query.get("unitdp") == (4 if name in UNITDP else None) for query, _ in calls), name
            # ... so what was read is exactly what Xero changed since then (the overlap's records included).
            table = metadata.tables[main]
            with engine.connect() as conn:
                since_then = conn.execute(select(func.count()).select_from(table).where(
                    table.c.tenant_id == tenant_id, table.c.updated_at >= since)).scalar_one()
            assert run.rows_extracted == since_then, name
            assert run.api_calls == 1, name
            read += run.rows_extracted
            held += len(after)
    assert all(landed.values()), landed  # the activity touched every new stream
    assert read < held / 2, (read, held)  # and the incremental streams read a fraction of what they hold


def test_a_grant_without_the_bank_transactions_scope_syncs_the_rest_and_asks_for_re_consent(sandbox, engine,
                                                                                          tmp_path):
    narrow = tuple(s for s in DEFAULT_SCOPES if s != "accounting.banktransactions.read")
    settings, store = _connect(sandbox, engine, narrow)
    summary, _wire = _sync(settings, store, engine, tmp_path, "narrow")
    assert summary.ok, summary.failures  # not a failure of the run: a person has to consent again
    truth = sandbox.truth()
    # The scope covers BankTransactions and BankTransfers: both wait for the re-consent.
    refused = {"bank_transactions", "bank_transfers"}
    bank = set(STREAMS["bank_transactions"].targets) | set(STREAMS["bank_transfers"].targets)
    assert report.compare_with_truth(engine, truth, SYNCED_TABLES - bank) == []
    counts = report.row_counts(engine)
    runs = _runs(engine, "narrow")
    with engine.connect() as conn:
        errors = {(r.tenant_id, r.stream): r.last_error for r in conn.execute(select(sync_state))}
    for tenant in summary.tenants:
        tenant_id, name = tenant["tenant_id"], tenant["tenant_name"]
        assert not bank & set(counts[tenant_id])
        sentence = (f"{name} ({tenant_id}) needs re-consent for bank transactions: the Xero connection's grant does "
                    "not include the accounting.banktransactions.read scope, so Xero refused GET /BankTransactions "
                    "(401 AuthorizationUnsuccessful) and bank transactions are not synced for it. Reconnect Xero "
                    "for this organisation (the Xero page's Reconnect, or `intoaec-xero connect`) and approve the "
                    "new access; the other streams still sync.")
        run = runs[tenant_id, "bank_transactions"]
        assert (run.status, run.message, errors[tenant_id, "bank_transactions"]) == ("unavailable", sentence, sentence)
        assert tenant["streams"]["bank_transactions"] == {"status": "unavailable", "reason": sentence}
        assert runs[tenant_id, "bank_transfers"].status == "unavailable"
        assert "needs re-consent for bank transfers" in runs[tenant_id, "bank_transfers"].message
        others = {s: r.status for (t, s), r in runs.items() if t == tenant_id and s not in refused}
        assert others == dict.fromkeys(set(STREAMS) - refused, "success")
        assert all(errors[tenant_id, s] is None for s in others)
    # `status` says it for each organisation, and does not call it a failure.
    healths = health.tenant_health(engine)
    assert {h.tenant_id: h.needs_consent for h in healths} == {t["tenant_id"]: ["bank transactions", "bank transfers"]
                                                              for t in summary.tenants}
    table = health.format_table(healths)
    for tenant in summary.tenants:
        assert f"{tenant['tenant_name']}: needs re-consent for bank transactions, bank transfers: " in table
    assert all(h.verdict == health.HEALTHY for h in healths)

    # The organisation consents again, with the scope: bank transactions land and the error is cleared.
    settings, store = _connect(sandbox, engine)
    summary, _wire = _sync(settings, store, engine, tmp_path, "consented")
    assert summary.ok, summary.failures
    assert report.compare_with_truth(engine, sandbox.truth(), SYNCED_TABLES) == []
    with engine.connect() as conn:
        assert conn.execute(select(sync_state.c.last_error).where(sync_state.c.stream.in_(refused))
                            ).scalars().all() == [None] * 4
    assert all(h.needs_consent == [] for h in health.tenant_health(engine))
