"""One organisation, one Xero connection: a second connection reaching it is refused, not let in.

``xero_tenants`` has one row per organisation. Were a second connection allowed to take it, the
row's connection would flip on every discovery and both connections would sync the organisation.
Runs on SQLite and PostgreSQL: the refusal is decided inside the upsert by each database.
"""

from __future__ import annotations

from intoaec_xero import tenants
from intoaec_xero.errors import XeroAuthError
from intoaec_xero.pipeline import discover, discover_tenants, run_sync
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import xero_tenants
from intoaec_xero.settings import XeroSettings
from intoaec_xero.tenants import mark_connection_failed
from sqlalchemy import select

HARBOUR = {"id": "c-1", "tenantId": "t-harbour", "tenantName": "Harbourside Architects Ltd",
           "tenantType": "ORGANISATION", "createdDateUtc": "2026-01-05T09:00:00"}
MERIDIAN = {"id": "c-2", "tenantId": "t-meridian", "tenantName": "Meridian Structural Engineers Pty Ltd",
            "tenantType": "ORGANISATION", "createdDateUtc": "2026-01-06T09:00:00"}
COASTAL = {"id": "c-3", "tenantId": "t-coastal", "tenantName": "Coastal Builders",
           "tenantType": "ORGANISATION", "createdDateUtc": "2026-01-07T09:00:00"}

REFUSED = ("Organisation 'Harbourside Architects Ltd' (tenant t-harbour) is already connected through connection "
           "'xero_default'; disconnect it there first or remove it from connection 'xero_other' (its tenant "
           "filter, or Xero's connected apps).")


class Reach:
    """What GET /connections answers for one grant; discovery asks nothing else of the client."""

    def __init__(self, *connections: dict):
        self._connections = list(connections)

    def connections(self) -> list[dict]:
        return [dict(c) for c in self._connections]


def _settings(connection_key: str, *tenant_filter: str) -> XeroSettings:
    return XeroSettings(client_id="client", client_secret="secret", connection_key=connection_key,
                        tenant_filter=tenant_filter)


def _rows(engine) -> dict[str, tuple[str, str, bool]]:
    with engine.connect() as conn:
        rows = conn.execute(select(xero_tenants.c.tenant_id, xero_tenants.c.connection_key,
                                   xero_tenants.c.connection_status, xero_tenants.c.sync_enabled)).all()
    return {r.tenant_id: (r.connection_key, r.connection_status, bool(r.sync_enabled)) for r in rows}


def test_a_second_connection_is_refused_an_organisation_the_first_syncs(engine):
    first = discover(Reach(HARBOUR, MERIDIAN), _settings("xero_default"), engine)
    assert [t["tenant_id"] for t in first.tenants] == ["t-harbour", "t-meridian"] and first.refused == []

    second = discover(Reach(HARBOUR, COASTAL), _settings("xero_other"), engine)

    assert second.tenants == [{"tenant_id": "t-coastal", "tenant_name": "Coastal Builders"}]
    assert second.refused == [{"tenant_id": "t-harbour", "tenant_name": "Harbourside Architects Ltd",
                               "held_by": "xero_default", "message": REFUSED}]
    assert _rows(engine) == {"t-harbour": ("xero_default", "Connected", True),
                             "t-meridian": ("xero_default", "Connected", True),
                             "t-coastal": ("xero_other", "Connected", True)}
    # The first connection keeps syncing it, run after run; the row no longer flips between them.
    for _ in range(2):
        again = discover(Reach(HARBOUR, MERIDIAN), _settings("xero_default"), engine)
        assert [t["tenant_id"] for t in again.tenants] == ["t-harbour", "t-meridian"] and again.refused == []
        assert discover(Reach(HARBOUR, COASTAL), _settings("xero_other"), engine).refused[0]["message"] == REFUSED
    assert _rows(engine)["t-harbour"] == ("xero_default", "Connected", True)


def test_the_second_connections_sync_reports_the_refusal_and_keeps_no_pages_of_it(engine, tmp_path):
    discover(Reach(HARBOUR), _settings("xero_default"), engine)
    summary = run_sync(Reach(HARBOUR), _settings("xero_other"), engine, RawStore(tmp_path / "raw"), "run-1")
    assert summary.tenants == [] and summary.failures == [REFUSED] and not summary.ok
    assert not (tmp_path / "raw").exists()


