"""The journal backfill against the sandbox's controllable clock.

The second ``medium`` organisation's ledger (~5,200 journals, ~60 calls) on a 60 calls/day
limit: the backfill's 40% share is 24 calls a day, so it takes three simulated days, while the
scheduled sync (thirteen streams) runs beside it every day on the 36 calls left. (``make bench`` does the same with
``large``'s 223,000 journals on Xero's Starter tier: ``benchmarks.journal_backfill``.)
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from intoaec_xero import report
from intoaec_xero.backfill import progress
from intoaec_xero.backfill.cli import collect, format_status
from intoaec_xero.backfill.journals import (
    BUSY,
    COMPLETE,
    QUOTA,
    UNAVAILABLE,
    WAITING,
    JournalPageRejected,
    backfill_client,
    run_pass,
)
from intoaec_xero.backfill.quota import QuotaShare
from intoaec_xero.client import XeroClient
from intoaec_xero.ledger import JOURNALS_NOT_USED, JOURNALS_REFUSED
from intoaec_xero.pipeline import run_sync
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import journals, sync_runs, sync_state
from sqlalchemy import func, select

from tests.harness.xero import CORE_CLIENT_ID, CORE_CLIENT_SECRET
from tests.intoaec_xero.backfill.conftest import CLOCK_START, Clock, connect, sync_client, tenants_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ledger walks beside syncs

DAY_LIMIT = 60
QUOTA_SHARE = QuotaShare(share=0.4, day_limit=DAY_LIMIT, minute_limit=0)


@pytest.fixture(scope="module")
def sandbox():
    from xero_sandbox.testing import running_sandbox

    args = ["--day-limit", str(DAY_LIMIT), "--minute-limit", "100000", "--clock-start", CLOCK_START]
    with running_sandbox(dataset="medium", seed=1, extra_args=args) as handle:
        yield handle


@pytest.fixture
def clock(sandbox):
    """Each test starts in fresh day windows: earlier tests spent the ones before."""
    moving = Clock()
    moving.advance(sandbox, days=1)
    return moving


# ~70 pages over three simulated days or more, with a sync beside the backfill each day. On SQLite only: the
# same walk on PostgreSQL, killed and resumed over several days, is test_killed_walker's.
@pytest.mark.slow
def test_the_ledger_arrives_over_days_within_the_share_while_the_sync_runs(sandbox, sqlite_engine, clock, tmp_path):
    engine = sqlite_engine
    ledger = tenants_of(sandbox)[1]
    # The sync reads this organisation only: the first one's ledger alone is more than a day's calls.
    settings, store = connect(sandbox, engine, tenant_filter=(ledger["tenant_id"],))
    raw = RawStore(tmp_path / "raw")
    sandbox.reset_stats()
    passes, used_by_day = [], []
    for day in range(9):
        client = backfill_client(settings, store, QUOTA_SHARE, sleep=lambda s: None)
        if day == 0:
            # The backfill plans first: the sync then reads only journals posted after its target.
            first = run_pass(client, engine, raw, "backfill-0", ledger, QUOTA_SHARE, clock=clock)
            sync = run_sync(sync_client(settings, store), settings, engine, raw, "sync-0")
            outcome = first
        else:
            # Side by side, as Airflow runs them.
            result: dict = {}

            def walk(client=client, day=day, result=result):
                result["pass"] = run_pass(client, engine, raw, f"backfill-{day}", ledger, QUOTA_SHARE, clock=clock)

            worker = threading.Thread(target=walk)
            worker.start()
            sync = run_sync(sync_client(settings, store), settings, engine, raw, f"sync-{day}")
            worker.join(timeout=300)
            outcome = result["pass"]
        assert sync.ok, sync.failures  # the sync never misses a day because of the backfill
        passes.append(outcome)
        stats = sandbox.stats()
        used_by_day.append(stats["calls_by_tenant"].get(ledger["tenant_id"], 0))
        assert stats["rate_limited"].get("day", 0) == 0  # nobody was refused for the day
        assert outcome.calls <= QUOTA_SHARE.calls_per_day
        if day == 0:
            again = run_pass(backfill_client(settings, store, QUOTA_SHARE), engine, raw, "backfill-0b", ledger,
                             QUOTA_SHARE, clock=clock)
            assert (again.status, again.calls) == (WAITING, 0)  # no probing out of the sync's reserve
        if day == 1:
            sandbox.activity(invoices=5, payments=5, tenant_id=ledger["tenant_id"])  # new journals: the sync's
        if outcome.done:
            break
        assert outcome.status == QUOTA
        clock.advance(sandbox, days=1)
        sandbox.reset_stats()

    assert [p.status for p in passes][-1] == COMPLETE
    assert len(passes) >= 3  # the ledger did not fit one day's share
    assert all(used <= DAY_LIMIT for used in used_by_day)
    # Full days of backfill use (nearly all of) the share, never more; the sync's calls made before
    # the backfill stopped came out of the share (the rest, out of the sync's reserve).
    sync_calls = _calls_by_run(engine, "sync-%")
    assert all(p.calls <= QUOTA_SHARE.calls_per_day for p in passes)
    assert all(QUOTA_SHARE.calls_per_day * 0.9 <= p.calls + sync_calls[f"sync-{day}"]
               for day, p in enumerate(passes[1:-1], start=1))

    truth = sandbox.truth()["tenants"][ledger["tenant_id"]]
    assert report.compare_with_truth(engine, {"tenants": {ledger["tenant_id"]: truth}}) == []
    with engine.connect() as conn:
        sync_journal_calls = conn.execute(
            select(sync_runs.c.api_calls).where(sync_runs.c.tenant_id == ledger["tenant_id"],
                                                sync_runs.c.stream == "journals",
                                                sync_runs.c.run_id.like("sync-%"))).scalars().all()
    assert sync_journal_calls and max(sync_journal_calls) <= 2  # the sync never walked the history itself

    entry = progress.read(engine, ledger["tenant_id"], "journals")
    assert entry["status"] == COMPLETE and entry["offset"] >= entry["target"]
    assert entry["journals_loaded"] >= entry["target"]  # its last page may hold a few the sync also read
    assert entry["calls_total"] == sum(p.calls for p in passes)
    text = format_status(collect(engine, ledger["tenant_name"]))
    assert "complete: offset" in text and "(100.0%)" in text


def test_an_app_xero_refuses_journals_to_skips_the_walk_done_not_failed(sandbox, engine, clock, tmp_path):
    # The Core-tier app: Xero serves it no Journals, for any organisation; its ledger is derived from documents.
    settings, store = connect(sandbox, engine, client_id=CORE_CLIENT_ID, client_secret=CORE_CLIENT_SECRET)
    tenant = tenants_of(sandbox)[0]
    client = backfill_client(settings, store, QUOTA_SHARE, sleep=lambda s: None)
    outcome = run_pass(client, engine, RawStore(tmp_path / "raw"), "backfill-gated", tenant, QUOTA_SHARE,
                       clock=clock)
    assert outcome.status == UNAVAILABLE and outcome.done
    assert JOURNALS_REFUSED in outcome.message and "backfill windows carry the ledger's history" in outcome.message
    assert outcome.calls == 1
    again = run_pass(client, engine, RawStore(tmp_path / "raw"), "backfill-gated-2", tenant, QUOTA_SHARE, clock=clock)
    assert again.status == UNAVAILABLE and again.calls == 0


def test_a_connection_set_to_documents_never_walks_journals(sandbox, engine, clock, tmp_path):
    settings, store = connect(sandbox, engine, ledger_source="documents")
    client = backfill_client(settings, store, QUOTA_SHARE, sleep=lambda s: None)
    outcome = run_pass(client, engine, RawStore(tmp_path / "raw"), "backfill-documents", tenants_of(sandbox)[0],
                       QUOTA_SHARE, clock=clock)
    assert (outcome.status, outcome.calls) == (UNAVAILABLE, 0)
    assert JOURNALS_NOT_USED in outcome.message


def test_one_walker_per_ledger(sandbox, engine, clock, tmp_path):
    settings, store = connect(sandbox, engine)
    tenant = tenants_of(sandbox)[1]
    assert progress.claim(engine, tenant["tenant_id"], "journals", "another run (pid 1)", timedelta(minutes=5)) is None
    client = backfill_client(settings, store, QUOTA_SHARE, sleep=lambda s: None)
    outcome = run_pass(client, engine, RawStore(tmp_path / "raw"), "backfill-b", tenant, QUOTA_SHARE, clock=clock)
    assert (outcome.status, outcome.calls) == (BUSY, 0)
    # A lease that lapsed (its walker was killed) is taken over.
    assert progress.claim(engine, tenant["tenant_id"], "journals", "another run (pid 1)", timedelta(seconds=-1)) is None
    outcome = run_pass(client, engine, RawStore(tmp_path / "raw"), "backfill-c", tenant, QUOTA_SHARE, clock=clock,
                       max_calls=3)
    assert outcome.status == "paused" and outcome.journals > 0
    # A second pass of the same run: its sync_runs row sums both passes.
    second = run_pass(client, engine, RawStore(tmp_path / "raw"), "backfill-c", tenant, QUOTA_SHARE, clock=clock,
                      max_calls=2)
    assert second.status == "paused" and second.journals > 0
    assert (outcome.inserted, second.inserted, outcome.updated, second.updated) == (
        outcome.journals, second.journals, 0, 0)
    with engine.connect() as conn:
        run = conn.execute(select(sync_runs).where(sync_runs.c.run_id == "backfill-c")).mappings().one()
    journals_loaded = outcome.journals + second.journals
    assert (run["rows_extracted"], run["rows_inserted"], run["rows_updated"]) == (journals_loaded, journals_loaded, 0)
    assert run["rows_loaded"] == journals_loaded + outcome.lines + second.lines
    assert run["api_calls"] == outcome.calls + second.calls


class _OneBadPage(XeroClient):
    """Xero sends one unbalanced journal on the page after ``offset``; everything else is real."""

    bad_offset = 300

    def get(self, sdk_method, tenant_id, label, **params):
        response = super().get(sdk_method, tenant_id, label, **params)
        if sdk_method == "get_journals" and params.get("offset") == self.bad_offset:
            payload = json.loads(response.body)
            payload["Journals"][7]["JournalLines"][0]["NetAmount"] += 1
            response.body = json.dumps(payload).encode()
            response.payload = payload
        return response


def test_a_page_that_fails_validation_is_quarantined_and_the_walk_stays_before_it(sandbox, engine, clock, tmp_path):
    from intoaec_xero.limits import TenantLimiter

    settings, store = connect(sandbox, engine)
    tenant = tenants_of(sandbox)[1]
    raw = RawStore(tmp_path / "raw")
    bad = _OneBadPage(settings, store, sleep=lambda s: None, limiter=TenantLimiter(QUOTA_SHARE.limit_policy()))
    with pytest.raises(JournalPageRejected, match="journals"):
        run_pass(bad, engine, raw, "backfill-bad", tenant, QUOTA_SHARE, clock=clock)
    entry = progress.read(engine, tenant["tenant_id"], "journals")
    assert entry["offset"] == _OneBadPage.bad_offset and entry["status"] == "failed"
    assert "rejected" in entry["last_error"] and "lease" not in entry
    with engine.connect() as conn:
        loaded = conn.execute(select(journals.c.journal_number).where(journals.c.tenant_id == tenant["tenant_id"])
                              ).scalars().all()
        run = conn.execute(select(sync_runs.c.status).where(sync_runs.c.run_id == "backfill-bad")).scalar_one()
    assert max(loaded) == _OneBadPage.bad_offset  # nothing of the bad page landed
    assert run == "failed"
    # The same page, sent whole, carries the walk on (here bounded to a few pages).
    good = backfill_client(settings, store, QUOTA_SHARE, sleep=lambda s: None)
    outcome = run_pass(good, engine, raw, "backfill-good", tenant, QUOTA_SHARE, clock=clock, max_calls=2)
    assert outcome.offset == _OneBadPage.bad_offset + 200


def test_when_the_sync_already_has_the_ledger_there_is_nothing_to_walk_unless_asked(engine, tmp_path):
    """Small organisations: the sync's first run reads the whole ledger itself."""
    from xero_sandbox.testing import running_sandbox

    with running_sandbox(dataset="small", seed=1, limits=False) as small:
        _nothing_to_walk_unless_asked(small, engine, tmp_path)


