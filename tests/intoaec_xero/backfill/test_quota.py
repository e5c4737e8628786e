"""The backfill's quota share: its arithmetic, its limiter policy, and when it may spend again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from intoaec_xero import state
from intoaec_xero.backfill.quota import QuotaShare, wait_reason
from intoaec_xero.backfill.windows import where_clause, window_streams
from intoaec_xero.errors import XeroDailyLimitReached
from intoaec_xero.limits import TenantLimiter


def test_the_default_share_leaves_the_sync_forty_percent_of_the_day():
    quota = QuotaShare()
    assert (quota.calls_per_day, quota.day_reserve) == (3000, 2000)
    assert QuotaShare(day_limit=1000).day_reserve == 400  # Xero's Starter tier
    policy = quota.limit_policy()
    assert policy.day_reserve == 2000
    assert (policy.per_minute, policy.minute_reserve) == (36, 24)  # and 40% of each minute
    assert QuotaShare(minute_limit=0).limit_policy().per_minute == 0  # no pacing against an unlimited sandbox


def test_settings_come_from_the_run_then_the_environment(monkeypatch):
    monkeypatch.setenv("INTOAEC_BACKFILL_SHARE", "0.25")
    monkeypatch.setenv("INTOAEC_XERO_DAY_LIMIT", "1000")
    assert QuotaShare.from_environment().calls_per_day == 250
    assert QuotaShare.from_environment(share=0.5, day_limit=5000).calls_per_day == 2500
    with pytest.raises(ValueError, match="share"):
        QuotaShare(share=1.5)


def test_the_limiter_stops_the_backfill_at_the_reserve_not_at_xeros_limit():
    quota = QuotaShare(day_limit=100, share=0.6, minute_limit=0)
    limiter = TenantLimiter(quota.limit_policy(), sleep=lambda s: None)
    limiter.before_call("t")
    limiter.after_response("t", {"x-daylimit-remaining": "41"})
    limiter.before_call("t")  # 41 left > 40 reserved: one more
    limiter.after_response("t", {"x-daylimit-remaining": "40"})
    with pytest.raises(XeroDailyLimitReached, match="reserve of 40"):
        limiter.before_call("t")


def test_after_using_the_share_it_waits_for_a_new_day_window(sqlite_engine):
    quota = QuotaShare(day_limit=1000)
    stopped = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    assert wait_reason(sqlite_engine, "t", None, quota, stopped) is None
    assert "day window" in wait_reason(sqlite_engine, "t", stopped, quota, stopped + timedelta(hours=23))
    assert wait_reason(sqlite_engine, "t", stopped, quota, stopped + timedelta(hours=24)) is None


def test_a_later_call_that_saw_more_than_the_reserve_proves_the_window_reset(sqlite_engine):
    quota = QuotaShare(day_limit=1000)
    stopped = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    later = stopped + timedelta(hours=2)
    state.record_run(sqlite_engine, run_id="sync-1", tenant_id="t", stream="invoices", started_at=later,
                     quota_day_remaining=400)  # still the same window: at the reserve
    assert wait_reason(sqlite_engine, "t", stopped, quota, later) is not None
    state.record_run(sqlite_engine, run_id="sync-2", tenant_id="t", stream="invoices",
                     started_at=later + timedelta(minutes=5), quota_day_remaining=995)
    assert wait_reason(sqlite_engine, "t", stopped, quota, later) is None
    state.record_run(sqlite_engine, run_id="sync-0", tenant_id="other", stream="invoices", started_at=later,
                     quota_day_remaining=995)  # another tenant's window says nothing about this one
    assert wait_reason(sqlite_engine, "u", stopped, quota, later) is not None


def test_windows_filter_on_date_within_the_half_open_interval():
    assert where_clause("2024-01-01T00:00:00+00:00", "2024-02-01T00:00:00+00:00") == (
        "Date >= DateTime(2024,01,01) && Date < DateTime(2024,02,01)")
    with pytest.raises(ValueError):
        where_clause("2024-02-01", "2024-02-01")
    # Every document a ledger derived from documents is built from, so windows carry its history too.
    assert [s.name for s in window_streams(None)] == ["invoices", "credit_notes", "payments", "bank_transactions",
                                                      "bank_transfers", "manual_journals", "prepayments",
                                                      "overpayments"]
    with pytest.raises(ValueError, match="not contacts"):
        window_streams(["invoices", "contacts"])
