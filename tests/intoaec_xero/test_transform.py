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


def test_credit_note_lines_are_exploded_like_invoice_lines():
    record = {"CreditNoteID": "cn-1", "Type": "ACCPAYCREDIT", "Status": "AUTHORISED", "Reference": "Job 22016",
              "SubTotal": Decimal("100.12"), "TotalTax": Decimal("15.02"), "Total": Decimal("115.14"),
              "LineItems": [
                  {"LineItemID": "cnl-1", "Description": "Plotting credit", "Quantity": Decimal("3.5000"),
                   "UnitAmount": Decimal("28.6057"), "ItemCode": "PLOT", "AccountCode": "320", "TaxType": "INPUT2",
                   "TaxAmount": Decimal("15.02"), "LineAmount": Decimal("100.12"), "DiscountRate": None,
                   "Tracking": [{"Name": "Projects", "Option": "P-22016 St Clair", "TrackingCategoryID": "tc-p",
                                 "TrackingOptionID": "to-1"},
                                {"Name": "Discipline", "Option": "Interiors", "TrackingCategoryID": "tc-d"}]},
                  {"LineItemID": "cnl-2", "Description": "Note line", "LineAmount": 0, "Tracking": []},
              ]}
    rows = transform_record("credit_notes", "t", record)
    assert rows["credit_notes"][0]["credit_note_id"] == "cn-1"
    first, second = rows["credit_note_lines"]
    assert first == {
        "tenant_id": "t", "line_item_id": "cnl-1", "credit_note_id": "cn-1", "line_number": 1,
        "description": "Plotting credit", "quantity": Decimal("3.5000"), "unit_amount": Decimal("28.6057"),
        "item_code": "PLOT", "account_code": "320", "tax_type": "INPUT2", "tax_amount": Decimal("15.02"),
        "line_amount": Decimal("100.12"), "discount_rate": None, "project": "P-22016 St Clair",
        "tracking": [{"category": "Projects", "option": "P-22016 St Clair", "tracking_category_id": "tc-p"},
                     {"category": "Discipline", "option": "Interiors", "tracking_category_id": "tc-d"}],
    }
    assert second["line_number"] == 2 and second["project"] is None and second["tracking"] == []
    invoice_line = transform_record("invoices", "t", _invoice())["invoice_lines"][0]
    assert list(first) == [k.replace("invoice_id", "credit_note_id") for k in invoice_line]  # the same columns


def test_a_credit_note_line_without_its_id_is_named():
    record = {"CreditNoteID": "cn-1", "LineItems": [{"Description": "no id"}]}
    with pytest.raises(RecordError, match="missing LineItemID"):
        transform_record("credit_notes", "t", record)


def test_journal_lines_keep_their_tracking_and_project():
    record = example("get_journals_200.json")["Journals"][0]
    rows = transform_record("journals", "t", record)["journal_lines"]
    assert rows and all(r["tracking"] == [] and r["project"] is None for r in rows)
    record["JournalLines"][0]["TrackingCategories"] = [
        {"Name": "Job", "Option": "J-0042", "TrackingCategoryID": "tc-j", "TrackingOptionID": "to-j"}]
    first = transform_record("journals", "t", record)["journal_lines"][0]
    assert first["project"] == "J-0042"
    assert first["tracking"] == [{"category": "Job", "option": "J-0042", "tracking_category_id": "tc-j"}]


# -- the cost side: records shaped as the spec's GET examples ---------------------------------------------------

def _bank_transaction(**overrides):
    record = {
        "BankTransactionID": "bt-1", "Type": "SPEND", "IsReconciled": "true", "Reference": "Job 22016 courier",
        "BankAccount": {"AccountID": "acc-bank", "Code": "090", "Name": "Business Cheque"},
        "Contact": {"ContactID": "c-9", "Name": "Courier Co"}, "Date": "/Date(1476316800000+0000)/",
        "Status": "AUTHORISED", "LineAmountTypes": "Inclusive", "CurrencyCode": "NZD",
        "SubTotal": Decimal("43.48"), "TotalTax": Decimal("6.52"), "Total": Decimal("50.00"),
        "UpdatedDateUTC": "/Date(1476389616437+0000)/",
        "LineItems": [{"LineItemID": "btl-1", "Description": "Courier", "Quantity": Decimal("1.0000"),
                       "UnitAmount": Decimal("50.0000"), "AccountCode": "429", "TaxType": "INPUT2",
                       "TaxAmount": Decimal("6.52"), "LineAmount": Decimal("50.00"),
                       "Tracking": [{"Name": "Project", "Option": "P-22016", "TrackingCategoryID": "tc-p"}]}],
    }
    record.update(overrides)
    return record


