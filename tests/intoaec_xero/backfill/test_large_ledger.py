"""A ``large`` organisation's whole ledger (223,481 journals, 619,527 lines) on Xero's Starter-tier
limit of 1,000 calls a day: the backfill's 600-call share needs four simulated days. The first
day's walker is killed mid-page with SIGKILL; the next pass resumes at its checkpoint, and the
ledger ends equal to the sandbox's truth, with no call refused for the day and the sync reading
only the journals posted after the backfill's target."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from intoaec_xero import db, report
from intoaec_xero.backfill import QuotaShare, backfill_client, progress, run_pass
from intoaec_xero.backfill.journals import COMPLETE, QUOTA
from intoaec_xero.pipeline import run_sync
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import sync_runs
from sqlalchemy import select

from tests.conftest import REPO
from tests.intoaec_xero.backfill.conftest import CLOCK_START, Clock, connect, sync_client, tenants_of

pytestmark = pytest.mark.integration

DAY_LIMIT = 1000
QUOTA_SHARE = QuotaShare(share=0.6, day_limit=DAY_LIMIT, minute_limit=0)


@pytest.fixture(scope="module")
def sandbox():
    from xero_sandbox.testing import running_sandbox

    args = ["--day-limit", str(DAY_LIMIT), "--minute-limit", "100000", "--clock-start", CLOCK_START]
    with running_sandbox(dataset="large", seed=1, extra_args=args) as handle:
        yield handle


@pytest.fixture
def engine(postgres_url):
    engine = db.create_db_engine(postgres_url)
    db.upgrade(engine)
    yield engine
    engine.dispose()


def test_a_large_ledger_over_several_days_survives_a_kill_and_equals_the_truth(sandbox, engine, postgres_url,
                                                                              tmp_path):
    tenant = tenants_of(sandbox)[0]
    settings, store = connect(sandbox, engine, tenant_filter=(tenant["tenant_id"],))
    raw = RawStore(tmp_path / "raw")
    clock = Clock()
    sandbox.reset_stats()

    # Day 1: a worker walks and is killed without warning, as a lost Airflow worker would be.
    walker = subprocess.Popen(
        [sys.executable, "-m", "tests.intoaec_xero.backfill.walker", "--db-url", postgres_url,
         "--base-url", sandbox.base_url, "--tenant", json.dumps(tenant), "--run-id", "backfill-day1",
         "--day-limit", str(DAY_LIMIT), "--raw-dir", str(raw.root)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, TZ="UTC"))
    try:
        killed_at = _wait_for_offset(engine, tenant["tenant_id"], 15_000, walker)
    finally:
        walker.send_signal(signal.SIGKILL)
        walker.wait(timeout=30)
    time.sleep(4)  # its lease lapses
    entry = progress.read(engine, tenant["tenant_id"], "journals")
    assert entry["offset"] >= killed_at and entry["status"] == "running"

    outcomes = []
    for day in range(8):
        client = backfill_client(settings, store, QUOTA_SHARE, sleep=lambda s: None)
        outcome = run_pass(client, engine, raw, f"backfill-day{day + 1}", tenant, QUOTA_SHARE, clock=clock)
        outcomes.append(outcome)
        if day == 0:
            assert outcome.offset > entry["offset"] and outcome.journals_total >= outcome.offset
        sync = run_sync(sync_client(settings, store), settings, engine, raw, f"sync-day{day + 1}",
                        stream_names=["accounts", "journals"])
        assert sync.ok, sync.failures
        stats = sandbox.stats()
        assert stats["rate_limited"].get("day", 0) == 0
        # The backfill stopped at the sync's reserve; the sync's calls came out of that reserve.
        assert stats["calls_by_tenant"][tenant["tenant_id"]] <= DAY_LIMIT
        assert stats["limits"][tenant["tenant_id"]]["day_used"] <= DAY_LIMIT
        if outcome.status == COMPLETE:
            break
        assert outcome.status == QUOTA
        assert QUOTA_SHARE.calls_per_day * 0.9 <= stats["calls_by_tenant"][tenant["tenant_id"]] - 2
        clock.advance(sandbox, days=1)
        sandbox.reset_stats()

    assert outcomes[-1].status == COMPLETE
    assert len(outcomes) >= 4  # four days of Starter-tier share, the first shared with the killed walker
    truth = sandbox.truth()["tenants"][tenant["tenant_id"]]
    assert report.compare_with_truth(engine, {"tenants": {tenant["tenant_id"]: truth}},
                                     {"journals", "journal_lines"}) == []
    with engine.connect() as conn:
        sync_calls = conn.execute(select(sync_runs.c.api_calls).where(
            sync_runs.c.run_id.like("sync-day%"), sync_runs.c.stream == "journals")).scalars().all()
    assert max(sync_calls) <= 2


def _wait_for_offset(engine, tenant_id: str, offset: int, process: subprocess.Popen, timeout: float = 300) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the walker ended before it could be killed: {process.stderr.read().decode()[-3000:]}")
        reached = progress.read(engine, tenant_id, "journals").get("offset") or 0
        if reached >= offset:
            return reached
        time.sleep(0.2)
    pytest.fail(f"the walker did not reach journal {offset} within {timeout:.0f} s")
