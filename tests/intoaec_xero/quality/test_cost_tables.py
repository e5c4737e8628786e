"""The cost side's tables: each checked by its own suite (keys, required fields, exact money, every line or
allocation's parent in the batch), lines and allocations replaced whole with their parent."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from intoaec_xero.extract import StreamExtract
from intoaec_xero.load import load_stream
from intoaec_xero.quality import suites
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import bank_transaction_lines, held_records, metadata, prepayment_allocations
from intoaec_xero.streams import get_stream
from intoaec_xero.validate import BatchRejected
from sqlalchemy import select

from .records import MS_2024_03_01, TENANT, UPDATED, broken, keep

PROJECT = [{"Name": "Project", "Option": "P-22016 St Clair", "TrackingCategoryID": "tc-1"}]


def _line(line_id: str, amount: str, tax: str, **changes: Any) -> dict[str, Any]:
    line = {"LineItemID": line_id, "Description": "Courier", "Quantity": 1.0, "UnitAmount": float(amount),
            "AccountCode": "429", "TaxType": "INPUT2", "TaxAmount": float(tax), "LineAmount": float(amount),
            "Tracking": PROJECT}
    line.update(changes)
    return line


def bank_transaction(n: int = 1, **changes: Any) -> dict[str, Any]:
    """Spend money of 80.00 + 12.00 tax in two lines."""
    record = {"BankTransactionID": f"bt-{n}", "Type": "SPEND", "Reference": "Job 22016",
              "BankAccount": {"AccountID": "acc-bank", "Code": "090"}, "Contact": {"ContactID": "c-1"},
              "IsReconciled": False, "Date": MS_2024_03_01, "Status": "AUTHORISED", "LineAmountTypes": "Exclusive",
              "SubTotal": 80.00, "TotalTax": 12.00, "Total": 92.00, "CurrencyCode": "NZD", "UpdatedDateUTC": UPDATED,
              "LineItems": [_line(f"btl-{n}-1", "50.00", "7.50", UnitAmount=50.1234, Quantity=0.9975),
                            _line(f"btl-{n}-2", "30.00", "4.50", Tracking=[])]}
    record.update(changes)
    return record


def purchase_order(n: int = 1, **changes: Any) -> dict[str, Any]:
    record = {"PurchaseOrderID": f"po-{n}", "PurchaseOrderNumber": f"PO-{n:04d}", "Contact": {"ContactID": "c-2"},
              "Date": MS_2024_03_01, "DeliveryDate": MS_2024_03_01, "Status": "AUTHORISED",
              "LineAmountTypes": "Inclusive", "SubTotal": 100.00, "TotalTax": 15.00, "Total": 115.00,
              "CurrencyCode": "NZD", "UpdatedDateUTC": UPDATED, "LineItems": [_line(f"pol-{n}-1", "115.00", "15.00")]}
    record.update(changes)
    return record


def manual_journal(n: int = 1, **changes: Any) -> dict[str, Any]:
    record = {"ManualJournalID": f"mj-{n}", "Narration": "Reallocate P-22016", "Date": MS_2024_03_01,
              "Status": "POSTED", "LineAmountTypes": "NoTax", "UpdatedDateUTC": UPDATED,
              "JournalLines": [{"LineAmount": 120.00, "AccountCode": "429", "TaxType": "NONE", "TaxAmount": 0.0,
                                "Tracking": PROJECT},
                               {"LineAmount": -120.00, "AccountCode": "429", "TaxType": "NONE", "TaxAmount": 0.0}]}
    record.update(changes)
    return record


def prepayment(n: int = 1, **changes: Any) -> dict[str, Any]:
    record = {"PrepaymentID": f"pp-{n}", "Type": "RECEIVE-PREPAYMENT", "Contact": {"ContactID": "c-1"},
              "Date": MS_2024_03_01, "Status": "AUTHORISED", "LineAmountTypes": "NoTax", "SubTotal": 500.00,
              "TotalTax": 0.0, "Total": 500.00, "RemainingCredit": 350.00, "CurrencyCode": "NZD",
              "UpdatedDateUTC": UPDATED,
              "Allocations": [{"AllocationID": f"al-{n}-1", "Amount": 100.00, "Date": MS_2024_03_01,
                               "Invoice": {"InvoiceID": "inv-1"}},
                              {"AllocationID": f"al-{n}-2", "Amount": 50.00, "Date": MS_2024_03_01,
                               "Invoice": {"InvoiceID": "inv-2"}}]}
    record.update(changes)
    return record


def overpayment(n: int = 1, **changes: Any) -> dict[str, Any]:
    record = {key.replace("Prepayment", "Overpayment"): value for key, value in prepayment(n).items()}
    record.update({"OverpaymentID": f"op-{n}", "Type": "RECEIVE-OVERPAYMENT"}, **changes)
    return record


def linked_transaction(n: int = 1, **changes: Any) -> dict[str, Any]:
    record = {"LinkedTransactionID": f"lt-{n}", "SourceTransactionID": "bill-1", "SourceLineItemID": "bl-1",
              "ContactID": "c-1", "Status": "APPROVED", "Type": "BILLABLEEXPENSE", "UpdatedDateUTC": UPDATED,
              "SourceTransactionTypeCode": "ACCPAY"}
    record.update(changes)
    return record


CLEAN = {"bank_transactions": bank_transaction, "purchase_orders": purchase_order, "manual_journals": manual_journal,
         "prepayments": prepayment, "overpayments": overpayment, "linked_transactions": linked_transaction}


def _load(engine, tmp_path, stream: str, *records: Any, run_id: str = "run"):
    raw = RawStore(tmp_path / "raw")
    body = json.dumps({"Id": "x", "Status": "OK", get_stream(stream).records_key: list(records)}).encode()
    keep(raw, run_id, stream, body)
    return load_stream(engine, raw, run_id, TENANT, get_stream(stream), StreamExtract(stream=stream))


def _rows(engine, table: str) -> dict[str, Any]:
    t = metadata.tables[table]
    key = suites.TABLES[table].key
    with engine.connect() as conn:
        return {getattr(r, key): r for r in conn.execute(select(t))}


@pytest.mark.parametrize("stream", sorted(CLEAN))
def test_clean_records_pass_every_check_of_their_tables_and_land(engine, tmp_path, stream):
    make = CLEAN[stream]
    loaded = _load(engine, tmp_path, stream, make(1), make(2))
    assert [r.label() for r in loaded.results if not r.passed] == []
    checked = {(r.table, r.check) for r in loaded.results}
    for table in get_stream(stream).targets:
        assert {(table, c.name) for c in suites.checks_for(table)} <= checked, table
        assert len(_rows(engine, table)) == loaded.rows[table] > 0, table
    assert (loaded.inserted, loaded.updated) == (2, 0)  # counted on the parents, not their lines


def test_every_line_and_allocation_table_checks_its_parent_and_money():
    for table, parent in {"bank_transaction_lines": "bank_transaction", "manual_journal_lines": "manual_journal",
                          "purchase_order_lines": "purchase_order", "overpayment_allocations": "overpayment",
                          "prepayment_allocations": "prepayment"}.items():
        checks = {c.name: c for c in suites.checks_for(table)}
        assert checks[f"{parent}_exists"].severity == "error", table
        assert {"key_present", "key_unique", "money_exact", "required_present"} <= set(checks), table
    for table in ("bank_transactions", "purchase_orders", "overpayments", "prepayments"):
        assert suites.checks_for(table) and any(c.name == "total_equals_parts" for c in suites.checks_for(table))


def test_lines_keep_four_place_unit_amounts_and_their_project(engine, tmp_path):
    _load(engine, tmp_path, "bank_transactions", bank_transaction(1))
    first = _rows(engine, "bank_transaction_lines")["btl-1-1"]
    assert (first.bank_transaction_id, first.line_number, first.unit_amount, first.quantity, first.project) == (
        "bt-1", 1, Decimal("50.1234"), Decimal("0.9975"), "P-22016 St Clair")
    lines = _rows(engine, "manual_journal_lines")
    assert lines == {}
    _load(engine, tmp_path, "manual_journals", manual_journal(1), run_id="mj")
    lines = _rows(engine, "manual_journal_lines")
    assert {k: (v.line_amount, v.project) for k, v in lines.items()} == {
        "mj-1/1": (Decimal("120.00"), "P-22016 St Clair"), "mj-1/2": (Decimal("-120.00"), None)}


def test_a_line_or_allocation_gone_from_its_parent_disappears(engine, tmp_path):
    _load(engine, tmp_path, "bank_transactions", bank_transaction(1), bank_transaction(2), run_id="first")
    edited = bank_transaction(1, SubTotal=50.00, TotalTax=7.50, Total=57.50)
    edited["LineItems"] = edited["LineItems"][:1]
    _load(engine, tmp_path, "bank_transactions", edited, run_id="second")
    with engine.connect() as conn:
        assert sorted(conn.execute(select(bank_transaction_lines.c.line_item_id)).scalars()) == [
            "btl-1-1", "btl-2-1", "btl-2-2"]
    _load(engine, tmp_path, "prepayments", prepayment(1), run_id="third")
    undone = prepayment(1, RemainingCredit=400.00)
    undone["Allocations"] = undone["Allocations"][:1]
    _load(engine, tmp_path, "prepayments", undone, run_id="fourth")
    with engine.connect() as conn:
        assert conn.execute(select(prepayment_allocations.c.allocation_id)).scalars().all() == ["al-1-1"]


@pytest.mark.parametrize("stream, bad, check", [
    ("bank_transactions", lambda: broken(bank_transaction(3), "LineItems.0.UnitAmount", 50.12345), "money_exact"),
    ("bank_transactions", lambda: broken(bank_transaction(3), "Status", "BOGUS"), "status_in_enum"),
    ("bank_transactions", lambda: broken(bank_transaction(3), "Type"), "required_present"),
    ("purchase_orders", lambda: broken(purchase_order(3), "LineItems.0.LineAmount", 115.001), "money_exact"),
    ("manual_journals", lambda: broken(manual_journal(3), "JournalLines.1.LineAmount"), "required_present"),
    ("prepayments", lambda: broken(prepayment(3), "Allocations.0.Amount"), "required_present"),
    ("overpayments", lambda: broken(overpayment(3), "Allocations.1.Amount", "12.345"), "money_exact"),
    ("linked_transactions", lambda: broken(linked_transaction(3), "SourceTransactionID"), "required_present"),
], ids=["unit-5dp", "unknown-status", "no-type", "line-3dp", "journal-line-no-amount", "allocation-no-amount",
        "allocation-3dp", "no-source"])
def test_a_bad_record_or_line_is_held_back_alone(engine, tmp_path, stream, bad, check):
    loaded = _load(engine, tmp_path, stream, CLEAN[stream](1), bad())
    key = get_stream(stream).primary_key
    [held] = loaded.held
    assert held.label == bad()[key] and check in held.checks
    main = get_stream(stream).targets[0]
    assert sorted(_rows(engine, main)) == [CLEAN[stream](1)[key]]
    with engine.connect() as conn:
        assert conn.execute(select(held_records.c.record_key, held_records.c.stream)).all() == [(held.label, stream)]


@pytest.mark.parametrize("stream, bad, check", [
    ("bank_transactions", lambda: bank_transaction(3, Total=92.01), "total_equals_parts"),
    ("bank_transactions", lambda: broken(bank_transaction(3), "LineItems.1.LineAmount", 31.00),
     "lines_sum_to_document"),
    ("purchase_orders", lambda: purchase_order(3, SubTotal=99.00), "total_equals_parts"),
    ("prepayments", lambda: prepayment(3, TotalTax=1.00), "total_equals_parts"),
], ids=["bank-total", "bank-lines", "po-total", "prepayment-total"])
def test_xeros_arithmetic_broken_rejects_the_batch(engine, tmp_path, stream, bad, check):
    with pytest.raises(BatchRejected) as rejected:
        _load(engine, tmp_path, stream, CLEAN[stream](1), bad())
    assert check in {r.check for r in rejected.value.failed}
    assert _rows(engine, get_stream(stream).targets[0]) == {}


def test_descriptive_values_are_recorded_and_load(engine, tmp_path):
    loaded = _load(engine, tmp_path, "linked_transactions", linked_transaction(1, Status="SOMETHING_NEW"))
    assert [(r.check, r.severity) for r in loaded.results if not r.passed] == [("status_in_enum", "warn")]
    assert list(_rows(engine, "linked_transactions")) == ["lt-1"]
    unbalanced = broken(manual_journal(1), "JournalLines.1.LineAmount", -100.00)
    loaded = _load(engine, tmp_path, "manual_journals", unbalanced, run_id="draft")
    assert [(r.check, r.severity) for r in loaded.results if not r.passed] == [("manual_journal_balances", "warn")]
    assert list(_rows(engine, "manual_journals")) == ["mj-1"]
