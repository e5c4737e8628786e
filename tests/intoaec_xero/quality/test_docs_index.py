"""A run's loads render their own Data Docs pages; the home page, which reads every kept result, is
built once at the run's end (xero_sync's report, or ``run_sync``), not once per tenant."""

from __future__ import annotations

import pytest
from intoaec_xero import pipeline
from intoaec_xero.quality import docs
from intoaec_xero.rawstore import RawStore
from intoaec_xero.runtime import data_dir

from tests.harness.databases import migrated_engine
from tests.harness.xero import connect
from tests.intoaec_xero.backfill.conftest import sync_client

pytestmark = [pytest.mark.integration]


def test_loads_leave_the_index_to_the_end_of_the_run(tmp_path, monkeypatch):
    from xero_sandbox.testing import running_sandbox

    monkeypatch.setenv("INTOAEC_ALLOW_PLAINTEXT_TOKENS", "1")
    with running_sandbox(dataset="small", seed=2, limits=False) as sandbox, \
            migrated_engine(f"sqlite:///{tmp_path / 'intoaec.db'}") as engine:
        settings, store = connect(sandbox, engine, calls_per_minute=0)
        client = sync_client(settings, store)
        raw = RawStore(tmp_path / "raw", settings.connection_key)
        tenant = pipeline.discover_tenants(client, settings, engine)[0]
        manifest = pipeline.extract_tenant(client, engine, raw, "r1", tenant, pipeline.selected_streams(None))
        pipeline.load_tenant(engine, raw, manifest, docs_index=False)
        site = docs.docs_dir(data_dir())
        assert not (site / "index.html").exists()
        pages = list((site / "validations").rglob("*.html"))
        assert pages, "the tenant's validation pages are rendered with its load"

        rendered = {p: p.stat().st_mtime_ns for p in pages}
        index = docs.rebuild_index()
        assert index == site / "index.html"
        html = index.read_text()
        assert html.count("validations/") >= len(pages) and "static/vendor" in html
        # Only the home page: the validation pages are not rendered again.
        assert {p: p.stat().st_mtime_ns for p in pages} == rendered
