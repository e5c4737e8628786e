"""Record-level quarantine: a record failing a record-level check is held back alone (with its lines),
the rest of its batch loads and the watermark moves; ``intoaec-xero quarantine`` lists, shows and
releases held records; a retried load never duplicates verdicts or quarantine rows. Every test runs
on SQLite and PostgreSQL and expects the same verdicts from both."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from intoaec_xero import db, release
from intoaec_xero.cli import main as cli
from intoaec_xero.extract import StreamExtract
from intoaec_xero.load import load_stream
from intoaec_xero.pipeline import load_tenant
from intoaec_xero.quality import quarantine
from intoaec_xero.rawstore import RawStore
from intoaec_xero.runtime import raw_dir
from intoaec_xero.schema import (
    clients,
    dq_results,
    held_records,
    invoice_lines,
    invoices,
    payments,
    quarantine_batches,
    quarantine_records,
    sync_runs,
    sync_state,
)
from intoaec_xero.streams import get_stream
from sqlalchemy import func, select

from .quality.records import TENANT, broken, contact, invoice, keep, page, payment

WATERMARK = "2024-03-01T11:00:00+00:00"
LATER = "2024-03-02T09:30:00+00:00"


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("INTOAEC_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("INTOAEC_RAW_DIR", str(tmp_path / "var" / "raw"))


def _manifest(raw: RawStore, run_id: str, streams: dict[str, list], cursor: str = WATERMARK) -> dict:
    items = []
    for name, records in streams.items():
        keep(raw, run_id, name, page(name, records))
        items.append(StreamExtract(stream=name, pages=1, records=len(records), max_cursor=cursor).to_dict())
    manifest = {"run_id": run_id, "tenant_id": TENANT, "tenant_name": "Held Records Ltd", "streams": items}
    raw.write_manifest(run_id, TENANT, manifest)
    return manifest


def _hostile_run(raw: RawStore, run_id: str = "run-1") -> dict:
    """One invoice without its InvoiceID, one contact with a NUL in its name, one invoice whose Status is not Xero's."""
    return _manifest(raw, run_id, {
        "contacts": [contact(1), contact(2, Name="Harbour\x00Works"), contact(3)],
        "invoices": [invoice(1), broken(invoice(2), "InvoiceID"), invoice(3, Status="BOGUS"), invoice(4)],
        "payments": [payment(1, invoice_id="inv-1"), payment(2, invoice_id="inv-4")],
    })


def _keys(conn, table, column) -> list[str]:
    return sorted(conn.execute(select(table.c[column]).where(table.c.tenant_id == TENANT)).scalars())


def _count(conn, table) -> int:
    return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_bad_records_are_held_alone_and_the_rest_of_each_batch_loads(engine):
    raw = RawStore(raw_dir())
    summary = load_tenant(engine, raw, _hostile_run(raw))

    assert summary["failed"] == []
    assert {s: v["status"] for s, v in summary["streams"].items()} == {
        "contacts": "success", "invoices": "success", "payments": "success"}
    with engine.connect() as conn:
        assert _keys(conn, clients, "contact_id") == ["c-1", "c-3"]
        assert _keys(conn, invoices, "invoice_id") == ["inv-1", "inv-4"]
        # The held invoices' lines were held with them.
        assert sorted({r for r in conn.execute(select(invoice_lines.c.invoice_id)).scalars()}) == ["inv-1", "inv-4"]
        assert _keys(conn, payments, "payment_id") == ["pay-1", "pay-2"]  # later streams loaded too
        marks = dict(conn.execute(select(sync_state.c.stream, sync_state.c.watermark)).all())
        verdicts = {(r.table_name, r.check_name): r for r in conn.execute(
            select(dq_results).where(dq_results.c.run_id == "run-1"))}
        runs = {r["stream"]: r for r in conn.execute(select(sync_runs).where(sync_runs.c.run_id == "run-1")).mappings()}
    assert {s: m.replace(tzinfo=UTC) for s, m in marks.items()} == {
        s: datetime.fromisoformat(WATERMARK) for s in ("contacts", "invoices", "payments")}

    held = {r["record_key"]: r for r in quarantine.list_held(engine)}
    assert sorted(held) == ["c-2", "inv-3", "page 1 record 2"]
    assert {k: (r["stream"], r["checks"], r["run_id"], r["status"]) for k, r in held.items()} == {
        "c-2": ("contacts", ["text_storable"], "run-1", "held"),
        "inv-3": ("invoices", ["status_in_enum"], "run-1", "held"),
        "page 1 record 2": ("invoices", ["record_readable"], "run-1", "held"),
    }
    assert "BOGUS" in held["inv-3"]["reasons"][0]["reason"]
    assert "missing InvoiceID" in held["page 1 record 2"]["reasons"][0]["reason"]
    assert (held["page 1 record 2"]["page"], held["page 1 record 2"]["position"]) == (1, 2)
    # The raw record is kept exactly as Xero sent it, NUL included.
    assert json.loads(held["c-2"]["raw_record"])["Name"] == "Harbour\x00Works"
    assert json.loads(held["inv-3"]["raw_record"])["LineItems"][0]["LineItemID"] == "li-3-1"

    # Each record-level failure is a dq_results row that does not fail the batch.
    for table, check, keys in (("clients", "text_storable", ["c-2"]), ("invoices", "status_in_enum", ["inv-3"]),
                               ("invoices", "record_readable", ["page 1 record 2"])):
        row = verdicts[(table, check)]
        assert (row.severity, row.passed, row.failing_keys) == ("hold", False, keys), row
        assert row.observed.startswith("1 of ")
    assert verdicts[("invoices", "total_equals_parts")].passed  # batch-level checks ran on what loaded
    assert runs["invoices"]["status"] == "success" and runs["invoices"]["quality_verdict"] == "warn"
    assert runs["invoices"]["quality_summary"]["held_records"] == 2
    assert runs["payments"]["quality_verdict"] == "passed"
    assert quarantine.list_batches(engine) == []