def test_bank_transactions_and_their_lines():
    rows = transform_record("bank_transactions", "t", _bank_transaction(PrepaymentID="pp-1"))
    assert rows["bank_transactions"] == [{
        "tenant_id": "t", "bank_transaction_id": "bt-1", "type": "SPEND", "contact_id": "c-9",
        "bank_account_id": "acc-bank", "bank_account_code": "090", "status": "AUTHORISED",
        "line_amount_types": "Inclusive", "date": date(2016, 10, 13), "reference": "Job 22016 courier",
        "currency_code": "NZD", "currency_rate": None, "sub_total": Decimal("43.48"), "total_tax": Decimal("6.52"),
        "total": Decimal("50.00"), "is_reconciled": True, "prepayment_id": "pp-1", "overpayment_id": None,
        "updated_at": datetime(2016, 10, 13, 20, 13, 36, 437000, tzinfo=UTC)}]
    [line] = rows["bank_transaction_lines"]
    invoice_line = transform_record("invoices", "t", _invoice())["invoice_lines"][0]
    assert list(line) == [k.replace("invoice_id", "bank_transaction_id") for k in invoice_line]  # the same columns
    assert (line["bank_transaction_id"], line["line_number"], line["unit_amount"], line["project"]) == (
        "bt-1", 1, Decimal("50.0000"), "P-22016")


def test_manual_journal_lines_are_keyed_by_their_journal_and_place():
    record = {"ManualJournalID": "mj-1", "Narration": "Reallocate P-22016 to P-22017", "Status": "POSTED",
              "Date": "/Date(1553126400000+0000)/", "LineAmountTypes": "NoTax", "ShowOnCashBasisReports": True,
              "UpdatedDateUTC": "/Date(1552357188083+0000)/",
              "JournalLines": [
                  {"LineAmount": Decimal("120.00"), "AccountCode": "429", "AccountID": "acc-429",
                   "Description": "to P-22017", "TaxType": "NONE", "TaxAmount": Decimal("0.00"), "IsBlank": False,
                   "Tracking": [{"Name": "Project", "Option": "P-22017", "TrackingCategoryID": "tc-p"}]},
                  {"LineAmount": Decimal("-120.00"), "AccountCode": "429", "Description": "", "Tracking": []}]}
    rows = transform_record("manual_journals", "t", record)
    assert rows["manual_journals"][0] == {
        "tenant_id": "t", "manual_journal_id": "mj-1", "narration": "Reallocate P-22016 to P-22017",
        "date": date(2019, 3, 21), "status": "POSTED", "line_amount_types": "NoTax",
        "show_on_cash_basis_reports": True, "updated_at": datetime(2019, 3, 12, 2, 19, 48, 83000, tzinfo=UTC)}
    first, second = rows["manual_journal_lines"]
    assert (first["manual_journal_line_id"], first["line_number"], first["line_amount"], first["project"]) == (
        "mj-1/1", 1, Decimal("120.00"), "P-22017")
    assert (second["manual_journal_line_id"], second["line_amount"], second["description"], second["project"]) == (
        "mj-1/2", Decimal("-120.00"), None, None)
    assert first["tracking"] == [{"category": "Project", "option": "P-22017", "tracking_category_id": "tc-p"}]


def test_purchase_orders_carry_their_delivery_date_and_lines():
    record = {"PurchaseOrderID": "po-1", "PurchaseOrderNumber": "PO-0001", "Date": "/Date(1552348800000+0000)/",
              "DeliveryDate": "/Date(1552953600000+0000)/", "Status": "AUTHORISED", "LineAmountTypes": "Exclusive",
              "Contact": {"ContactID": "c-3"}, "CurrencyCode": "NZD", "CurrencyRate": Decimal("1.0"),
              "SubTotal": Decimal("20.00"), "TotalTax": Decimal("3.00"), "Total": Decimal("23.00"),
              "SentToContact": False, "UpdatedDateUTC": "/Date(1552522946173+0000)/",
              "LineItems": [{"LineItemID": "pol-1", "Description": "Foobar", "Quantity": Decimal("1.0"),
                             "UnitAmount": Decimal("20.0"), "TaxAmount": Decimal("3.00"),
                             "LineAmount": Decimal("20.00"), "Tracking": []}]}
    rows = transform_record("purchase_orders", "t", record)
    order = rows["purchase_orders"][0]
    assert (order["purchase_order_number"], order["date"], order["delivery_date"], order["total"],
            order["sent_to_contact"], order["expected_arrival_date"]) == (
        "PO-0001", date(2019, 3, 12), date(2019, 3, 19), Decimal("23.00"), False, None)
    assert [(r["purchase_order_id"], r["line_item_id"], r["line_amount"]) for r in rows["purchase_order_lines"]] == [
        ("po-1", "pol-1", Decimal("20.00"))]


