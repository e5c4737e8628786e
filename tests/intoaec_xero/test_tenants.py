"""``xero_tenants`` has one owner: what /connections records, how statuses change, and one vocabulary.

The recording and status tests run on SQLite and PostgreSQL (the ``engine`` fixture). The last
tests read the sources: no module but ``intoaec_xero.tenants`` spells a status out, and the Xero
page's template shows and compares statuses only through the vocabulary it is given.
"""

from __future__ import annotations

import ast
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet
from intoaec_xero import tenants
from intoaec_xero.airflow import page_view
from intoaec_xero.errors import XeroAuthError, XeroUnavailable
from intoaec_xero.health import TenantHealth
from intoaec_xero.schema import xero_tenants
from intoaec_xero.settings import XeroSettings
from intoaec_xero.tenants import Organisation, TenantStatus, parse_connection_date
from intoaec_xero.tokens import STATUS_ACTIVE, STATUS_DISCONNECTED, STATUS_RECONNECT, TokenCipher, TokenSet, TokenStore
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup
from sqlalchemy import select

REPO = Path(__file__).resolve().parents[2]

# What Xero's GET /connections answers (shape from the identity spec; dates as Xero writes them).
HARBOUR = {"id": "c-1", "authEventId": "a-1", "tenantId": "t-harbour", "tenantType": "ORGANISATION",
           "tenantName": "Harbourside Architects Ltd", "createdDateUtc": "2019-12-07T18:46:19.5165400",
           "updatedDateUtc": "2019-12-07T18:46:19.5187840"}
MERIDIAN = {"id": "c-2", "authEventId": "a-1", "tenantId": "t-meridian", "tenantType": "ORGANISATION",
            "tenantName": "Meridian Structural Engineers Pty Ltd", "createdDateUtc": "2026-01-06T09:00:00.1234567Z"}
PRACTICE = {"id": "c-3", "authEventId": "a-1", "tenantId": "t-practice", "tenantType": "PRACTICE",
            "tenantName": "Harbourside's accountants", "createdDateUtc": "2026-01-06T09:00:00"}
COASTAL = {"id": "c-5", "tenantId": "t-coastal", "tenantType": "ORGANISATION", "tenantName": "Coastal Builders",
           "createdDateUtc": "2026-01-07T09:00:00.0000000"}
UNNAMED = {"id": "c-4", "tenantId": "t-unnamed", "tenantType": "ORGANISATION", "tenantName": None,
           "createdDateUtc": None}


def _settings(connection_key: str = "xero_default", *tenant_filter: str) -> XeroSettings:
    return XeroSettings(client_id="client", client_secret="secret", connection_key=connection_key,
                        tenant_filter=tenant_filter)


