"""The Xero page's quarantine view, without a server: what is listed, an item's detail, its release,
and that one connection's items are not found from another. Held records and rejected batches
come from real loads of kept raw pages; every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from intoaec_xero.airflow import page_quarantine
from intoaec_xero.errors import IntoAECXeroError
from intoaec_xero.extract import StreamExtract
from intoaec_xero.pipeline import load_tenant
from intoaec_xero.quality import quarantine
from intoaec_xero.rawstore import RawStore
from intoaec_xero.runtime import raw_dir
from intoaec_xero.schema import invoices, xero_tenants
from sqlalchemy import insert, select

from tests.intoaec_xero.quality.records import KEYS, TENANT, contact, invoice, keep, page

OTHER = "tenant-elsewhere"
OURS, THEIRS = "xero_ours", "xero_theirs"
WATERMARK = "2024-03-01T11:00:00+00:00"
# More digits than a float keeps: the page must show them as Xero sent them.
LONG_AMOUNT = "60.000000000000000000001"


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("INTOAEC_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("INTOAEC_RAW_DIR", str(tmp_path / "var" / "raw"))


def _organisations(engine) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(xero_tenants), [
            {"tenant_id": TENANT, "tenant_name": "Held Records Ltd", "connection_key": OURS,
             "connection_status": "Connected", "sync_enabled": True, "connected_at": now, "updated_at": now},
            {"tenant_id": OTHER, "tenant_name": "Someone Else Ltd", "connection_key": THEIRS,
             "connection_status": "Connected", "sync_enabled": True, "connected_at": now, "updated_at": now},
        ])


def _load(engine, connection_key: str, tenant_id: str, run_id: str, streams: dict[str, bytes]) -> dict:
    raw = RawStore(raw_dir(), connection_key)
    items = []
    for name, body in streams.items():
        keep(raw, run_id, name, body, tenant_id=tenant_id)
        records = len(json.loads(body)[KEYS[name]])
        items.append(StreamExtract(stream=name, pages=1, records=records, max_cursor=WATERMARK).to_dict())
    manifest = {"run_id": run_id, "tenant_id": tenant_id, "tenant_name": tenant_id, "connection_key": connection_key,
                "streams": items}
    raw.write_manifest(run_id, tenant_id, manifest)
    return load_tenant(engine, raw, manifest)


def _long_amount_page() -> bytes:
    """Invoices whose line unit amount has more decimal places than Xero allows, written as sent."""
    record = invoice(5)
    record["LineItems"][0]["UnitAmount"] = "__AMOUNT__"
    return page("invoices", [invoice(1), record]).replace(b'"__AMOUNT__"', LONG_AMOUNT.encode())


@pytest.fixture
def held(engine) -> dict[str, int]:
    """Our organisation: three held records of one run; the other connection's: one of its own."""
    _organisations(engine)
    _load(engine, OURS, TENANT, "run-1", {
        "contacts": page("contacts", [contact(1), contact(2, Name="Harbour\x00Works"), contact(3)]),
        "invoices": _long_amount_page(),
    })
    _load(engine, OURS, TENANT, "run-2", {"invoices": page("invoices", [invoice(7, Status="BOGUS")])})
    _load(engine, THEIRS, OTHER, "run-3", {"invoices": page("invoices", [invoice(8, Status="BOGUS")])})
    return {f"{r['tenant_id']}:{r['record_key']}": r["id"] for r in quarantine.list_held(engine)}


def _rejected_batch(engine, connection_key: str = OURS, tenant_id: str = TENANT, run_id: str = "run-b") -> int:
    """A batch whose total does not add up (an error check): nothing of it loads."""
    bad = [invoice(11), invoice(12, Total=116.0, AmountDue=76.0), invoice(13, Total=117.0, AmountDue=77.0)]
    summary = _load(engine, connection_key, tenant_id, run_id, {"invoices": page("invoices", bad)})
    assert summary["streams"]["invoices"]["status"] == "rejected"
    return max(b["id"] for b in quarantine.list_batches(engine) if b["tenant_id"] == tenant_id)


