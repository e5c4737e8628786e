"""What a ledger derived from documents needs besides them: BankTransfers (journaled as
TRANSFER), TaxRates and the Organisation's settings, and payroll that Xero journals (PAYSLIP)
with no document in the Accounting API."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import requests
from xero_sandbox.testing import GRANULAR_SCOPES

from tests.xero_sandbox.test_costs import CENT, _d, _iso, _ms, _trial_balance_equals_journals
from tests.xero_sandbox.test_truth import _sync_slowly

#: Document streams (and their id fields) an incremental sync reads.
DOCUMENTS = {"Invoices": "InvoiceID", "Payments": "PaymentID", "CreditNotes": "CreditNoteID",
             "BankTransactions": "BankTransactionID", "ManualJournals": "ManualJournalID",
             "PurchaseOrders": "PurchaseOrderID", "Prepayments": "PrepaymentID", "Overpayments": "OverpaymentID"}


def _transfers(api, t: str, headers=None, params=None) -> list[dict]:
    r = api.get("BankTransfers", t, headers=headers, params=params)
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert "pagination" not in body  # Xero does not page BankTransfers
    return body["BankTransfers"]


# ----------------------------------------------------------------------------- bank transfers

def test_bank_transfers_shape_and_journals(api):
    for t in api.tenants:
        truth = api.sb.truth()["tenants"][t]
        transfers = _transfers(api, t)
        assert len(transfers) == truth["bank_transfers"]["count"] >= 24
        assert str(sum((_d(x["Amount"]) for x in transfers), Decimal("0.00"))) == truth["bank_transfers"]["amount"]
        accounts = {a["AccountID"]: a for a in api.get("Accounts", t).json()["Accounts"]}
        directions = Counter()
        for x in transfers:
            src, dst = x["FromBankAccount"], x["ToBankAccount"]
            assert {src["Code"], dst["Code"]} == {"090", "091"}
            for side in (src, dst):
                acct = accounts[side["AccountID"]]
                assert acct["Type"] == "BANK" and (acct["Code"], acct["Name"]) == (side["Code"], side["Name"])
            directions[src["Code"]] += 1
            assert 500 <= x["Amount"] <= 20000 and x["Amount"] == int(x["Amount"])
            assert x["Status"] == "AUTHORISED" and x["CurrencyRate"] == 1.0
            assert x["FromBankTransactionID"] != x["ToBankTransactionID"]
            assert _ms(x["Date"]) % 86_400_000 == 0 and x["DateString"].endswith("T00:00:00")
            assert _ms(x["CreatedDateUTC"]) >= _ms(x["Date"])
        assert directions["090"] and directions["091"]
        # each transfer is one TRANSFER journal: the to-account debited, the from-account credited
        journals = [j for j in api.all_journals(t) if j["SourceType"] == "TRANSFER"]
        by_source = {j["SourceID"]: j for j in journals}
        assert len(journals) == len(by_source) == len(transfers)
        for x in transfers:
            j = by_source[x["BankTransferID"]]
            assert j["JournalDate"] == x["Date"] and j["Reference"] == x["Reference"]
            amount = _d(x["Amount"])
            assert sorted((ln["AccountCode"], _d(ln["NetAmount"])) for ln in j["JournalLines"]) == \
                sorted([(x["ToBankAccount"]["Code"], amount), (x["FromBankAccount"]["Code"], -amount)])
        # not bank transactions: neither listed there nor counted
        bank_ids = {b["BankTransactionID"] for b in api.all_pages("BankTransactions", t)}
        assert len(bank_ids) == truth["bank_transactions"]["count"]
        sides = {x[k] for x in transfers for k in ("BankTransferID", "FromBankTransactionID", "ToBankTransactionID")}
        assert not sides & bank_ids
        # by id; another organisation's transfer is not found
        one = api.get(f"BankTransfers/{transfers[0]['BankTransferID']}", t).json()["BankTransfers"]
        assert one == [transfers[0]]
    other = _transfers(api, api.tenants[1])[0]["BankTransferID"]
    assert api.get(f"BankTransfers/{other}", api.tenants[0]).status_code == 404


def test_bank_transfers_if_modified_since_where_and_order(api):
    t = api.tenants[0]
    transfers = _transfers(api, t)
    stamps = sorted(_ms(x["CreatedDateUTC"]) for x in transfers)
    cut = stamps[len(stamps) // 2]
    newer = _transfers(api, t, headers={"If-Modified-Since": _iso(cut)})
    assert newer and len(newer) == sum(1 for s in stamps if s >= cut)
    assert all(_ms(x["CreatedDateUTC"]) >= cut for x in newer)
    assert _transfers(api, t, headers={"If-Modified-Since": "2100-01-01T00:00:00Z"}) == []
    big = _transfers(api, t, params={"where": "Amount>=10000", "order": "Amount DESC"})
    assert big and [x["Amount"] for x in big] == sorted((x["Amount"] for x in transfers if x["Amount"] >= 10000),
                                                        reverse=True)
    out = _transfers(api, t, params={"where": 'FromBankAccount.Code=="090"'})
    assert out and len(out) == sum(1 for x in transfers if x["FromBankAccount"]["Code"] == "090")
    assert _transfers(api, t, params={"includeDeleted": "true"}) == transfers
    assert api.get("BankTransfers", t, params={"where": "Bogus==1"}).status_code == 400


def test_bank_transfers_and_tax_rates_scopes(small, make_api):
    t = small.health()["tenants"][0]["tenantId"]
    bank = make_api(small, small.connect(scope="offline_access accounting.banktransactions.read"))
    assert bank.get("BankTransfers", t).status_code == 200
    assert bank.get("TaxRates", t).status_code == 401
    invoices_only = make_api(small, small.connect(scope="offline_access accounting.invoices.read"))
    assert invoices_only.get("BankTransfers", t).status_code == 401
    granular = make_api(small, small.connect(scope=GRANULAR_SCOPES))  # settings.read, no banktransactions.read
    assert granular.get("TaxRates", t).status_code == 200
    assert granular.get("BankTransfers", t).status_code == 401
    broad = make_api(small, small.connect(scope="offline_access accounting.transactions.read"))
    assert broad.get("BankTransfers", t).status_code == 200


# ----------------------------------------------------------------------------- settings

def test_tax_rates_cover_every_tax_type_in_use(api):
    for t in api.tenants:
        rates = api.get("TaxRates", t).json()["TaxRates"]
        by_type = {r["TaxType"]: r for r in rates}
        assert len(by_type) == len(rates) >= 4
        for r in rates:
            assert r["Status"] == "ACTIVE" and r["Name"] and r["ReportTaxType"]
            assert r["DisplayTaxRate"] == r["EffectiveRate"] == sum(c["Rate"] for c in r["TaxComponents"])
            assert all(c["IsCompound"] is False and c["Name"] in ("GST", "VAT") for c in r["TaxComponents"])
            assert any(r[f"CanApplyTo{k}"] for k in ("Assets", "Equity", "Expenses", "Liabilities", "Revenue"))
        assert any(r["EffectiveRate"] > 0 and r["CanApplyToRevenue"] for r in rates)
        assert any(r["EffectiveRate"] > 0 and r["CanApplyToExpenses"] for r in rates)
        used = {a["TaxType"] for a in api.get("Accounts", t).json()["Accounts"]}
        for entity in ("Invoices", "BankTransactions", "CreditNotes"):
            used |= {ln["TaxType"] for doc in api.all_pages(entity, t) for ln in doc["LineItems"]}
        assert used <= set(by_type), used - set(by_type)
        # a line's tax is its rate's EffectiveRate on the net
        invoice = next(i for i in api.all_pages("Invoices", t) if i["LineAmountTypes"] == "Exclusive"
                       and any(by_type[ln["TaxType"]]["EffectiveRate"] for ln in i["LineItems"]))
        for ln in invoice["LineItems"]:
            rate = Decimal(str(by_type[ln["TaxType"]]["EffectiveRate"]))
            assert abs(_d(ln["LineAmount"]) * rate / 100 - _d(ln["TaxAmount"])) <= CENT
        one = api.get(f"TaxRates/{rates[0]['TaxType']}", t).json()["TaxRates"]
        assert one == [rates[0]]
        assert api.get("TaxRates/NOSUCHTYPE", t).status_code == 404
        active = api.get("TaxRates", t, params={"where": 'Status=="ACTIVE"', "order": "Name"}).json()["TaxRates"]
        assert [r["Name"] for r in active] == sorted(r["Name"] for r in rates)


def test_organisation_settings_for_a_derived_ledger(api):
    for t in api.tenants:
        org = api.get("Organisation", t).json()["Organisations"][0]
        assert org["BaseCurrency"] in ("NZD", "AUD", "GBP")
        assert 1 <= org["FinancialYearEndDay"] <= 31 and 1 <= org["FinancialYearEndMonth"] <= 12
        assert org["Class"]
        # whatever the plan, the organisation's Journals are served to an app allowed them
        assert api.get("Journals", t).status_code == 200


# ----------------------------------------------------------------------------- activity

def test_activity_transfers_and_payslips(fresh, make_api):
    api = make_api(fresh, fresh.connect())
    t0 = api.tenants[0]
    before = fresh.truth()["tenants"]
    transfers_before = _transfers(api, t0)
    fresh.advance_clock(120)
    since = fresh.clock()["now_ms"]
    changes = fresh.activity(tenant_id=t0, bank_transfers=3, payslips=4)["changes"][t0]
    assert changes == {"bank_transfers_created": 3, "payslips_posted": 4}
    after = fresh.truth()["tenants"]
    assert after[api.tenants[1]] == before[api.tenants[1]]
    a, b = after[t0], before[t0]
    assert a["bank_transfers"]["count"] == b["bank_transfers"]["count"] + 3
    assert a["journals"]["count"] == b["journals"]["count"] + 7
    for key in set(b) - {"bank_transfers", "journals", "journal_lines"}:
        assert a[key] == b[key], key  # no document: payroll and transfers post journals only

    today = since // 86_400_000 * 86_400_000
    new = _transfers(api, t0, headers={"If-Modified-Since": _iso(since)})
    assert len(new) == 3 and len(_transfers(api, t0)) == len(transfers_before) + 3
    assert all(_ms(x["Date"]) == today and _ms(x["CreatedDateUTC"]) >= since for x in new)
    journals = api.get("Journals", t0, params={"offset": b["journals"]["count"]}).json()["Journals"]
    assert Counter(j["SourceType"] for j in journals) == {"TRANSFER": 3, "PAYSLIP": 4}
    slips = [j for j in journals if j["SourceType"] == "PAYSLIP"]
    paid = Decimal("0.00")
    for j in slips:
        assert _ms(j["JournalDate"]) == today and j["SourceID"]
        lines = {ln["AccountCode"]: _d(ln["NetAmount"]) for ln in j["JournalLines"]}
        assert set(lines) == {"477", "090"} and lines["477"] == -lines["090"]
        assert 1000 <= lines["477"] <= 9000
        paid += lines["477"]
    net_after = {k: Decimal(v) for k, v in a["journal_lines"]["net_by_account_code"].items()}
    net_before = {k: Decimal(v) for k, v in b["journal_lines"]["net_by_account_code"].items()}
    assert net_after["477"] - net_before["477"] == paid
    moved = sum((_d(x["Amount"]) * (1 if x["ToBankAccount"]["Code"] == "090" else -1) for x in new), Decimal(0))
    assert net_after["090"] - net_before["090"] == moved - paid
    # no document shows the payroll: nothing but the transfers changed since
    for entity in DOCUMENTS:
        r = api.get(entity, t0, params={"page": 1}, headers={"If-Modified-Since": _iso(since)})
        if r.status_code == 429:
            fresh.advance_clock(int(r.headers["Retry-After"]))
            r = api.get(entity, t0, params={"page": 1}, headers={"If-Modified-Since": _iso(since)})
        assert r.json()[entity] == [], entity
    fresh.advance_clock(60)
    assert _sync_slowly(fresh, api, t0) == a  # the journals sum to the truth's net by account
    fresh.advance_clock(60)
    _trial_balance_equals_journals(api, t0)


def test_activity_asks_for_transfers_and_payslips_by_name(fresh):
    t0 = fresh.health()["tenants"][0]["tenantId"]
    changes = fresh.activity(invoices=10, payments=5, tenant_id=t0)["changes"][t0]
    assert "bank_transfers_created" not in changes and "payslips_posted" not in changes
    for bad in ({"bank_transfers": -1}, {"payslips": -2}, {"payslip": 1}):
        r = requests.post(fresh.base_url + "/_sandbox/activity", json=bad, timeout=10)
        assert r.status_code == 400, bad
