"""Freshness alerts fire once per incident, not on every run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from intoaec_xero import freshness, state
from intoaec_xero.db import upsert
from intoaec_xero.health import tenant_health
from intoaec_xero.schema import sync_state, xero_tenants

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _tenant_synced_at(engine, at):
    with engine.begin() as conn:
        upsert(conn, xero_tenants, [{"tenant_id": "t", "tenant_name": "Acme Architects", "connection_key": "k",
                                     "connection_status": "Connected", "sync_enabled": True}])
        state.advance(conn, "t", "invoices", watermark=at, journal_offset=None, full=False)
        conn.execute(sync_state.update().where(sync_state.c.stream == "invoices").values(last_success_at=at))
    # Health reads the sync's own runs.
    state.record_run(engine, run_id=f"sync-{at.isoformat()}", tenant_id="t", stream="invoices", started_at=at,
                     finished_at=at, status="success", kind="sync")


def test_one_alert_per_incident(engine):
    _tenant_synced_at(engine, NOW - timedelta(minutes=10))
    assert freshness.check(engine, now=NOW) == {"unhealthy": [], "new_incidents": []}

    later = NOW + timedelta(hours=3)
    first = freshness.check(engine, now=later)
    assert [i["tenant"] for i in first["new_incidents"]] == ["Acme Architects"]
    assert "stale" in first["new_incidents"][0]["incident"]
    again = freshness.check(engine, now=later + timedelta(hours=1))
    assert again["new_incidents"] == [] and again["unhealthy"]  # still stale, but already reported

    _tenant_synced_at(engine, later + timedelta(hours=1))  # it recovers ...
    assert freshness.check(engine, now=later + timedelta(hours=1, minutes=5))["unhealthy"] == []
    stale_again = freshness.check(engine, now=later + timedelta(hours=5))  # ... and a new incident alerts again
    assert len(stale_again["new_incidents"]) == 1
    # the bookkeeping row never shows up as a stream in the health page
    assert [s.stream for s in tenant_health(engine, now=NOW)[0].streams] == ["invoices"]