def _rows(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        rows = conn.execute(select(xero_tenants)).mappings().all()
    return {r["tenant_id"]: dict(r) for r in rows}


def _statuses(engine) -> dict[str, tuple[str, bool]]:
    return {tid: (row["connection_status"], bool(row["sync_enabled"])) for tid, row in _rows(engine).items()}


def _store(engine, connection_key: str = "xero_default") -> TokenStore:
    store = TokenStore(engine, connection_key, TokenCipher(Fernet.generate_key().decode()))
    store.save(TokenSet(access_token="access", refresh_token="refresh", expires_at=time.time() + 1800))
    return store


# -- the vocabulary ---------------------------------------------------------------------------

def test_the_stored_words_are_the_contracts():
    assert [s.value for s in TenantStatus] == ["Connected", "Reconnect needed", "Disconnected", "Connection error"]
    # Members are the stored strings themselves: they compare, hash and format as those strings.
    assert TenantStatus("Reconnect needed") is TenantStatus.RECONNECT_NEEDED
    assert f"{TenantStatus.DISCONNECTED}" == "Disconnected" and {"Connected": 1}[TenantStatus.CONNECTED] == 1
    assert [s.badge for s in TenantStatus] == ["ok", "bad", "off", "off"]
    assert tenants.status_badge("Connected") == "ok" and tenants.status_badge("Something new") == "off"
    assert tenants.status_badge(None) == "off"


# -- the /connections date parser -------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    # Xero's own form: UTC, no zone, seven fractional digits (beyond what a datetime holds).
    ("2019-12-07T18:46:19.5165400", datetime(2019, 12, 7, 18, 46, 19, 516540, tzinfo=UTC)),
    # The sandbox's (the spec's date-time needs a zone), and plain seconds.
    ("2026-01-06T09:00:00.1234567Z", datetime(2026, 1, 6, 9, 0, 0, 123456, tzinfo=UTC)),
    ("2026-01-05T09:00:00", datetime(2026, 1, 5, 9, 0, tzinfo=UTC)),
    # An explicit offset is the same instant, given in UTC.
    ("2026-01-06T22:00:00+13:00", datetime(2026, 1, 6, 9, 0, tzinfo=UTC)),
    # Xero's MS-JSON form, whose offset only records the organisation's zone.
    ("/Date(1518685950940+0000)/", datetime(2018, 2, 15, 9, 12, 30, 940000, tzinfo=UTC)),
    ("/Date(1518685950940+1300)/", datetime(2018, 2, 15, 9, 12, 30, 940000, tzinfo=UTC)),
    ("/Date(-86400000)/", datetime(1969, 12, 31, tzinfo=UTC)),
    # Read back from the database: SQLite's naive UTC, PostgreSQL's aware values.
    (datetime(2026, 1, 5, 9, 0), datetime(2026, 1, 5, 9, 0, tzinfo=UTC)),
    (datetime(2026, 1, 5, 21, 0, tzinfo=timezone(timedelta(hours=12))), datetime(2026, 1, 5, 9, 0, tzinfo=UTC)),
])
def test_the_connection_date_parser_reads_every_form_xero_and_the_database_give(value, expected):
    parsed = parse_connection_date(value)
    assert parsed == expected and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", [None, "", "yesterday", "2026-13-45T00:00:00", "/Date(abc)/", 1518685950940])
def test_a_missing_or_mangled_connection_date_is_none_not_an_error(value):
    assert parse_connection_date(value) is None


# -- recording /connections -------------------------------------------------------------------

def test_a_consent_records_every_organisation_of_connections(engine):
    before = datetime.now(UTC)
    assert tenants.record_connections(engine, _settings(), [HARBOUR, MERIDIAN, PRACTICE, UNNAMED]) == []

    rows = _rows(engine)
    # A practice is not an organisation the accounting API serves: not recorded.
    assert sorted(rows) == ["t-harbour", "t-meridian", "t-unnamed"]
    harbour = rows["t-harbour"]
    assert (harbour["tenant_name"], harbour["tenant_type"], harbour["connection_id"], harbour["connection_key"]) == (
        "Harbourside Architects Ltd", "ORGANISATION", "c-1", "xero_default")
    assert (harbour["connection_status"], bool(harbour["sync_enabled"])) == ("Connected", True)
    assert parse_connection_date(harbour["connected_at"]) == datetime(2019, 12, 7, 18, 46, 19, 516540, tzinfo=UTC)
    assert parse_connection_date(rows["t-meridian"]["connected_at"]) == datetime(2026, 1, 6, 9, 0, 0, 123456,
                                                                                 tzinfo=UTC)
    # No name: the id stands in; no date: when it was recorded.
    assert rows["t-unnamed"]["tenant_name"] == "t-unnamed"
    assert parse_connection_date(rows["t-unnamed"]["connected_at"]) >= before - timedelta(seconds=1)

    orgs = tenants.organisations(engine, "xero_default", None)
    assert [(o.name, o.status, o.sync_enabled, o.future_access_saved) for o in orgs] == [
        ("Harbourside Architects Ltd", "Connected", True, False),
        ("Meridian Structural Engineers Pty Ltd", "Connected", True, False),
        ("t-unnamed", "Connected", True, False)]
    assert orgs[0].connected_at == datetime(2019, 12, 7, 18, 46, 19, 516540, tzinfo=UTC)


