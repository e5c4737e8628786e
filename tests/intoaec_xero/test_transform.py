import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from intoaec_xero.parsing import loads
from intoaec_xero.transform import RecordError, transform_record

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "xero-openapi" / "examples"


def example(name):
    path = EXAMPLES / name
    if not path.exists():
        pytest.skip(f"Xero's OpenAPI examples are not beside the repo ({path})")
    return loads(path.read_bytes())


def test_contacts_from_xeros_own_example():
    record = example("get_contacts_200.json")["Contacts"][0]
    rows = transform_record("contacts", "tenant-1", record)["clients"]
    assert rows[0]["tenant_id"] == "tenant-1"
    assert rows[0]["contact_id"] == record["ContactID"]
    assert rows[0]["name"] == record["Name"]
    assert rows[0]["updated_at"].tzinfo is not None


def test_invoices_from_xeros_own_example_keep_voided_and_exact_money():
    invoices = example("get_invoices_200.json")["Invoices"]
    statuses = set()
    for record in invoices:
        rows = transform_record("invoices", "t", record)
        invoice = rows["invoices"][0]
        statuses.add(invoice["status"])
        assert isinstance(invoice["total"], Decimal)
        assert isinstance(invoice["date"], date)
        assert len(rows["invoice_lines"]) == len(record["LineItems"])
        for line in rows["invoice_lines"]:
            assert line["invoice_id"] == invoice["invoice_id"]
    assert "VOIDED" in statuses


def _invoice(**overrides):
    record = {
        "InvoiceID": "inv-1",
        "Type": "ACCREC",
        "InvoiceNumber": "INV-1",
        "Contact": {"ContactID": "c-1"},
        "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
        "Date": "/Date(1700006400000+1300)/",
        "DueDate": "/Date(1702598400000+0000)/",
        "CurrencyCode": "NZD",
        "SubTotal": Decimal("100.10"),
        "TotalTax": Decimal("15.02"),
        "Total": Decimal("115.12"),
        "AmountDue": Decimal("15.12"),
        "AmountPaid": Decimal("100.00"),
        "AmountCredited": Decimal("0.00"),
        "UpdatedDateUTC": "/Date(1700000000000+0000)/",
        "LineItems": [
            {
                "LineItemID": "line-1",
                "Description": "Schematic design — stage 2 ✓",
                "Quantity": Decimal("1.0000"),
                "UnitAmount": Decimal("100.1000"),
                "AccountCode": "200",
                "TaxAmount": Decimal("15.02"),
                "LineAmount": Decimal("100.10"),
                "Tracking": [{"Name": "Project", "Option": "P-1042 Harbour Bridge", "TrackingCategoryID": "tc"}],
            },
            {"LineItemID": "line-2", "Description": "Zero line", "Quantity": 0, "UnitAmount": 0,
             "LineAmount": 0, "TaxAmount": 0, "Tracking": []},
        ],
    }
    record.update(overrides)
    return record


def test_invoice_rows_are_typed():
    rows = transform_record("invoices", "t", _invoice())
    invoice = rows["invoices"][0]
    assert invoice["date"] == date(2023, 11, 15)
    assert invoice["updated_at"] == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert invoice["total"] == Decimal("115.12")
    assert invoice["contact_id"] == "c-1"
    first, second = rows["invoice_lines"]
    assert first["project"] == "P-1042 Harbour Bridge"
    assert first["unit_amount"] == Decimal("100.1000")
    assert first["line_number"] == 1
    assert second["project"] is None
    assert second["line_amount"] == Decimal(0)


def test_a_record_without_its_id_is_named():
    with pytest.raises(RecordError, match="missing InvoiceID"):
        transform_record("invoices", "t", _invoice(InvoiceID=None))


def test_a_line_without_its_id_is_named():
    record = _invoice()
    del record["LineItems"][0]["LineItemID"]
    with pytest.raises(RecordError, match="missing LineItemID"):
        transform_record("invoices", "t", record)


@pytest.mark.parametrize("field", ["Date", "UpdatedDateUTC"])
def test_an_unreadable_date_is_a_record_error(field):
    with pytest.raises(RecordError, match="not a Xero date"):
        transform_record("invoices", "t", _invoice(**{field: "31/12/2023"}))


def test_an_unreadable_amount_is_a_record_error():
    with pytest.raises(RecordError, match="not an amount"):
        transform_record("invoices", "t", _invoice(Total="lots"))


def test_json_round_trip_of_examples_is_lossless():
    raw = (EXAMPLES / "get_invoices_200.json").read_bytes() if EXAMPLES.exists() else b"{}"
    assert json.dumps(loads(raw), default=str)


def test_payments_from_xeros_own_example():
    record = example("get_payments_200.json")["Payments"][0]
    row = transform_record("payments", "t", record)["payments"][0]
    assert row["payment_id"] == record["PaymentID"]
    assert row["invoice_id"] == record["Invoice"]["InvoiceID"]
    assert row["amount"] == Decimal("46.0")
    assert row["payment_type"] == "ACCRECPAYMENT"
    assert row["is_reconciled"] is False


def test_journals_from_xeros_own_example_balance():
    for record in example("get_journals_200.json")["Journals"]:
        rows = transform_record("journals", "t", record)
        journal = rows["journals"][0]
        assert isinstance(journal["journal_number"], int)
        assert journal["created_at"].tzinfo is not None
        assert sum(line["net_amount"] for line in rows["journal_lines"]) == 0
        assert {line["journal_id"] for line in rows["journal_lines"]} <= {journal["journal_id"]}


def test_accounts_and_tracking_categories_from_xeros_own_examples():
    for record in example("get_accounts_200.json")["Accounts"]:
        assert transform_record("accounts", "t", record)["accounts"][0]["account_id"] == record["AccountID"]
    for record in example("get_trackingcategories_200.json")["TrackingCategories"]:
        rows = transform_record("tracking_categories", "t", record)
        assert rows["tracking_categories"][0]["name"] == record["Name"]
        assert len(rows["tracking_options"]) == len(record["Options"])


def test_credit_note_allocations_are_kept():
    record = {"CreditNoteID": "cn-1", "Type": "ACCRECCREDIT", "Contact": {"ContactID": "c"}, "Status": "PAID",
              "Date": "/Date(1700000000000+0000)/", "Total": Decimal("50.00"), "RemainingCredit": Decimal("0.00"),
              "Allocations": [{"Amount": Decimal("50.00"), "Date": "/Date(1700000000000+0000)/",
                               "Invoice": {"InvoiceID": "inv-9"}}]}
    row = transform_record("credit_notes", "t", record)["credit_notes"][0]
    assert row["allocations"] == [{"invoice_id": "inv-9", "amount": "50.00", "date": "2023-11-14"}]
    assert row["remaining_credit"] == Decimal("0.00")


def test_a_journal_number_that_is_not_a_number_is_a_record_error():
    with pytest.raises(RecordError, match="JournalNumber"):
        transform_record("journals", "t", {"JournalID": "j", "JournalNumber": "abc"})


def test_text_is_kept_exactly_as_sent_even_where_a_database_would_refuse_it():
    """Transform does not clean text: the checks decide (record by record) what may not be stored."""
    rows = transform_record("contacts", "t", {"ContactID": "c-1", "Name": "Harbour\x00Works \ud800"})
    assert rows["clients"][0]["name"] == "Harbour\x00Works \ud800"
