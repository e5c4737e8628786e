"""The official xero-python SDK (15.2.0), pointed at the sandbox, reads every stream unchanged,
refreshes its token through the sandbox, and meets limits and the app's Journals gate as it would at Xero."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from xero_python.accounting import AccountingApi
from xero_python.api_client import ApiClient
from xero_python.api_client.configuration import Configuration
from xero_python.api_client.oauth2 import OAuth2Token, TokenApi
from xero_python.exceptions import HTTPStatusException
from xero_python.identity import IdentityApi
from xero_sandbox.testing import CORE_CLIENT_ID, CORE_CLIENT_SECRET, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET


def _client(sb, token: dict, client_id: str = DEMO_CLIENT_ID, client_secret: str = DEMO_CLIENT_SECRET):
    store = {"token": dict(token, expires_at=time.time() + token["expires_in"], scope=token["scope"].split())}
    cfg = Configuration()  # not Configuration(oauth2_token=...): the SDK's pseudo-singleton ignores args
    cfg.oauth2_token = OAuth2Token(client_id=client_id, client_secret=client_secret)
    client = ApiClient(cfg, pool_threads=1)

    @client.oauth2_token_getter
    def _get():
        return store["token"]

    @client.oauth2_token_saver
    def _save(t):
        store["token"] = t

    return client, store


def test_sdk_reads_every_stream(small):
    client, _ = _client(small, small.connect())
    conns = IdentityApi(client, base_url=small.base_url).get_connections()
    assert len(conns) == 2
    acc = AccountingApi(client, base_url=f"{small.base_url}/api.xro/2.0")
    truth = small.truth()["tenants"]
    for c in conns:
        tid = str(c.tenant_id)
        t = truth[tid]
        contacts = acc.get_contacts(tid, page=1, page_size=1000, include_archived=True).contacts
        assert len(contacts) == t["clients"]["count"]
        invoices = acc.get_invoices(tid, page=1, page_size=1000).invoices
        assert len(invoices) == t["invoices"]["count"]
        assert str(sum(i.total for i in invoices)) == t["invoices"]["total"]
        assert sum(len(i.line_items) for i in invoices) == t["invoice_lines"]["count"]
        assert any(tr.name in ("Project", "Projects", "Job") for i in invoices for ln in i.line_items
                   for tr in ln.tracking)
        payments = acc.get_payments(tid, page=1, page_size=1000).payments
        assert len(payments) == t["payments"]["count"]
        notes = acc.get_credit_notes(tid, page=1, page_size=1000).credit_notes
        assert len(notes) == t["credit_notes"]["count"]
        assert acc.get_accounts(tid).accounts
        assert acc.get_organisations(tid).organisations[0].base_currency
        assert acc.get_tracking_categories(tid, include_archived=True).tracking_categories
        journals, offset = [], 0
        while True:
            batch = acc.get_journals(tid, offset=offset).journals
            if not batch:
                break
            journals += batch
            offset = batch[-1].journal_number
        assert len(journals) == t["journals"]["count"]
        assert acc.get_journals(tid, offset=0, payments_only=True).journals
        report = acc.get_report_trial_balance(tid, date="2025-06-30").reports[0]
        assert report.report_id == "TrialBalance"
        one = acc.get_invoice(tid, invoices[0].invoice_id).invoices[0]
        assert one.invoice_number == invoices[0].invoice_number
        assert acc.get_contact(tid, contacts[0].contact_id).contacts[0].name == contacts[0].name
        assert acc.get_journal(tid, journals[0].journal_id).journals[0].journal_number == 1


def test_sdk_reads_the_cost_side(small):
    """BankTransactions, ManualJournals, PurchaseOrders, Prepayments, Overpayments, LinkedTransactions and
    the P&L by project deserialise with the SDK's strict models (enums included)."""
    client, _ = _client(small, small.connect())
    acc = AccountingApi(client, base_url=f"{small.base_url}/api.xro/2.0")
    truth = small.truth()["tenants"]
    for tid, t in truth.items():
        bank = acc.get_bank_transactions(tid, page=1, page_size=1000, unitdp=4).bank_transactions
        assert len(bank) == t["bank_transactions"]["count"]
        assert str(sum(b.total for b in bank)) == t["bank_transactions"]["total"]
        assert {getattr(b.type, "value", b.type) for b in bank} >= {"SPEND", "RECEIVE-PREPAYMENT",
                                                                    "RECEIVE-OVERPAYMENT"}
        assert {getattr(lt.status, "value", lt.status) for lt in
                acc.get_linked_transactions(tid, page=1).linked_transactions} >= {"BILLED", "APPROVED"}
        manual = acc.get_manual_journals(tid, page=1, page_size=1000).manual_journals
        assert sum(len(m.journal_lines) for m in manual) == t["manual_journal_lines"]["count"]
        orders = acc.get_purchase_orders(tid, page=1, page_size=1000).purchase_orders
        assert len(orders) == t["purchase_orders"]["count"]
        pre = acc.get_prepayments(tid, page=1, page_size=1000).prepayments
        assert sum(len(p.allocations) for p in pre) == t["prepayment_allocations"]["count"]
        over = acc.get_overpayments(tid, page=1, page_size=1000).overpayments
        assert len(over) == t["overpayments"]["count"]
        links = acc.get_linked_transactions(tid, page=1).linked_transactions
        assert len(links) == t["linked_transactions"]["count"]  # fewer than 100 in small
        transfers = acc.get_bank_transfers(tid).bank_transfers
        assert len(transfers) == t["bank_transfers"]["count"]
        assert sum(Decimal(str(x.amount)) for x in transfers) == Decimal(t["bank_transfers"]["amount"])
        assert {x.from_bank_account.code for x in transfers} == {"090", "091"}
        one = acc.get_bank_transfer(tid, transfers[0].bank_transfer_id).bank_transfers[0]
        assert one.amount == transfers[0].amount
        rates = acc.get_tax_rates(tid).tax_rates
        assert rates and all(r.tax_components for r in rates)
        cats = acc.get_tracking_categories(tid).tracking_categories
        project = next(c for c in cats if c.name in ("Project", "Projects", "Job", "Jobs"))
        report = acc.get_report_profit_and_loss(tid, from_date="2024-01-01", to_date="2024-12-31",
                                                tracking_category_id=str(project.tracking_category_id)).reports[0]
        header = [c.value for c in report.rows[0].cells]
        assert header[-2:] == ["Unassigned", "Total"] and len(header) > 3