def test_the_list_has_the_connections_open_items_newest_first_with_their_reasons(engine, held):
    batch_id = _rejected_batch(engine)
    _rejected_batch(engine, THEIRS, OTHER, "run-b-theirs")
    ours = page_quarantine.overview(engine, page_quarantine.connection_tenants(engine, OURS))

    assert [r.item for r in ours.held] == [f"R{held[f'{TENANT}:{key}']}" for key in ("inv-7", "inv-5", "c-2")]
    assert ours.held_total == 3 and ours.held_more == 0 and not ours.empty
    newest = ours.held[0]
    assert (newest.organisation, newest.stream, newest.record_key, newest.checks) == (
        "Held Records Ltd", "invoices", "inv-7", ["status_in_enum"])
    assert newest.reasons[0].check == "status_in_enum" and "BOGUS" in newest.reasons[0].reason
    assert newest.held_at is not None
    (batch,) = ours.batches
    assert (batch.item, batch.organisation, batch.stream, batch.records, batch.checks) == (
        str(batch_id), "Held Records Ltd", "invoices", 3, ["invoices.total_equals_parts"])
    assert "total_equals_parts" in batch.message and batch.quarantined_at is not None

    # Capped, with the count of the rest.
    capped = page_quarantine.overview(engine, {TENANT}, limit=2)
    assert len(capped.held) == 2 and capped.held_total == 3 and capped.held_more == 1
    # The other connection sees only its own; no organisations, nothing.
    theirs = page_quarantine.overview(engine, page_quarantine.connection_tenants(engine, THEIRS))
    assert [r.record_key for r in theirs.held] == ["inv-8"] and len(theirs.batches) == 1
    assert page_quarantine.overview(engine, set()).empty


def test_a_held_records_detail_has_its_reasons_and_its_raw_json_with_every_digit(engine, held):
    found = page_quarantine.detail(engine, {TENANT}, f"r{held[f'{TENANT}:inv-5']}")
    assert (found.kind, found.item, found.status, found.stream, found.record_key, found.open) == (
        "record", f"R{held[f'{TENANT}:inv-5']}", "held", "invoices", "inv-5", True)
    assert found.checks == ["money_exact"] and found.reasons[0].check == "money_exact"
    assert (found.page, found.position, found.run_id) == (1, 2, "run-1")
    assert f'"UnitAmount": {LONG_AMOUNT}' in found.raw  # not 60.0: the digits Xero sent
    assert json.loads(found.raw, parse_float=Decimal) == json.loads(
        quarantine.get_held(engine, found.id)["raw_record"], parse_float=Decimal)
    assert found.raw.startswith('{\n  "Type": "ACCREC"')

    nul = page_quarantine.detail(engine, {TENANT}, f"R{held[f'{TENANT}:c-2']}")
    assert '"Name": "Harbour\\u0000Works"' in nul.raw  # escaped, never a raw NUL in the page
    status = page_quarantine.item_status(found)
    assert status.tone == "warn" and "money_exact" in status.text and status.reasons == []


def test_a_batchs_detail_counts_records_by_check_and_shows_the_first_failing_ones(engine, held):
    batch_id = _rejected_batch(engine)
    found = page_quarantine.detail(engine, {TENANT}, str(batch_id), records=1)
    assert (found.kind, found.item, found.title, found.status, found.records) == (
        "batch", str(batch_id), f"Quarantined batch #{batch_id}", "quarantined", 3)
    assert found.counts == {"(passed)": 1, "total_equals_parts": 2}
    assert found.checks == ["total_equals_parts"]
    (first,) = found.failing
    assert (first.record_key, first.table, first.check) == ("inv-12", "invoices", "total_equals_parts")
    assert '"InvoiceID": "inv-12"' in first.raw and first.reason
    assert found.failing_more == 1 and found.last_release is None
    status = page_quarantine.item_status(found)
    assert status.tone == "warn" and "nothing of this batch loaded" in status.text


def test_another_connections_items_are_not_found_and_cannot_be_released(engine, held):
    theirs = f"R{held[f'{OTHER}:inv-8']}"
    their_batch = _rejected_batch(engine, THEIRS, OTHER, "run-b-theirs")
    ours = page_quarantine.connection_tenants(engine, OURS)
    for item in (theirs, str(their_batch), "R99999", "99999", "abc", "R", "R-1"):
        with pytest.raises(page_quarantine.NotFound):
            page_quarantine.detail(engine, ours, item)
        with pytest.raises(page_quarantine.NotFound):
            page_quarantine.release_item(engine, ours, item, accept=("status_in_enum",), connection_key=OURS)
    assert quarantine.get_held(engine, held[f"{OTHER}:inv-8"])["status"] == "held"
    assert quarantine.get_batch(engine, their_batch)["status"] == "quarantined"


