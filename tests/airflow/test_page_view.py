"""The Xero page's sync-health view, without a server: the chart, its bars and the card labels."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from intoaec_xero import health as sync_health
from intoaec_xero.airflow import page_view
from markupsafe import Markup

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=page_view.HISTORY_DAYS)


def run(n: int, at: datetime, *, rows: int = 10, calls: int = 3, problems: int = 0, streams: int = 10,
        skipped: int = 0) -> sync_health.RunSummary:
    return sync_health.RunSummary(run_id=f"scheduled__{n}", started_at=at.isoformat(), finished_at=None,
                                  streams=streams, problem_streams=problems, rows_loaded=rows, api_calls=calls,
                                  rate_limited=0, quota_day_remaining=4000, skipped_streams=skipped)


def test_an_empty_month_says_so():
    svg, unit = page_view.chart_svg([], {}, SINCE, NOW)
    assert isinstance(svg, Markup) and svg.startswith("<svg") and svg.endswith("</svg>")
    assert f"No runs in the last {page_view.HISTORY_DAYS} days" in svg
    assert unit == "run" and "<rect" not in svg


def test_each_run_is_a_bar_linked_to_its_run_and_a_failed_run_is_drawn_once():
    runs = [run(1, NOW - timedelta(days=3), rows=5000), run(2, NOW - timedelta(days=2), problems=10),
            run(3, NOW - timedelta(days=1), problems=2)]
    links = {"scheduled__1": "/dags/xero_sync/runs/scheduled__1", "scheduled__3": "/dags/xero_sync/runs/x&y"}
    svg, unit = page_view.chart_svg(runs, links, SINCE, NOW)
    assert unit == "run"
    assert len(re.findall(r"<rect class=\"run ", svg)) == 3
    assert '<rect class="run failed"' in svg and '<rect class="run partial"' in svg
    # A failed run is its bar, nothing else: no second mark for the same run.
    assert "<path" not in svg
    failed_height = float(re.search(r'<rect class="run failed"[^>]* height="([0-9.]+)"', svg).group(1))
    assert failed_height >= 8  # it loaded nothing, and is still there to see and click
    assert 'href="/dags/xero_sync/runs/scheduled__1"' in svg
    assert 'href="/dags/xero_sync/runs/x&amp;y"' in svg  # escaped, never raw
    assert svg.count("<a ") == 2  # the run without a link (from the CLI, say) is a plain bar
    # The tallest bar is the 5,000-row run: a log axis with ticks up to 10k.
    assert ">10k</text>" in svg


def test_a_first_days_runs_minutes_apart_stand_side_by_side():
    runs = [run(n, NOW - timedelta(minutes=30 - n)) for n in range(6)]
    svg, unit = page_view.chart_svg(runs, {}, SINCE, NOW)
    xs = [float(v) for v in re.findall(r'<rect class="run success" x="([0-9.]+)"', svg)]
    gaps = [b - a for a, b in zip(xs, xs[1:], strict=False)]
    assert len(xs) == 6 and min(gaps) > 50 and max(gaps) - min(gaps) < 0.5  # evenly spread, not one pixel
    assert ">Dec 1 11:30</text>" in svg and ">Dec 1 11:35</text>" in svg  # the runs' own times label the axis


def test_more_runs_than_bars_are_summed_per_slot_and_link_to_the_worst():
    start = NOW - timedelta(days=page_view.HISTORY_DAYS) + timedelta(minutes=1)
    runs = [run(n, start + timedelta(minutes=10 * n), rows=1, calls=1, problems=10 if n == 7 else 0)
            for n in range(page_view.MAX_BARS * 4)]
    drawn, unit = page_view.bars(runs, SINCE, NOW)
    assert len(drawn) <= page_view.MAX_BARS
    assert unit == "4-hour slot"
    assert sum(b.rows for b in drawn) == len(runs) and sum(b.calls for b in drawn) == len(runs)
    failed = [b for b in drawn if b.status == "failed"]
    assert len(failed) == 1 and failed[0].run_id == "scheduled__7"
    assert "1 with failures, e.g. scheduled__7" in failed[0].title


def test_a_few_runs_are_one_bar_each_with_their_numbers_in_the_tooltip():
    (bar,), unit = page_view.bars([run(1, NOW - timedelta(hours=1), rows=1234, calls=7)], SINCE, NOW)
    assert unit == "run"
    assert (bar.rows, bar.calls, bar.status, bar.run_id) == (1234, 7, "success", "scheduled__1")
    assert "1,234 rows loaded · 7 API calls" in bar.title and "quota left 4,000" in bar.title


def test_cards_read_worst_first_with_their_tone():
    def card(verdict: str) -> page_view.TenantView:
        health = sync_health.TenantHealth(tenant_id=verdict, tenant_name=verdict, connection_status="Connected",
                                          sync_enabled=True, verdict=verdict)
        return page_view.TenantView(health=health, org=None, runs=[], chart=Markup(""), chart_unit="run",
                                    backfill=None)

    assert (card(sync_health.FAILING).tone, card(sync_health.FAILING).label) == ("bad", "Failing")
    assert card(sync_health.STALE).attention and not card(sync_health.HEALTHY).attention
    assert card(sync_health.HEALTHY).tone == "ok"
    order = list(page_view.VERDICTS)
    assert order.index(sync_health.RECONNECT) < order.index(sync_health.FAILING) < order.index(sync_health.HEALTHY)


def test_times_and_ages_read_as_people_say_them():
    assert page_view._when(None) == "-"
    assert page_view._when("2026-12-01T13:30:00+01:00") == "2026-12-01 12:30 UTC"
    assert page_view._age(None) == "-"
    assert page_view._age(0.5) == "just now"
    assert page_view._age(90) == "90 min ago"
    assert page_view._age(180) == "3.0 h ago"
    assert page_view._age(3 * 1440) == "3.0 days ago"
    assert [page_view._short(v) for v in (0, 999, 1000, 2_500_000)] == ["0", "999", "1k", "2.5M"]
