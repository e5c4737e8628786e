"""A page Xero cuts off mid-body: retried and loaded correctly, or (when it keeps happening) the
tenant stops with a sentence saying so while the other tenants load; the worker never crashes."""

from __future__ import annotations

import pytest
from intoaec_xero import db, report
from intoaec_xero.client import XeroClient
from intoaec_xero.oauth import finish_authorization, start_authorization
from intoaec_xero.pipeline import run_sync
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import invoices
from intoaec_xero.settings import XeroSettings
from intoaec_xero.tokens import TokenCipher, TokenStore
from sqlalchemy import func, select

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # full syncs through a cutting proxy


@pytest.fixture(scope="module")
def sandbox():
    from xero_sandbox.testing import running_sandbox

    with running_sandbox(dataset="small", seed=5, limits=False) as handle:
        yield handle


def _sync(sandbox, engine, raw, run_id, **settings):
    from xero_sandbox.testing import sign_in_and_consent

    settings = XeroSettings.for_single_host(sandbox.base_url, client_id="sandbox-client",
                                            client_secret="sandbox-secret", calls_per_minute=0, **settings)
    store = TokenStore(engine, settings.connection_key, TokenCipher.from_environment())
    request = start_authorization(settings, "http://127.0.0.1:9/callback")
    store.save(finish_authorization(settings, request, sign_in_and_consent(request.url)))
    return run_sync(XeroClient(settings, store, sleep=lambda s: None), settings, engine, raw, run_id)


def test_a_page_cut_off_once_is_read_again_and_loads_whole(sandbox, sqlite_url, tmp_path):
    engine = db.create_db_engine(sqlite_url)
    db.upgrade(engine)
    sandbox.faults(endpoint="Invoices", truncate=True, count=1)
    try:
        summary = _sync(sandbox, engine, RawStore(tmp_path / "raw"), "cut-once")
    finally:
        sandbox.clear_faults()
    assert summary.ok, summary.failures
    assert report.compare_with_truth(engine, sandbox.truth()) == []


def test_a_page_that_stays_cut_off_stops_only_its_tenant(sandbox, sqlite_url, tmp_path):
    engine = db.create_db_engine(sqlite_url)
    db.upgrade(engine)
    broken, healthy = sorted(sandbox.truth()["tenants"])
    sandbox.faults(endpoint="Invoices", truncate=True, tenant_id=broken)
    try:
        summary = _sync(sandbox, engine, RawStore(tmp_path / "raw"), "cut-always", max_attempts=2)
    finally:
        sandbox.clear_faults()
    (failure,) = summary.failures
    assert "invoices extract failed" in failure and "not complete JSON" in failure
    with engine.connect() as conn:
        loaded = dict(conn.execute(select(invoices.c.tenant_id, func.count()).group_by(invoices.c.tenant_id)).all())
    assert broken not in loaded and loaded[healthy] == sandbox.truth()["tenants"][healthy]["invoices"]["count"]