def test_a_consent_lists_what_the_filter_leaves_out_and_a_dropped_organisation_reads_disconnected(engine):
    tenants.record_connections(engine, _settings("xero_default", "Harbourside Architects Ltd"), [HARBOUR, MERIDIAN])
    assert _statuses(engine) == {"t-harbour": ("Connected", True), "t-meridian": ("Connected", False)}

    # The next consent covers Meridian only: Harbourside's row (and data) stays, Disconnected.
    tenants.record_connections(engine, _settings(), [MERIDIAN])
    assert _statuses(engine) == {"t-harbour": ("Disconnected", False), "t-meridian": ("Connected", True)}

    # A consent to nothing disconnects everything this connection had, and nothing of another's.
    tenants.record_connections(engine, _settings("xero_other"), [PRACTICE])
    tenants.record_connections(engine, _settings(), [])
    assert _statuses(engine) == {"t-harbour": ("Disconnected", False), "t-meridian": ("Disconnected", False)}


def test_a_discovery_takes_only_what_the_filter_wants(engine):
    settings = _settings("xero_default", "t-meridian")
    found = tenants.record_discovery(engine, settings, [HARBOUR, MERIDIAN, PRACTICE])
    assert found.tenants == [{"tenant_id": "t-meridian", "tenant_name": "Meridian Structural Engineers Pty Ltd"}]
    assert found.refused == []
    # Unlike a consent, a discovery does not add what its filter leaves out ...
    assert _statuses(engine) == {"t-meridian": ("Connected", True)}
    # ... but turns off the sync of a row it already has, which stays Connected.
    tenants.record_connections(engine, _settings(), [HARBOUR, MERIDIAN])
    tenants.record_discovery(engine, settings, [HARBOUR, MERIDIAN])
    assert _statuses(engine) == {"t-harbour": ("Connected", False), "t-meridian": ("Connected", True)}
    assert tenants.known_tenants(engine, "xero_default") == [
        {"tenant_id": "t-harbour", "tenant_name": "Harbourside Architects Ltd"},
        {"tenant_id": "t-meridian", "tenant_name": "Meridian Structural Engineers Pty Ltd"}]


def test_an_organisation_held_by_another_connection_is_refused_with_a_reason(engine):
    tenants.record_connections(engine, _settings(), [HARBOUR])
    found = tenants.record_discovery(engine, _settings("xero_other"), [HARBOUR, MERIDIAN])
    message = tenants.already_connected("Harbourside Architects Ltd", "t-harbour", "xero_default", "xero_other")
    assert found.refused == [{"tenant_id": "t-harbour", "tenant_name": "Harbourside Architects Ltd",
                              "held_by": "xero_default", "message": message}]
    assert [t["tenant_id"] for t in found.tenants] == ["t-meridian"]
    assert tenants.record_connections(engine, _settings("xero_other"), [HARBOUR, MERIDIAN]) == [message]
    assert _rows(engine)["t-harbour"]["connection_key"] == "xero_default"
    # Once the holder lets go (Disconnected there), the other connection may take it.
    tenants.mark_organisation_disconnected(engine, "t-harbour")
    assert tenants.record_connections(engine, _settings("xero_other"), [HARBOUR, MERIDIAN]) == []
    assert (_rows(engine)["t-harbour"]["connection_key"], _statuses(engine)["t-harbour"]) == (
        "xero_other", ("Connected", True))


# -- status transitions -----------------------------------------------------------------------

