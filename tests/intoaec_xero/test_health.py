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
    store = TokenStore(engine, "xero_other", TokenCipher.from_environment())
    store.save(TokenSet(access_token="a", refresh_token="r", expires_at=NOW.timestamp()))
    store.mark(STATUS_RECONNECT)
    [health] = tenant_health(engine, now=NOW)
    assert health.verdict == RECONNECT and "reconnect" in health.reasons[0]


def test_journals_refused_to_the_app_are_a_derived_ledger_not_a_failure(engine):
    from intoaec_xero.health import format_table
    from intoaec_xero.ledger import JOURNALS_REFUSED

    _tenant(engine, "t", "Core Tier Ltd")
    _synced(engine, "t", NOW)
    state.record_run(engine, run_id="r1", tenant_id="t", stream="journals", started_at=NOW, status="derived",
                     message=f"Core Tier Ltd (t): {JOURNALS_REFUSED} (1 journals, 2 lines derived in 0.1 s)")
    [health] = tenant_health(engine, now=NOW)
    assert health.verdict == HEALTHY
    assert (health.journals, health.ledger_note) == ("derived", JOURNALS_REFUSED)
    assert f"Core Tier Ltd: {JOURNALS_REFUSED}" in format_table([health])


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


def _backfill(engine, tenant_id):
    """A journal walk a quarter of the way and two month windows of invoices, one of payments refused."""
    from intoaec_xero.backfill import progress

    progress.update(engine, tenant_id, "journals", lambda e: {
        "status": "waiting_for_quota", "target": 2_200, "offset": 550, "journals_loaded": 550,
        "calls_total": 30, "eta": "2026-11-27T09:00:00+00:00"})
    for month in ("2024-01-01..2024-02-01", "2024-02-01..2024-03-01"):
        progress.update(engine, tenant_id, "invoices", lambda e, m=month: {
            "windows": {**e.get("windows", {}), m: {"status": "loaded", "records": 100}}})
    progress.update(engine, tenant_id, "payments", lambda e: {"windows": {
        "2024-01-01..2024-02-01": {"status": "failed", "error": "Xero answered 503"}}})


