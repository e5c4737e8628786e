"""``intoaec-xero backfill status``: what the data team reads while a backfill runs."""

from __future__ import annotations

import json

import pytest
from intoaec_xero import db
from intoaec_xero.backfill import progress
from intoaec_xero.cli import main
from intoaec_xero.db import upsert
from intoaec_xero.schema import xero_tenants


@pytest.fixture
def url(sqlite_url):
    engine = db.create_db_engine(sqlite_url)
    db.upgrade(engine)
    with engine.begin() as conn:
        upsert(conn, xero_tenants, [
            {"tenant_id": "t-1", "tenant_name": "Harbourside Architects Ltd", "connection_key": "xero_default",
             "connection_status": "Connected", "sync_enabled": True},
            {"tenant_id": "t-2", "tenant_name": "Brick & Beam", "connection_key": "xero_default",
             "connection_status": "Connected", "sync_enabled": True},
        ])
    progress.update(engine, "t-1", "journals", lambda e: {
        "status": "waiting_for_quota", "target": 223_481, "offset": 45_000, "journals_loaded": 45_000,
        "lines_loaded": 124_800, "calls_total": 475, "eta": "2026-11-27T09:00:00+00:00",
        "quota_stopped_at": "2026-11-25T17:00:00+00:00",
        "last_pass": {"run_id": "r", "at": "2026-11-25T17:00:00+00:00", "status": "waiting_for_quota",
                      "calls": 475, "journals": 45_000, "lines": 124_800},
        "message": "Harbourside Architects Ltd: today's share of Xero's quota is used."})
    for month in ("2024-01-01..2024-02-01", "2024-02-01..2024-03-01"):
        progress.update(engine, "t-1", "invoices", lambda e, m=month: {
            "windows": {**e.get("windows", {}), m: {"status": "loaded", "records": 100, "calls": 1}}})
    progress.update(engine, "t-1", "payments", lambda e: {"windows": {
        "2024-01-01..2024-02-01": {"status": "failed", "error": "Xero answered 503"}}})
    progress.update(engine, "t-2", "journals", lambda e: {
        "status": "unavailable", "target": 0, "offset": 0,
        "message": "Brick & Beam: this Xero app is not approved for the Journals endpoint (Xero's Advanced tier): "
                   "the ledger is derived from documents; the journal walk is skipped and the documents' backfill "
                   "windows carry the ledger's history."})
    engine.dispose()
    return sqlite_url


def test_status_shows_position_eta_and_windows_per_tenant(url, capsys):
    assert main(["--db-url", url, "backfill", "status"]) == 0
    out = capsys.readouterr().out
    assert "Harbourside Architects Ltd" in out
    assert "waiting_for_quota: offset 45,000 of 223,481 (20.1%)" in out
    assert "~1,785 calls left, ETA 2026-11-27 09:00 UTC" in out
    assert "today's share of Xero's quota is used" in out
    assert "2 window(s) loaded (2024-01-01 … 2024-03-01), 200 records" in out
    assert "not loaded: 2024-01-01..2024-02-01 (Xero answered 503)" in out
    assert "Brick & Beam" in out and "the journal walk is skipped" in out


def test_status_as_json_and_for_one_tenant(url, capsys):
    assert main(["--db-url", url, "backfill", "status", "--json", "--tenant", "harbourside architects ltd"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["tenant_id"] for r in rows] == ["t-1"]
    journals = rows[0]["journals"]
    assert (journals["percent"], journals["calls_left"], journals["status"]) == (20.1, 1785, "waiting_for_quota")
    assert rows[0]["windows"]["invoices"]["loaded"] == 2


def test_status_before_any_backfill(sqlite_url, capsys):
    assert main(["--db-url", sqlite_url, "db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["--db-url", sqlite_url, "backfill", "status"]) == 0
    assert "No backfill has run yet" in capsys.readouterr().out


def test_intoaec_xero_status_carries_the_same_backfill(url, capsys):
    assert main(["--db-url", url, "backfill", "status", "--json"]) == 0
    progress_by_tenant = {r.pop("tenant_id"): r for r in json.loads(capsys.readouterr().out)}
    assert main(["--db-url", url, "status", "--json"]) == 2  # never synced: only backfilled
    health = {h["tenant_id"]: h for h in json.loads(capsys.readouterr().out)}
    for tenant_id, summary in progress_by_tenant.items():
        del summary["tenant_name"]
        assert health[tenant_id]["backfill"] == summary
    assert main(["--db-url", url, "status"]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert next(line for line in lines if line.startswith("Harbourside")).endswith(
        "journals 20%, 2 windows, 1 window failed")
    assert next(line for line in lines if line.startswith("Brick & Beam")).endswith("no journals")