def test_a_grants_status_is_what_its_organisations_read(engine):
    store = _store(engine)
    tenants.record_connections(engine, _settings(), [HARBOUR, MERIDIAN])
    other = _store(engine, "xero_other")
    tenants.record_connections(engine, _settings("xero_other"), [COASTAL])

    store.mark(STATUS_RECONNECT)  # Xero said invalid_grant
    assert _statuses(engine) == {"t-harbour": ("Reconnect needed", True), "t-meridian": ("Reconnect needed", True),
                                 "t-coastal": ("Connected", True)}
    orgs = tenants.organisations(engine, "xero_default", store.info())
    assert {(o.status, o.sync_enabled, o.future_access_saved) for o in orgs} == {("Reconnect needed", False, False)}

    store.mark(STATUS_ACTIVE)  # an active grant says nothing new of its organisations
    assert _statuses(engine)["t-harbour"] == ("Reconnect needed", True)
    tenants.mark_connection_ok(engine, "xero_default")
    assert _statuses(engine)["t-harbour"] == ("Connected", True)
    orgs = tenants.organisations(engine, "xero_default", store.info())
    assert {(o.status, o.sync_enabled, o.future_access_saved) for o in orgs} == {("Connected", True, True)}

    store.mark(STATUS_DISCONNECTED)
    assert _statuses(engine) == {"t-harbour": ("Disconnected", False), "t-meridian": ("Disconnected", False),
                                 "t-coastal": ("Connected", True)}
    assert {o.disconnected for o in tenants.organisations(engine, "xero_default", None)} == {True}
    other.forget()  # revoked: its organisations read Disconnected and stop syncing
    assert _statuses(engine)["t-coastal"] == ("Disconnected", False)


def test_a_connection_that_cannot_be_read_says_why_until_it_can(engine):
    tenants.record_connections(engine, _settings(), [HARBOUR, MERIDIAN])
    tenants.mark_organisation_disconnected(engine, "t-meridian")

    tenants.mark_connection_failed(engine, "xero_default", XeroUnavailable("Xero answered 503."))
    assert _statuses(engine) == {"t-harbour": ("Connection error", True), "t-meridian": ("Disconnected", False)}
    tenants.mark_connection_failed(engine, "xero_default", XeroAuthError("invalid_grant"))
    assert _statuses(engine) == {"t-harbour": ("Reconnect needed", True), "t-meridian": ("Disconnected", False)}
    tenants.mark_connection_ok(engine, "xero_default")
    # Over for the failed ones; a disconnected organisation stays so (another connection may take it).
    assert _statuses(engine) == {"t-harbour": ("Connected", True), "t-meridian": ("Disconnected", False)}


def test_find_organisation_matches_id_or_name_case_insensitively(sqlite_engine):
    tenants.record_connections(sqlite_engine, _settings(), [HARBOUR, MERIDIAN])
    assert tenants.find_organisation(sqlite_engine, "xero_default", " harbourside architects ltd ").tenant_id == (
        "t-harbour")
    assert tenants.find_organisation(sqlite_engine, "xero_default", "T-MERIDIAN").name.startswith("Meridian")
    assert tenants.find_organisation(sqlite_engine, "xero_other", "t-harbour") is None


# -- the Xero page's template -----------------------------------------------------------------

def _render_page(orgs: list[Organisation], healths: list[TenantHealth], grant_state: str = "connected") -> str:
    templates = Environment(loader=FileSystemLoader(REPO / "plugins" / "xero_templates"), autoescape=True)
    page_view.register(templates)
    cards = [page_view.TenantView(health=h, org=None, runs=[], chart=Markup(""), chart_unit="run", backfill=None)
             for h in healths]
    return templates.get_template("xero.html").render(
        conn_id="xero_default", root="/xero", airflow_home="/", csrf="token", orgs=orgs, tenants=cards,
        settings=SimpleNamespace(client_id="client", scopes=["offline_access"], grant_type="authorization_code"),
        grant=None, grant_state=grant_state, threshold_minutes=120, history_days=30, data_docs=None,
        dag_links={"xero_sync": "/dags/xero_sync/runs", "xero_backfill": "/dags/xero_backfill/runs"},
        checked_at=datetime(2026, 1, 1, tzinfo=UTC))


