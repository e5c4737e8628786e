"""The Xero page's sync health, through a real Airflow API server, on an IntoAEC DB seeded directly.

The verdicts themselves are tested in tests/intoaec_xero/test_health.py; here: that each one is
rendered so the tenants needing someone stand out, and what the page adds (the 30-day chart,
links to DAG runs, backfill progress, journals, Data Docs).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
import requests
from intoaec_xero import state
from intoaec_xero.backfill import progress
from intoaec_xero.db import upsert
from intoaec_xero.ledger import JOURNALS_REFUSED
from intoaec_xero.quality.model import WARN, CheckResult
from intoaec_xero.quality.record import record_results
from intoaec_xero.schema import sync_runs, sync_state, xero_tenants
from sqlalchemy import insert

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

def _tenant(engine, tenant_id: str, name: str, status: str = "Connected") -> None:
    with engine.begin() as conn:
        upsert(conn, xero_tenants, [{"tenant_id": tenant_id, "tenant_name": name, "connection_key": "xero_default",
                                     "connection_status": status, "sync_enabled": status == "Connected"}])


def _run(engine, tenant_id: str, at: datetime, stream: str = "invoices", status: str = "success",
         run_id: str | None = None, rows: int = 10, calls: int = 2, **extra) -> str:
    run_id = run_id or f"scheduled__{at:%Y-%m-%dT%H:%M:%S}+00:00"
    if status == "success":
        with engine.begin() as conn:
            state.advance(conn, tenant_id, stream, watermark=at, journal_offset=None, full=False)
            conn.execute(sync_state.update().where(sync_state.c.tenant_id == tenant_id, sync_state.c.stream == stream)
                         .values(last_success_at=at))
    state.record_run(engine, run_id=run_id, tenant_id=tenant_id, stream=stream, started_at=at,
                     finished_at=at, status=status, rows_loaded=rows, api_calls=calls,
                     quota_day_remaining=4_900, quality_verdict="passed" if status == "success" else None, **extra)
    return run_id


def _cards(page: str) -> dict[str, dict[str, str]]:
    """Organisation name → its card's verdict, classes and text."""
    cards = {}
    for match in re.finditer(r'<article class="([^"]+)" id="tenant-[^"]+"\s+data-tenant-id="([^"]+)" '
                             r'data-verdict="([^"]+)">(.*?)</article>', page, re.S):
        classes, _, verdict, body = match.groups()
        name = re.search(r'<h3 class="tenant-name">(.*?)</h3>', body).group(1)
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))
        cards[name] = {"classes": classes, "verdict": verdict, "text": text, "html": body}
    return cards


@pytest.fixture
def seeded(airflow_ui):
    """Six organisations of one connection, one per verdict, with a week of hourly-ish history for one."""
    airflow_ui.reset()
    engine = airflow_ui.engine
    now = datetime.now(UTC).replace(microsecond=0)
    _tenant(engine, "t-fresh", "Fresh Architects")
    for hours in range(7 * 24, 0, -6):
        _run(engine, "t-fresh", now - timedelta(hours=hours, minutes=30), rows=hours, calls=3)
    last = _run(engine, "t-fresh", now - timedelta(minutes=30), rows=1234, calls=7)
    cli = _run(engine, "t-fresh", now - timedelta(minutes=20), stream="payments", run_id="cli__manual", rows=5)

    _tenant(engine, "t-old", "Old Engineers")
    _run(engine, "t-old", now - timedelta(hours=5))
    _run(engine, "t-old", now - timedelta(hours=5), stream="bank_transactions", status="unavailable", rows=0,
         message="Old Engineers (t-old) needs re-consent for bank transactions: the Xero connection's grant does "
                 "not include the accounting.banktransactions.read scope")

    _tenant(engine, "t-broken", "Broken Surveyors")
    _run(engine, "t-broken", now - timedelta(minutes=10))
    _run(engine, "t-broken", now - timedelta(minutes=10), stream="payments", status="failed",
         run_id=f"scheduled__{now - timedelta(minutes=10):%Y-%m-%dT%H:%M:%S}+00:00")
    state.record_error(engine, "t-broken", "payments", "GET /Payments: Xero answered 500")

    _tenant(engine, "t-expired", "Grant Expired Ltd", status="Reconnect needed")
    _run(engine, "t-expired", now - timedelta(minutes=40))

    _tenant(engine, "t-starter", "Core Tier Studio")
    _run(engine, "t-starter", now - timedelta(minutes=15), run_id="scheduled__starter")
    _run(engine, "t-starter", now - timedelta(minutes=15), stream="journals", status="derived",
         run_id="scheduled__starter", rows=420, calls=1,
         message=f"Core Tier Studio (t-starter): {JOURNALS_REFUSED} (40 journals, 420 lines derived in 0.2 s)")
    record_results(engine, "scheduled__starter", "t-starter", [CheckResult(
        "journal_lines", "ledger_matches_trial_balance", WARN, False, observed="2 of 30 accounts differ",
        failing_keys=["477 Salaries: 4200.00 not explained (Xero 9800.00, documents 5600.00)",
                      "090 Business Cheque Account: -4200.00 not explained (Xero 1000.00, documents 5200.00)"])])

    _tenant(engine, "t-new", "New Builders")
    progress.update(engine, "t-new", "journals", lambda entry: {"status": "waiting_for_quota", "offset": 550,
                                                                "target": 2200, "journals_loaded": 550,
                                                                "calls_total": 30})
    _projects(engine, "t-fresh", ["Riverside Library", "Harbour Bridge Retrofit", "Civic Centre"], last,
              passed=False, observed="1 difference(s) over 3 project(s), 2026-01-01 to 2026-12-31 "
                                     "(Civic Centre: costs 10.00 here, 12.00 in Xero)")
    _projects(engine, "t-old", [], "scheduled__old", passed=True,
              observed="skipped: the tenant's project category is not known yet")
    airflow_ui.add_dag_run("xero_sync", last)
    return {"last": last, "cli": cli, "now": now}


