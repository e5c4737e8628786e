"""The resumable journal backfill: a tenant's whole ledger, one page at a time, within a quota share.

Xero serves Journals only forward by ``offset`` (= the last JournalNumber seen), 100 per call,
so history means walking from offset 0: about 2,200 calls for 220,000 journals, which is more
than a day's share on Xero's Starter tier and most of one on the standard tier. The walk
therefore has to stop at any page and carry on days later, and must never take the calls the
scheduled sync needs.

How the ledger is split with the sync: before the first page, the backfill finds the ledger's
current end (the *target*, found with a couple of dozen calls by growing and bisecting the
offset) and, if the sync has never read this tenant's journals, starts the sync's own journal
position there. From then on the sync reads only journals posted after the target, a few calls
an hour, and the backfill owns (0, target]: the two never fetch the same history, and the sync
never starts its own walk from offset 0 for a tenant the backfill is on. When the sync already
read the ledger from 0 (it does for small organisations), the backfill has nothing to add.

Each page goes through the sync's own load (same transform, validation and quarantine; upserts
by key) and then the backfill's offset is checkpointed in ``sync_state.details``. A pass killed
at any point loses at most the page it was loading: the next pass re-reads it and the upsert
makes that harmless.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from intoaec_xero.backfill import progress
from intoaec_xero.backfill.quota import QuotaShare, wait_reason
from intoaec_xero.client import XeroClient
from intoaec_xero.db import upsert
from intoaec_xero.errors import IntoAECXeroError, XeroAccessDenied, XeroDailyLimitReached
from intoaec_xero.extract import extract_stream
from intoaec_xero.ledger import JOURNALS_NOT_USED, JOURNALS_REFUSED
from intoaec_xero.parsing import parse_datetime
from intoaec_xero.payloads import Manifest, TenantRef
from intoaec_xero.pipeline import load_tenant
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import sync_state
from intoaec_xero.state import StreamState, read_state, record_run
from intoaec_xero.streams import JOURNALS

log = logging.getLogger(__name__)

STREAM = JOURNALS.name
PER_CALL = JOURNALS.page_size
# What the walk reads from each journal: its position in the ledger, and when it was created.
if JOURNALS.offset_field is None or JOURNALS.cursor is None:  # pragma: no cover - the stream defines both
    raise ImportError("The Journals stream must name its offset field and its cursor.")
NUMBER_FIELD: str = JOURNALS.offset_field
CREATED_FIELD: str = JOURNALS.cursor
LEASE_TTL = timedelta(minutes=15)
LOG_EVERY = timedelta(seconds=30)

# Pass outcomes. DONE_STATUSES end the backfill for the tenant.
COMPLETE = "complete"
UNAVAILABLE = "unavailable"
QUOTA = "waiting_for_quota"
WAITING = "waiting_for_quota_reset"
BUSY = "busy"
PAUSED = "paused"
FAILED = "failed"
DONE_STATUSES = frozenset({COMPLETE, UNAVAILABLE})


class JournalPageRejected(IntoAECXeroError):
    """A page failed validation: it is quarantined like any sync batch and the offset stays before it."""


@dataclass
class JournalPass:
    """What one pass did; small and JSON-able (it travels by XCom and into the task log)."""

    tenant_id: str
    tenant_name: str
    status: str
    message: str = ""
    calls: int = 0
    pages: int = 0
    journals: int = 0
    lines: int = 0
    inserted: int = 0  # journals new to the table (a page the sync also read adds none)
    updated: int = 0
    rate_limited: int = 0
    offset: int | None = None
    target: int | None = None
    journals_total: int = 0
    calls_total: int = 0
    quota: dict[str, Any] = field(default_factory=dict)
    eta: str | None = None

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES

    @property
    def percent(self) -> float | None:
        if not self.target:
            return 100.0 if self.status == COMPLETE else None
        return min(100.0, 100.0 * (self.offset or 0) / self.target)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "done": self.done, "percent": self.percent}


def run_pass(
    client: XeroClient,
    engine: Engine,
    raw: RawStore,
    run_id: str,
    tenant: TenantRef,
    quota: QuotaShare,
    *,
    restart: bool = False,
    max_calls: int | None = None,
    clock: Callable[[], datetime] = progress.now,
    lease_ttl: timedelta = LEASE_TTL,
    log_every: timedelta = LOG_EVERY,
) -> JournalPass:
    """Walk this tenant's ledger forward until it is complete or today's share is spent.

    ``client`` must pace with ``quota.limit_policy()`` (see :func:`backfill_client`): the
    limiter is what stops the walk at the sync's reserve. ``max_calls`` bounds one pass
    (tests, benchmarks). Safe to call again at any time; it picks up at the checkpoint.
    """
    tenant_id, name = tenant["tenant_id"], tenant["tenant_name"]
    outcome = JournalPass(tenant_id, name, status=PAUSED, quota=_quota_info(quota))
    entry = progress.read(engine, tenant_id, STREAM)
    if entry.get("status") in DONE_STATUSES and not restart:
        _fill(outcome, entry, quota, clock)
        outcome.status = entry["status"]
        outcome.message = entry.get("message") or f"{name}: the journal backfill is {entry['status']}."
        return outcome
    if not restart:
        reason = wait_reason(engine, tenant_id, progress.parse_iso(entry.get("quota_stopped_at")), quota, clock())
        if reason:
            _fill(outcome, entry, quota, clock)
            outcome.status, outcome.message = WAITING, f"{name}: {reason}."
            log.info("%s", outcome.message)
            return outcome
    holder = f"{run_id} (pid {os.getpid()})"
    other = progress.claim(engine, tenant_id, STREAM, holder, lease_ttl)
    if other:
        _fill(outcome, entry, quota, clock)
        outcome.status, outcome.message = BUSY, f"{name}: another pass is walking this ledger ({other})."
        log.info("%s", outcome.message)
        return outcome

    entry = progress.read(engine, tenant_id, STREAM)  # as the last holder left it
    started = progress.now()
    earlier = _earlier_passes(engine, run_id, tenant_id)
    limited_before = client.stats.rate_limited
    walker = _Walker(client, engine, raw, run_id, tenant, quota, outcome, clock, lease_ttl, holder, log_every)
    try:
        if restart:
            entry = _restart(engine, tenant_id, clock)
        if entry.get("target") is None:
            entry = walker.plan(restart=restart)
        if outcome.status not in DONE_STATUSES:
            walker.walk(entry, max_calls)
    except XeroDailyLimitReached as error:
        outcome.status = QUOTA
        outcome.message = (f"{name}: today's share of Xero's quota is used ({quota.describe()}); "
                           "the next pass resumes at the checkpoint once the day window resets.")
        log.info("%s (%s)", outcome.message, error)
    except Exception as error:
        outcome.status, outcome.message = FAILED, f"{name}: journal backfill stopped: {error}"
        raise
    finally:
        outcome.calls = walker.calls()
        outcome.rate_limited = client.stats.rate_limited - limited_before
        try:
            walker.finish(error=outcome.message if outcome.status == FAILED else None)
        finally:
            progress.release(engine, tenant_id, STREAM, holder)
            _record_run(engine, run_id, outcome, client, started, earlier)
    _log_progress(outcome, final=True)
    return outcome


def _restart(engine: Engine, tenant_id: str, clock) -> dict[str, Any]:
    """Forget the walk (not the loaded rows) so the ledger is read again from offset 0."""
    def reset(entry: dict[str, Any]) -> dict[str, Any]:
        kept: dict[str, Any] = {k: entry[k] for k in ("lease", "restart_for") if k in entry}
        return {**kept, "status": "planned", "restarted_at": progress.iso(clock())}

    return progress.update(engine, tenant_id, STREAM, reset)


class _Walker:
    def __init__(self, client, engine, raw, run_id, tenant, quota, outcome, clock, lease_ttl, holder, log_every):
        self.client, self.engine, self.raw, self.run_id = client, engine, raw, run_id
        self.tenant, self.quota, self.outcome, self.clock = tenant, quota, outcome, clock
        self.lease_ttl, self.holder, self.log_every = lease_ttl, holder, log_every
        self.tenant_id = tenant["tenant_id"]
        self.last_log = clock()
        self.calls_at_start = client.stats.calls
        self.calls_counted = 0  # calls already added to the entry's total by checkpoints

    def calls(self) -> int:
        return self.client.stats.calls - self.calls_at_start

    # -- planning: where the ledger ends and who reads what ----------------------------------
    def plan(self, restart: bool = False) -> dict[str, Any]:
        sync = read_state(self.engine, self.tenant_id, STREAM)
        if sync.journal_offset is not None and sync.watermark is not None:
            # The sync has read this ledger from offset 0 already (its first journal read always
            # does), unless a backfill started it at a target, in which case there is an entry.
            if restart:
                return self._set_plan(target=sync.journal_offset, offset=0,
                                      note=f"re-reading journals 1–{sync.journal_offset:,} as asked")
            return self._set_plan(target=sync.journal_offset, offset=sync.journal_offset,
                                  note=f"the scheduled sync had already loaded journals 1–{sync.journal_offset:,}")
        if getattr(getattr(self.client, "settings", None), "ledger_source", "journals") == "documents":
            return self._not_walked(JOURNALS_NOT_USED)
        try:
            target, last = self.find_end()
        except XeroAccessDenied as error:
            if error.status != 401:
                raise
            return self._not_walked(JOURNALS_REFUSED)
        if target and last is not None:
            self._start_sync_at(target, last)
        return self._set_plan(target=target, offset=0, note=f"ledger ends at journal {target:,}")

    def _not_walked(self, why: str) -> dict[str, Any]:
        """No walk where the ledger is derived: the documents' backfill windows carry its history."""
        self.outcome.status = UNAVAILABLE
        self.outcome.message = (f"{self.tenant['tenant_name']}: {why}; the journal walk is skipped and the "
                                "documents' backfill windows carry the ledger's history.")
        return self._set_plan(target=0, offset=0, note=self.outcome.message, status=UNAVAILABLE)

    def find_end(self) -> tuple[int, dict[str, Any] | None]:
        """The highest JournalNumber now, and that journal: grow the offset, then bisect.

        Only an empty answer marks the end: a server may send fewer than 100 journals a call
        without being at the end of the ledger.
        """
        def fetch(offset: int) -> list[dict[str, Any]]:
            response = self.client.get(JOURNALS.sdk_method, self.tenant_id, JOURNALS.label,
                                       **JOURNALS.request_params(offset=offset))
            return list(response.payload.get(JOURNALS.records_key) or [])

        def top(records: list[dict[str, Any]]) -> dict[str, Any]:
            return max(records, key=lambda r: int(r[NUMBER_FIELD]))

        records = fetch(0)
        if not records:
            return 0, None
        last = top(records)
        low, high, step = int(last[NUMBER_FIELD]), None, PER_CALL
        while high is None:  # grow: find an offset past the end
            probe = low + step
            records = fetch(probe)
            if not records:
                high = probe
            else:
                last, step = top(records), step * 2
                low = int(last[NUMBER_FIELD])
        while True:  # bisect between a number that exists (low) and an offset past the end (high)
            probe = low if high - low <= PER_CALL else (low + high) // 2
            records = fetch(probe)
            if not records:
                if probe == low:
                    return low, last
                high = probe
            else:
                last = top(records)
                low = int(last[NUMBER_FIELD])

    def _start_sync_at(self, target: int, last: dict[str, Any]) -> None:
        """Start the sync's journal position at the target, unless it has one by now."""
        created = parse_datetime(last.get(CREATED_FIELD)) or self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(sync_state.c.journal_offset)
                .where(sync_state.c.tenant_id == self.tenant_id, sync_state.c.stream == STREAM)
                .with_for_update()
            ).first()
            if row is not None and row.journal_offset is not None:
                return
            upsert(conn, sync_state, [{"tenant_id": self.tenant_id, "stream": STREAM, "watermark": created,
                                       "journal_offset": target, "updated_at": progress.now()}])
        log.info("%s: the scheduled sync reads journals after %d from now on; the backfill loads 1–%d.",
                 self.tenant["tenant_name"], target, target)

    def _set_plan(self, *, target: int, offset: int, note: str, status: str | None = None) -> dict[str, Any]:
        now = self.clock()

        def change(entry: dict[str, Any]) -> dict[str, Any]:
            entry.update({"target": target, "offset": offset, "planned_at": progress.iso(now), "note": note,
                          "journals_loaded": entry.get("journals_loaded", 0),
                          "lines_loaded": entry.get("lines_loaded", 0), "calls_total": entry.get("calls_total", 0)})
            entry.setdefault("started_at", progress.iso(now))
            entry["status"] = status or (COMPLETE if offset >= target else "running")
            if entry["status"] == COMPLETE:
                entry["completed_at"] = progress.iso(now)
                entry["message"] = f"{self.tenant['tenant_name']}: {note}; nothing to backfill."
            return entry

        entry = progress.update(self.engine, self.tenant_id, STREAM, change)
        if entry["status"] in DONE_STATUSES:
            self.outcome.status = entry["status"]
            self.outcome.message = self.outcome.message or entry.get("message", "")
        log.info("%s: journal backfill plan: %s; share %s.", self.tenant["tenant_name"], note, self.quota.describe())
        return entry

    # -- the walk --------------------------------------------------------------------------
    def walk(self, entry: dict[str, Any], max_calls: int | None) -> None:
        offset, target = int(entry.get("offset") or 0), int(entry["target"])
        self.outcome.offset, self.outcome.target = offset, target
        self._fill_totals(entry)
        start_calls = self.client.stats.calls
        while offset < target:
            if max_calls is not None and self.client.stats.calls - start_calls >= max_calls:
                self.outcome.status = PAUSED
                self.outcome.message = f"{self.tenant['tenant_name']}: stopped after {max_calls} calls as asked."
                return
            result = extract_stream(self.client, JOURNALS, self.tenant_id, StreamState(), self.raw, self.run_id,
                                    start_offset=offset, max_pages=1)
            self.outcome.pages += result.pages
            if result.unavailable:
                self.outcome.status = UNAVAILABLE
                self.outcome.message = f"{self.tenant['tenant_name']}: {result.unavailable}"
                return
            if not result.records:  # nothing after the offset: the ledger ends earlier than planned
                offset = target
                break
            if result.last_offset is None:  # pragma: no cover - extract sets it for every page with records
                raise RuntimeError(f"the page after journal {offset} reported no last {NUMBER_FIELD}")
            reached = int(result.last_offset)
            result.full, result.max_cursor, result.last_offset = False, None, None
            result.extra.update({"reconcile": False, "backfill": f"journals after {offset}"})
            manifest: Manifest = {"run_id": self.run_id, "tenant_id": self.tenant_id,
                        "tenant_name": self.tenant["tenant_name"], "streams": [result.to_dict()]}
            summary = load_tenant(self.engine, self.raw, manifest)
            if summary["failed"]:
                raise JournalPageRejected(" ".join(summary["failed"]))
            loaded = summary["streams"][STREAM]
            rows = loaded.get("rows", {})
            self.outcome.inserted += loaded.get("inserted", 0)
            self.outcome.updated += loaded.get("updated", 0)
            self._archive_page(offset, reached)
            offset = reached
            self._checkpoint(offset, result.records, rows.get("journal_lines", 0), result.api_calls)
        self.outcome.offset = offset
        self.outcome.status = COMPLETE
        self.outcome.message = (f"{self.tenant['tenant_name']}: the journal backfill is complete "
                                f"(journals 1–{target:,}; the scheduled sync reads the newer ones).")

    def _archive_page(self, first: int, last: int) -> None:
        """Keep the raw page beside the next one (extract resets its directory per call)."""
        directory = self.raw.stream_dir(self.run_id, self.tenant_id, STREAM, writing=True)
        kept = self.raw.stream_dir(self.run_id, self.tenant_id, f"{STREAM}-{first + 1:09d}-{last:09d}", writing=True)
        if kept.exists():
            import shutil

            shutil.rmtree(kept)
        directory.rename(kept)

    def _checkpoint(self, offset: int, journals: int, lines: int, calls: int) -> None:
        now = self.clock()
        outcome = self.outcome

        def change(entry: dict[str, Any]) -> dict[str, Any]:
            entry.update({
                "offset": max(offset, int(entry.get("offset") or 0)),
                "journals_loaded": entry.get("journals_loaded", 0) + journals,
                "lines_loaded": entry.get("lines_loaded", 0) + lines,
                "calls_total": entry.get("calls_total", 0) + calls,
                "status": "running", "last_page_at": progress.iso(now),
                "lease": {"holder": self.holder, "until": progress.iso(progress.now() + self.lease_ttl)},
            })
            entry.pop("quota_stopped_at", None)
            return entry

        entry = progress.update(self.engine, self.tenant_id, STREAM, change)
        self.calls_counted += calls
        outcome.offset = entry["offset"]
        outcome.journals += journals
        outcome.lines += lines
        self._fill_totals(entry)
        if now - self.last_log >= self.log_every:
            self.last_log = now
            outcome.calls = self.calls()
            _fill_eta(outcome, self.quota, now)
            _log_progress(outcome, final=False)

    def _fill_totals(self, entry: dict[str, Any]) -> None:
        self.outcome.journals_total = entry.get("journals_loaded", 0)
        self.outcome.calls_total = entry.get("calls_total", 0)

    def finish(self, error: str | None = None) -> None:
        """Write the pass's outcome into the entry: status, message, ETA, last pass, quota stop."""
        outcome, now = self.outcome, self.clock()
        _fill_eta(outcome, self.quota, now)
        stopped_for_quota = outcome.status == QUOTA

        def change(entry: dict[str, Any]) -> dict[str, Any]:
            if outcome.status in DONE_STATUSES:
                entry["status"] = outcome.status
                entry.setdefault("completed_at", progress.iso(now))
            elif error:
                entry["status"] = FAILED
            elif outcome.status in (QUOTA, PAUSED):
                entry["status"] = outcome.status
            entry["message"] = outcome.message
            entry["last_error"] = error
            entry["eta"] = outcome.eta
            if stopped_for_quota:
                entry["quota_stopped_at"] = progress.iso(now)
                entry["quota_day_remaining"] = self.client.stats.quota.get(self.tenant_id, {}).get("day_remaining")
            # Calls no checkpoint counted: finding the ledger's end, a page that was refused.
            entry["calls_total"] = entry.get("calls_total", 0) + self.calls() - self.calls_counted
            entry["last_pass"] = {"run_id": self.run_id, "at": progress.iso(now), "status": outcome.status,
                                  "calls": self.calls(), "journals": outcome.journals, "lines": outcome.lines}
            return entry

        entry = progress.update(self.engine, self.tenant_id, STREAM, change)
        self.calls_counted = self.calls()
        outcome.offset = entry.get("offset", outcome.offset)
        outcome.target = entry.get("target", outcome.target)
        self._fill_totals(entry)


