"""A ledger walked over several days of Xero's quota, its first walker killed between a page's load
and that page's checkpoint, ends equal to the sandbox's truth.

``small`` serves 20 journals a call here (``--max-page-size``), so its first organisation's 1,280
journals take ~65 calls, and finding the ledger's end 13 more: on a 40-call day limit the backfill's
60% share (24 calls) needs three simulated days or more, as a large organisation does on Xero's
Starter tier (the 223,000-journal version is ``make bench``: ``benchmarks.journal_backfill``).
The first day's walker runs in its own process, as an Airflow worker does, and is killed with
SIGKILL after its page is committed and before its checkpoint is: the next pass reads that page
again, and the upsert makes it harmless. No call is refused for the day, and the sync reads only
journals posted after the backfill's target.
"""

from __future__ import annotations

import json
import os
import select as io_select
import signal
import subprocess
import sys
import time

import pytest
from intoaec_xero import report
from intoaec_xero.backfill import progress
from intoaec_xero.backfill.journals import COMPLETE, QUOTA, backfill_client, run_pass
from intoaec_xero.backfill.quota import QuotaShare
from intoaec_xero.pipeline import run_sync
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import journals, sync_runs
from sqlalchemy import func, select

from tests.conftest import REPO
from tests.intoaec_xero.backfill.conftest import CLOCK_START, Clock, connect, sync_client, tenants_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ~80 calls over several simulated days

DAY_LIMIT = 40
PAGE = 20  # journals per call
QUOTA_SHARE = QuotaShare(share=0.6, day_limit=DAY_LIMIT, minute_limit=0)
HANG_AT = 100  # the walker's page ending at journal 100 is loaded, its checkpoint never written


@pytest.fixture(scope="module")
def sandbox():
    from xero_sandbox.testing import running_sandbox

    args = ["--day-limit", str(DAY_LIMIT), "--minute-limit", "100000", "--clock-start", CLOCK_START,
            "--max-page-size", str(PAGE)]
    with running_sandbox(dataset="small", seed=1, extra_args=args) as handle:
        yield handle


def test_a_ledger_over_several_days_survives_a_killed_walker_and_equals_the_truth(sandbox, pg_engine,
                                                                                 migrated_postgres_url, tmp_path):
    engine = pg_engine
    tenant = tenants_of(sandbox)[0]
    settings, store = connect(sandbox, engine, tenant_filter=(tenant["tenant_id"],))
    raw = RawStore(tmp_path / "raw")
    clock = Clock()
    sandbox.reset_stats()

    # Day 1: a worker walks and dies without warning between a page's commit and its checkpoint.
    walker = subprocess.Popen(
        [sys.executable, "-m", "tests.intoaec_xero.backfill.walker", "--db-url", migrated_postgres_url,
         "--base-url", sandbox.base_url, "--tenant", json.dumps(tenant), "--run-id", "backfill-day1",
         "--day-limit", str(DAY_LIMIT), "--raw-dir", str(raw.root), "--lease-seconds", "2",
         "--hang-after-offset", str(HANG_AT)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, TZ="UTC"))
    try:
        assert _hanging_at(walker) == HANG_AT
    finally:
        walker.send_signal(signal.SIGKILL)
        walker.wait(timeout=30)
    entry = progress.read(engine, tenant["tenant_id"], "journals")
    assert entry["status"] == "running" and entry["offset"] == HANG_AT - PAGE  # the last checkpoint
    assert _highest_journal(engine, tenant["tenant_id"]) == HANG_AT  # the page after it landed all the same
    _wait_out(entry["lease"]["until"])  # the dead walker's lease lapses; nobody releases it

    outcomes = []
    for day in range(8):
        client = backfill_client(settings, store, QUOTA_SHARE, sleep=lambda s: None)
        outcome = run_pass(client, engine, raw, f"backfill-day{day + 1}", tenant, QUOTA_SHARE, clock=clock)
        outcomes.append(outcome)
        if day == 0:
            assert outcome.offset > HANG_AT and outcome.journals_total >= outcome.offset - PAGE
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
        backfill_calls = stats["calls_by_tenant"][tenant["tenant_id"]] - _sync_calls(engine, f"sync-day{day + 1}")
        assert QUOTA_SHARE.calls_per_day * 0.9 <= backfill_calls <= QUOTA_SHARE.calls_per_day
        clock.advance(sandbox, days=1)
        sandbox.reset_stats()

    assert outcomes[-1].status == COMPLETE
    assert len(outcomes) >= 3  # three days of share, the first shared with the killed walker
    truth = sandbox.truth()["tenants"][tenant["tenant_id"]]
    assert report.compare_with_truth(engine, {"tenants": {tenant["tenant_id"]: truth}},
                                     {"journals", "journal_lines"}) == []
    with engine.connect() as conn:
        sync_calls = conn.execute(select(sync_runs.c.api_calls).where(
            sync_runs.c.run_id.like("sync-day%"), sync_runs.c.stream == "journals")).scalars().all()
    assert max(sync_calls) <= 2  # the sync never walked the history itself


def _hanging_at(walker: subprocess.Popen, timeout: float = 300) -> int:
    """The offset the walker reports it stopped at, read from its output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = io_select.select([walker.stdout], [], [], 1.0)
        if ready:
            line = walker.stdout.readline()
            if not line:
                break
            return json.loads(line)["hanging_at"]
    walker.kill()
    pytest.fail(f"the walker did not reach journal {HANG_AT}: {walker.stderr.read().decode()[-3000:]}")


def _highest_journal(engine, tenant_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.max(journals.c.journal_number))
                            .where(journals.c.tenant_id == tenant_id)).scalar_one()


def _sync_calls(engine, run_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.coalesce(func.sum(sync_runs.c.api_calls), 0))
                            .where(sync_runs.c.run_id == run_id)).scalar_one()


def _wait_out(until: str) -> None:
    remaining = (progress.parse_iso(until) - progress.now()).total_seconds()
    if remaining > 0:
        time.sleep(remaining + 0.1)