def _projects(engine, tenant_id: str, names: list[str], run_id: str, *, passed: bool, observed: str) -> None:
    from intoaec_xero.schema import dq_results, project_summary
    from sqlalchemy import insert

    money = dict.fromkeys(("invoiced", "credited", "other_income", "revenue", "received", "outstanding", "costs_bills",
                           "costs_spend_money", "costs_manual_journals", "costs_other", "costs", "gross_margin",
                           "committed", "unbilled_expenses", "deposits_held"), 0)
    with engine.begin() as conn:
        for name in names:
            conn.execute(insert(project_summary).values(tenant_id=tenant_id, project=name, **money))
        conn.execute(insert(dq_results).values(run_id=run_id, tenant_id=tenant_id, table_name="project_financials",
                                               check_name="project_pnl_matches_xero", severity="warn",
                                               passed=passed, observed=observed, expected="equal",
                                               checked_at=datetime.now(UTC)))


def test_each_verdict_is_rendered_distinctly_and_problems_come_first(airflow_ui, seeded):
    page = airflow_ui.session().get(f"{airflow_ui.base_url}/xero/")
    assert page.status_code == 200
    cards = _cards(page.text)
    assert {name: card["verdict"] for name, card in cards.items()} == {
        "Grant Expired Ltd": "reconnect_needed", "Broken Surveyors": "failing", "Old Engineers": "stale",
        "New Builders": "never_synced", "Fresh Architects": "healthy", "Core Tier Studio": "healthy",
    }
    # Worst first: whoever needs someone is at the top.
    assert list(cards)[:3] == ["Grant Expired Ltd", "Broken Surveyors", "Old Engineers"]

    assert cards["Fresh Architects"]["classes"] == "tenant ok"
    assert cards["Old Engineers"]["classes"] == "tenant warn attention"
    assert cards["Broken Surveyors"]["classes"] == "tenant bad attention"
    assert cards["Grant Expired Ltd"]["classes"] == "tenant bad attention"
    assert "attention" not in cards["New Builders"]["classes"]

    assert '<span class="badge verdict ok">Healthy</span>' in cards["Fresh Architects"]["html"]
    assert '<span class="badge verdict warn">Stale</span>' in cards["Old Engineers"]["html"]
    assert '<span class="badge verdict bad">Failing</span>' in cards["Broken Surveyors"]["html"]
    assert '<span class="badge verdict bad">Reconnect needed</span>' in cards["Grant Expired Ltd"]["html"]
    # Why, in words, on the card itself.
    assert "threshold 120 min" in cards["Old Engineers"]["text"]
    assert "Xero answered 500" in cards["Broken Surveyors"]["text"]
    assert "reconnect Xero" in cards["Grant Expired Ltd"]["text"]
    assert "no successful sync yet" in cards["New Builders"]["text"]
    assert 'class="stale-age"' in cards["Old Engineers"]["html"]
    # The streams of a tenant in trouble are open; a healthy tenant's are folded away.
    assert '<details class="streams" open>' in cards["Broken Surveyors"]["html"]
    assert '<details class="streams">' in cards["Fresh Architects"]["html"]

    glance = re.search(r'<nav class="glance" id="health-summary".*?</nav>', page.text, re.S).group(0)
    assert re.search(r'class="chip bad" href="#tenant-t-expired" data-verdict="reconnect_needed">'
                     r"Grant Expired Ltd · Reconnect needed<", glance)
    assert 'class="chip warn" href="#tenant-t-old"' in glance
    assert 'class="chip ok" href="#tenant-t-fresh"' in glance


