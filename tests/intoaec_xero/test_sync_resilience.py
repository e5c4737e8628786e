"""The sync under change and trouble: new activity, injected faults, a kill -9 mid-load.

Every scenario must end equal to the sandbox's truth: no row lost, none doubled.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from intoaec_xero import report, state
from intoaec_xero.client import XeroClient
from intoaec_xero.pipeline import run_sync
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import sync_runs
from intoaec_xero.streams import STREAMS
from sqlalchemy import select

from tests.harness.xero import connect

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # several full syncs per test, on each backend

ALL_TABLES = {t for s in STREAMS.values() for t in s.targets}


def _run(settings, store, engine, raw_root, run_id):
    client = XeroClient(settings, store, sleep=lambda s: None)
    summary = run_sync(client, settings, engine, RawStore(raw_root), run_id)
    return summary, client


def test_incremental_run_after_activity_equals_the_new_truth(engine, tmp_path):
    from xero_sandbox.testing import running_sandbox

    with running_sandbox(dataset="small", seed=11, limits=False) as sandbox:
        settings, store = connect(sandbox, engine, calls_per_minute=0)
        summary, _ = _run(settings, store, engine, tmp_path, "full")
        assert summary.ok, summary.failures
        sandbox.advance_clock(3600)
        change = sandbox.activity(invoices=25, payments=15)
        assert change["ok"]
        summary, client = _run(settings, store, engine, tmp_path, "incremental")
        assert summary.ok, summary.failures
        assert report.compare_with_truth(engine, sandbox.truth(), ALL_TABLES) == []
    with engine.connect() as conn:
        runs = conn.execute(select(sync_runs).where(sync_runs.c.run_id == "incremental")).mappings().all()
    invoices_runs = [r for r in runs if r["stream"] == "invoices"]
    # incremental: only what changed came back, not the whole history again
    assert sum(r["rows_extracted"] for r in invoices_runs) < 100
    assert sum(r["rows_extracted"] for r in invoices_runs) > 0


def test_ten_percent_faults_still_end_equal_to_the_truth(postgres_url, tmp_path):
    from intoaec_xero import db
    from xero_sandbox.testing import running_sandbox

    engine = db.create_db_engine(postgres_url)
    db.upgrade(engine)
    with running_sandbox(dataset="small", seed=12, limits=False) as sandbox:
        settings, store = connect(sandbox, engine, max_attempts=10, request_timeout=1.0, calls_per_minute=0)
        sandbox.faults(endpoint="*", status=429, rate=0.04, seed=1, retry_after=0, problem="minute")
        sandbox.faults(endpoint="*", status=503, rate=0.04, seed=2)
        sandbox.faults(endpoint="*", timeout=True, timeout_seconds=2.0, rate=0.02, seed=3)
        summary, client = _run(settings, store, engine, tmp_path, "faulty")
        stats = sandbox.stats()
        sandbox.clear_faults()
        assert summary.ok, summary.failures
        assert report.compare_with_truth(engine, sandbox.truth(), ALL_TABLES) == []
    assert stats["faults_injected"] > 0
    # every fault reached the client's one retry path (none were retried out of its sight)
    assert stats["faults_injected"] > 0
    assert client.stats.retries == stats["faults_injected"]
    assert client.stats.rate_limited == sum(int(by_status.get("429", 0)) for by_status in stats["requests"].values())
    engine.dispose()


SYNC_SCRIPT = textwrap.dedent(
    """
    import sys
    from intoaec_xero import db
    from intoaec_xero.client import XeroClient
    from intoaec_xero.pipeline import run_sync
    from intoaec_xero.rawstore import RawStore
    from intoaec_xero.settings import XeroSettings
    from intoaec_xero.tokens import TokenCipher, TokenStore

    base_url, db_url, raw_root, run_id = sys.argv[1:5]
    settings = XeroSettings.for_single_host(base_url, client_id="sandbox-client", client_secret="sandbox-secret",
                                            calls_per_minute=0)  # the sandbox runs without limits here
    engine = db.create_db_engine(db_url)
    client = XeroClient(settings, TokenStore(engine, settings.connection_key, TokenCipher.from_environment()))
    summary = run_sync(client, settings, engine, RawStore(raw_root), run_id)
    sys.exit(0 if summary.ok else 1)
    """
)


@pytest.mark.slow  # a sync killed and run again, on each backend
@pytest.mark.parametrize(("backend", "kill_after_loaded_streams"), [("sqlite", 1), ("postgresql", 4)])
def test_kill_9_during_a_sync_then_rerun_equals_the_truth(request, tmp_path, backend, kill_after_loaded_streams):
    from intoaec_xero import db
    from xero_sandbox.testing import running_sandbox

    db_url = f"sqlite:///{tmp_path / 'intoaec.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")

    engine = db.create_db_engine(db_url)
    db.upgrade(engine)
    with running_sandbox(dataset="small", seed=13, limits=False) as sandbox:
        connect(sandbox, engine)
        args = [sys.executable, "-c", SYNC_SCRIPT, sandbox.base_url, db_url, str(tmp_path), "killed"]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 180
        loaded = 0
        while process.poll() is None and time.monotonic() < deadline:
            with engine.connect() as conn:
                loaded = len(conn.execute(select(sync_runs.c.stream).where(
                    sync_runs.c.run_id == "killed", sync_runs.c.status == "success")).all())
            if loaded >= kill_after_loaded_streams:
                process.kill()  # SIGKILL: no cleanup, no rollback handler, mid-transaction
                break
            time.sleep(0.02)
        process.wait(timeout=30)
        assert process.returncode == -9, "the sync finished before it could be killed"
        assert report.compare_with_truth(engine, sandbox.truth(), ALL_TABLES) != []  # it really was partial

        with engine.connect() as conn:
            left_open = set(conn.execute(select(sync_runs.c.stream).where(
                sync_runs.c.run_id == "killed", sync_runs.c.status.in_(state.UNFINISHED))).scalars())
        # Rows the killed run could not close (none when the kill fell between two tenants).

        rerun = subprocess.run([*args[:-1], "rerun"], capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert report.compare_with_truth(engine, sandbox.truth(), ALL_TABLES) == []
        with engine.connect() as conn:  # the rerun closed them: no run row stays open
            assert conn.execute(select(sync_runs.c.stream).where(
                sync_runs.c.status.in_(state.UNFINISHED))).all() == []
            closed = conn.execute(select(sync_runs.c.status, sync_runs.c.message).where(
                sync_runs.c.run_id == "killed", sync_runs.c.stream.in_(left_open))).all()
        assert len(closed) == len(left_open)
        assert all(status == "failed" and "abandoned" in message and "closed by run rerun" in message
                   for status, message in closed)
    engine.dispose()


def _main_tables(engine) -> dict[tuple[str, str], dict[str, dict]]:
    """(tenant, stream) → {Xero id: row} of each stream's main table."""
    from intoaec_xero.schema import metadata

    snapshot: dict[tuple[str, str], dict[str, dict]] = {}
    with engine.connect() as conn:
        for stream in STREAMS.values():
            table = metadata.tables[stream.targets[0]]
            key = table.primary_key.columns.values()[-1].name
            for row in conn.execute(select(table)).mappings():
                snapshot.setdefault((row["tenant_id"], stream.name), {})[row[key]] = dict(row)
    return snapshot


