"""Each check passes on clean data and fails on data made to break it, through the real load path.

Hostile input of every kind Xero can send (unknown enum values, missing fields, wrong types,
offsets in dates, truncated pages) is either loaded correctly or rejected with a named check;
the load never raises anything else.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from intoaec_xero.extract import StreamExtract
from intoaec_xero.load import load_stream
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import invoice_lines, invoices, journals, metadata, sync_state
from intoaec_xero.streams import get_stream
from intoaec_xero.validate import BatchRejected
from sqlalchemy import func, select

from .records import TENANT, account, broken, contact, invoice, journal, keep, page, payment

REFERENCE_ACCOUNTS = [account("acc-ar", "610", Type="CURRENT", Class="ASSET"), account("acc-sales", "200"),
                      account("acc-gst", "820", Type="CURRLIAB", Class="LIABILITY"),
                      account("acc-bank", "090", Type="BANK", Class="ASSET")]


def _load(engine, tmp_path, stream: str, *pages: bytes, run_id: str = "run", **extracted):
    raw = RawStore(tmp_path / "raw")
    keep(raw, run_id, stream, *pages)
    return load_stream(engine, raw, run_id, TENANT, get_stream(stream), StreamExtract(stream=stream, **extracted))


@pytest.fixture
def engine(sqlite_engine, tmp_path):
    """Accounts and one invoice already loaded, as earlier streams of the run would have them."""
    _load(sqlite_engine, tmp_path, "accounts", page("accounts", REFERENCE_ACCOUNTS), run_id="setup")
    _load(sqlite_engine, tmp_path, "invoices", page("invoices", [invoice(1)]), run_id="setup")
    return sqlite_engine


CLEAN = {
    "contacts": lambda: [contact(1), contact(2, ContactStatus="ARCHIVED", IsCustomer="false")],
    "invoices": lambda: [invoice(2), invoice(3, Status="PAID", AmountDue=0, AmountPaid=115.0),
                         invoice(4, LineAmountTypes="Inclusive", SubTotal=86.96, TotalTax=13.04, Total=100.0,
                                 AmountDue=100.0, AmountPaid=0)],
    "payments": lambda: [payment(1), payment(2, Status="DELETED")],
    "journals": lambda: [journal(1), journal(2)],
    "accounts": lambda: REFERENCE_ACCOUNTS,
}


@pytest.mark.parametrize("stream", sorted(CLEAN))
def test_clean_data_passes_every_check(engine, tmp_path, stream):
    loaded = _load(engine, tmp_path, stream, page(stream, CLEAN[stream]()))
    assert [r.label() for r in loaded.results if not r.passed] == []
    assert {r.check for r in loaded.results} >= {"key_present", "key_unique", "values_fit_columns", "page_readable",
                                                 "record_readable"}


def _lines_off(record):
    record = broken(record, "LineItems.1.LineAmount", 41.0)
    return record


# (stream, broken record(s), the check that must fail, "error" (rejected) or "warn" (loaded))
HOSTILE = [
    # unknown enum values
    ("invoices", lambda: [invoice(5, Status="PENDING_APPROVAL")], "status_in_enum", "error"),
    ("invoices", lambda: [invoice(5, Type="ACCRECX")], "type_in_enum", "error"),
    ("invoices", lambda: [invoice(5, LineAmountTypes="Gross")], "line_amount_types_in_enum", "error"),
    ("payments", lambda: [payment(5, Status="PENDING")], "status_in_enum", "error"),
    ("contacts", lambda: [contact(5, ContactStatus="SUSPENDED")], "status_in_enum", "warn"),
    ("accounts", lambda: [account("acc-x", "999", Class="GOODWILL")], "class_in_enum", "warn"),
    ("journals", lambda: [journal(5, SourceType="CRYPTOPAYMENT")], "source_type_in_enum", "warn"),
    # Xero's arithmetic
    ("invoices", lambda: [invoice(5, Total=116.0, AmountDue=76.0)], "total_equals_parts", "error"),
    ("invoices", lambda: [invoice(5, AmountDue=70.0)], "amount_due_consistent", "error"),
    ("invoices", lambda: [_lines_off(invoice(5))], "lines_sum_to_invoice", "error"),
    ("invoices", lambda: [invoice(5, LineItems=[])], "lines_sum_to_invoice", "error"),
    ("journals", lambda: [broken(journal(5), "JournalLines.0.NetAmount", 115.01)], "journal_balances", "error"),
    # money that the column would round or cannot hold
    ("invoices", lambda: [invoice(5, AmountPaid="40.001", AmountDue="74.999")], "money_exact", "error"),
    ("payments", lambda: [payment(5, Amount="1E+20")], "money_exact", "error"),
    # missing fields
    ("invoices", lambda: [broken(invoice(5), "InvoiceID")], "record_readable", "error"),
    ("invoices", lambda: [broken(invoice(5), "LineItems.0.LineItemID")], "record_readable", "error"),
    ("invoices", lambda: [broken(invoice(5), "Total")], "required_present", "error"),
    ("invoices", lambda: [broken(invoice(5), "Status")], "required_present", "error"),
    ("invoices", lambda: [broken(invoice(5), "AmountPaid")], "fields_present", "warn"),
    ("journals", lambda: [broken(journal(5), "JournalNumber")], "record_readable", "error"),
    ("journals", lambda: [broken(journal(5), "JournalLines.1.AccountID")], "required_present", "error"),
    # wrong types
    ("invoices", lambda: [invoice(5, Total="one hundred")], "record_readable", "error"),
    ("invoices", lambda: [invoice(5, Total=True)], "record_readable", "error"),
    ("invoices", lambda: [invoice(5, Status=7)], "values_fit_columns", "error"),
    ("invoices", lambda: [invoice(5, Status={"Code": "PAID"})], "values_fit_columns", "error"),
    ("invoices", lambda: [invoice(5, InvoiceID=12345)], "values_fit_columns", "error"),
    ("invoices", lambda: [invoice(5, Reference="x" * 501)], "values_fit_columns", "error"),
    ("invoices", lambda: [invoice(5, Contact="c-1")], "record_readable", "error"),
    ("invoices", lambda: [invoice(5, LineItems={"LineItemID": "li"})], "record_readable", "error"),
    ("invoices", lambda: ["not a record", invoice(5)], "record_readable", "error"),
    ("contacts", lambda: [contact(5, IsCustomer="yes")], "record_readable", "error"),
    ("journals", lambda: [journal(5, JournalNumber="12a")], "record_readable", "error"),
    ("journals", lambda: [journal(5, JournalNumber=2**70)], "values_fit_columns", "error"),
    # dates: nonsense, out of range, overflowing
    ("invoices", lambda: [invoice(5, Date="2024-13-45")], "record_readable", "error"),
    ("invoices", lambda: [invoice(5, Date="/Date(99999999999999+0000)/")], "dates_in_range", "error"),
    ("invoices", lambda: [invoice(5, Date="/Date(-9999999999999+0000)/")], "dates_in_range", "error"),
    ("invoices", lambda: [invoice(5, Date="/Date(999999999999999999+0000)/")], "record_readable", "error"),
    # references to records IntoAEC does not have
    ("payments", lambda: [payment(5, invoice_id="inv-unknown")], "invoice_exists", "warn"),
    ("journals", lambda: [broken(journal(5), "JournalLines.2.AccountID", "acc-unknown")], "account_exists", "warn"),
]


@pytest.mark.parametrize("stream, records, check, severity", HOSTILE,
                         ids=[f"{s}-{c}-{i}" for i, (s, _r, c, _v) in enumerate(HOSTILE)])
def test_hostile_records_are_rejected_or_loaded_with_a_named_check(engine, tmp_path, stream, records, check,
                                                                    severity):
    tables = get_stream(stream).targets
    before = _counts(engine, tables)
    body = page(stream, records())
    if severity == "error":
        with pytest.raises(BatchRejected) as caught:
            _load(engine, tmp_path, stream, body, max_cursor="2024-03-02T00:00:00+00:00")
        failed = {r.check: r for r in caught.value.failed}
        assert check in failed, [r.describe() for r in caught.value.failed]
        assert failed[check].failing_keys, "a failure names the rows that failed"
        assert check in str(caught.value)
        assert _counts(engine, tables) == before  # nothing of the batch landed
        with engine.connect() as conn:
            mark = conn.execute(select(sync_state.c.watermark).where(
                sync_state.c.tenant_id == TENANT, sync_state.c.stream == stream)).scalar()
        assert mark is None or mark.replace(tzinfo=UTC) < datetime(2024, 3, 2, tzinfo=UTC)
    else:
        loaded = _load(engine, tmp_path, stream, body)
        failed = {r.check: r for r in loaded.results if not r.passed}
        assert check in failed and failed[check].severity == "warn"
        assert all(r.severity == "warn" for r in failed.values())
        assert _counts(engine, tables) != before


def _counts(engine, tables):
    with engine.connect() as conn:
        return {t: conn.execute(select(func.count()).select_from(metadata.tables[t])).scalar_one() for t in tables}


def test_an_offset_in_a_date_keeps_the_instant_and_the_calendar_date(engine, tmp_path):
    record = invoice(6, Date="/Date(1709251200000+1300)/", UpdatedDateUTC="/Date(1709290000000-0500)/",
                     DueDate="2024-03-31T00:00:00")
    loaded = _load(engine, tmp_path, "invoices", page("invoices", [record]))
    assert all(r.passed for r in loaded.results)
    with engine.connect() as conn:
        row = conn.execute(select(invoices.c.date, invoices.c.due_date, invoices.c.updated_at)
                           .where(invoices.c.invoice_id == "inv-6")).one()
    assert row.date == date(2024, 3, 1) and row.due_date == date(2024, 3, 31)
    assert row.updated_at.replace(tzinfo=UTC) == datetime.fromtimestamp(1709290000, UTC)


def test_a_truncated_page_is_rejected_by_name(engine, tmp_path):
    body = page("invoices", [invoice(7), invoice(8)])
    with pytest.raises(BatchRejected) as caught:
        _load(engine, tmp_path, "invoices", page("invoices", [invoice(9)]), body[: len(body) // 2])
    (failure,) = caught.value.failed
    assert failure.check == "page_readable" and failure.failing_keys == ["page 2"]
    assert "not complete JSON" in failure.observed
    assert _counts(engine, ["invoices"]) == {"invoices": 1}  # invoice 9, on the good page, did not land either


def test_a_damaged_page_file_and_a_missing_page_are_rejected(engine, tmp_path):
    raw = RawStore(tmp_path / "raw")
    keep(raw, "run", "invoices", page("invoices", [invoice(7)]), page("invoices", [invoice(8)]))
    path = raw.stream_dir("run", TENANT, "invoices") / "page-000002.json.gz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(BatchRejected) as caught:
        load_stream(engine, raw, "run", TENANT, get_stream("invoices"), StreamExtract(stream="invoices", pages=3))
    failed = {r.check: r for r in caught.value.failed}
    assert failed["page_readable"].failing_keys == ["page 2"]
    assert "2 of 3 extracted pages" in failed["pages_complete"].observed


def test_a_short_page_in_the_middle_is_rejected(engine, tmp_path):
    first = page("invoices", [invoice(7)], pagination={"page": 1, "pageSize": 1000, "pageCount": 2, "itemCount": 1001})
    last = page("invoices", [invoice(8)], pagination={"page": 2, "pageSize": 1000, "pageCount": 2, "itemCount": 1001})
    with pytest.raises(BatchRejected) as caught:
        _load(engine, tmp_path, "invoices", first, last)
    (failure,) = caught.value.failed
    assert failure.check == "pages_complete" and "page 1 of 2 holds 1 records, 1000 expected" in failure.observed


def test_a_record_listed_twice_keeps_its_later_version_and_no_check_fails(engine, tmp_path):
    later = invoice(7, LineItems=[{"LineItemID": "li-7-9", "Quantity": 1, "UnitAmount": 100, "TaxAmount": 15,
                                   "LineAmount": 100}])
    loaded = _load(engine, tmp_path, "invoices", page("invoices", [invoice(7)]), page("invoices", [later]))
    assert [r.label() for r in loaded.results if not r.passed] == []
    with engine.connect() as conn:
        lines = conn.execute(select(invoice_lines.c.line_item_id).where(invoice_lines.c.invoice_id == "inv-7")
                             ).scalars().all()
    assert lines == ["li-7-9"]


def test_accepting_a_check_loads_the_batch_and_records_it_as_a_warning(engine, tmp_path):
    raw = RawStore(tmp_path / "raw")
    keep(raw, "run", "invoices", page("invoices", [invoice(8, Status="PENDING_APPROVAL")]))
    loaded = load_stream(engine, raw, "run", TENANT, get_stream("invoices"), StreamExtract(stream="invoices"),
                         accept=("status_in_enum",))
    (accepted,) = [r for r in loaded.results if not r.passed]
    assert accepted.check == "status_in_enum" and accepted.severity == "warn"
    assert "accepted" in accepted.observed and "PENDING_APPROVAL" in accepted.observed


def test_chunks_are_checked_and_written_separately(engine, tmp_path, monkeypatch):
    """A large tenant's journals are checked a chunk at a time; a bad chunk still rejects the batch."""
    import intoaec_xero.load as load

    monkeypatch.setattr(load, "CHUNK_ROWS", 8)  # two journals (8 rows) per chunk
    pages = [page("journals", [journal(n) for n in range(k, k + 2)]) for k in (1, 3, 5)]
    loaded = _load(engine, tmp_path, "journals", *pages)
    by_check = {r.check: r for r in loaded.results}
    assert by_check["journal_balances"].passed and by_check["journal_balances"].rows == 6
    bad = [page("journals", [journal(n) for n in (7, 8)]),
           page("journals", [journal(9), broken(journal(10), "JournalLines.0.NetAmount", 1.0)])]
    with pytest.raises(BatchRejected, match="journal_balances"):
        _load(engine, tmp_path, "journals", *bad, run_id="run-2")
    with engine.connect() as conn:
        numbers = conn.execute(select(journals.c.journal_number).order_by(journals.c.journal_number)).scalars().all()
    assert numbers == [1, 2, 3, 4, 5, 6]  # the first, clean chunk of the bad batch was rolled back too