def test_a_card_has_status_last_sync_volumes_quota_quality_journals_and_backfill(airflow_ui, seeded):
    cards = _cards(airflow_ui.session().get(f"{airflow_ui.base_url}/xero/").text)
    fresh = cards["Fresh Architects"]
    assert "Connected" in fresh["text"] and "Sync Enabled" in fresh["text"]
    assert re.search(r"\(3\d min ago\)", fresh["text"])  # 30 min when seeded, a little more now
    assert "1,239 in the last run" in fresh["text"]  # invoices' last run + payments' (the CLI run)
    assert "4,900 calls" in fresh["text"]
    assert '<dd class="quality"><span class="badge ok">Passed</span>' in fresh["html"]
    assert "Sync Disabled" in cards["Grant Expired Ltd"]["text"]

    core = cards["Core Tier Studio"]
    assert '<span class="badge info">Derived from documents</span>' in core["html"]
    assert JOURNALS_REFUSED in html.unescape(core["text"])
    assert "Not explained by any document" in core["text"] and "477 Salaries: 4200.00 not explained" in core["text"]
    assert "badge ok" not in core["html"].split('class="journals"')[1].split("</dd>")[0]
    assert "Not explained by any document" not in fresh["text"]

    projects = re.search(r'<dd class="projects">.*?</dd>', fresh["html"], re.S).group(0)
    assert "3 projects" in projects and '<span class="badge warn">Differs from Xero</span>' in projects
    assert "Civic Centre: costs 10.00 here, 12.00 in Xero" in projects
    old = re.search(r'<dd class="projects">.*?</dd>', cards["Old Engineers"]["html"], re.S).group(0)
    assert "0 projects" in old and '<span class="badge off">Skipped</span>' in old and "not known yet" in old
    assert "no P&amp;L check yet" in cards["New Builders"]["html"]
    assert '<span class="badge warn">Needs re-consent for bank transactions</span>' in cards["Old Engineers"]["html"]
    assert 'class="consent"' not in fresh["html"]

    backfill = cards["New Builders"]["text"]
    assert "waiting for quota" in backfill and "25.0%" in backfill and "offset 550 of 2,200" in backfill


def test_the_chart_has_a_bar_per_run_that_links_to_its_dag_run(airflow_ui, seeded):
    cards = _cards(airflow_ui.session().get(f"{airflow_ui.base_url}/xero/").text)
    chart = re.search(r'<svg class="chart".*?</svg>', cards["Fresh Architects"]["html"], re.S).group(0)
    assert len(re.findall(r'<rect class="run success"', chart)) == 7 * 4 + 1 + 1
    assert "<polyline" in chart and "http" not in chart.replace("http://www.w3.org/2000/svg", "")

    link = f"/dags/xero_sync/runs/{quote(seeded['last'], safe='')}"
    assert f'<a href="{link}" target="_top"><rect' in chart  # a run this Airflow has
    assert f'<a class="run-link" href="{link}" target="_top">{seeded["last"]}</a>' in cards["Fresh Architects"]["html"]
    assert '<code class="run-id"' in cards["Fresh Architects"]["html"]  # the CLI run: no link to nowhere
    assert 'href="/dags/xero_sync/runs/cli__manual"' not in cards["Fresh Architects"]["html"]

    broken = re.search(r'<svg class="chart".*?</svg>', cards["Broken Surveyors"]["html"], re.S).group(0)
    assert len(re.findall(r'<rect class="run partial"', broken)) == 1
    assert "<path" not in broken  # each run is drawn once: its bar
    assert "No runs in the last 30 days" in re.search(r'<svg class="chart".*?</svg>',
                                                      cards["New Builders"]["html"], re.S).group(0)


def test_the_page_links_to_the_dag_runs_it_summarises(airflow_ui, seeded):
    page = airflow_ui.session().get(f"{airflow_ui.base_url}/xero/").text
    assert '<a href="/dags/xero_sync/runs" target="_top">xero_sync</a>' in page
    assert '<a href="/dags/xero_backfill/runs" target="_top">xero_backfill</a>' in page