def test_release_loads_a_fixed_record_and_an_accepted_one_and_keeps_the_rest_held(engine, tmp_path):
    raw = RawStore(raw_dir())
    load_tenant(engine, raw, _hostile_run(raw))
    ids = {r["record_key"]: r["id"] for r in quarantine.list_held(engine)}

    # Nothing fixed yet: the record fails again and stays held.
    (outcome,) = release.release_records(engine, [ids["inv-3"]])
    assert not outcome.ok and outcome.still_held == [ids["inv-3"]] and "status_in_enum" in outcome.message
    assert quarantine.get_held(engine, ids["inv-3"])["status"] == "held"

    # A corrected copy of the contact loads; so does the invoice without an id once given one.
    fixed = contact(2, Name="Harbour Works")
    (outcome,) = release.release_records(engine, [ids["c-2"]], corrected=fixed)
    assert outcome.ok and outcome.rows == {"clients": 1}
    (outcome,) = release.release_records(engine, [ids["page 1 record 2"]], corrected=invoice(2))
    assert outcome.ok and outcome.rows == {"invoices": 1, "invoice_lines": 2}
    with pytest.raises(Exception, match="must keep its ContactID"):
        release.release_records(engine, [ids["c-2"]], corrected=contact(7), force=True)

    # A status Xero just introduced, accepted for this release: loaded as sent.
    (outcome,) = release.release_records(engine, [ids["inv-3"]], accept=("status_in_enum",))
    assert outcome.ok
    assert [r for r in outcome.results if r.check == "status_in_enum"][0].severity == "warn"
    with engine.connect() as conn:
        assert conn.execute(select(clients.c.name).where(clients.c.contact_id == "c-2")).scalar_one() == "Harbour Works"
        assert conn.execute(select(invoices.c.status).where(invoices.c.invoice_id == "inv-3")).scalar_one() == "BOGUS"
        assert _keys(conn, invoices, "invoice_id") == ["inv-1", "inv-2", "inv-3", "inv-4"]
        release_runs = conn.execute(select(sync_runs.c.status, sync_runs.c.kind)
                                    .where(sync_runs.c.run_id.like("release__R%"))).all()
    assert quarantine.list_held(engine) == []
    statuses = {r["record_key"]: (r["status"], r["released_by_run"] is not None)
                for r in quarantine.list_held(engine, include_closed=True)}
    assert statuses == {k: ("released", True) for k in ("c-2", "inv-3", "page 1 record 2")}
    assert ("success", "release") in release_runs
    with pytest.raises(Exception, match="released"):
        release.release_records(engine, [ids["inv-3"]])


def test_a_record_corrected_in_xero_is_loaded_by_the_next_run_and_the_held_one_superseded(engine):
    raw = RawStore(raw_dir())
    load_tenant(engine, raw, _hostile_run(raw))
    # Xero's copies were corrected, so their UpdatedDateUTC moved and the next run reads them again.
    summary = load_tenant(engine, raw, _manifest(raw, "run-2", {
        "contacts": [contact(2, Name="Harbour Works")], "invoices": [invoice(3, Status="AUTHORISED")]}, LATER))
    assert summary["failed"] == []
    closed = {r["record_key"]: (r["status"], r["released_by_run"]) for r in
              quarantine.list_held(engine, include_closed=True)}
    assert closed == {"c-2": ("superseded", "run-2"), "inv-3": ("superseded", "run-2"),
                      "page 1 record 2": ("held", None)}
    # A record held again in a later run replaces the older held version (no stale release).
    load_tenant(engine, raw, _manifest(raw, "run-3", {"invoices": [broken(invoice(9), "InvoiceID")]}, LATER))
    load_tenant(engine, raw, _manifest(raw, "run-4", {"invoices": [invoice(5, Type="NOPE")]}, LATER))
    load_tenant(engine, raw, _manifest(raw, "run-5", {"invoices": [invoice(5, Type="STILL_NOPE")]}, LATER))
    open_now = {(r["record_key"], r["run_id"]) for r in quarantine.list_held(engine)}
    assert open_now == {("page 1 record 2", "run-1"), ("page 1 record 1", "run-3"), ("inv-5", "run-5")}


