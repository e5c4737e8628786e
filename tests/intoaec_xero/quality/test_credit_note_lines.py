"""credit_note_lines: loaded by the credit_notes stream, checked by its own suite, replaced whole with their note."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from intoaec_xero.extract import StreamExtract
from intoaec_xero.load import load_stream
from intoaec_xero.quality import suites
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import credit_note_lines, credit_notes, held_records
from intoaec_xero.streams import get_stream
from sqlalchemy import select

from .records import MS_2024_03_01, TENANT, UPDATED, broken, keep, page


def credit_note(n: int = 1, **changes: Any) -> dict[str, Any]:
    """An authorised sales credit of 50.00 + 7.50 tax in two lines, one of them tracked to a project."""
    record = {
        "CreditNoteID": f"cn-{n}", "CreditNoteNumber": f"CN-{n:04d}", "Type": "ACCRECCREDIT",
        "Reference": "Fee adjustment", "Contact": {"ContactID": "c-1"}, "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive", "Date": MS_2024_03_01, "CurrencyCode": "NZD", "SubTotal": 50.00,
        "TotalTax": 7.50, "Total": 57.50, "RemainingCredit": 57.50, "UpdatedDateUTC": UPDATED, "Allocations": [],
        "LineItems": [
            {"LineItemID": f"cnl-{n}-1", "Description": "Stage 1 fee adjustment", "Quantity": 1.0,
             "UnitAmount": 30.1234, "AccountCode": "200", "TaxType": "OUTPUT2", "TaxAmount": 4.50, "LineAmount": 30.00,
             "Tracking": [{"Name": "Project", "Option": "P-22016 St Clair", "TrackingCategoryID": "tc-1"}]},
            {"LineItemID": f"cnl-{n}-2", "Description": "Printing", "Quantity": 2.0, "UnitAmount": 10.00,
             "AccountCode": "200", "TaxType": "OUTPUT2", "TaxAmount": 3.00, "LineAmount": 20.00, "Tracking": []},
        ],
    }
    record.update(changes)
    return record


def _load(engine, tmp_path, *records: Any, run_id: str = "run"):
    raw = RawStore(tmp_path / "raw")
    keep(raw, run_id, "credit_notes", page("credit_notes", list(records)))
    return load_stream(engine, raw, run_id, TENANT, get_stream("credit_notes"), StreamExtract(stream="credit_notes"))


def _lines(engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {r.line_item_id: r for r in conn.execute(select(credit_note_lines))}


def test_clean_credit_notes_pass_every_check_and_their_lines_land(engine, tmp_path):
    loaded = _load(engine, tmp_path, credit_note(1), credit_note(2, Status="PAID", RemainingCredit=0))
    assert [r.label() for r in loaded.results if not r.passed] == []
    checked = {(r.table, r.check) for r in loaded.results}
    assert {("credit_note_lines", c.name) for c in suites.checks_for("credit_note_lines")} <= checked
    assert ("credit_note_lines", "credit_note_exists") in checked
    assert loaded.rows == {"credit_notes": 2, "credit_note_lines": 4}
    assert (loaded.inserted, loaded.updated) == (2, 0)  # counted on the notes, not their lines
    lines = _lines(engine)
    first = lines["cnl-1-1"]
    assert (first.credit_note_id, first.line_number, first.unit_amount, first.line_amount, first.project) == (
        "cn-1", 1, Decimal("30.1234"), Decimal("30.00"), "P-22016 St Clair")
    assert first.tracking == [{"category": "Project", "option": "P-22016 St Clair", "tracking_category_id": "tc-1"}]
    assert lines["cnl-1-2"].project is None and lines["cnl-1-2"].tracking == []


def test_a_line_removed_from_an_edited_credit_note_disappears(engine, tmp_path):
    _load(engine, tmp_path, credit_note(1), credit_note(2), run_id="first")
    edited = credit_note(1, SubTotal=30.00, TotalTax=4.50, Total=34.50, RemainingCredit=34.50)
    edited["LineItems"] = edited["LineItems"][:1]
    _load(engine, tmp_path, edited, run_id="second")
    assert sorted(_lines(engine)) == ["cnl-1-1", "cnl-2-1", "cnl-2-2"]
    with engine.connect() as conn:
        assert conn.execute(select(credit_notes.c.total).where(credit_notes.c.credit_note_id == "cn-1")
                            ).scalar_one() == Decimal("34.50")


@pytest.mark.parametrize("bad, check", [
    (lambda: broken(credit_note(3), "LineItems.0.UnitAmount", "30.12345"), "money_exact"),
    (lambda: broken(credit_note(3), "LineItems.1.Description", "Print\x00ing"), "text_storable"),
    (lambda: broken(credit_note(3), "LineItems.0.Tracking.0.Option", "P-\x00"), "text_storable"),
    (lambda: broken(credit_note(3), "LineItems.1.LineItemID"), "record_readable"),
    (lambda: broken(credit_note(3), "LineItems.0.AccountCode", "x" * 51), "values_fit_columns"),
], ids=["unit-amount-5dp", "nul-description", "nul-tracking", "no-line-id", "long-account-code"])
def test_a_bad_line_holds_its_credit_note_back_and_the_rest_loads(engine, tmp_path, bad, check):
    loaded = _load(engine, tmp_path, credit_note(1), bad())
    assert [h.label for h in loaded.held] == ["cn-3"]
    assert check in loaded.held[0].checks
    assert sorted(_lines(engine)) == ["cnl-1-1", "cnl-1-2"]
    with engine.connect() as conn:
        assert conn.execute(select(held_records.c.record_key, held_records.c.stream)).all() == [
            ("cn-3", "credit_notes")]