def test_deposits_and_their_allocations():
    allocation = {"AllocationID": "al-1", "Amount": Decimal("100.00"), "Date": "/Date(1552435200000+0000)/",
                  "Invoice": {"InvoiceID": "inv-7", "InvoiceNumber": "INV-0007"}, "IsDeleted": False}
    record = {"PrepaymentID": "pp-1", "ID": "pp-1", "Type": "RECEIVE-PREPAYMENT", "Reference": "INV-0011",
              "InvoiceNumber": "INV-0011", "RemainingCredit": Decimal("3350.00"), "Contact": {"ContactID": "c-1"},
              "Date": "/Date(1552435200000+0000)/", "Status": "AUTHORISED", "LineAmountTypes": "Exclusive",
              "SubTotal": Decimal("3000.00"), "TotalTax": Decimal("450.00"), "Total": Decimal("3450.00"),
              "UpdatedDateUTC": "/Date(1552489187730+0000)/", "CurrencyCode": "NZD", "LineItems": [],
              "Allocations": [allocation, {**allocation, "AllocationID": None, "Amount": Decimal("0.50")}]}
    rows = transform_record("prepayments", "t", record)
    prepayment = rows["prepayments"][0]
    assert (prepayment["prepayment_id"], prepayment["invoice_number"], prepayment["remaining_credit"]) == (
        "pp-1", "INV-0011", Decimal("3350.00"))
    assert rows["prepayment_allocations"] == [
        {"tenant_id": "t", "allocation_id": "al-1", "prepayment_id": "pp-1", "invoice_id": "inv-7",
         "amount": Decimal("100.00"), "date": date(2019, 3, 13), "is_deleted": False},
        # No AllocationID from Xero: the deposit's id and the allocation's place stand in.
        {"tenant_id": "t", "allocation_id": "pp-1/2", "prepayment_id": "pp-1", "invoice_id": "inv-7",
         "amount": Decimal("0.50"), "date": date(2019, 3, 13), "is_deleted": False}]
    over = {**record, "OverpaymentID": "op-1", "Type": "RECEIVE-OVERPAYMENT"}
    del over["PrepaymentID"], over["InvoiceNumber"]
    rows = transform_record("overpayments", "t", over)
    assert rows["overpayments"][0]["overpayment_id"] == "op-1" and "invoice_number" not in rows["overpayments"][0]
    assert [a["overpayment_id"] for a in rows["overpayment_allocations"]] == ["op-1", "op-1"]


def test_linked_transactions_name_source_and_target():
    record = {"LinkedTransactionID": "lt-1", "SourceTransactionID": "bill-1", "SourceLineItemID": "bl-1",
              "ContactID": "c-1", "TargetTransactionID": "inv-1", "TargetLineItemID": "il-1", "Status": "BILLED",
              "Type": "BILLABLEEXPENSE", "UpdatedDateUTC": "/Date(1552347991000+0000)/",
              "SourceTransactionTypeCode": "ACCPAY"}
    [row] = transform_record("linked_transactions", "t", record)["linked_transactions"]
    assert row == {"tenant_id": "t", "linked_transaction_id": "lt-1", "type": "BILLABLEEXPENSE", "status": "BILLED",
                   "source_transaction_id": "bill-1", "source_line_item_id": "bl-1",
                   "source_transaction_type_code": "ACCPAY", "contact_id": "c-1", "target_transaction_id": "inv-1",
                   "target_line_item_id": "il-1", "updated_at": datetime(2019, 3, 11, 23, 46, 31, tzinfo=UTC)}


@pytest.mark.parametrize("stream, record, message", [
    ("bank_transactions", {"Type": "SPEND"}, "missing BankTransactionID"),
    ("bank_transactions", {"BankTransactionID": "bt-1", "LineItems": [{"LineAmount": 1}]}, "missing LineItemID"),
    ("manual_journals", {"ManualJournalID": "mj-1", "JournalLines": ["not a line"]}, "journal line 1 is not"),
    ("prepayments", {"PrepaymentID": "pp-1", "Allocations": [{"AllocationID": 7}]}, "AllocationID is not text"),
    ("overpayments", {"Type": "RECEIVE-OVERPAYMENT"}, "missing OverpaymentID"),
    ("linked_transactions", {"Status": "BILLED"}, "missing LinkedTransactionID"),
])
def test_a_cost_record_that_cannot_be_read_is_named(stream, record, message):
    with pytest.raises(RecordError, match=message):
        transform_record(stream, "t", record)


