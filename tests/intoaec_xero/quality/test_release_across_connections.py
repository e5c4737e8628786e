"""A quarantined batch is released from the raw pages of the connection that kept them, whichever
connection the release is run for (pages are kept per Xero connection)."""

from __future__ import annotations

import pytest
from intoaec_xero import release
from intoaec_xero.cli import main as cli
from intoaec_xero.errors import IntoAECXeroError
from intoaec_xero.extract import StreamExtract
from intoaec_xero.pipeline import load_tenant
from intoaec_xero.quality import quarantine
from intoaec_xero.rawstore import RawStore
from intoaec_xero.runtime import raw_dir
from intoaec_xero.schema import invoices
from sqlalchemy import func, select

from .records import TENANT, invoice, keep, page

WATERMARK = "2024-03-01T11:00:00+00:00"
BAD = [invoice(1), invoice(2, Total=116.0, AmountDue=76.0), invoice(3)]  # total != sub_total + total_tax


def _quarantined(engine, raw: RawStore, run_id: str) -> int:
    keep(raw, run_id, "invoices", page("invoices", BAD))
    manifest = {"run_id": run_id, "tenant_id": TENANT, "tenant_name": "Quarantine Test Ltd",
                "connection_key": raw.connection_key,
                "streams": [StreamExtract(stream="invoices", pages=1, records=3, max_cursor=WATERMARK).to_dict()]}
    raw.write_manifest(run_id, TENANT, manifest)
    assert load_tenant(engine, raw, manifest)["streams"]["invoices"]["status"] == "rejected"
    (batch,) = quarantine.list_batches(engine)
    return batch["id"]


def test_a_batch_kept_by_another_connection_is_found_and_released(engine, capsys):
    other = RawStore(raw_dir(), "xero_other")
    batch_id = _quarantined(engine, other, "run-1")
    url = engine.url.render_as_string(hide_password=False)

    # Run for the default connection, as `intoaec-xero quarantine release` is unless told otherwise.
    assert cli(["--db-url", url, "quarantine", "release", str(batch_id), "--accept", "total_equals_parts"]) == 0
    assert f"released batch #{batch_id}" in capsys.readouterr().out
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(invoices)).scalar_one() == 3


def test_a_batch_whose_pages_are_gone_says_so(engine):
    other = RawStore(raw_dir(), "xero_other")
    batch_id = _quarantined(engine, other, "run-1")
    other.reset("run-1", TENANT, "invoices")
    (other.run_dir("run-1") / TENANT / "manifest.json").unlink()
    with pytest.raises(IntoAECXeroError, match="no longer kept"):
        release.release(engine, RawStore(raw_dir()), batch_id, accept=("total_equals_parts",))