def test_a_retried_load_never_duplicates_verdicts_or_quarantine_rows(engine):
    raw = RawStore(raw_dir())
    manifest = _hostile_run(raw)
    # A batch-level failure in one more stream, so a rejected batch is retried too.
    keep(raw, "run-1", "credit_notes", page("credit_notes", [
        {"CreditNoteID": "cn-1", "Type": "ACCRECCREDIT", "Status": "AUTHORISED", "SubTotal": 10.0, "TotalTax": 1.5,
         "Total": 12.0, "Date": "/Date(1709251200000+0000)/", "UpdatedDateUTC": "/Date(1709290000000+0000)/"}]))
    manifest["streams"].append(StreamExtract(stream="credit_notes", pages=1, records=1, max_cursor=WATERMARK).to_dict())

    def tables():
        with engine.connect() as conn:
            return {t.name: _count(conn, t) for t in (dq_results, held_records, quarantine_batches,
                                                      quarantine_records, clients, invoices, invoice_lines)}

    first = load_tenant(engine, raw, manifest)
    after_first = tables()
    for _retry in range(2):  # an Airflow retry of the load task, then a replay of the run
        again = load_tenant(engine, raw, manifest)
        assert again["failed"] and again["failed"][0].split(" Inspect")[0] == first["failed"][0].split(" Inspect")[0]
        assert tables() == after_first
    assert after_first["held_records"] == 3 and after_first["quarantine_batches"] == 1
    with engine.connect() as conn:
        per_check = conn.execute(select(dq_results.c.table_name, dq_results.c.check_name, func.count())
                                 .group_by(dq_results.c.run_id, dq_results.c.tenant_id, dq_results.c.table_name,
                                           dq_results.c.check_name).having(func.count() > 1)).all()
    assert per_check == []


def test_a_held_record_never_rejects_the_batch_it_was_taken_out_of(engine, monkeypatch):
    """An invoice with an unknown status whose figures also disagree is held; the batch-level
    arithmetic checks judge what loads, chunk by chunk."""
    import intoaec_xero.load as load

    monkeypatch.setattr(load, "CHUNK_ROWS", 6)  # two invoices (3 rows each) per chunk
    raw = RawStore(raw_dir())
    records = [invoice(1), invoice(2, Status="BOGUS", Total=116.0, AmountDue=76.0), invoice(3), invoice(4),
               invoice(5, LineAmountTypes="Gross"), invoice(6)]
    keep(raw, "run", "invoices", *(page("invoices", records[n:n + 2]) for n in (0, 2, 4)))
    loaded = load_stream(engine, raw, "run", TENANT, get_stream("invoices"),
                         StreamExtract(stream="invoices", pages=3, records=6, max_cursor=WATERMARK))
    assert sorted(h.label for h in loaded.held) == ["inv-2", "inv-5"]
    held = {h.label: h for h in loaded.held}
    assert held["inv-2"].checks == ["status_in_enum", "total_equals_parts"]  # every reason, for the record
    by_check = {r.check: r for r in loaded.results}
    assert by_check["total_equals_parts"].passed and by_check["total_equals_parts"].rows == 4
    assert not by_check["status_in_enum"].passed and by_check["status_in_enum"].rows == 6
    with engine.connect() as conn:
        assert _keys(conn, invoices, "invoice_id") == ["inv-1", "inv-3", "inv-4", "inv-6"]