def test_backfill_progress_is_part_of_a_tenants_health(engine, capsys):
    _tenant(engine, "t", "Acme Architects")
    _synced(engine, "t", datetime.now(UTC), rows_inserted=7, rows_updated=3)
    _backfill(engine, "t")
    _tenant(engine, "none", "No Backfill Ltd")
    _synced(engine, "none", datetime.now(UTC))
    health = {h.tenant_id: h for h in tenant_health(engine)}
    backfill = health["t"].backfill
    assert health["t"].verdict == HEALTHY  # a backfill under way is progress, not a problem
    journals = backfill["journals"]
    assert (journals["status"], journals["percent"], journals["offset"], journals["target"]) == (
        "waiting_for_quota", 25.0, 550, 2_200)
    assert journals["eta"] == "2026-11-27T09:00:00+00:00" and journals["calls_left"] == 17
    assert backfill["windows"]["invoices"]["loaded"] == 2 and backfill["windows"]["invoices"]["records"] == 200
    assert backfill["windows"]["payments"]["not_loaded"] == {"2024-01-01..2024-02-01": "Xero answered 503"}
    assert health["none"].backfill is None
    # the same summary as `intoaec-xero backfill status`
    from intoaec_xero.backfill.cli import collect

    [status] = collect(engine)
    assert {k: v for k, v in status.items() if k not in ("tenant_id", "tenant_name")} == backfill
    [invoices] = [s for s in health["t"].streams if s.stream == "invoices"]
    assert (invoices.rows_inserted, invoices.rows_updated) == (7, 3)

    url = engine.url.render_as_string(hide_password=False)
    assert cli.main(["--db-url", url, "status"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[-1] == "backfill"
    acme = next(line for line in table if line.startswith("Acme Architects"))
    assert acme.endswith("journals 25%, 2 windows, 1 window failed")
    assert next(line for line in table if line.startswith("No Backfill Ltd")).endswith(" -")
    assert cli.main(["--db-url", url, "status", "--json"]) == 0
    entries = {e["tenant_id"]: e for e in json.loads(capsys.readouterr().out)}
    assert entries["t"]["backfill"]["journals"]["percent"] == 25.0
    assert entries["t"]["backfill"]["windows"]["invoices"]["loaded"] == 2
    assert entries["none"]["backfill"] is None
    assert [s["rows_inserted"] for s in entries["t"]["streams"] if s["stream"] == "invoices"] == [7]


@pytest.mark.parametrize(("journals", "label"), [
    ({"status": "complete", "target": 10, "offset": 10}, "complete"),
    ({"status": "unavailable", "target": 0, "offset": 0}, "no journals"),
    ({"status": "failed", "target": 200, "offset": 50}, "journals 25% failed"),
    ({"status": "planned"}, "journals planned"),
])
def test_backfill_label(journals, label):
    from intoaec_xero.backfill import progress
    from intoaec_xero.health import backfill_label

    summary = progress.summarise([{"stream": "journals", "backfill": journals, "sync_journal_offset": None}])
    assert backfill_label(summary) == label
    assert backfill_label(None) == "-"


def test_a_skipped_stream_is_neither_a_success_nor_a_reason(engine):
    """A stream extracted, then not loaded because another stream of the tenant failed."""
    from intoaec_xero.health import run_history

    _tenant(engine, "t", "Half Done Ltd")
    earlier = NOW - timedelta(minutes=30)
    _synced(engine, "t", earlier, stream="invoices")
    _synced(engine, "t", earlier, stream="payments")
    failed_at = NOW - timedelta(minutes=5)
    state.record_run(engine, run_id="r2", tenant_id="t", stream="invoices", started_at=failed_at,
                     finished_at=failed_at, status="skipped",
                     message="not loaded: payments extract failed for this tenant")
    state.record_run(engine, run_id="r2", tenant_id="t", stream="payments", started_at=failed_at,
                     finished_at=failed_at, status="failed", message="Xero answered 500")
    state.record_error(engine, "t", "payments", "GET /Payments: Xero answered 500")
    [health] = tenant_health(engine, now=NOW)
    assert health.verdict == FAILING
    assert health.reasons == ["payments: GET /Payments: Xero answered 500"]
    invoices = {s.stream: s for s in health.streams}["invoices"]
    assert invoices.last_status == "skipped" and invoices.last_success_at == earlier.isoformat()
    runs = {r.run_id: r for r in run_history(engine, now=NOW)["t"]}
    assert (runs["r2"].status, runs["r2"].skipped_streams) == ("failed", 1)  # nothing of r2 was loaded
    assert runs["r1"].status == "success"


def test_a_run_with_one_stream_rejected_and_others_loaded_is_partial(engine):
    from intoaec_xero.health import run_history

    _tenant(engine, "t", "Partly Ltd")
    _synced(engine, "t", NOW, stream="invoices", run_id="r")
    _synced(engine, "t", NOW, stream="payments", status="rejected", run_id="r")
    [run] = run_history(engine, now=NOW)["t"]
    assert (run.status, run.problem_streams, run.skipped_streams) == ("partial", 1, 0)


def test_quota_left_is_the_newest_reading(engine):
    """Xero counts the day quota down as a run calls, so the last stream's reading is the one to show."""
    _tenant(engine, "t", "Acme Architects")
    earlier, later = NOW - timedelta(minutes=50), NOW - timedelta(minutes=10)
    _synced(engine, "t", earlier, stream="accounts", run_id="r1", quota_day_remaining=4990)
    _synced(engine, "t", later, stream="tracking_categories", run_id="r2", quota_day_remaining=4998)
    _synced(engine, "t", later, stream="journals", run_id="r2", quota_day_remaining=4700)
    _synced(engine, "t", later, stream="contacts", run_id="r2", quota_day_remaining=4996)
    (health,) = tenant_health(engine, now=NOW)
    assert health.quota_day_remaining == 4700


def test_a_connection_that_cannot_be_read_is_failing(engine, capsys):
    from intoaec_xero.errors import XeroUnavailable
    from intoaec_xero.tenants import mark_connection_failed, mark_connection_ok

    _tenant(engine, "t", "Unreachable Partners")
    _synced(engine, "t", datetime.now(UTC) - timedelta(minutes=5))
    mark_connection_failed(engine, "xero_default", XeroUnavailable("POST /connect/token: Xero answered 503."))
    [health] = tenant_health(engine)
    assert health.verdict == FAILING
    assert "could not read the Xero connection" in health.reasons[0]
    url = engine.url.render_as_string(hide_password=False)
    assert cli.main(["--db-url", url, "status"]) == 2
    assert "FAILING" in capsys.readouterr().out

    mark_connection_ok(engine, "xero_default")  # the next run could read it again
    assert tenant_health(engine)[0].verdict == HEALTHY


def test_a_finished_backfill_never_makes_a_failing_tenant_healthy(engine):
    from intoaec_xero.health import run_history

    _tenant(engine, "t", "Failing Builders")
    _synced(engine, "t", NOW - timedelta(hours=1), stream="invoices", run_id="scheduled__1")
    state.record_run(engine, run_id="scheduled__2", tenant_id="t", stream="invoices",
                     started_at=NOW - timedelta(minutes=20), finished_at=NOW - timedelta(minutes=19),
                     status="failed", message="GET /Invoices: Xero answered 500")
    state.record_error(engine, "t", "invoices", "GET /Invoices: Xero answered 500")
    # Then a backfill window loads invoices and advances the stream's state, as loads do.
    with engine.begin() as conn:
        state.advance(conn, "t", "invoices", watermark=None, journal_offset=None, full=False)
    state.record_run(engine, run_id="backfill__2024-01-01", tenant_id="t", stream="invoices",
                     started_at=NOW - timedelta(minutes=2), finished_at=NOW - timedelta(minutes=1), status="success",
                     message="backfill window 2024-01-01..2024-02-01", kind="backfill")
    [health] = tenant_health(engine, now=NOW)
    assert health.verdict == FAILING
    assert health.reasons == ["invoices: GET /Invoices: Xero answered 500"]
    [stream] = health.streams
    assert stream.last_run_id == "scheduled__2" and stream.last_status == "failed"
    # The last success is the sync's, an hour ago, not the backfill's a minute ago.
    assert stream.last_success_at == (NOW - timedelta(hours=1)).isoformat()
    assert [r.run_id for r in run_history(engine, now=NOW)["t"]] == ["scheduled__1", "scheduled__2"]


def test_a_run_that_stopped_half_way_is_not_a_success(engine):
    _tenant(engine, "t", "Crashed Consultants")
    _synced(engine, "t", NOW - timedelta(hours=4), stream="invoices", run_id="r1")
    state.record_run(engine, run_id="r2", tenant_id="t", stream="invoices", started_at=NOW - timedelta(hours=3),
                     status="extracting")
    [health] = tenant_health(engine, now=NOW)
    assert health.verdict == FAILING
    assert health.reasons == ["invoices: run r2 stopped before it finished (left extracting)"]


def test_a_run_with_a_stream_still_open_is_running_never_a_success(engine):
    from intoaec_xero.health import run_history

    _tenant(engine, "t", "Busy Ltd")
    _synced(engine, "t", NOW, stream="invoices", run_id="r")
    state.record_run(engine, run_id="r", tenant_id="t", stream="payments", started_at=NOW, status="extracted")
    [run] = run_history(engine, now=NOW)["t"]
    assert (run.status, run.unfinished_streams) == ("running", 1)


def test_the_next_run_closes_what_a_killed_run_left_open(engine):
    from intoaec_xero.health import run_history

    _tenant(engine, "t", "Killed Ltd")
    state.record_run(engine, run_id="killed", tenant_id="t", stream="invoices", started_at=NOW - timedelta(hours=1),
                     status="extracting")
    state.record_run(engine, run_id="killed", tenant_id="t", stream="payments", started_at=NOW - timedelta(hours=1),
                     status="success", finished_at=NOW - timedelta(minutes=50))
    state.record_run(engine, run_id="window", tenant_id="t", stream="invoices", started_at=NOW - timedelta(hours=1),
                     status="extracting", kind="backfill")  # a backfill's own row: not the sync's to close

    assert state.close_abandoned(engine, "t", "invoices", "next", NOW) == ["killed"]
    assert state.close_abandoned(engine, "t", "invoices", "next", NOW) == []  # closed once
    [killed] = run_history(engine, now=NOW)["t"]
    assert (killed.run_id, killed.status, killed.unfinished_streams) == ("killed", "partial", 0)
    with engine.connect() as conn:
        from intoaec_xero.schema import sync_runs
        from sqlalchemy import select

        rows = {(r.run_id, r.stream): (r.status, r.message) for r in conn.execute(select(sync_runs))}
    assert rows[("killed", "invoices")][0] == "failed" and "closed by run next" in rows[("killed", "invoices")][1]
    assert rows[("killed", "payments")] == ("success", None)
    assert rows[("window", "invoices")][0] == "extracting"