def test_an_organisation_whose_connection_reads_disconnected_may_move(engine):
    discover(Reach(HARBOUR, MERIDIAN), _settings("xero_default"), engine)
    tenants.mark_organisation_disconnected(engine, "t-harbour")

    moved = discover(Reach(HARBOUR), _settings("xero_other"), engine)

    assert moved.refused == [] and [t["tenant_id"] for t in moved.tenants] == ["t-harbour"]
    assert _rows(engine)["t-harbour"] == ("xero_other", "Connected", True)
    # Now the old connection is the second one: it is refused the organisation in turn.
    back = discover(Reach(HARBOUR, MERIDIAN), _settings("xero_default"), engine)
    assert [t["tenant_id"] for t in back.tenants] == ["t-meridian"]
    assert [r["held_by"] for r in back.refused] == ["xero_other"]
    assert _rows(engine)["t-harbour"] == ("xero_other", "Connected", True)


def test_a_connection_whose_grant_needs_reconnecting_still_holds_its_organisations(engine):
    discover(Reach(HARBOUR), _settings("xero_default"), engine)
    mark_connection_failed(engine, "xero_default", XeroAuthError("invalid_grant"))

    assert discover_tenants(Reach(HARBOUR), _settings("xero_other"), engine) == []
    assert _rows(engine)["t-harbour"] == ("xero_default", "Reconnect needed", True)


def test_the_tenant_filter_leaves_a_held_organisation_out_without_a_refusal(engine):
    discover(Reach(HARBOUR), _settings("xero_default"), engine)
    found = discover(Reach(HARBOUR, COASTAL), _settings("xero_other", "Coastal Builders"), engine)
    assert [t["tenant_id"] for t in found.tenants] == ["t-coastal"] and found.refused == []
    assert _rows(engine)["t-harbour"] == ("xero_default", "Connected", True)


def test_a_single_connection_behaves_as_before(engine):
    discover(Reach(HARBOUR, MERIDIAN), _settings("xero_default"), engine)
    renamed = dict(HARBOUR, tenantName="Harbourside Architects")
    found = discover(Reach(renamed), _settings("xero_default"), engine)
    assert found.tenants == [{"tenant_id": "t-harbour", "tenant_name": "Harbourside Architects"}]
    assert found.refused == []
    assert _rows(engine) == {"t-harbour": ("xero_default", "Connected", True),
                             "t-meridian": ("xero_default", "Disconnected", False)}


def test_the_oauth_callback_does_not_hand_a_held_organisation_to_the_new_connection(engine):
    assert tenants.record_connections(engine, _settings("xero_default"), [HARBOUR, MERIDIAN]) == []

    refusals = tenants.record_connections(engine, _settings("xero_other"), [HARBOUR, COASTAL])

    assert refusals == [REFUSED]
    assert [o.tenant_id for o in tenants.organisations(engine, "xero_other", None)] == ["t-coastal"]
    kept = {o.tenant_id: o for o in tenants.organisations(engine, "xero_default", None)}
    assert kept["t-harbour"].status == "Connected" and kept["t-harbour"].sync_enabled
    # A consent of the second connection that no longer covers it does not disconnect it either.
    tenants.record_connections(engine, _settings("xero_other"), [COASTAL])
    assert _rows(engine)["t-harbour"] == ("xero_default", "Connected", True)


def test_the_oauth_callback_refuses_silently_what_the_tenant_filter_leaves_out(engine):
    tenants.record_connections(engine, _settings("xero_default"), [HARBOUR])
    refusals = tenants.record_connections(engine, _settings("xero_other", "Coastal Builders"), [HARBOUR, COASTAL])
    assert refusals == []
    assert _rows(engine) == {"t-harbour": ("xero_default", "Connected", True),
                             "t-coastal": ("xero_other", "Connected", True)}


def test_a_disconnected_organisation_stays_movable_when_its_old_connection_then_fails(engine):
    discover(Reach(HARBOUR, MERIDIAN), _settings("xero_default"), engine)
    tenants.mark_organisation_disconnected(engine, "t-harbour")
    # The old connection is still scheduled, and its grant is gone: its other organisation says so.
    mark_connection_failed(engine, "xero_default", XeroAuthError("invalid_grant"))
    assert _rows(engine) == {"t-harbour": ("xero_default", "Disconnected", False),
                             "t-meridian": ("xero_default", "Reconnect needed", True)}
    assert discover_tenants(Reach(HARBOUR), _settings("xero_other"), engine) == [
        {"tenant_id": "t-harbour", "tenant_name": "Harbourside Architects Ltd"}]