def test_releasing_a_record_says_what_still_fails_then_loads_it_with_an_accepted_check(engine, held):
    item = f"R{held[f'{TENANT}:inv-7']}"
    outcome = page_quarantine.release_item(engine, {TENANT}, item, connection_key=OURS)
    assert (outcome.item, outcome.released, outcome.key) == (item, False, "held")
    assert outcome.message == f"Held Records Ltd: {item} (invoices) is still held: it fails status_in_enum."
    assert outcome.failing_checks == ["status_in_enum"] and "BOGUS" in outcome.failing[0]
    still = page_quarantine.detail(engine, {TENANT}, item)
    status = page_quarantine.item_status(still, "held")
    assert still.open and status.text.startswith("Still held") and "BOGUS" in status.reasons[0]

    with pytest.raises(IntoAECXeroError, match="own failing checks"):
        page_quarantine.release_item(engine, {TENANT}, item, accept=("total_equals_parts",), connection_key=OURS)

    outcome = page_quarantine.release_item(engine, {TENANT}, item, accept=("status_in_enum",), connection_key=OURS)
    assert outcome.released and outcome.key == "released" and outcome.failing == []
    assert outcome.message.startswith(f"Held Records Ltd: released {item} (invoices): loaded ")
    with engine.connect() as conn:
        assert conn.execute(select(invoices.c.status).where(invoices.c.invoice_id == "inv-7")).scalar_one() == "BOGUS"
    done = page_quarantine.detail(engine, {TENANT}, item)
    status = page_quarantine.item_status(done, "released")
    assert not done.open and status.tone == "notice" and status.text.startswith("Released")
    assert "accepting status_in_enum" in status.reasons[0]
    assert item not in [r.item for r in page_quarantine.overview(engine, {TENANT}).held]
    with pytest.raises(IntoAECXeroError, match="released already"):
        page_quarantine.release_item(engine, {TENANT}, item, accept=("status_in_enum",), connection_key=OURS)


def test_releasing_a_batch_reads_the_connections_raw_pages(engine, held):
    batch_id = _rejected_batch(engine)
    outcome = page_quarantine.release_item(engine, {TENANT}, str(batch_id), connection_key=OURS)
    assert not outcome.released and outcome.failing_checks == ["total_equals_parts"]
    assert "stays quarantined" in outcome.message
    again = page_quarantine.detail(engine, {TENANT}, str(batch_id))
    status = page_quarantine.item_status(again, "held")
    assert status.text.startswith("Still quarantined") and "total_equals_parts" in status.reasons[0]

    outcome = page_quarantine.release_item(engine, {TENANT}, str(batch_id), accept=("total_equals_parts",),
                                           connection_key=OURS)
    assert outcome.released and f"released batch #{batch_id}" in outcome.message
    with engine.connect() as conn:
        loaded = set(conn.execute(select(invoices.c.invoice_id).where(invoices.c.tenant_id == TENANT)).scalars())
    assert {"inv-11", "inv-12", "inv-13"} <= loaded
    assert page_quarantine.item_status(page_quarantine.detail(engine, {TENANT}, str(batch_id))).tone == "notice"


def test_pretty_json_keeps_every_value_as_exact_json_writes_it():
    record = {"A": Decimal("1.10"), "B": [1, 2.5, None, True], "C": {}, "D": [], "E": {"F": "é\x00"}}
    text = page_quarantine.pretty_json(record)
    assert text == ('{\n  "A": 1.10,\n  "B": [\n    1,\n    2.5,\n    null,\n    true\n  ],\n  "C": {},\n'
                    '  "D": [],\n  "E": {\n    "F": "\\u00e9\\u0000"\n  }\n}')
    assert json.loads(text, parse_float=Decimal) == json.loads(quarantine.exact_json(record), parse_float=Decimal)