# -- the organisation, tax rates and bank transfers: records shaped as the spec's GET examples -----------------

def test_bank_transfers_from_the_specs_example():
    record = {"BankTransferID": "6221458a-ef7a-4d5f-9b1c-1b96ce03833c", "CreatedDateUTCString": "2016-10-17 20:46:01",
              "CreatedDateUTC": "/Date(1476737161140+0000)/", "DateString": "2016-11-12 21:10:00",
              "Date": "/Date(1478985000000+0000)/", "Status": "AUTHORISED",
              "FromBankAccount": {"AccountID": "6f7594f2-f059-4d56-9e67-47ac9733bfe9", "Code": "090",
                                  "Name": "Business Wells Fargo"},
              "ToBankAccount": {"AccountID": "7e5e243b-9fcd-4aef-8e3a-c70be1e39bfa", "Name": "My Savings"},
              "Amount": Decimal("20.00"), "CurrencyRate": Decimal("1.0"),
              "FromBankTransactionID": "a3eca480-bc04-4292-9bbd-5c57b8ba12b4",
              "ToBankTransactionID": "4ca13f40-f3a0-4530-a442-a600f5696118", "FromIsReconciled": True,
              "ToIsReconciled": True, "Reference": "Sub 098801", "HasAttachments": True,
              "FromTracking": [], "ToTracking": []}
    assert transform_record("bank_transfers", "t", record) == {"bank_transfers": [{
        "tenant_id": "t", "bank_transfer_id": "6221458a-ef7a-4d5f-9b1c-1b96ce03833c",
        "from_bank_account_id": "6f7594f2-f059-4d56-9e67-47ac9733bfe9", "from_bank_account_code": "090",
        "to_bank_account_id": "7e5e243b-9fcd-4aef-8e3a-c70be1e39bfa", "to_bank_account_code": None,
        "amount": Decimal("20.00"), "date": date(2016, 11, 12), "currency_rate": Decimal("1.0"),
        "from_bank_transaction_id": "a3eca480-bc04-4292-9bbd-5c57b8ba12b4",
        "to_bank_transaction_id": "4ca13f40-f3a0-4530-a442-a600f5696118", "reference": "Sub 098801",
        "status": "AUTHORISED", "has_attachments": True,
        "created_at": datetime(2016, 10, 17, 20, 46, 1, 140000, tzinfo=UTC)}]}
    # An empty reference is none; an amount as JSON sends it stays exact.
    [row] = transform_record("bank_transfers", "t", loads(json.dumps({**record, "Reference": "", "Amount": 0.1,
                                                                          "CurrencyRate": None})))["bank_transfers"]
    assert (row["reference"], row["amount"], row["currency_rate"]) == (None, Decimal("0.1"), None)


def test_tax_rates_keep_their_components_exactly():
    record = {"Name": "15% GST on Expenses", "TaxType": "INPUT2", "ReportTaxType": "INPUT", "CanApplyToAssets": True,
              "CanApplyToEquity": True, "CanApplyToExpenses": True, "CanApplyToLiabilities": True,
              "CanApplyToRevenue": False, "DisplayTaxRate": 15.0, "EffectiveRate": 15.0, "Status": "ACTIVE",
              "TaxComponents": [{"Name": "GST", "Rate": 15.0, "IsCompound": False, "IsNonRecoverable": False}]}
    [row] = transform_record("tax_rates", "t", loads(json.dumps(record)))["tax_rates"]
    assert row == {"tenant_id": "t", "tax_type": "INPUT2", "name": "15% GST on Expenses", "status": "ACTIVE",
                   "report_tax_type": "INPUT", "effective_rate": Decimal("15.0"), "display_tax_rate": Decimal("15.0"),
                   "components": [{"name": "GST", "rate": "15.0", "is_compound": False, "is_non_recoverable": False}]}
    # Canada's compound and non-recoverable components, kept as Xero lists them.
    compound = {**record, "TaxType": "TAX002", "EffectiveRate": Decimal("14.975"), "DisplayTaxRate": Decimal("14.975"),
                "TaxComponents": [{"Name": "GST", "Rate": Decimal("5.0000"), "IsCompound": False},
                                  {"Name": "QST", "Rate": Decimal("9.9750"), "IsCompound": True,
                                   "IsNonRecoverable": True}]}
    [row] = transform_record("tax_rates", "t", compound)["tax_rates"]
    assert row["effective_rate"] == Decimal("14.975")
    assert row["components"] == [
        {"name": "GST", "rate": "5.0000", "is_compound": False, "is_non_recoverable": None},
        {"name": "QST", "rate": "9.9750", "is_compound": True, "is_non_recoverable": True}]
    assert transform_record("tax_rates", "t", {**record, "TaxComponents": None})["tax_rates"][0]["components"] == []