def test_data_docs_are_linked_when_built_and_served_only_to_who_may_see_the_page(airflow_ui, seeded):
    session = airflow_ui.session()
    docs = airflow_ui.data_dir / "data_docs"
    if docs.exists():
        for item in sorted(docs.rglob("*"), reverse=True):
            item.unlink() if item.is_file() else item.rmdir()
    page = session.get(f"{airflow_ui.base_url}/xero/").text
    assert "Data Docs not built yet" in page and 'id="data-docs"' not in page

    (docs / "validations").mkdir(parents=True)
    (docs / "index.html").write_text("<html><body>GX Data Docs index</body></html>")
    (docs / "validations" / "run.html").write_text("<html><body>one validation</body></html>")
    (docs / ".lock").write_text("")
    page = session.get(f"{airflow_ui.base_url}/xero/").text
    assert '<a id="data-docs" href="/xero/data-docs/" target="_blank" rel="noopener">Data Docs</a>' in page

    served = session.get(f"{airflow_ui.base_url}/xero/data-docs/")
    assert served.status_code == 200 and "GX Data Docs index" in served.text
    assert "connect-src 'none'" in served.headers["content-security-policy"]
    assert "one validation" in session.get(f"{airflow_ui.base_url}/xero/data-docs/validations/run.html").text
    for path in ("../passwords.json", "%2e%2e/passwords.json", ".lock", "missing.html"):
        assert session.get(f"{airflow_ui.base_url}/xero/data-docs/{path}").status_code == 404, path
    assert requests.get(f"{airflow_ui.base_url}/xero/data-docs/", timeout=30).status_code == 401
    assert airflow_ui.session("viewer").get(f"{airflow_ui.base_url}/xero/data-docs/").status_code == 403


def test_an_expired_grant_puts_every_tenant_of_the_connection_first_as_reconnect_needed(airflow_ui, seeded):
    from intoaec_xero.tokens import STATUS_RECONNECT, TokenSet

    store = airflow_ui.store()
    store.save(TokenSet(access_token="a", refresh_token="r", expires_at=seeded["now"].timestamp()))
    store.mark(STATUS_RECONNECT)
    cards = _cards(airflow_ui.session().get(f"{airflow_ui.base_url}/xero/").text)
    assert {card["verdict"] for card in cards.values()} == {"reconnect_needed"}
    assert all(card["classes"] == "tenant bad attention" for card in cards.values())


def test_a_month_of_hourly_runs_is_drawn_in_slots_and_keeps_the_page_light(airflow_ui):
    airflow_ui.reset()
    engine = airflow_ui.engine
    now = datetime.now(UTC).replace(microsecond=0)
    _tenant(engine, "t-busy", "Busy Partners")
    _run(engine, "t-busy", now - timedelta(minutes=5))
    hourly = [{"run_id": f"scheduled__{now - timedelta(hours=h):%Y-%m-%dT%H:%M:%S}+00:00", "tenant_id": "t-busy",
               "stream": "invoices", "started_at": now - timedelta(hours=h), "rows_loaded": h % 7, "api_calls": 2,
               "status": "failed" if h == 50 else "success"} for h in range(1, 30 * 24)]
    with engine.begin() as conn:
        conn.execute(insert(sync_runs), hourly)
    page = airflow_ui.session().get(f"{airflow_ui.base_url}/xero/").text
    card = _cards(page)["Busy Partners"]
    chart = re.search(r'<svg class="chart".*?</svg>', card["html"], re.S).group(0)
    bars = re.findall(r'<rect class="run (\w+)"', chart)
    assert 170 <= len(bars) <= 181 and bars.count("failed") == 1
    assert "per 4-hour slot" in card["text"] and "(720 runs)" in card["text"]
    assert len(chart) < 60_000


def test_streams_skipped_for_another_streams_failure_are_grey_and_their_run_is_failed(airflow_ui):
    airflow_ui.reset()
    engine = airflow_ui.engine
    now = datetime.now(UTC).replace(microsecond=0)
    _tenant(engine, "t-stopped", "Stopped Surveyors")
    _run(engine, "t-stopped", now - timedelta(hours=1))
    _run(engine, "t-stopped", now - timedelta(hours=1), stream="payments")
    stopped = now - timedelta(minutes=10)
    run_id = _run(engine, "t-stopped", stopped, status="skipped", rows=None,
                  message="not loaded: payments extract failed for this tenant")
    _run(engine, "t-stopped", stopped, stream="payments", status="failed", run_id=run_id, rows=None)
    state.record_error(engine, "t-stopped", "payments", "GET /Payments: Xero answered 500")
    card = _cards(airflow_ui.session().get(f"{airflow_ui.base_url}/xero/").text)["Stopped Surveyors"]
    assert card["verdict"] == "failing"
    reasons = re.search(r'<ul class="reasons.*?</ul>', card["html"], re.S).group(0)
    assert re.findall(r"<li>(.*?)</li>", reasons) == ["payments: GET /Payments: Xero answered 500"]
    invoices = re.search(r'<tr data-stream="invoices">.*?</tr>', card["html"], re.S).group(0)
    assert '<span class="badge off">skipped</span>' in invoices
    chart = re.search(r'<svg class="chart".*?</svg>', card["html"], re.S).group(0)
    assert re.findall(r'<rect class="run (\w+)"', chart) == ["success", "failed"]  # nothing of the last run loaded
