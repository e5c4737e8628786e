"""Each check passes on clean data and fails on data made to break it, through the real load path,
with the same verdicts on SQLite and PostgreSQL.

Hostile input of every kind Xero can send (unknown enum values, missing fields, wrong types,
offsets in dates, text the database refuses, truncated pages) is loaded correctly, held back
record by record (the rest of the batch loading) or rejected whole with a named check; the load
never raises anything else.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from intoaec_xero.extract import StreamExtract
from intoaec_xero.load import load_stream
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import held_records, invoice_lines, invoices, journals, metadata, sync_state
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
def engine(db_url, tmp_path):
    """Accounts and one invoice already loaded, as earlier streams of the run would have them."""
    from intoaec_xero import db

    engine = db.create_db_engine(db_url)
    db.upgrade(engine)
    _load(engine, tmp_path, "accounts", page("accounts", REFERENCE_ACCOUNTS), run_id="setup")
    _load(engine, tmp_path, "invoices", page("invoices", [invoice(1)]), run_id="setup")
    yield engine
    engine.dispose()


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


# (stream, broken record(s), the check that must fail, and what it does: "error" (the batch is
# rejected), "hold" (the broken records are held back, a clean record beside them loads) or
# "warn" (everything loads))
HOSTILE = [
    # unknown enum values
    ("invoices", lambda: [invoice(5, Status="PENDING_APPROVAL")], "status_in_enum", "hold"),
    ("invoices", lambda: [invoice(5, Type="ACCRECX")], "type_in_enum", "hold"),
    ("invoices", lambda: [invoice(5, LineAmountTypes="Gross")], "line_amount_types_in_enum", "hold"),
    ("payments", lambda: [payment(5, Status="PENDING")], "status_in_enum", "hold"),
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
    ("invoices", lambda: [invoice(5, AmountPaid="40.001", AmountDue="74.999")], "money_exact", "hold"),
    ("payments", lambda: [payment(5, Amount="1E+20")], "money_exact", "hold"),
    ("invoices", lambda: [broken(invoice(5), "LineItems.0.Quantity", "1.00001")], "money_exact", "hold"),
    # missing fields
    ("invoices", lambda: [broken(invoice(5), "InvoiceID")], "record_readable", "hold"),
    ("invoices", lambda: [broken(invoice(5), "LineItems.0.LineItemID")], "record_readable", "hold"),
    ("invoices", lambda: [broken(invoice(5), "Total")], "required_present", "hold"),
    ("invoices", lambda: [broken(invoice(5), "Status")], "required_present", "hold"),
    ("invoices", lambda: [broken(invoice(5), "AmountPaid")], "fields_present", "warn"),
    ("journals", lambda: [broken(journal(5), "JournalNumber")], "record_readable", "hold"),
    ("journals", lambda: [broken(journal(5), "JournalLines.1.AccountID")], "required_present", "hold"),
    # wrong types
    ("invoices", lambda: [invoice(5, Total="one hundred")], "record_readable", "hold"),
    ("invoices", lambda: [invoice(5, Total=True)], "record_readable", "hold"),
    ("invoices", lambda: [invoice(5, Status=7)], "values_fit_columns", "hold"),
    ("invoices", lambda: [invoice(5, Status={"Code": "PAID"})], "values_fit_columns", "hold"),
    ("invoices", lambda: [invoice(5, InvoiceID=12345)], "values_fit_columns", "hold"),
    ("invoices", lambda: [invoice(5, Reference="x" * 501)], "values_fit_columns", "hold"),
    ("invoices", lambda: [invoice(5, Contact="c-1")], "record_readable", "hold"),
    ("invoices", lambda: [invoice(5, LineItems={"LineItemID": "li"})], "record_readable", "hold"),
    ("invoices", lambda: ["not a record", 42], "record_readable", "hold"),
    ("contacts", lambda: [contact(5, IsCustomer="yes")], "record_readable", "hold"),
    ("journals", lambda: [journal(5, JournalNumber="12a")], "record_readable", "hold"),
    ("journals", lambda: [journal(5, JournalNumber=2**70)], "values_fit_columns", "hold"),
    ("journals", lambda: [journal(5, JournalNumber=-5)], "journal_number_positive", "hold"),
    # text PostgreSQL refuses (SQLite would take it): a NUL or an unpaired surrogate, anywhere
    ("contacts", lambda: [contact(5, Name="Bad\x00Name")], "text_storable", "hold"),
    ("contacts", lambda: [contact(5, Name="half \ud800 a pair")], "text_storable", "hold"),
    ("contacts", lambda: [contact(5, ContactID="c-\x005")], "text_storable", "hold"),
    ("invoices", lambda: [broken(invoice(5), "LineItems.1.Description", "Site\x00visits")], "text_storable", "hold"),
    ("invoices", lambda: [broken(invoice(5), "LineItems.0.Tracking.0.Option", "Harbour\x00")], "text_storable",
     "hold"),
    ("journals", lambda: [broken(journal(5), "JournalLines.0.Description", "\x00")], "text_storable", "hold"),
    # dates: nonsense, out of range, overflowing
    ("invoices", lambda: [invoice(5, Date="2024-13-45")], "record_readable", "hold"),
    ("invoices", lambda: [invoice(5, Date="/Date(99999999999999+0000)/")], "dates_in_range", "hold"),
    ("invoices", lambda: [invoice(5, Date="/Date(-9999999999999+0000)/")], "dates_in_range", "hold"),
    ("invoices", lambda: [invoice(5, Date="/Date(999999999999999999+0000)/")], "record_readable", "hold"),
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
    if severity == "hold":
        return _assert_held(engine, tmp_path, stream, records(), check)
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


# A clean record of each stream, loaded beside the held ones.
COMPANION = {"contacts": lambda: contact(9), "invoices": lambda: invoice(9), "payments": lambda: payment(9),
             "journals": lambda: journal(9)}
COMPANION_KEY = {"contacts": "c-9", "invoices": "inv-9", "payments": "pay-9", "journals": "j-9"}


def _assert_held(engine, tmp_path, stream, broken_records, check):
    """The broken records (with their lines) are held back alone; the clean one loads; the watermark moves."""
    spec = get_stream(stream)
    table = metadata.tables[spec.targets[0]]
    key = table.c[[c.name for c in table.primary_key.columns][1]]
    loaded = _load(engine, tmp_path, stream, page(stream, [*broken_records, COMPANION[stream]()]),
                   max_cursor="2024-03-02T00:00:00+00:00", records=len(broken_records) + 1)
    failed = {r.check: r for r in loaded.results if not r.passed}
    assert check in failed, [r.describe() for r in loaded.results if not r.passed]
    assert failed[check].severity == "hold" and failed[check].failing_keys
    assert all(r.severity in ("hold", "warn") for r in failed.values())
    assert len(loaded.held) == len(broken_records)
    with engine.connect() as conn:
        keys = set(conn.execute(select(key).where(table.c.tenant_id == TENANT)).scalars())
        held = conn.execute(select(held_records).where(held_records.c.stream == stream)).mappings().all()
        mark = conn.execute(select(sync_state.c.watermark).where(
            sync_state.c.tenant_id == TENANT, sync_state.c.stream == stream)).scalar()
    assert COMPANION_KEY[stream] in keys
    for record in broken_records:
        if isinstance(record, dict) and isinstance(record.get(spec.primary_key), str):
            assert record[spec.primary_key] not in keys  # none of its rows landed
    assert sorted(h["record_key"] for h in held) == sorted(h.label for h in loaded.held)
    assert all(h["status"] == "held" and h["raw_record"] for h in held)
    assert check in {c for h in held for c in h["checks"]}
    if len(spec.targets) > 1:  # lines go with their record
        lines = metadata.tables[spec.targets[1]]
        parent = spec.targets[0][:-1] + "_id"
        with engine.connect() as conn:
            parents = set(conn.execute(select(lines.c[parent]).where(lines.c.tenant_id == TENANT)).scalars())
        assert parents <= keys
    assert mark.replace(tzinfo=UTC) == datetime(2024, 3, 2, tzinfo=UTC)


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