def _fill(outcome: JournalPass, entry: dict[str, Any], quota: QuotaShare, clock) -> None:
    outcome.offset, outcome.target = entry.get("offset"), entry.get("target")
    outcome.journals_total = entry.get("journals_loaded", 0)
    outcome.calls_total = entry.get("calls_total", 0)
    _fill_eta(outcome, quota, clock())


def _fill_eta(outcome: JournalPass, quota: QuotaShare, now: datetime) -> None:
    if outcome.target is None or outcome.status in DONE_STATUSES:
        outcome.eta = None
        return
    calls_left = math.ceil(max(0, outcome.target - (outcome.offset or 0)) / PER_CALL)
    outcome.eta = progress.iso(now + timedelta(days=calls_left / quota.calls_per_day))


def _quota_info(quota: QuotaShare) -> dict[str, Any]:
    return {"share": quota.share, "day_limit": quota.day_limit, "calls_per_day": quota.calls_per_day,
            "day_reserve": quota.day_reserve}


def _log_progress(outcome: JournalPass, *, final: bool) -> None:
    percent = outcome.percent
    if outcome.status == UNAVAILABLE:
        position = "no walk: the ledger is derived from documents"
    elif outcome.target is None or outcome.offset is None or percent is None:
        position = "not planned yet"
    else:
        position = f"offset {outcome.offset:,} of {outcome.target:,} ({percent:.1f}%)"
    calls_left = (math.ceil(max(0, outcome.target - (outcome.offset or 0)) / PER_CALL)
                  if outcome.target is not None else None)
    eta = (f"; ~{calls_left:,} calls left ≈ {calls_left / outcome.quota['calls_per_day']:.1f} days at "
           f"{outcome.quota['calls_per_day']:,} calls/day, ETA {outcome.eta[:16].replace('T', ' ')} UTC"
           if outcome.eta and calls_left else "")
    log.info("%s journal backfill%s: %s; this pass %d calls, %d journals (%d lines) loaded; "
             "%d journals loaded in all%s%s",
             outcome.tenant_name, " done" if final else "", position, outcome.calls, outcome.journals,
             outcome.lines, outcome.journals_total, eta,
             f" — {outcome.message}" if final and outcome.message else "")


