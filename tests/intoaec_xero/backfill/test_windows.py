"""Date windows against the sandbox, on SQLite and PostgreSQL: they tile the history exactly,
re-running one changes nothing, and none moves the scheduled sync's cursors."""

from __future__ import annotations

import pytest
from intoaec_xero import report
from intoaec_xero.backfill.cli import collect
from intoaec_xero.backfill.windows import WINDOW_STREAMS, extract_window, record_loaded, window_month
from intoaec_xero.pipeline import load_tenant, run_sync
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import credit_notes, invoice_lines, invoices, payments, sync_runs, sync_state
from sqlalchemy import select

from tests.intoaec_xero.backfill.conftest import connect, sync_client, tenants_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # whole month windows of small, per backend

WINDOW_NAMES = [s.name for s in WINDOW_STREAMS]
WINDOW_TABLES = {t for s in WINDOW_STREAMS for t in s.targets}
# The small dataset runs 2023–2026, plus one pre-1970 invoice (Xero allows them).
YEARS = [("1900-01-01", "2023-01-01"), ("2023-01-01", "2024-01-01"), ("2024-01-01", "2025-01-01"),
         ("2025-01-01", "2026-01-01"), ("2026-01-01", "2100-01-01")]


@pytest.fixture(scope="module")
def sandbox():
    from xero_sandbox.testing import running_sandbox

    with running_sandbox(dataset="small", seed=3, limits=False) as handle:
        yield handle


def _window(client, engine, raw, run_id, tenant, start, end):
    manifest = extract_window(client, engine, raw, run_id, tenant, start, end)
    summary = load_tenant(engine, raw, manifest)
    record_loaded(engine, manifest, summary)
    assert not summary["failed"], summary["failed"]
    return manifest


def _cursors(engine):
    with engine.connect() as conn:
        return sorted(conn.execute(select(sync_state.c.tenant_id, sync_state.c.stream, sync_state.c.watermark,
                                          sync_state.c.journal_offset, sync_state.c.last_full_sync_at)).all())


def _snapshot(engine):
    with engine.connect() as conn:
        return {t.name: conn.execute(select(t).order_by(*t.primary_key.columns)).all()
                for t in (invoices, invoice_lines, payments, credit_notes)}


def test_windows_tile_the_history_exactly_and_leave_the_sync_cursors_alone(sandbox, engine, tmp_path):
    settings, store = connect(sandbox, engine)
    raw = RawStore(tmp_path / "raw")
    summary = run_sync(sync_client(settings, store), settings, engine, raw, "sync-1", stream_names=WINDOW_NAMES)
    assert summary.ok, summary.failures
    cursors = _cursors(engine)

    client = sync_client(settings, store)
    for tenant in tenants_of(sandbox):
        for number, (start, end) in enumerate(YEARS):
            manifest = _window(client, engine, raw, f"backfill-{number}", tenant, start, end)
            assert {s["stream"] for s in manifest["streams"]} == set(WINDOW_NAMES)

    assert report.compare_with_truth(engine, sandbox.truth(), WINDOW_TABLES) == []
    assert _cursors(engine) == cursors  # watermarks, offsets, last full reconcile: untouched
    with engine.connect() as conn:
        counts = conn.execute(select(sync_runs.c.rows_loaded, sync_runs.c.rows_inserted, sync_runs.c.rows_updated)
                              .where(sync_runs.c.run_id.like("backfill-%"))).all()
    # The sync had loaded all of it: the windows read it again and found nothing new or changed.
    assert sum(r.rows_loaded for r in counts) > 0 and {(r.rows_inserted, r.rows_updated) for r in counts} == {(0, 0)}

    before = _snapshot(engine)
    tenant = tenants_of(sandbox)[0]
    _window(client, engine, raw, "backfill-again", tenant, *YEARS[2])
    assert _snapshot(engine) == before
    with engine.connect() as conn:
        rerun = conn.execute(select(sync_runs.c.stream, sync_runs.c.status, sync_runs.c.rows_loaded)
                             .where(sync_runs.c.run_id == "backfill-again")).all()
    assert {r.stream: r.status for r in rerun} == dict.fromkeys(WINDOW_NAMES, "success")
    assert all(r.rows_loaded for r in rerun if r.stream in ("invoices", "payments", "bank_transactions"))

    status = {t["tenant_id"]: t for t in collect(engine)}
    assert status[tenant["tenant_id"]]["windows"]["invoices"]["loaded"] == len(YEARS)


def test_a_window_only_reads_documents_dated_inside_it(sandbox, engine, tmp_path):
    settings, store = connect(sandbox, engine)
    raw = RawStore(tmp_path / "raw")
    tenant = tenants_of(sandbox)[0]
    manifest = _window(sync_client(settings, store), engine, raw, "march", tenant, "2025-03-01", "2025-04-01")
    with engine.connect() as conn:
        for table in (invoices, payments, credit_notes):
            dates = conn.execute(select(table.c.date)).scalars().all()
            assert all(d.year == 2025 and d.month == 3 for d in dates), table.name
    counts = {s["stream"]: s["records"] for s in manifest["streams"]}
    assert counts["invoices"] > 0 and counts["payments"] > 0
    with engine.connect() as conn:
        runs = conn.execute(select(sync_runs.c.stream, sync_runs.c.rows_inserted, sync_runs.c.rows_updated)
                            .where(sync_runs.c.run_id == "march")).all()
    assert {r.stream: (r.rows_inserted, r.rows_updated) for r in runs} == {s: (n, 0) for s, n in counts.items()}
    assert {s["api_calls"] for s in manifest["streams"]} == {1}  # a month fits one page of 1,000


def test_a_failed_window_leaves_no_stream_extracted(sandbox, engine, tmp_path):
    from intoaec_xero.backfill.windows import WindowFailed

    settings, store = connect(sandbox, engine)
    tenant = tenants_of(sandbox)[0]
    sandbox.faults(endpoint="Payments", status=500, tenant_id=tenant["tenant_id"])
    try:
        with pytest.raises(WindowFailed, match="payments"):
            extract_window(sync_client(settings, store), engine, RawStore(tmp_path / "raw"), "april", tenant,
                           "2025-04-01", "2025-05-01")
    finally:
        sandbox.clear_faults()
    with engine.connect() as conn:
        runs = {r.stream: r for r in conn.execute(select(sync_runs).where(sync_runs.c.run_id == "april"))}
    assert {s: r.status for s, r in runs.items()} == {"invoices": "skipped", "credit_notes": "skipped",
                                                      "payments": "failed"}
    assert runs["invoices"].message == "not loaded: payments failed for window 2025-04-01..2025-05-01"
    [status] = collect(engine)
    assert status["windows"]["payments"]["not_loaded"]


@pytest.mark.parametrize(("start", "end", "said"), [
    ("2025-08-01", "2025-09-01", "August 2025"),  # the run Airflow names backfill__2025-09-01…
    ("2025-12-01", "2026-01-01", "December 2025"),
    ("2025-08-03", "2025-09-01", "2025-08-03 to 2025-08-31"),
])
def test_a_window_is_named_by_the_month_it_covers(start, end, said):
    assert window_month(start, end) == said