def _nothing_to_walk_unless_asked(sandbox, engine, tmp_path) -> None:
    tenant = tenants_of(sandbox)[1]
    settings, store = connect(sandbox, engine, tenant_filter=(tenant["tenant_id"],))
    raw = RawStore(tmp_path / "raw")
    clock = Clock()
    summary = run_sync(sync_client(settings, store), settings, engine, raw, "sync-first",
                       stream_names=["accounts", "journals"])
    assert summary.ok, summary.failures
    with engine.connect() as conn:
        sync_offset = conn.execute(select(sync_state.c.journal_offset).where(
            sync_state.c.tenant_id == tenant["tenant_id"], sync_state.c.stream == "journals")).scalar_one()
    unlimited = QuotaShare(share=1.0, day_limit=100_000, minute_limit=0)
    client = backfill_client(settings, store, unlimited, sleep=lambda s: None)
    outcome = run_pass(client, engine, raw, "backfill-x", tenant, unlimited, clock=clock)
    assert (outcome.status, outcome.calls, outcome.target) == (COMPLETE, 0, sync_offset)

    # Asked to, it reads the ledger again from journal 1; the tables end as they were.
    before = report.figures(engine, tenant["tenant_id"])["journal_lines"]
    outcome = run_pass(client, engine, raw, "backfill-again", tenant, unlimited, clock=clock, restart=True)
    assert outcome.status == COMPLETE
    assert outcome.journals >= sync_offset and outcome.calls >= sync_offset // 100
    assert report.figures(engine, tenant["tenant_id"])["journal_lines"] == before
    # Every journal read again, none new or changed.
    with engine.connect() as conn:
        run = conn.execute(select(sync_runs).where(sync_runs.c.run_id == "backfill-again")).mappings().one()
    assert run["rows_loaded"] > 0 and (run["rows_inserted"], run["rows_updated"]) == (0, 0)


def _calls_by_run(engine, run_ids: str) -> dict[str, int]:
    """API calls per run of the tenant's sync_runs rows whose run id is LIKE ``run_ids``."""
    with engine.connect() as conn:
        return dict(conn.execute(select(sync_runs.c.run_id, func.sum(sync_runs.c.api_calls))
                                 .where(sync_runs.c.run_id.like(run_ids)).group_by(sync_runs.c.run_id)).all())