def test_the_page_shows_each_status_with_its_badge_and_offers_disconnect_only_while_not_disconnected():
    orgs = [Organisation(f"t-{n}", f"Org {n}", f"c-{n}", status.value, status is TenantStatus.CONNECTED, False, None)
            for n, status in enumerate(TenantStatus)]
    healths = [TenantHealth(tenant_id=f"t-{n}", tenant_name=f"Org {n}", connection_status=status.value,
                            sync_enabled=True, verdict="healthy") for n, status in enumerate(TenantStatus)]
    page = _render_page(orgs, healths, grant_state="reconnect")
    rows = dict(re.findall(r'<tr data-tenant-id="(t-\d)">(.*?)</tr>', page, re.S))
    cards = dict(re.findall(r'<article class="tenant[^"]*" id="tenant-(t-\d)"(.*?)</article>', page, re.S))
    for n, status in enumerate(TenantStatus):
        badge = f'<span class="badge {status.badge}">{status.value}</span>'
        assert badge in rows[f"t-{n}"] and badge in cards[f"t-{n}"]
        assert ("Disconnect</button>" in rows[f"t-{n}"]) is (status is not TenantStatus.DISCONNECTED)
    assert '<span class="badge ok">Connected</span>' in rows["t-0"]
    assert '<span class="badge bad">Reconnect needed</span>' in rows["t-1"]
    # The saved grant's state, in the same words.
    assert re.search(r'<dd id="grant-state">\s*<span class="badge bad">Reconnect needed</span>', page)


# -- one vocabulary -----------------------------------------------------------------------------

STATUS_WORDS = {status.value for status in TenantStatus}
SOURCE_ROOTS = ("include", "dags", "plugins")
TEMPLATE_SUFFIXES = (".html", ".j2", ".jinja", ".jinja2")
# A status word on its own between quotes or between tags: a comparison or a label.
_WORDS = "|".join(map(re.escape, sorted(STATUS_WORDS)))
TEMPLATE_LITERAL = re.compile(rf"""["'>]\s*({_WORDS})\s*["'<]""")


def _python_literals(text: str) -> list[tuple[int, str]]:
    """(line, word) of every string constant that is a status word; a sentence (an f-string's text
    included, e.g. f"Connected to {n} organisations") is not one."""
    tree = ast.parse(text)
    sentence_parts = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in STATUS_WORDS and id(node) not in sentence_parts]


def _template_literals(text: str) -> list[tuple[int, str]]:
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in TEMPLATE_LITERAL.finditer(text)]


def _literals(path: Path) -> list[tuple[int, str]]:
    if path.suffix == ".py":
        return _python_literals(path.read_text(encoding="utf-8"))
    if path.suffix in TEMPLATE_SUFFIXES:
        return _template_literals(path.read_text(encoding="utf-8"))
    return []


def test_no_module_but_tenants_spells_a_status_out():
    sources = [p for root in SOURCE_ROOTS for p in sorted((REPO / root).rglob("*"))
               if p.is_file() and "__pycache__" not in p.parts]
    owner = REPO / "include" / "intoaec_xero" / "tenants.py"
    assert owner in sources and any(p.suffix in TEMPLATE_SUFFIXES for p in sources)
    found = [f"{p.relative_to(REPO)}:{line}: {word!r}" for p in sources if p != owner for line, word in _literals(p)]
    assert not found, "status words outside intoaec_xero.tenants (use TenantStatus):\n" + "\n".join(found)
    # The scan does see them where they are defined.
    assert {word for _, word in _literals(owner)} == STATUS_WORDS


def test_the_scan_catches_comparisons_and_labels_but_not_sentences():
    template = ('{% if org.status == "Disconnected" %}\n<b>Reconnect needed</b>\n'
                "Connected to 2 organisations{% endif %}{{ x == 'Connected' }}")
    assert _template_literals(template) == [(1, "Disconnected"), (2, "Reconnect needed"), (3, "Connected")]
    python = ('"""Organisations read Disconnected."""\nSTATUS = "Connection error"\n'
              'SAY = f"Connected{2}"\nif status != "Disconnected":\n    pass\n'
              "BADGE = f\"{'Reconnect needed'}\"\n")
    assert _python_literals(python) == [(2, "Connection error"), (4, "Disconnected"), (6, "Reconnect needed")]