def _counted(engine, run_id) -> dict[tuple[str, str], tuple[int, int]]:
    with engine.connect() as conn:
        rows = conn.execute(select(sync_runs).where(sync_runs.c.run_id == run_id,
                                                    sync_runs.c.status == "success")).mappings().all()
    return {(r["tenant_id"], r["stream"]): (r["rows_inserted"], r["rows_updated"]) for r in rows}


def _differences(before, after, keys) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (tenant, stream): ids new in ``after``, and ids in both whose row differs."""
    result = {}
    for k in keys:
        old, new = before.get(k, {}), after.get(k, {})
        result[k] = (len(new.keys() - old.keys()), sum(1 for i in new.keys() & old.keys() if new[i] != old[i]))
    return result


def test_rows_inserted_and_updated_count_new_and_changed_records(engine, tmp_path):
    from xero_sandbox.testing import running_sandbox

    main_table = {s.name: s.targets[0] for s in STREAMS.values()}
    with running_sandbox(dataset="small", seed=11, limits=False) as sandbox:
        settings, store = connect(sandbox, engine, calls_per_minute=0)
        summary, _ = _run(settings, store, engine, tmp_path, "full")
        assert summary.ok, summary.failures
        truth = sandbox.truth()["tenants"]
        full = _counted(engine, "full")
        loaded = _main_tables(engine)
        # The first sync inserts every record and updates none.
        assert full == {k: (len(loaded.get(k, {})), 0) for k in full}
        compared = 0
        for (tenant_id, stream), (inserted, _) in full.items():
            if "count" in truth[tenant_id].get(main_table[stream], {}):
                assert inserted == truth[tenant_id][main_table[stream]]["count"], (tenant_id, stream)
                compared += 1
        assert compared >= 8  # clients, invoices, payments, credit notes (and journals) of both tenants

        # Nothing changed: what is read again (accounts and tracking whole, the watermark's overlap)
        # counts as neither.
        summary, _ = _run(settings, store, engine, tmp_path, "again")
        assert summary.ok, summary.failures
        again = _counted(engine, "again")
        assert set(again) == set(full) and set(again.values()) == {(0, 0)}
        with engine.connect() as conn:
            reread = conn.execute(select(sync_runs.c.rows_extracted).where(
                sync_runs.c.run_id == "again", sync_runs.c.stream == "accounts")).scalars().all()
        assert reread and all(reread)

        # New and edited records: exactly the ids that appeared and the rows that changed.
        sandbox.advance_clock(3600)
        assert sandbox.activity(invoices=25, payments=15)["ok"]
        before = _main_tables(engine)
        summary, _ = _run(settings, store, engine, tmp_path, "activity")
        assert summary.ok, summary.failures
        counted = _counted(engine, "activity")
        assert counted == _differences(before, _main_tables(engine), counted)
    invoices_counted = [v for (_, stream), v in counted.items() if stream == "invoices"]
    assert sum(inserted for inserted, _ in invoices_counted) > 0
    assert sum(updated for _, updated in invoices_counted) > 0


# What a full re-read finds is Xero's side; PostgreSQL's upserts of changed rows are
# test_rows_inserted_and_updated_count_new_and_changed_records[postgresql]'s.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_weekly_full_reconcile_catches_edits_that_do_not_bump_the_timestamp(engine, second_db_url, tmp_path,
                                                                            monkeypatch):
    """Xero does not stamp some edits (a contact's supplier flag, a part-paid invoice's due date):
    the incremental read misses them, the periodic full re-read corrects them and says how many."""
    from intoaec_xero import db
    from xero_sandbox.testing import running_sandbox

    with running_sandbox(dataset="small", seed=11, limits=False) as sandbox:
        settings, store = connect(sandbox, engine, calls_per_minute=0)
        assert _run(settings, store, engine, tmp_path, "full")[0].ok
        sandbox.advance_clock(3600)
        silent = {"clients": 0, "invoices": 0}
        for _ in range(6):  # enough activity that some silent edits happen (they are a few % of it)
            changes = sandbox.activity(invoices=40, payments=10)["changes"]
            silent["clients"] += sum(c.get("silent_contact_edits", 0) for c in changes.values())
            silent["invoices"] += sum(c.get("silent_invoice_edits", 0) for c in changes.values())
        assert silent["clients"] and silent["invoices"]
        assert _run(settings, store, engine, tmp_path, "incremental")[0].ok

        # What Xero holds now, read whole into a fresh database of the same kind.
        fresh = db.create_db_engine(second_db_url)
        db.upgrade(fresh)
        fresh_settings, fresh_store = connect(sandbox, fresh, calls_per_minute=0)
        assert _run(fresh_settings, fresh_store, fresh, tmp_path / "fresh", "fresh")[0].ok
        xero_now, before = _main_tables(fresh), _main_tables(engine)
        missed = {key: sum(1 for i, row in rows.items() if before[key].get(i) != row)
                  for key, rows in xero_now.items() if key[1] in ("contacts", "invoices")}
        for stream in ("contacts", "invoices"):  # the incremental read did miss some of each
            assert sum(n for (_, s), n in missed.items() if s == stream), stream

        monkeypatch.setenv("INTOAEC_FULL_RECONCILE_DAYS", "0")
        assert _run(settings, store, engine, tmp_path, "weekly")[0].ok
        assert _main_tables(engine) == xero_now
        with engine.connect() as conn:
            runs = {(r.tenant_id, r.stream): r
                    for r in conn.execute(select(sync_runs).where(sync_runs.c.run_id == "weekly"))}
        fresh.dispose()
    for key, count in missed.items():
        assert runs[key].rows_updated == count, (key, runs[key].message)
        assert f"full reconcile corrected {count} row(s)" in runs[key].message


@pytest.fixture
def second_db_url(engine, tmp_path):
    """Another empty database of the same kind as ``engine``'s."""
    if engine.dialect.name == "sqlite":
        yield f"sqlite:///{tmp_path / 'second.db'}"
        return
    from sqlalchemy import text

    name = f"{engine.url.database}_second"
    with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield engine.url.set(database=name).render_as_string(hide_password=False)
    with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