def test_a_batch_level_failure_still_quarantines_the_whole_batch_and_its_release_holds_bad_records(engine):
    raw = RawStore(raw_dir())
    manifest = _manifest(raw, "run-1", {"invoices": [invoice(1), invoice(2, Status="BOGUS"),
                                                     invoice(3, AmountDue=70.0)]})
    summary = load_tenant(engine, raw, manifest)
    assert summary["streams"]["invoices"]["status"] == "rejected"
    with engine.connect() as conn:
        assert _count(conn, invoices) == 0 and _count(conn, held_records) == 0
        reasons = {(r.record_key, r.check_name) for r in conn.execute(
            select(quarantine_records).where(quarantine_records.c.check_name.is_not(None)))}
    assert reasons == {("inv-2", "status_in_enum"), ("inv-3", "amount_due_consistent")}
    # Accepting Xero's arithmetic loads the batch; the record with the unknown status is held alone.
    released = release.release(engine, raw, 1, accept=("amount_due_consistent",))
    assert released.released and released.rows == {"invoices": 2, "invoice_lines": 4}
    assert [(r["record_key"], r["checks"]) for r in quarantine.list_held(engine)] == [("inv-2", ["status_in_enum"])]


def test_nul_text_is_held_on_the_bulk_copy_path_too(engine):
    """Above the COPY threshold PostgreSQL loads through COPY, which refuses NUL as well."""
    raw = RawStore(raw_dir())
    many = [contact(n) for n in range(1, db.COPY_THRESHOLD + 30)]
    many[17]["Name"] = "Nul\x00Inside"
    many[42]["EmailAddress"] = "\ud83d@example.test"  # half a surrogate pair: not UTF-8
    summary = load_tenant(engine, raw, _manifest(raw, "run-1", {"contacts": many}))
    assert summary["failed"] == []
    assert sorted(r["record_key"] for r in quarantine.list_held(engine)) == ["c-18", "c-43"]
    with engine.connect() as conn:
        assert _count(conn, clients) == len(many) - 2


def test_the_cli_lists_shows_and_releases_held_records(db_url, capsys, tmp_path):
    engine = db.create_db_engine(db_url)
    db.upgrade(engine)
    raw = RawStore(raw_dir())
    load_tenant(engine, raw, _hostile_run(raw))
    ids = {r["record_key"]: r["id"] for r in quarantine.list_held(engine)}
    base = ["--db-url", db_url, "quarantine"]

    assert cli([*base, "list"]) == 0
    listing = capsys.readouterr().out
    for part in (f"R{ids['inv-3']}", "inv-3", "status_in_enum", "c-2", "text_storable", "page 1 record 2",
                 "record_readable", TENANT):
        assert part in listing
    assert cli([*base, "list", "--json", "--stream", "contacts"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["record_key"] for r in listed["held_records"]] == ["c-2"] and listed["batches"] == []

    assert cli([*base, "show", f"R{ids['c-2']}", "--raw"]) == 0
    shown = capsys.readouterr().out
    assert "text_storable" in shown and '"Name":"Harbour\\u0000Works"' in shown and "release R" in shown

    assert cli([*base, "release", f"R{ids['inv-3']}"]) == 1
    assert "stay held" in capsys.readouterr().err
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps(contact(2, Name="Harbour Works")))
    assert cli([*base, "release", f"R{ids['c-2']}", "--corrected", str(fixed)]) == 0
    assert f"released R{ids['c-2']}" in capsys.readouterr().out
    assert cli([*base, "release", f"R{ids['inv-3']}", f"r{ids['page 1 record 2']}", "--accept", "status_in_enum"]) == 1
    out = capsys.readouterr()
    assert f"released R{ids['inv-3']}" in out.err and "record_readable" in out.err  # one loads, one cannot
    assert cli([*base, "release", "R999"]) == 1
    assert "no held record R999" in capsys.readouterr().err

    assert cli(["--db-url", db_url, "quality", "--run-id", "run-1"]) == 0
    summary = capsys.readouterr().out
    assert "holding records back" in summary and "HOLD  invoices.status_in_enum" in summary
    engine.dispose()


def test_a_record_loaded_then_held_again_in_one_run_keeps_only_its_latest_version_held(engine, monkeypatch):
    """Edited while Xero paged: its first version loads, its later one fails; the older held copy goes."""
    import intoaec_xero.load as load

    raw = RawStore(raw_dir())
    load_tenant(engine, raw, _manifest(raw, "run-1", {"invoices": [invoice(5, Type="NOPE")]}))
    monkeypatch.setattr(load, "CHUNK_ROWS", 3)  # each page its own chunk
    keep(raw, "run-2", "invoices", page("invoices", [invoice(5)]), page("invoices", [invoice(5, Type="NOPE2")]))
    loaded = load_stream(engine, raw, "run-2", TENANT, get_stream("invoices"),
                         StreamExtract(stream="invoices", pages=2, records=2, max_cursor=LATER))
    assert [h.label for h in loaded.held] == ["inv-5"]
    rows = {(r["run_id"], r["status"]) for r in quarantine.list_held(engine, include_closed=True)}
    assert rows == {("run-1", "superseded"), ("run-2", "held")}
    assert json.loads(quarantine.list_held(engine)[0]["raw_record"])["Type"] == "NOPE2"
