"""Sync health per tenant and `intoaec-xero status`: verdicts and exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from intoaec_xero import cli, state
from intoaec_xero.db import upsert
from intoaec_xero.health import FAILING, HEALTHY, NEVER_SYNCED, RECONNECT, STALE, tenant_health
from intoaec_xero.schema import xero_tenants
from intoaec_xero.tokens import STATUS_RECONNECT, TokenCipher, TokenSet, TokenStore

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _tenant(engine, tenant_id, name, key="xero_default"):
    with engine.begin() as conn:
        upsert(conn, xero_tenants, [{"tenant_id": tenant_id, "tenant_name": name, "connection_key": key,
                                     "connection_status": "Connected", "sync_enabled": True}])


def _synced(engine, tenant_id, at, stream="invoices", status="success", run_id="r1", **extra):
    with engine.begin() as conn:
        state.advance(conn, tenant_id, stream, watermark=at, journal_offset=None, full=False)
        from intoaec_xero.schema import sync_state

        conn.execute(sync_state.update().where(sync_state.c.tenant_id == tenant_id)
                     .values(last_success_at=at))
    state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=stream, started_at=at, finished_at=at,
                     status=status, rows_loaded=10, api_calls=2, quality_verdict="passed", **extra)


def test_verdicts(engine):
    _tenant(engine, "fresh", "Fresh Architects")
    _synced(engine, "fresh", NOW - timedelta(minutes=30))
    _tenant(engine, "old", "Old Engineers")
    _synced(engine, "old", NOW - timedelta(hours=5))
    _tenant(engine, "new", "New Builders")
    _tenant(engine, "broken", "Broken Surveyors")
    _synced(engine, "broken", NOW - timedelta(minutes=10))
    _synced(engine, "broken", NOW - timedelta(minutes=5), stream="payments", status="failed", run_id="r2")
    state.record_error(engine, "broken", "payments", "GET /Payments: Xero answered 500")
    verdicts = {h.tenant_id: h for h in tenant_health(engine, now=NOW, threshold=timedelta(hours=2))}
    assert verdicts["fresh"].verdict == HEALTHY and verdicts["fresh"].age_minutes == 30
    assert verdicts["old"].verdict == STALE and "threshold 120 min" in verdicts["old"].reasons[0]
    assert verdicts["new"].verdict == NEVER_SYNCED
    assert verdicts["broken"].verdict == FAILING and "500" in verdicts["broken"].reasons[0]


def test_reconnect_needed_comes_from_the_token_store(engine):
    _tenant(engine, "t", "Grant Expired Ltd", key="xero_other")
    _synced(engine, "t", NOW)
    store = TokenStore(engine, "xero_other", TokenCipher(None))
    store.save(TokenSet(access_token="a", refresh_token="r", expires_at=NOW.timestamp()))
    store.mark(STATUS_RECONNECT)
    [health] = tenant_health(engine, now=NOW)
    assert health.verdict == RECONNECT and "reconnect" in health.reasons[0]


def test_plan_gated_journals_are_reported_not_failed(engine):
    _tenant(engine, "t", "Starter Plan Ltd")
    _synced(engine, "t", NOW)
    state.record_run(engine, run_id="r1", tenant_id="t", stream="journals", started_at=NOW, status="unavailable",
                     message="not on this plan")
    [health] = tenant_health(engine, now=NOW)
    assert health.verdict == HEALTHY
    assert health.journals == "not on this Xero plan"


@pytest.mark.parametrize(("age", "code"), [(timedelta(minutes=5), 0), (timedelta(hours=3), 2)])
def test_status_exit_code_drives_monitoring(engine, capsys, age, code):
    _tenant(engine, "t", "Acme Architects")
    _synced(engine, "t", datetime.now(UTC) - age)
    url = engine.url.render_as_string(hide_password=False)
    assert cli.main(["--db-url", url, "status"]) == code
    assert "Acme Architects" in capsys.readouterr().out
    assert cli.main(["--db-url", url, "status", "--json"]) == code
    [entry] = json.loads(capsys.readouterr().out)
    assert entry["tenant_name"] == "Acme Architects"
    assert entry["verdict"] == ("healthy" if code == 0 else "stale")


def test_status_on_an_empty_database_says_what_to_do(tmp_path, capsys):
    assert cli.main(["--db-url", f"sqlite:///{tmp_path / 'none.db'}", "status"]) == 1
    assert "intoaec-xero db upgrade" in capsys.readouterr().err
