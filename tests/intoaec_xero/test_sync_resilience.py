"""The sync under change and trouble: new activity, injected faults, a kill -9 mid-load.

Every scenario must end equal to the sandbox's truth: no row lost, none doubled.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy import select

from intoaec_xero import report
from intoaec_xero.client import XeroClient
from intoaec_xero.oauth import finish_authorization, start_authorization
from intoaec_xero.pipeline import run_sync
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import sync_runs
from intoaec_xero.settings import XeroSettings
from intoaec_xero.streams import STREAMS
from intoaec_xero.tokens import TokenCipher, TokenStore

pytestmark = pytest.mark.integration

ALL_TABLES = {t for s in STREAMS.values() for t in s.targets}


def _connect(sandbox, engine, **settings_overrides):
    from xero_sandbox.testing import sign_in_and_consent

    settings = XeroSettings.for_single_host(sandbox.base_url, client_id="sandbox-client",
                                            client_secret="sandbox-secret", **settings_overrides)
    store = TokenStore(engine, settings.connection_key, TokenCipher(None))
    request = start_authorization(settings, "http://127.0.0.1:9/callback")
    store.save(finish_authorization(settings, request, sign_in_and_consent(request.url)))
    return settings, store


def _run(settings, store, engine, raw_root, run_id):
    client = XeroClient(settings, store, sleep=lambda s: None)
    summary = run_sync(client, settings, engine, RawStore(raw_root), run_id)
    return summary, client


def test_incremental_run_after_activity_equals_the_new_truth(engine, tmp_path):
    from xero_sandbox.testing import running_sandbox

    with running_sandbox(dataset="small", seed=11, limits=False) as sandbox:
        settings, store = _connect(sandbox, engine, calls_per_minute=0)
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
    from xero_sandbox.testing import running_sandbox

    from intoaec_xero import db

    engine = db.create_db_engine(postgres_url)
    db.upgrade(engine)
    with running_sandbox(dataset="small", seed=12, limits=False) as sandbox:
        settings, store = _connect(sandbox, engine, max_attempts=10, request_timeout=1.0, calls_per_minute=0)
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
    client = XeroClient(settings, TokenStore(engine, settings.connection_key, TokenCipher(None)))
    summary = run_sync(client, settings, engine, RawStore(raw_root), run_id)
    sys.exit(0 if summary.ok else 1)
    """
)


@pytest.mark.parametrize(("backend", "kill_after_loaded_streams"), [("sqlite", 1), ("postgresql", 4)])
def test_kill_9_during_a_sync_then_rerun_equals_the_truth(request, tmp_path, backend, kill_after_loaded_streams):
    from xero_sandbox.testing import running_sandbox

    from intoaec_xero import db

    db_url = f"sqlite:///{tmp_path / 'intoaec.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")

    engine = db.create_db_engine(db_url)
    db.upgrade(engine)
    with running_sandbox(dataset="medium", seed=13, limits=False) as sandbox:
        _connect(sandbox, engine)
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

        rerun = subprocess.run([*args[:-1], "rerun"], capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert report.compare_with_truth(engine, sandbox.truth(), ALL_TABLES) == []
    engine.dispose()
