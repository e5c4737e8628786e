"""A batch failing a batch-level check goes to quarantine whole: target tables and watermark
untouched, other streams loaded, a message naming check, tenant and keys; release re-loads it
from the raw pages. (Record-level failures hold single records: see test_record_quarantine.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from intoaec_xero import release
from intoaec_xero.cli import main as cli
from intoaec_xero.extract import StreamExtract
from intoaec_xero.pipeline import load_tenant
from intoaec_xero.quality import quarantine
from intoaec_xero.rawstore import RawStore
from intoaec_xero.runtime import raw_dir
from intoaec_xero.schema import (
    clients,
    dq_results,
    invoice_lines,
    invoices,
    quarantine_batches,
    quarantine_records,
    sync_runs,
    sync_state,
)
from sqlalchemy import func, select

from .records import TENANT, contact, invoice, keep, page

WATERMARK = "2024-03-01T11:00:00+00:00"


def _manifest(raw: RawStore, run_id: str, invoice_records: list) -> dict:
    keep(raw, run_id, "contacts", page("contacts", [contact(1), contact(2)]))
    keep(raw, run_id, "invoices", page("invoices", invoice_records))
    streams = [StreamExtract(stream="contacts", pages=1, records=2, max_cursor=WATERMARK).to_dict(),
               StreamExtract(stream="invoices", pages=1, records=len(invoice_records), max_cursor=WATERMARK).to_dict()]
    manifest = {"run_id": run_id, "tenant_id": TENANT, "tenant_name": "Quarantine Test Ltd", "streams": streams}
    raw.write_manifest(run_id, TENANT, manifest)
    return manifest


# Xero's own arithmetic broken on one invoice: a batch-level invariant (total = sub_total + total_tax).
BAD = [invoice(1), invoice(2, Total=116.0, AmountDue=76.0), invoice(3)]


def test_a_rejected_batch_is_quarantined_and_the_other_streams_load(engine):
    raw = RawStore(raw_dir())
    summary = load_tenant(engine, raw, _manifest(raw, "run-1", BAD))

    assert summary["streams"]["contacts"]["status"] == "success"
    assert summary["streams"]["invoices"]["status"] == "rejected"
    (message,) = summary["failed"]
    for part in ("Quarantine Test Ltd", TENANT, "invoices.total_equals_parts", "inv-2",
                 "quarantine show 1", "quarantine release 1"):
        assert part in message
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(clients)).scalar_one() == 2
        assert conn.execute(select(func.count()).select_from(invoices)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(invoice_lines)).scalar_one() == 0
        marks = dict(conn.execute(select(sync_state.c.stream, sync_state.c.watermark)).all())
        batch = conn.execute(select(quarantine_batches)).mappings().one()
        records = conn.execute(select(quarantine_records).order_by(quarantine_records.c.id)).mappings().all()
        runs = {r["stream"]: r for r in conn.execute(select(sync_runs).where(sync_runs.c.run_id == "run-1")).mappings()}
        verdicts = conn.execute(select(dq_results.c.table_name, dq_results.c.check_name, dq_results.c.passed)
                                .where(dq_results.c.run_id == "run-1")).all()
    assert marks["contacts"] is not None and marks.get("invoices") is None
    assert (batch["tenant_id"], batch["stream"], batch["status"], batch["records"]) == (TENANT, "invoices",
                                                                                        "quarantined", 3)
    assert batch["checks"] == ["invoices.total_equals_parts"]
    failing = [r for r in records if r["check_name"]]
    assert [(r["record_key"], r["check_name"]) for r in failing] == [("inv-2", "total_equals_parts")]
    assert failing[0]["raw_record"]["Total"] == 116.0 and "total_gap_cents=100" in failing[0]["reason"]
    assert sorted(r["record_key"] for r in records if not r["check_name"]) == ["inv-1", "inv-3"]
    assert runs["invoices"]["status"] == "rejected" and runs["invoices"]["quality_verdict"] == "failed"
    assert runs["invoices"]["quality_summary"]["failed"][0]["check"] == "total_equals_parts"
    assert runs["contacts"]["quality_verdict"] == "passed"
    assert ("invoices", "total_equals_parts", False) in verdicts and ("clients", "key_unique", True) in verdicts

    # Released after a decision to accept Xero's figures: loaded from the raw pages, watermark moves.
    released = release.release(engine, raw, batch["id"], accept=("total_equals_parts",))
    assert released.released and released.rows == {"invoices": 3, "invoice_lines": 6}
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(invoices)).scalar_one() == 3
        mark = conn.execute(select(sync_state.c.watermark).where(sync_state.c.stream == "invoices")).scalar_one()
        after = conn.execute(select(quarantine_batches.c.status, quarantine_batches.c.released_by_run)).one()
        release_run = conn.execute(select(sync_runs).where(sync_runs.c.run_id == released.run_id)).mappings().one()
    assert mark.replace(tzinfo=UTC) == datetime.fromisoformat(WATERMARK)
    assert after == ("released", released.run_id)
    assert release_run["status"] == "success" and release_run["quality_verdict"] == "warn"
    with pytest.raises(Exception, match="released"):
        release.release(engine, raw, batch["id"])


def test_a_batch_that_still_fails_stays_quarantined_and_a_later_good_run_supersedes_it(engine):
    raw = RawStore(raw_dir())
    load_tenant(engine, raw, _manifest(raw, "run-1", BAD))
    outcome = release.release(engine, raw, 1)
    assert not outcome.released and "total_equals_parts" in outcome.message
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(invoices)).scalar_one() == 0
    # Xero's data was corrected: the next run (same watermark, so the same changes) loads it.
    summary = load_tenant(engine, raw, _manifest(raw, "run-2", [invoice(1), invoice(2), invoice(3)]))
    assert not summary["failed"]
    assert quarantine.get_batch(engine, 1)["status"] == "superseded"
    assert quarantine.list_batches(engine) == []


def test_the_cli_lists_shows_and_releases(sqlite_url, capsys):
    from intoaec_xero import db

    engine = db.create_db_engine(sqlite_url)
    db.upgrade(engine)
    raw = RawStore(raw_dir())
    load_tenant(engine, raw, _manifest(raw, "run-1", BAD))

    assert cli(["--db-url", sqlite_url, "quarantine", "list"]) == 0
    listing = capsys.readouterr().out
    assert "invoices" in listing and "invoices.total_equals_parts" in listing and "quarantined" in listing

    assert cli(["--db-url", sqlite_url, "quarantine", "show", "1", "--raw"]) == 0
    shown = capsys.readouterr().out
    assert "total_equals_parts" in shown and "inv-2" in shown and '"Total": 116.0' in shown
    assert "quarantine release 1" in shown

    assert cli(["--db-url", sqlite_url, "quarantine", "release", "1"]) == 1
    assert "still rejected" in capsys.readouterr().err
    assert cli(["--db-url", sqlite_url, "quarantine", "release", "1", "--accept", "total_equals_parts"]) == 0
    assert "released batch #1" in capsys.readouterr().out

    assert cli(["--db-url", sqlite_url, "quality", "--run-id", "run-1"]) == 0
    summary = capsys.readouterr().out
    assert "tenant-q: FAILED" in summary and "invoices.total_equals_parts" in summary
    assert cli(["--db-url", sqlite_url, "quarantine", "show", "99"]) == 1