def _earlier_passes(engine: Engine, run_id: str, tenant_id: str) -> dict[str, int]:
    """What earlier passes of this run wrote to its sync_runs row, read before this pass's pages
    are loaded (each page's load overwrites the row's row counts with its own)."""
    from intoaec_xero.schema import sync_runs

    counts = ("api_calls", "rows_extracted", "rows_loaded", "rows_inserted", "rows_updated", "rate_limited")
    with engine.connect() as conn:
        before = conn.execute(
            select(sync_runs.c.message, *(sync_runs.c[c] for c in counts))
            .where(sync_runs.c.run_id == run_id, sync_runs.c.tenant_id == tenant_id, sync_runs.c.stream == STREAM)
        ).mappings().first()
    if not before or not (before["message"] or "").startswith("journal backfill"):
        return {}
    return {c: before[c] or 0 for c in counts}


def _record_run(engine: Engine, run_id: str, outcome: JournalPass, client: XeroClient, started: datetime,
                earlier: dict[str, int]) -> None:
    """One sync_runs row per run and tenant for the journal backfill, summed over the run's passes."""
    quota = client.stats.quota.get(outcome.tenant_id, {})
    record_run(
        engine, run_id=run_id, tenant_id=outcome.tenant_id, stream=STREAM,
        started_at=None if earlier else started, finished_at=progress.now(),
        status={COMPLETE: "success", UNAVAILABLE: "unavailable", FAILED: "failed"}.get(outcome.status, "partial"),
        rows_extracted=outcome.journals + earlier.get("rows_extracted", 0),
        rows_loaded=outcome.journals + outcome.lines + earlier.get("rows_loaded", 0),
        rows_inserted=outcome.inserted + earlier.get("rows_inserted", 0),
        rows_updated=outcome.updated + earlier.get("rows_updated", 0),
        api_calls=outcome.calls + earlier.get("api_calls", 0),
        rate_limited=outcome.rate_limited + earlier.get("rate_limited", 0),
        quota_day_remaining=quota.get("day_remaining"), quota_minute_remaining=quota.get("minute_remaining"),
        message=f"journal backfill {outcome.status}: {outcome.message}"[:2000], kind="backfill",
    )


def backfill_client(settings, store, quota: QuotaShare, sleep=None) -> XeroClient:
    """A client whose limiter stops at the sync's reserve and paces to the backfill's minute share."""
    import time

    from intoaec_xero.limits import TenantLimiter

    sleep = sleep or time.sleep
    return XeroClient(settings, store, sleep=sleep, limiter=TenantLimiter(quota.limit_policy(), sleep=sleep))