def test_sdk_refreshes_through_the_sandbox(fresh, monkeypatch):
    monkeypatch.setattr(TokenApi, "refresh_token_url", fresh.base_url + "/connect/token")
    client, store = _client(fresh, fresh.connect())
    acc = AccountingApi(client, base_url=f"{fresh.base_url}/api.xro/2.0")
    tid = fresh.health()["tenants"][0]["tenantId"]
    first_refresh = store["token"]["refresh_token"]
    fresh.advance_clock(1801)
    store["token"]["expires_at"] = time.time() + 5  # inside the SDK's 60 s buffer: it refreshes first
    assert acc.get_accounts(tid).accounts
    assert store["token"]["refresh_token"] != first_refresh
    assert fresh.stats()["token_refreshes"] == 1


def test_sdk_sees_rate_limits_and_the_apps_journals_gate(medium):
    core = (CORE_CLIENT_ID, CORE_CLIENT_SECRET)
    client, _ = _client(medium, medium.connect(client_id=core[0], client_secret=core[1]), *core)
    acc = AccountingApi(client, base_url=f"{medium.base_url}/api.xro/2.0")
    last = medium.health()["tenants"][-1]["tenantId"]
    for t in medium.health()["tenants"]:
        with pytest.raises(HTTPStatusException) as err:
            acc.get_journals(t["tenantId"], offset=0)
        assert err.value.status == 401 and b"AuthorizationUnsuccessful" in err.value.body
    # xero-python's urllib3 pool retries a 429 that carries Retry-After (sleeping that long) before
    # the SDK sees it; a single refusal is therefore absorbed.
    medium.reset_stats()
    medium.faults(endpoint="Accounts", status=429, count=1, retry_after=1)
    assert acc.get_accounts(last).accounts
    assert medium.stats()["requests"]["GET /api.xro/2.0/Accounts"] == {"429": 1, "200": 1}
    medium.clear_faults()
