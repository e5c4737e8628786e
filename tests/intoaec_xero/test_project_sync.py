"""Credit-note lines, journal-line tracking and every line's project, synced from the sandbox into SQLite and
PostgreSQL, against what the API answers (and the sandbox's truth where it publishes the figures).

The expected values are computed here from Xero's own answers, read independently of the sync's
client (plain HTTP with the stored access token): the project category as the organisation
names it, each line's option of it, and unit amounts with ``unitdp=4``. Unit amounts with more
than two places landing unrounded prove the sync asks for four.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
import requests
from intoaec_xero.client import XeroClient
from intoaec_xero.oauth import finish_authorization, start_authorization
from intoaec_xero.parsing import loads
from intoaec_xero.pipeline import run_sync
from intoaec_xero.projects import DEFAULT_CATEGORY_NAMES
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import credit_note_lines, invoice_lines, journal_lines, project_dimension_overrides
from intoaec_xero.settings import XeroSettings
from intoaec_xero.tokens import TokenCipher, TokenStore
from sqlalchemy import func, insert, select

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sandbox():
    from xero_sandbox.testing import running_sandbox

    with running_sandbox(dataset="small", seed=3, limits=False) as handle:
        yield handle


def _connect(sandbox, engine, **settings_extra) -> tuple[XeroSettings, TokenStore]:
    from xero_sandbox.testing import sign_in_and_consent

    settings = XeroSettings.for_single_host(sandbox.base_url, client_id="sandbox-client",
                                            client_secret="sandbox-secret", calls_per_minute=0, **settings_extra)
    store = TokenStore(engine, settings.connection_key, TokenCipher.from_environment())
    request = start_authorization(settings, "http://127.0.0.1:9/callback")
    store.save(finish_authorization(settings, request, sign_in_and_consent(request.url)))
    return settings, store


def _sync(settings, store, engine, tmp_path, run_id="run-projects"):
    client = XeroClient(settings, store, sleep=lambda s: None)
    summary = run_sync(client, settings, engine, RawStore(tmp_path / "raw"), run_id)
    assert summary.ok, summary.failures
    return summary


class Api:
    """Xero's answers, read with plain HTTP (not the sync's client)."""

    def __init__(self, sandbox, store: TokenStore):
        self.base = f"{sandbox.base_url}/api.xro/2.0"
        self.token = store.load().access_token

    def get(self, tenant_id: str, path: str, **params: Any) -> dict[str, Any]:
        response = requests.get(f"{self.base}/{path}", params=params, timeout=60, headers={
            "Authorization": f"Bearer {self.token}", "xero-tenant-id": tenant_id, "Accept": "application/json"})
        response.raise_for_status()
        return loads(response.content)

    def pages(self, tenant_id: str, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
        records, page = [], 1
        while True:
            batch = self.get(tenant_id, path, page=page, pageSize=1000, **params)[key]
            if not batch:
                return records
            records += batch
            page += 1

    def journals(self, tenant_id: str) -> list[dict[str, Any]]:
        records, offset = [], 0
        while True:
            batch = self.get(tenant_id, "Journals", offset=offset)["Journals"]
            if not batch:
                return records
            records += batch
            offset = max(j["JournalNumber"] for j in batch)

    def project_category(self, tenant_id: str) -> dict[str, Any] | None:
        categories = self.get(tenant_id, "TrackingCategories", includeArchived="true")["TrackingCategories"]
        for name in DEFAULT_CATEGORY_NAMES:
            found = [c for c in categories if c["Name"].strip().casefold() == name.casefold()]
            if found:
                return next((c for c in found if c["Status"] == "ACTIVE"), found[0])
        return None


def _option(tracking: list[dict[str, Any]], category_id: str | None) -> str | None:
    return next((t["Option"] for t in tracking or () if category_id and t.get("TrackingCategoryID") == category_id),
                None)


def _rows(engine, table, key: str, tenant_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        return {getattr(r, key): r for r in conn.execute(select(table).where(table.c.tenant_id == tenant_id))}


def test_credit_note_lines_and_journal_line_projects_land_as_xero_answers(sandbox, engine, tmp_path):
    settings, store = _connect(sandbox, engine)
    _sync(settings, store, engine, tmp_path)
    api = Api(sandbox, store)
    truth = sandbox.truth()["tenants"]
    some_four_place_units = 0
    for tenant_id in truth:
        category = api.project_category(tenant_id)
        assert category is not None, "the sandbox's organisations track projects"
        category_id = category["TrackingCategoryID"]

        notes = api.pages(tenant_id, "CreditNotes", "CreditNotes", unitdp=4)
        lines = _rows(engine, credit_note_lines, "line_item_id", tenant_id)
        expected = {line["LineItemID"]: (note["CreditNoteID"], number, line) for note in notes
                    for number, line in enumerate(note.get("LineItems") or (), start=1)}
        assert expected and set(lines) == set(expected)
        for line_id, (note_id, number, line) in expected.items():
            row = lines[line_id]
            assert (row.credit_note_id, row.line_number) == (note_id, number)
            assert row.unit_amount == Decimal(str(line["UnitAmount"]))
            assert row.quantity == Decimal(str(line["Quantity"]))
            assert row.line_amount == Decimal(str(line["LineAmount"]))
            assert row.tax_amount == Decimal(str(line["TaxAmount"]))
            assert row.account_code == line.get("AccountCode")
            assert row.project == _option(line.get("Tracking"), category_id)
            assert [t["option"] for t in row.tracking] == [t["Option"] for t in line.get("Tracking") or ()]
        assert any(row.project for row in lines.values())
        if "credit_note_lines" in truth[tenant_id]:  # the sandbox's own figures, where it publishes them
            figures = truth[tenant_id]["credit_note_lines"]
            assert len(lines) == int(figures["count"])
            for column, total in figures.items():
                if column != "count" and column in credit_note_lines.c:
                    assert sum((getattr(r, column) or 0) for r in lines.values()) == Decimal(str(total)), column

        if "journals" in truth[tenant_id]:
            ledger = _rows(engine, journal_lines, "journal_line_id", tenant_id)
            answered = {line["JournalLineID"]: line for journal in api.journals(tenant_id)
                        for line in journal["JournalLines"]}
            assert set(ledger) == set(answered)
            for line_id, line in answered.items():
                assert ledger[line_id].project == _option(line.get("TrackingCategories"), category_id), line_id
                assert [t["category"] for t in ledger[line_id].tracking] == [
                    t["Name"] for t in line.get("TrackingCategories") or ()]
            assert any(r.project for r in ledger.values())

        # Invoice unit amounts are Xero's 4-place ones; asked without unitdp, Xero rounds some of them.
        invoices = api.pages(tenant_id, "Invoices", "Invoices", unitdp=4)
        rounded = {line["LineItemID"]: line["UnitAmount"] for invoice in api.pages(tenant_id, "Invoices", "Invoices")
                   for line in invoice.get("LineItems") or ()}
        stored = _rows(engine, invoice_lines, "line_item_id", tenant_id)
        for invoice in invoices:
            for line in invoice.get("LineItems") or ():
                unit = Decimal(str(line["UnitAmount"]))
                assert stored[line["LineItemID"]].unit_amount == unit
                assert stored[line["LineItemID"]].project == _option(line.get("Tracking"), category_id)
                if unit != unit.quantize(Decimal("0.01")):
                    some_four_place_units += 1
                    assert Decimal(str(rounded[line["LineItemID"]])) != unit
    assert some_four_place_units, "the sandbox has unit prices with four places; none landed unrounded"


def test_the_connections_project_settings_and_a_tenants_override_reach_every_line(sandbox, engine, tmp_path):
    """Configured on the connection by TrackingCategoryID (another category than the project one) with a
    Reference pattern; one tenant overridden back to its project category by name."""
    settings, store = _connect(sandbox, engine)
    api = Api(sandbox, store)
    overridden, configured = sorted(sandbox.truth()["tenants"])
    categories = api.get(configured, "TrackingCategories")["TrackingCategories"]
    project = api.project_category(configured)
    other = next(c for c in categories if c["TrackingCategoryID"] != project["TrackingCategoryID"]
                 and c["Status"] == "ACTIVE")
    pattern = r"^(\S+)"
    settings, store = _connect(sandbox, engine, project_tracking_category=other["TrackingCategoryID"],
                               project_reference_pattern=pattern)
    with engine.begin() as conn:
        conn.execute(insert(project_dimension_overrides).values(
            tenant_id=overridden, tracking_category=api.project_category(overridden)["Name"].upper(),
            reference_pattern=""))
    _sync(settings, store, engine, tmp_path, run_id="run-configured")

    def expected(tracking, reference) -> str | None:
        option = _option(tracking, other["TrackingCategoryID"])
        if option is None and reference:
            match = re.search(pattern, reference)
            option = match.group(1) if match else None
        return option

    notes = api.pages(configured, "CreditNotes", "CreditNotes", unitdp=4)
    lines = _rows(engine, credit_note_lines, "line_item_id", configured)
    for note in notes:
        for line in note.get("LineItems") or ():
            assert lines[line["LineItemID"]].project == expected(line.get("Tracking"), note.get("Reference"))
    ledger = _rows(engine, journal_lines, "journal_line_id", configured)
    from_tracking = 0
    for journal in api.journals(configured):
        for line in journal["JournalLines"]:
            assert ledger[line["JournalLineID"]].project == expected(line.get("TrackingCategories"),
                                                                      journal.get("Reference"))
            from_tracking += _option(line.get("TrackingCategories"), other["TrackingCategoryID"]) is not None
    assert from_tracking, f"some journal lines are tracked to {other['Name']!r}"

    # The overridden tenant: its project category, and no Reference pattern (the override's '' turns it off).
    project_id = api.project_category(overridden)["TrackingCategoryID"]
    invoices = api.pages(overridden, "Invoices", "Invoices", unitdp=4)
    stored = _rows(engine, invoice_lines, "line_item_id", overridden)
    for invoice in invoices:
        for line in invoice.get("LineItems") or ():
            assert stored[line["LineItemID"]].project == _option(line.get("Tracking"), project_id)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(invoice_lines).where(
            invoice_lines.c.tenant_id == overridden, invoice_lines.c.project.is_not(None))).scalar_one() > 0
