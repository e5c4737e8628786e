"""The Xero page's Firms section: ``page_view.firms_context`` on a database, and the template rendering it.

No API server: the section's data is built from a migrated SQLite database holding the same firms
as ``intoaec-xero firms``' tests, and ``xero.html`` is rendered with Jinja2 as the plugin renders it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from intoaec_xero.airflow import page_view
from intoaec_xero.tenants import TenantStatus
from jinja2 import Environment, FileSystemLoader, select_autoescape

from tests.airflow.test_cli_firms import build_firms
from tests.harness.databases import migrated_engine

TEMPLATES = Path(__file__).resolve().parents[2] / "plugins" / "xero_templates"
CONNECTED, RECONNECT, DISCONNECTED = (TenantStatus.CONNECTED.value, TenantStatus.RECONNECT_NEEDED.value,
                                      TenantStatus.DISCONNECTED.value)


@pytest.fixture
def firms_engine(sqlite_url):
    with migrated_engine(sqlite_url) as engine:
        build_firms(engine)
        yield engine


@pytest.fixture
def empty_engine(sqlite_url):
    with migrated_engine(sqlite_url) as engine:
        yield engine


def render(**context) -> str:
    """``xero.html`` as ``_render`` fills it for a connected ``xero_default`` with no organisation of its own."""
    templates = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    page_view.register(templates)
    base = dict(
        conn_id="xero_default", root="/xero", airflow_home="/", csrf="token", orgs=[], tenants=[], conn_choices=[],
        settings=SimpleNamespace(client_id="client", scopes=["offline_access"], grant_type="authorization_code"),
        grant=None, grant_state="connected", threshold_minutes=120, history_days=30, data_docs=None,
        dag_links={"xero_sync": "/dags/xero_sync/runs", "xero_backfill": "/dags/xero_backfill/runs"},
        checked_at=datetime(2026, 1, 1, tzinfo=UTC))
    return templates.get_template("xero.html").render(**(base | context))


def section(page: str) -> str:
    found = re.search(r'<section id="firms">(.*?)</section>', page, re.S)
    assert found, "no Firms section"
    return found.group(1)


def firm_rows(page: str) -> dict[str, str]:
    return dict(re.findall(r'<tbody class="firm" id="firm-[^"]+" data-firm-id="([^"]+)">(.*?)</tbody>', page, re.S))


# -- firms_context ---------------------------------------------------------------------------------

def test_every_firm_with_its_organisations_in_the_clis_words(firms_engine):
    context = page_view.firms_context(firms_engine, None, None)

    assert context["firms_total"] == 4 and context["firms_attention"] == 4  # acme: Meridian has never synced
    assert context["firm_filter"] == "" and context["firm_status_filter"] == ""
    firms = {f["firm_id"]: f for f in context["firms"]}
    assert list(firms) == ["acme", "beta", "delta", "gamma"]
    assert (firms["acme"]["grant"], firms["acme"]["grant_tone"]) == ("Saved", "ok")
    harbour, meridian = firms["acme"]["organisations"]
    assert (harbour["tenant_name"], harbour["status"], harbour["sync"], harbour["future_access"],
            harbour["health_label"], harbour["health_tone"], harbour["attention"]) == (
        "Harbourside Architects Ltd", CONNECTED, "Sync Enabled", "Future Access Saved", "Healthy", "ok", False)
    assert harbour["last_successful_sync"] and harbour["backfill_label"] == "-"
    assert (meridian["sync"], meridian["health_label"], meridian["attention"]) == ("Sync Disabled", "Never synced",
                                                                                    True)
    beta = firms["beta"]["organisations"][0]
    assert (firms["beta"]["grant"], firms["beta"]["grant_tone"]) == (RECONNECT, "bad")
    assert (beta["status"], beta["status_tone"], beta["health_label"], beta["health_tone"]) == (
        RECONNECT, "bad", RECONNECT, "bad")
    assert beta["health_reasons"] == ["the Xero grant expired or was revoked: reconnect Xero"]
    assert firms["gamma"]["organisations"] == [] and firms["gamma"]["attention"]
    assert firms["delta"]["grant"] == "Not connected"
    assert {c["value"] for c in context["firm_status_choices"]} == {s.value for s in TenantStatus} | {"attention"}


def test_the_filters_match_part_of_a_firm_id_and_a_status_in_any_case(firms_engine):
    def shown(firm: str | None, status: str | None) -> dict[str, list[str]]:
        context = page_view.firms_context(firms_engine, firm, status)
        assert context["firms_total"] == 4  # the counts are of every firm, whatever is shown
        return {f["firm_id"]: [o["tenant_name"] for o in f["organisations"]] for f in context["firms"]}

    assert shown("  AC ", None) == {"acme": ["Harbourside Architects Ltd", "Meridian Structural Engineers"]}
    assert shown("a", "") == {"acme": ["Harbourside Architects Ltd", "Meridian Structural Engineers"],
                              "beta": ["Beta Builders"], "delta": ["Delta Design"], "gamma": []}
    assert shown(None, "reconnect NEEDED") == {"beta": ["Beta Builders"]}
    assert shown("", DISCONNECTED.lower()) == {"delta": ["Delta Design"]}
    assert shown("acme", "attention") == {"acme": ["Meridian Structural Engineers"]}
    assert shown(None, "attention") == {"acme": ["Meridian Structural Engineers"], "beta": ["Beta Builders"],
                                        "delta": ["Delta Design"], "gamma": []}
    assert shown("nobody", None) == {} and shown(None, "no such status") == {}
    assert page_view.firms_context(firms_engine, "x" * 500, None)["firm_filter"] == "x" * page_view.FIRM_FILTER_MAX


def test_no_firm_is_an_empty_list(empty_engine):
    context = page_view.firms_context(empty_engine, "acme", CONNECTED)
    assert (context["firms"], context["firms_total"], context["firms_attention"]) == ([], 0, 0)


# -- the template ----------------------------------------------------------------------------------

def test_the_section_lists_each_firm_and_organisation_with_badges_and_reasons(firms_engine):
    page = render(**page_view.firms_context(firms_engine, None, None))

    firms = section(page)
    rows = firm_rows(firms)
    assert list(rows) == ["acme", "beta", "delta", "gamma"]
    acme = rows["acme"]
    assert re.search(r'<th class="firm-id" rowspan="2">acme\s*<div class="grant"[^>]*><span class="badge ok">Saved'
                     r'</span></div>', acme)
    harbour = re.search(r'<tr data-tenant-id="t-harbour">(.*?)</tr>', acme, re.S).group(1)
    assert f'<td class="status"><span class="badge ok">{CONNECTED}</span></td>' in harbour
    assert '<span class="badge ok">Sync Enabled</span>' in harbour
    assert '<span class="badge ok">Future Access Saved</span>' in harbour
    assert '<span class="badge ok">Healthy</span>' in harbour and " UTC</td>" in harbour
    assert '<tr data-tenant-id="t-meridian" class="attention">' in acme
    assert '<span class="badge off">Sync Disabled</span>' in acme and ">never</span>" in acme
    beta = rows["beta"]
    assert f'<span class="badge bad">{RECONNECT}</span>' in beta
    assert "<li>the Xero grant expired or was revoked: reconnect Xero</li>" in beta
    assert '<span class="badge off">Future Access Not Saved</span>' in beta
    assert "No organisation: nothing of this firm is synced." in rows["gamma"]
    assert '<span class="badge off">Not connected</span>' in rows["delta"]
    # The filter form: a GET back to the page, keeping the connection; nothing chosen yet.
    form = re.search(r'<form id="firm-filter" method="get" action="/xero/#firms">(.*?)</form>', firms, re.S).group(1)
    assert '<input type="hidden" name="conn_id" value="xero_default">' in form
    assert 'name="firm" value=""' in form and '<option value="">Any status</option>' in form
    assert " selected" not in form and "show-all-firms" not in form
    # The top of the page points to the section and says how many firms need someone.
    assert re.search(r'<p class="sub" id="firms-glance"><a href="#firms">Firms</a>: 4 connected their own Xero '
                     r'through IntoAEC\s*· <span class="err">4 need attention</span>', page)


def test_a_filter_is_kept_in_the_form_escaped_and_a_filter_matching_nothing_says_so(firms_engine):
    page = render(**page_view.firms_context(firms_engine, '<b>"x', "Reconnect needed"))

    firms = section(page)
    assert "<b>" not in firms and 'value="&lt;b&gt;&#34;x"' in firms
    assert f'<option value="{RECONNECT}" selected>{RECONNECT}</option>' in firms
    assert "No firm organisation matches this filter." in firms and "firms-table" not in firms
    assert '<a id="show-all-firms" href="/xero/?conn_id=xero_default#firms">Show all firms</a>' in firms

    page = render(**page_view.firms_context(firms_engine, "be", "attention"))
    assert list(firm_rows(section(page))) == ["beta"]
    assert '<option value="attention" selected>' in page


def test_no_firm_is_one_line_and_a_page_without_firm_data_has_no_section(empty_engine):
    page = render(**page_view.firms_context(empty_engine, None, None))
    assert section(page).split("</h2>", 1)[1].strip() == (
        '<p class="muted" id="no-firms">No firm has connected through IntoAEC yet.</p>')
    assert "firms-glance" not in page

    page = render()  # the plugin does not pass firms (yet), or the database could not be read
    assert 'id="firms"' not in page and "firms-glance" not in page
