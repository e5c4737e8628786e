"""Quarantine review and release on the Xero page, through a real Airflow API server.

The held records come from a real sync of a sandbox whose clock stands in 2101: the invoice,
contact and journal its activity creates carry dates past 2100-12-31, which ``dates_in_range``
holds back. That sandbox is this module's own, behind a Xero connection stored for it, so the
shared sandbox and ``xero_default`` stay as the other page tests expect them.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import requests
from intoaec_xero import oauth
from intoaec_xero.client import XeroClient
from intoaec_xero.extract import StreamExtract
from intoaec_xero.pipeline import load_tenant, run_sync
from intoaec_xero.quality import quarantine
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import dq_results, invoices, sync_runs, sync_state, xero_tenants, xero_tokens
from intoaec_xero.settings import XeroSettings
from intoaec_xero.tokens import TokenCipher, TokenStore
from sqlalchemy import delete, select

from tests.intoaec_xero.quality.records import invoice, keep, page
from tests.plugins.conftest import CLIENT_ID, CLIENT_SECRET

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

CONN = "xero_quarantine"
DAY_2101_03_01_MS = int(datetime(2101, 3, 1, tzinfo=UTC).timestamp() * 1000)


def _csrf(page_html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f.]+)"', page_html).group(1)


def _row(page_html: str, item: str) -> str | None:
    found = re.search(rf'<tr data-item="{item}".*?</tr>', page_html, re.S)
    return found.group(0) if found else None


def _status(page_html: str) -> tuple[str, str, str]:
    """The item page's banner: its class, the item's status, and its text."""
    found = re.search(r'<div class="banner (\w+)" role="status" id="item-status" data-status="(\w+)">(.*?)</div>',
                      page_html, re.S)
    return found.group(1), found.group(2), re.sub(r"<[^>]+>|\s+", " ", found.group(3)).strip()


@pytest.fixture(scope="module")
def synced(airflow_ui):
    """A connection to a sandbox in 2101, synced once: its new records are held by dates_in_range."""
    from xero_sandbox.testing import running_sandbox, sign_in_and_consent

    with running_sandbox(dataset="small", seed=7, limits=False,
                         extra_args=["--tenants", "1", "--clock-start", "2101-03-01T00:00:00Z"]) as sandbox:
        extra = {"api_base_url": f"{sandbox.base_url}/api.xro/2.0", "identity_base_url": sandbox.base_url,
                 "sandbox": True}
        answer = requests.post(f"{airflow_ui.base_url}/api/v2/connections", headers=airflow_ui.bearer(), timeout=30,
                               json={"connection_id": CONN, "conn_type": "xero", "login": CLIENT_ID,
                                     "password": CLIENT_SECRET, "extra": json.dumps(extra)})
        assert answer.status_code == 201, answer.text
        engine = airflow_ui.engine
        try:
            # One new invoice only (no cost-side changes), so the held invoice is the one dated 2101.
            sandbox.activity(invoices=1, bank_transactions=0, manual_journals=0, purchase_orders=0, prepayments=0,
                             overpayments=0, linked_transactions=0)
            settings = XeroSettings.for_single_host(sandbox.base_url, client_id=CLIENT_ID,
                                                    client_secret=CLIENT_SECRET, calls_per_minute=0,
                                                    connection_key=CONN)
            store = TokenStore(engine, CONN, TokenCipher(airflow_ui.fernet_key))
            request = oauth.start_authorization(settings, f"{airflow_ui.base_url}/xero/callback")
            tokens = oauth.finish_authorization(settings, request, sign_in_and_consent(request.url))
            client = XeroClient(settings, store, sleep=lambda s: None)
            oauth.complete_sign_in(settings, store, tokens, client)
            summary = run_sync(client, settings, engine, RawStore(_raw_root(airflow_ui)),
                               f"manual__{datetime.now(UTC):%Y-%m-%dT%H:%M:%S}+00:00")
            assert summary.ok, summary.failures
            (tenant_id,) = [t["tenant_id"] for t in summary.tenants]
            yield {"tenant_id": tenant_id, "engine": engine,
                   "held": {r["stream"]: r for r in quarantine.list_held(engine, tenant=tenant_id)}}
        finally:
            requests.delete(f"{airflow_ui.base_url}/api/v2/connections/{CONN}", headers=airflow_ui.bearer(),
                            timeout=30)
            with engine.begin() as conn:
                conn.execute(delete(xero_tokens).where(xero_tokens.c.connection_key == CONN))
                for table in (sync_runs, sync_state, dq_results):
                    conn.execute(delete(table).where(table.c.tenant_id.in_(
                        select(xero_tenants.c.tenant_id).where(xero_tenants.c.connection_key == CONN))))
                conn.execute(delete(xero_tenants).where(xero_tenants.c.connection_key == CONN))
            engine.dispose()


def _raw_root(ui) -> Path:
    """Where the API server keeps (and a batch release reads) raw pages."""
    return Path(ui.env.get("INTOAEC_RAW_DIR") or ui.data_dir / "raw")


def _release(ui, session, item: str, conn_id: str = CONN, *accept: str) -> requests.Response:
    page_html = session.get(f"{ui.base_url}/xero/", params={"conn_id": conn_id}).text  # a token of this session
    return session.post(f"{ui.base_url}/xero/quarantine/{item}/release", allow_redirects=False,
                        data={"conn_id": conn_id, "csrf": _csrf(page_html), "accept": list(accept)})


def test_a_record_held_by_a_sync_is_listed_reviewed_and_released(airflow_ui, synced):
    held = synced["held"]["invoices"]
    item, key = f"R{held['id']}", held["record_key"]
    assert held["checks"] == ["dates_in_range"]
    session = airflow_ui.session()

    main = session.get(f"{airflow_ui.base_url}/xero/", params={"conn_id": CONN})
    assert main.status_code == 200 and '<section id="quarantine">' in main.text
    assert "Held back by data quality checks" in main.text
    row = _row(main.text, item)
    assert row is not None and key in row and "dates_in_range" in row and "invoices" in row
    assert f'href="/xero/quarantine/{item}?conn_id={CONN}"' in row
    assert {_row(main.text, f"R{r['id']}") is not None for r in synced["held"].values()} == {True}
    assert _row(session.get(f"{airflow_ui.base_url}/xero/").text, item) is None  # xero_default's page

    review = session.get(f"{airflow_ui.base_url}/xero/quarantine/{item}", params={"conn_id": CONN})
    assert review.status_code == 200
    assert _status(review.text)[:2] == ("warn", "held")
    raw = re.search(r'<pre class="raw" id="raw-record">(.*?)</pre>', review.text, re.S).group(1)
    raw = html.unescape(raw)
    assert f'"InvoiceID": "{key}"' in raw and '"Status": ' in raw
    assert f'"Date": "/Date({DAY_2101_03_01_MS}' in raw  # the 2101 date as Xero sent it
    assert 'id="release-button"' in review.text
    assert '<input type="checkbox" name="accept" value="dates_in_range">' in review.text

    # Nothing fixed and nothing accepted: it runs through today's checks and stays held.
    answer = _release(airflow_ui, session, item)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/xero/quarantine/{item}?conn_id={CONN}&outcome=held"
    tone, status, text = _status(session.get(airflow_ui.base_url + answer.headers["location"]).text)
    assert (tone, status) == ("warn", "held") and text.startswith("Still held") and "dates_in_range" in text

    # Let the check through for this release: loaded, and the page says so.
    answer = _release(airflow_ui, session, item, CONN, "dates_in_range")
    assert answer.status_code == 303 and answer.headers["location"].endswith("&outcome=released")
    after = session.get(airflow_ui.base_url + answer.headers["location"]).text
    tone, status, text = _status(after)
    assert (tone, status) == ("notice", "released") and text.startswith("Released")
    assert "accepting dates_in_range" in text and 'id="release-button"' not in after
    with synced["engine"].connect() as conn:
        loaded = conn.execute(select(invoices.c.date).where(invoices.c.tenant_id == synced["tenant_id"],
                                                            invoices.c.invoice_id == key)).scalar_one()
    assert loaded == date(2101, 3, 1)
    assert _row(session.get(f"{airflow_ui.base_url}/xero/", params={"conn_id": CONN}).text, item) is None

    logged = airflow_ui.log_path.read_text()
    assert f"Quarantine release of {item} (Xero connection '{CONN}') by admin: still held (dates_in_range)." in logged
    assert (f"Quarantine release of {item} (Xero connection '{CONN}') by admin, accepting dates_in_range: "
            "released.") in logged
    assert key not in logged  # ids of the page, never the record


def test_releasing_needs_the_right_to_change_the_connection_and_the_pages_token(airflow_ui, synced):
    item = f"R{synced['held']['contacts']['id']}"
    viewer = airflow_ui.session("viewer")
    # SimpleAuthManager's viewer may not read connections at all, so it is refused both.
    assert viewer.get(f"{airflow_ui.base_url}/xero/quarantine/{item}", params={"conn_id": CONN}).status_code == 403
    refused = viewer.post(f"{airflow_ui.base_url}/xero/quarantine/{item}/release",
                          data={"conn_id": CONN, "accept": "dates_in_range"}, allow_redirects=False)
    assert refused.status_code == 403 and "may not change the Xero connection" in refused.text
    forged = airflow_ui.session().post(f"{airflow_ui.base_url}/xero/quarantine/{item}/release",
                                       data={"conn_id": CONN, "accept": "dates_in_range"}, allow_redirects=False)
    assert forged.status_code == 403 and "did not come from the Xero page" in forged.text
    assert quarantine.get_held(synced["engine"], int(item[1:]))["status"] == "held"


def test_another_connections_item_is_not_found(airflow_ui, synced):
    item = f"R{synced['held']['journals']['id']}"
    session = airflow_ui.session()
    for path in (f"/xero/quarantine/{item}", "/xero/quarantine/R0", "/xero/quarantine/not-an-item"):
        answer = session.get(airflow_ui.base_url + path, params={"conn_id": "xero_default"})
        assert answer.status_code == 404, path
    answer = _release(airflow_ui, session, item, "xero_default", "dates_in_range")
    assert answer.status_code == 404 and f"no held record {item} of this connection" in html.unescape(answer.text)
    assert quarantine.get_held(synced["engine"], int(item[1:]))["status"] == "held"
    assert session.get(f"{airflow_ui.base_url}/xero/quarantine/{item}", params={"conn_id": CONN}).status_code == 200


def test_a_quarantined_batch_is_reviewed_and_released_from_the_connections_raw_pages(airflow_ui, synced):
    tenant_id, engine = synced["tenant_id"], synced["engine"]
    raw = RawStore(_raw_root(airflow_ui), CONN)
    run_id = f"manual__{datetime.now(UTC):%Y-%m-%dT%H:%M:%S}+00:00__bad_totals"
    bad = [invoice(1), invoice(2, Total=116.0, AmountDue=76.0)]  # total != sub_total + total_tax
    keep(raw, run_id, "invoices", page("invoices", bad), tenant_id=tenant_id)
    manifest = {"run_id": run_id, "tenant_id": tenant_id, "tenant_name": "Harbourside Architects Ltd",
                "connection_key": CONN,
                "streams": [StreamExtract(stream="invoices", pages=1, records=2,
                                          max_cursor="2024-03-01T11:00:00+00:00").to_dict()]}
    raw.write_manifest(run_id, tenant_id, manifest)
    assert load_tenant(engine, raw, manifest)["streams"]["invoices"]["status"] == "rejected"
    (batch,) = [b for b in quarantine.list_batches(engine, tenant=tenant_id)]
    item = str(batch["id"])
    session = airflow_ui.session()

    row = _row(session.get(f"{airflow_ui.base_url}/xero/", params={"conn_id": CONN}).text, item)
    assert row is not None and "invoices.total_equals_parts" in row and f"#{item}" in row
    review = session.get(f"{airflow_ui.base_url}/xero/quarantine/{item}", params={"conn_id": CONN}).text
    assert _status(review)[:2] == ("warn", "quarantined")
    assert 'data-record-key="inv-2"' in review and "1 (passed), 1 total_equals_parts" in review
    assert '<input type="checkbox" name="accept" value="total_equals_parts">' in review

    answer = _release(airflow_ui, session, item, CONN, "total_equals_parts")
    assert answer.status_code == 303 and answer.headers["location"].endswith("&outcome=released")
    tone, status, _ = _status(session.get(airflow_ui.base_url + answer.headers["location"]).text)
    assert (tone, status) == ("notice", "released")
    with engine.connect() as conn:
        assert set(conn.execute(select(invoices.c.invoice_id).where(
            invoices.c.tenant_id == tenant_id, invoices.c.invoice_id.in_(["inv-1", "inv-2"]))).scalars()) == {
            "inv-1", "inv-2"}
    # Released already: a second post (a double click) says so on the page, no traceback.
    again = _release(airflow_ui, session, item, CONN)
    assert again.status_code == 400 and "released already" in again.text and 'id="error"' in again.text