def test_the_organisation_is_one_row_keyed_by_its_tenant():
    record = {"APIKey": "CTJ60UH519MXQIXEJSDPDALS3EOZ5Y", "Name": "Dev Evangelist - Sid Test 3 (NZ-2016-02)",
              "LegalName": "Dev Evangelist - Sid Test 3 (NZ-2016-02)", "PaysTax": True, "Version": "NZ",
              "OrganisationType": "COMPANY", "BaseCurrency": "NZD", "CountryCode": "NZ", "IsDemoCompany": False,
              "OrganisationStatus": "ACTIVE", "TaxNumber": "071-138-054", "FinancialYearEndDay": 31,
              "FinancialYearEndMonth": 3, "SalesTaxBasis": "PAYMENTS", "SalesTaxPeriod": "TWOMONTHS",
              "DefaultSalesTax": "Tax Exclusive", "DefaultPurchasesTax": "Tax Exclusive",
              "PeriodLockDate": "/Date(1546214400000+0000)/", "CreatedDateUTC": "/Date(1455827393000)/",
              "OrganisationEntityType": "COMPANY", "Timezone": "NEWZEALANDSTANDARDTIME", "ShortCode": "!TJ7Tb",
              "OrganisationID": "b2c885a9-4bb9-4a00-9b6e-6c2bf60b1a2b", "Edition": "BUSINESS", "Class": "DEMO",
              "LineOfBusiness": "Software", "Addresses": [], "Phones": [], "ExternalLinks": [], "PaymentTerms": {}}
    assert transform_record("organisation", "tenant-1", record) == {"organisations": [{
        "tenant_id": "tenant-1", "organisation_id": "b2c885a9-4bb9-4a00-9b6e-6c2bf60b1a2b",
        "name": "Dev Evangelist - Sid Test 3 (NZ-2016-02)", "legal_name": "Dev Evangelist - Sid Test 3 (NZ-2016-02)",
        "base_currency": "NZD", "country_code": "NZ", "financial_year_end_day": 31, "financial_year_end_month": 3,
        "organisation_class": "DEMO", "timezone": "NEWZEALANDSTANDARDTIME",
        "created_at": datetime(2016, 2, 18, 20, 29, 53, tzinfo=UTC)}]}


def test_journal_lines_carry_their_journals_date_and_source_and_journals_say_they_are_xeros():
    for record in example("get_journals_200.json")["Journals"]:
        rows = transform_record("journals", "t", record)
        [journal] = rows["journals"]
        assert journal["origin"] == "xero"
        for line in rows["journal_lines"]:
            assert (line["journal_date"], line["source_type"], line["source_id"]) == (
                journal["journal_date"], journal["source_type"], journal["source_id"])
            assert isinstance(line["journal_date"], date)
    record = {"JournalID": "j-1", "JournalNumber": 1, "JournalDate": "/Date(1709251200000+0000)/",
              "SourceType": "TRANSFER", "SourceID": "bx-1",
              "JournalLines": [{"JournalLineID": "jl-1", "AccountID": "a", "NetAmount": Decimal("5.00")}]}
    [line] = transform_record("journals", "t", record)["journal_lines"]
    assert (line["journal_date"], line["source_type"], line["source_id"]) == (date(2024, 3, 1), "TRANSFER", "bx-1")


@pytest.mark.parametrize("stream, record, message", [
    ("bank_transfers", {"Amount": 1}, "missing BankTransferID"),
    ("bank_transfers", {"BankTransferID": "bx-1", "FromBankAccount": "090"}, "bank_transfers record cannot be read"),
    ("bank_transfers", {"BankTransferID": "bx-1", "Amount": "twenty"}, "not an amount"),
    ("tax_rates", {"Name": "GST"}, "missing TaxType"),
    ("tax_rates", {"TaxType": "INPUT2", "TaxComponents": ["GST"]}, "tax component 1 is not an object"),
    ("organisation", {"Name": "Harbour"}, "missing OrganisationID"),
    ("organisation", {"OrganisationID": "o", "FinancialYearEndMonth": "March"},
     "FinancialYearEndMonth is not a whole number"),
])
def test_a_settings_or_transfer_record_that_cannot_be_read_is_named(stream, record, message):
    with pytest.raises(RecordError, match=message):
        transform_record(stream, "t", record)
