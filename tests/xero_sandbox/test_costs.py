"""The cost side and deposits: BankTransactions, ManualJournals, PurchaseOrders, Prepayments,
Overpayments, LinkedTransactions and Reports/ProfitAndLoss — paging, If-Modified-Since, scopes,
activity, and figures that agree with the documents, the ledger and the truth."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from xero_sandbox.testing import GRANULAR_SCOPES, running_sandbox

from tests.xero_sandbox.test_truth import (
    PROJECT_CATEGORY_NAMES,
    all_linked_transactions,
    full_sync,
    pnl_columns,
    project_category,
    project_pnl,
)

MS = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
PAGED = {"BankTransactions": "BankTransactionID", "ManualJournals": "ManualJournalID",
         "PurchaseOrders": "PurchaseOrderID", "Prepayments": "PrepaymentID", "Overpayments": "OverpaymentID"}
CENT = Decimal("0.01")
#: The summary keys /_sandbox/activity reports for cost-side actions.
COST_ACTIONS = ("spend_money", "receive_money", "bank_transactions", "manual_journals", "purchase_orders",
                "prepayments", "overpayments", "billable_expenses")


def _ms(value: str) -> int:
    m = MS.match(value)
    assert m, value
    return int(m.group(1))


def _d(x) -> Decimal:
    return Decimal(str(x)).quantize(CENT)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


# ----------------------------------------------------------------------------- shapes and paging

def test_paged_streams_page_like_invoices(api):
    t = api.tenants[0]
    truth = api.sb.truth()["tenants"][t]
    counts = {"BankTransactions": truth["bank_transactions"]["count"],
              "ManualJournals": truth["manual_journals"]["count"],
              "PurchaseOrders": truth["purchase_orders"]["count"], "Prepayments": truth["prepayments"]["count"],
              "Overpayments": truth["overpayments"]["count"]}
    for entity, key in PAGED.items():
        n = counts[entity]
        assert n >= 2, entity
        size = max(1, n // 3)
        body = api.get(entity, t, params={"page": 1, "pageSize": size}).json()
        p = body["pagination"]
        assert p == {"page": 1, "pageSize": size, "pageCount": -(-n // size), "itemCount": n}, entity
        assert len(body[entity]) == size
        seen = [r[key] for r in body[entity]]
        for page in range(2, p["pageCount"] + 1):
            seen += [r[key] for r in api.get(entity, t, params={"page": page, "pageSize": size}).json()[entity]]
        assert len(seen) == len(set(seen)) == n, entity
        past = api.get(entity, t, params={"page": p["pageCount"] + 1, "pageSize": size}).json()
        assert past[entity] == [] and past["pagination"]["itemCount"] == n
        assert api.get(entity, t, params={"page": 1, "pageSize": 5000}).json()["pagination"]["pageSize"] == 1000
        assert api.get(entity, t, params={"page": 1}).json()["pagination"]["pageSize"] == 100
        one = api.get(f"{entity}/{seen[0]}", t).json()[entity]
        assert len(one) == 1 and one[0][key] == seen[0]
        assert api.get(f"{entity}/{seen[0]}", api.tenants[1]).status_code == 404  # another tenant's record


def test_bank_transactions_shape(api):
    t = api.tenants[0]
    bank = api.all_pages("BankTransactions", t)
    types = Counter(b["Type"] for b in bank)
    assert {"SPEND", "RECEIVE", "RECEIVE-PREPAYMENT", "RECEIVE-OVERPAYMENT"} <= set(types)
    assert {"AUTHORISED", "DELETED"} == {b["Status"] for b in bank}
    accounts = {a["AccountID"]: a for a in api.get("Accounts", t).json()["Accounts"]}
    for b in bank:
        assert accounts[b["BankAccount"]["AccountID"]]["Type"] == "BANK"
        assert b["Contact"]["ContactID"] and b["LineItems"]
        assert _d(b["SubTotal"]) + _d(b["TotalTax"]) == _d(b["Total"])
        expect = b["Total"] if b["LineAmountTypes"] == "Inclusive" else b["SubTotal"]
        assert sum(_d(ln["LineAmount"]) for ln in b["LineItems"]) == _d(expect)
        assert ("PrepaymentID" in b) == (b["Type"] == "RECEIVE-PREPAYMENT")
        assert ("OverpaymentID" in b) == (b["Type"] == "RECEIVE-OVERPAYMENT")
    tracked = [tr for b in bank if b["Type"] == "SPEND" for ln in b["LineItems"] for tr in ln["Tracking"]
               if tr["Name"] in PROJECT_CATEGORY_NAMES]
    assert tracked and all(tr["Option"] and tr["TrackingOptionID"] for tr in tracked)
    # a retainer's bank side is the prepayment itself
    pre = api.all_pages("Prepayments", t)
    by_id = {p["PrepaymentID"]: p for p in pre}
    for b in bank:
        if b["Type"] == "RECEIVE-PREPAYMENT":
            p = by_id[b["PrepaymentID"]]
            assert p["Total"] == b["Total"] and p["LineItems"] == b["LineItems"]
    # unitdp=4 is accepted and changes nothing that is already at cents
    four = api.get("BankTransactions", t, params={"page": 1, "unitdp": 4}).json()["BankTransactions"]
    two = api.get("BankTransactions", t, params={"page": 1}).json()["BankTransactions"]
    assert [b["Total"] for b in four] == [b["Total"] for b in two]


def test_manual_journals_balance_and_carry_tracking(api):
    t = api.tenants[0]
    manual = api.all_pages("ManualJournals", t)
    assert {"POSTED"} <= {m["Status"] for m in manual}
    assert {m["Status"] for m in manual} <= {"DRAFT", "POSTED", "DELETED", "VOIDED", "ARCHIVED"}
    for m in manual:
        assert m["LineAmountTypes"] == "NoTax" and m["Narration"]
        assert sum(_d(ln["LineAmount"]) for ln in m["JournalLines"]) == 0, m["Narration"]
    tracked = [tr for m in manual for ln in m["JournalLines"] for tr in ln["Tracking"]]
    assert {tr["Name"] for tr in tracked} & PROJECT_CATEGORY_NAMES
    assert all(set(tr) >= {"Name", "Option", "TrackingCategoryID", "TrackingOptionID"} for tr in tracked)
    # posted manual journals are in the ledger (MANJOURNAL), with the same lines and tracking
    journals = [j for j in api.all_journals(t) if j["SourceType"] == "MANJOURNAL"]
    by_source = Counter(j["SourceID"] for j in journals)
    for m in manual:
        expected = {"POSTED": 1, "VOIDED": 2}.get(m["Status"], 0)  # voided: the journal and its reversal
        assert by_source.get(m["ManualJournalID"], 0) == expected, m["Status"]
    first_posted = next(m for m in manual if m["Status"] == "POSTED")
    j = next(j for j in journals if j["SourceID"] == first_posted["ManualJournalID"])
    assert sorted((ln["AccountCode"], _d(ln["NetAmount"]), tuple(tr["Option"] for tr in ln["TrackingCategories"]))
                  for ln in j["JournalLines"]) == \
        sorted((ln["AccountCode"], _d(ln["LineAmount"]), tuple(tr["Option"] for tr in ln["Tracking"]))
               for ln in first_posted["JournalLines"])


def test_purchase_orders_statuses_and_filters(api):
    t = api.tenants[0]
    orders = api.all_pages("PurchaseOrders", t)
    assert {"DRAFT", "AUTHORISED", "BILLED", "DELETED"} <= {o["Status"] for o in orders}
    for o in orders:
        assert o["Type"] == "PURCHASEORDER" and o["PurchaseOrderNumber"].startswith("PO-")
        assert all(any(tr["Name"] in PROJECT_CATEGORY_NAMES for tr in ln["Tracking"]) for ln in o["LineItems"])
        assert _d(o["SubTotal"]) + _d(o["TotalTax"]) == _d(o["Total"])
    authorised = api.all_pages("PurchaseOrders", t, params={"Status": "AUTHORISED"})
    assert len(authorised) == sum(1 for o in orders if o["Status"] == "AUTHORISED")
    dated = api.all_pages("PurchaseOrders", t, params={"DateFrom": "2024-01-01", "DateTo": "2024-12-31"})
    lo, hi = _ms("/Date(1704067200000+0000)/"), _ms("/Date(1735603200000+0000)/")
    assert len(dated) == sum(1 for o in orders if lo <= _ms(o["Date"]) <= hi)
    by_number = api.get(f"PurchaseOrders/{orders[0]['PurchaseOrderNumber']}", t).json()["PurchaseOrders"]
    assert by_number[0]["PurchaseOrderID"] == orders[0]["PurchaseOrderID"]
    assert api.get("PurchaseOrders", t, params={"page": 1, "DateFrom": "31/12/2024"}).status_code == 400


def test_deposits_are_applied_to_invoices_and_listed_on_them(api):
    t = api.tenants[0]
    invoices = {i["InvoiceID"]: i for i in api.all_pages("Invoices", t)}
    accounts = {a["Code"]: a for a in api.get("Accounts", t).json()["Accounts"]}
    base = api.get("Organisation", t).json()["Organisations"][0]["BaseCurrency"]
    for entity, kind in (("Prepayments", "RECEIVE-PREPAYMENT"), ("Overpayments", "RECEIVE-OVERPAYMENT")):
        deposits = api.all_pages(entity, t)
        assert deposits and any(d["Allocations"] for d in deposits), entity
        id_key = entity[:-1] + "ID"
        for d in deposits:
            assert d["Type"] == kind and d["CurrencyCode"] == base  # Xero keeps deposits in base currency
            applied = sum((_d(a["Amount"]) for a in d["Allocations"]), Decimal("0.00"))
            assert _d(d["RemainingCredit"]) == _d(d["Total"]) - applied
            assert d["Status"] == ("PAID" if _d(d["RemainingCredit"]) == 0 else "AUTHORISED")
            for a in d["Allocations"]:
                inv = invoices[a["Invoice"]["InvoiceID"]]
                assert inv["Type"] == "ACCREC" and inv["Contact"]["ContactID"] == d["Contact"]["ContactID"]
                assert _ms(a["Date"]) >= _ms(inv["Date"])
                listed = [x for x in inv[entity] if x[id_key] == d[id_key]]
                assert listed and sum(_d(x["AppliedAmount"]) for x in listed) == \
                    sum(_d(x["Amount"]) for x in d["Allocations"] if x["Invoice"]["InvoiceID"] == inv["InvoiceID"])
        line_codes = {ln["AccountCode"] for d in deposits for ln in d["LineItems"]}
        assert line_codes == ({"835"} if entity == "Prepayments" else {"610"})
        assert accounts[line_codes.pop()]["Status"] == "ACTIVE"
    # AmountCredited counts credit notes, prepayments and overpayments, as at Xero
    for inv in invoices.values():
        credited = sum((_d(x["AppliedAmount"]) for k in ("CreditNotes", "Prepayments", "Overpayments")
                        for x in inv[k]), Decimal("0.00"))
        assert credited == _d(inv["AmountCredited"]), inv["InvoiceNumber"]
        assert sum(_d(p["Amount"]) for p in inv["Payments"]) == _d(inv["AmountPaid"])
    assert api.get("Prepayments", t, params={"page": 1, "InvoiceNumbers": "RET-0001"}).json()["Prepayments"]


def test_linked_transactions_link_real_lines(api):
    t = api.tenants[0]
    links = all_linked_transactions(api, t)
    assert {"BILLED", "APPROVED"} <= {lt["Status"] for lt in links}
    assert {lt["Status"] for lt in links} <= {"APPROVED", "DRAFT", "ONDRAFT", "BILLED", "VOIDED"}
    assert {lt["SourceTransactionTypeCode"] for lt in links} == {"ACCPAY", "SPEND"}
    invoices = {i["InvoiceID"]: i for i in api.all_pages("Invoices", t)}
    bank = {b["BankTransactionID"]: b for b in api.all_pages("BankTransactions", t)}
    customers = {c["ContactID"] for c in api.all_pages("Contacts", t, params={"includeArchived": "true"})
                 if c["IsCustomer"]}
    for lt in links:
        assert lt["Type"] == "BILLABLEEXPENSE" and lt["ContactID"] in customers
        source = invoices[lt["SourceTransactionID"]] if lt["SourceTransactionTypeCode"] == "ACCPAY" \
            else bank[lt["SourceTransactionID"]]
        assert lt["SourceLineItemID"] in {ln["LineItemID"] for ln in source["LineItems"]}
        if lt["Status"] in ("BILLED", "ONDRAFT"):
            target = invoices[lt["TargetTransactionID"]]
            assert target["Type"] == "ACCREC" and target["Contact"]["ContactID"] == lt["ContactID"]
            assert lt["TargetLineItemID"] in {ln["LineItemID"] for ln in target["LineItems"]}
            assert (target["Status"] in ("DRAFT", "SUBMITTED")) == (lt["Status"] == "ONDRAFT")
        else:
            assert "TargetTransactionID" not in lt
    # filters
    first = links[0]
    assert api.get("LinkedTransactions", t, params={"LinkedTransactionID": first["LinkedTransactionID"]}).json()[
        "LinkedTransactions"] == [first]
    for param, key in (("SourceTransactionID", "SourceTransactionID"), ("ContactID", "ContactID"),
                       ("TargetTransactionID", "TargetTransactionID")):
        value = next(lt[key] for lt in links if key in lt)
        got = api.get("LinkedTransactions", t, params={param: value}).json()["LinkedTransactions"]
        assert got == [lt for lt in links if lt.get(key) == value], param
    billed = api.get("LinkedTransactions", t, params={"Status": "BILLED"}).json()["LinkedTransactions"]
    assert billed == [lt for lt in links if lt["Status"] == "BILLED"]
    one = api.get(f"LinkedTransactions/{first['LinkedTransactionID']}", t).json()["LinkedTransactions"]
    assert one == [first]


def test_linked_transactions_page_by_100_without_pagination(api):
    """Xero serves LinkedTransactions 100 a page, `page` only; a page cap shows the walk (here 7)."""
    t = api.tenants[0]
    every = all_linked_transactions(api, t)
    body = api.get("LinkedTransactions", t, params={"page": 1, "pageSize": 3}).json()
    assert "pagination" not in body and len(body["LinkedTransactions"]) == min(100, len(every))
    api.sb.set_max_page_size(7)
    try:
        pages = []
        page = 1
        while True:
            got = api.get("LinkedTransactions", t, params={"page": page}).json()["LinkedTransactions"]
            if not got:
                break
            assert len(got) <= 7
            pages.append(got)
            page += 1
        assert [lt for p in pages for lt in p] == every and len(pages) == -(-len(every) // 7)
    finally:
        api.sb.set_max_page_size(None)
    # no If-Modified-Since on this endpoint (the spec lists none): it is ignored
    assert all_linked_transactions(api, t) == every
    r = api.get("LinkedTransactions", t, params={"page": 1}, headers={"If-Modified-Since": "2100-01-01T00:00:00Z"})
    assert r.json()["LinkedTransactions"] == every[:100]


def test_if_modified_since_on_the_new_streams(api):
    t = api.tenants[0]
    for entity in PAGED:
        records = api.all_pages(entity, t)
        stamps = sorted(_ms(r["UpdatedDateUTC"]) for r in records)
        cut = stamps[len(stamps) // 2]
        r = api.get(entity, t, params={"page": 1, "pageSize": 1000}, headers={"If-Modified-Since": _iso(cut)})
        newer = r.json()[entity]
        assert newer and all(_ms(x["UpdatedDateUTC"]) >= cut for x in newer), entity
        assert len(newer) == sum(1 for s in stamps if s >= cut), entity
        assert r.json()["pagination"]["itemCount"] == len(newer)
        later = api.get(entity, t, params={"page": 1}, headers={"If-Modified-Since": "2100-01-01T00:00:00Z"})
        assert later.json()[entity] == []


# ----------------------------------------------------------------------------- scopes

def test_scopes_per_endpoint(small, make_api):
    granular = make_api(small, small.connect(scope=GRANULAR_SCOPES))
    t = granular.tenants[0]
    for path in ("PurchaseOrders", "LinkedTransactions", "Prepayments", "Overpayments"):
        assert granular.get(path, t, params={"page": 1}).status_code == 200, path
    for path in ("BankTransactions", "ManualJournals", "Reports/ProfitAndLoss"):
        r = granular.get(path, t, params={"page": 1})
        assert r.status_code == 401, path
        assert r.json()["Detail"] == "AuthorizationUnsuccessful"
    wider = make_api(small, small.connect(scope=GRANULAR_SCOPES + " accounting.banktransactions.read "
                                          "accounting.manualjournals.read accounting.reports.profitandloss.read"))
    for path in ("BankTransactions", "ManualJournals", "Reports/ProfitAndLoss"):
        assert wider.get(path, t, params={"page": 1}).status_code == 200, path
    # a trial-balance-only report scope does not open the P&L, nor the other way round
    pl_only = make_api(small, small.connect(scope="offline_access accounting.reports.profitandloss.read"))
    assert pl_only.get("Reports/ProfitAndLoss", t).status_code == 200
    assert pl_only.get("Reports/TrialBalance", t).status_code == 401
    # payments scope does not open invoice-side documents and vice versa
    payments_only = make_api(small, small.connect(scope="offline_access accounting.payments.read"))
    assert payments_only.get("Prepayments", t, params={"page": 1}).status_code == 200
    assert payments_only.get("PurchaseOrders", t, params={"page": 1}).status_code == 401
    assert payments_only.get("LinkedTransactions", t).status_code == 401


def test_consent_page_describes_the_new_scopes(small):
    import requests

    url = small.authorize_url("http://127.0.0.1:8976/callback", "offline_access accounting.banktransactions.read "
                              "accounting.manualjournals.read accounting.reports.profitandloss.read")
    s = requests.Session()
    page = s.get(url, timeout=30)
    login = s.post(small.base_url + "/identity/connect/login",
                   data={"tx": re.search(r'name="tx" value="([^"]+)"', page.text).group(1),
                         "email": "demo@intoaec.test", "password": "sandbox"}, timeout=30)
    text = login.text
    for phrase in ("View your bank transactions", "View your manual journals", "View your profit and loss report"):
        assert phrase in text


# ----------------------------------------------------------------------------- activity

def test_activity_touches_every_cost_stream_and_a_sync_still_matches(fresh, make_api):
    from tests.xero_sandbox.test_truth import _sync_slowly

    api = make_api(fresh, fresh.connect())
    t0 = api.tenants[0]
    before = fresh.truth()["tenants"][t0]
    fresh.advance_clock(300)
    since = fresh.clock()["now_ms"]
    changes = fresh.activity(tenant_id=t0, bank_transactions=6, manual_journals=6, purchase_orders=6,
                             prepayments=6, overpayments=4, linked_transactions=6)["changes"][t0]
    assert not any(k.startswith(("invoices_", "payments_")) for k in changes)
    for prefix in ("spend_money", "manual_journals", "purchase_orders", "prepayments", "overpayments",
                   "billable_expenses"):
        assert any(k.startswith(prefix) for k in changes), (prefix, changes)
    after = fresh.truth()["tenants"][t0]
    for key in ("bank_transactions", "overpayments", "overpayment_allocations", "linked_transactions"):
        assert after[key] != before[key], key
    assert after["journals"]["count"] > before["journals"]["count"]
    assert after["clients"] == before["clients"] and after["payments"] == before["payments"]
    # what changed carries "now": an incremental sync sees it
    iso = _iso(since)
    for entity in PAGED:
        r = api.get(entity, t0, params={"page": 1, "pageSize": 1000}, headers={"If-Modified-Since": iso})
        assert r.status_code in (200, 429)
        if r.status_code == 429:
            fresh.advance_clock(int(r.headers["Retry-After"]))
            r = api.get(entity, t0, params={"page": 1, "pageSize": 1000}, headers={"If-Modified-Since": iso})
        changed = r.json()[entity]
        assert changed, entity
        assert all(_ms(x["UpdatedDateUTC"]) >= since for x in changed)
    fresh.advance_clock(60)
    assert _sync_slowly(fresh, api, t0) == after
    # the ledger still balances and equals the trial balance
    fresh.advance_clock(60)
    _trial_balance_equals_journals(api, t0)


def test_activity_without_cost_fields_also_changes_the_cost_side(fresh):
    import requests

    t0 = fresh.health()["tenants"][0]["tenantId"]
    changes = fresh.activity(invoices=10, payments=2, tenant_id=t0)["changes"][t0]
    cost_side = {k: v for k, v in changes.items() if k.startswith(COST_ACTIONS)}
    assert sum(cost_side.values()) >= 12  # a fifth of 10 invoice actions, for each of six streams
    assert len({k.split("_")[0] for k in cost_side}) >= 4

    bad = requests.post(fresh.base_url + "/_sandbox/activity", json={"invoices": 1, "bank_transaction": 2},
                        timeout=10)
    assert bad.status_code == 400 and "bank_transaction" in bad.json()["error"]
    bad = requests.post(fresh.base_url + "/_sandbox/activity", json={"manual_journals": -1}, timeout=10)
    assert bad.status_code == 400


# ----------------------------------------------------------------------------- profit and loss

def _rdiv(a: int, b: int) -> int:
    q, r = divmod(abs(a), b)
    if 2 * r >= b:
        q += 1
    return q if a >= 0 else -q


def _base(cents: int, rate: float) -> int:
    micros = round(rate * 1_000_000)
    return cents if micros == 1_000_000 else _rdiv(cents * 1_000_000, micros)


def _cents(x) -> int:
    return int((Decimal(str(x)) * 100).to_integral_value(ROUND_HALF_UP))


def documents_by_project(api, tenant: str, first_ms: int | None = None, last_ms: int | None = None):
    """Revenue (sales invoices less credit notes) and cost (bills, spend money, manual journals) per
    project option, tax exclusive, in base currency, from the documents alone."""
    cat = project_category(api, tenant)
    accounts = {a["Code"]: a for a in api.get("Accounts", tenant).json()["Accounts"]}
    revenue: Counter = Counter()
    cost: Counter = Counter()

    def inside(doc) -> bool:
        ms = _ms(doc["Date"])
        return (first_ms is None or ms >= first_ms) and (last_ms is None or ms <= last_ms)

    def project_of(tracking) -> str | None:
        return next((tr["Option"] for tr in tracking if tr["TrackingCategoryID"] == cat["TrackingCategoryID"]),
                    None)

    def add_lines(doc, sign: int, rate: float = 1.0, lines_key: str = "LineItems") -> None:
        for ln in doc[lines_key]:
            name = project_of(ln["Tracking"])
            cls = accounts[ln["AccountCode"]]["Class"]
            if name is None or cls not in ("REVENUE", "EXPENSE"):
                continue
            net = _cents(ln["LineAmount"])
            if doc.get("LineAmountTypes") == "Inclusive":
                net -= _cents(ln["TaxAmount"])
            value = sign * _base(net, rate)
            (revenue if cls == "REVENUE" else cost)[name] += -value if cls == "REVENUE" else value

    for inv in api.all_pages("Invoices", tenant):
        if inv["Status"] in ("AUTHORISED", "PAID") and inside(inv):
            add_lines(inv, -1 if inv["Type"] == "ACCREC" else 1, inv["CurrencyRate"])
    for cn in api.all_pages("CreditNotes", tenant):
        if cn["Status"] in ("AUTHORISED", "PAID") and inside(cn):
            add_lines(cn, 1 if cn["Type"] == "ACCRECCREDIT" else -1, cn["CurrencyRate"])
    for bt in api.all_pages("BankTransactions", tenant):
        if bt["Status"] == "AUTHORISED" and inside(bt):
            add_lines(bt, 1 if bt["Type"].startswith("SPEND") else -1)
    for mj in api.all_pages("ManualJournals", tenant):
        if mj["Status"] == "POSTED" and inside(mj):
            for ln in mj["JournalLines"]:
                name = project_of(ln["Tracking"])
                cls = accounts[ln["AccountCode"]]["Class"]
                if name is not None and cls in ("REVENUE", "EXPENSE"):
                    (revenue if cls == "REVENUE" else cost)[name] += (-1 if cls == "REVENUE" else 1) * \
                        _cents(ln["LineAmount"])
    def fmt(per: Counter) -> dict[str, str]:
        return {name: str((Decimal(v) / 100).quantize(CENT)) for name, v in sorted(per.items()) if v}
    return fmt(revenue), fmt(cost)


def test_project_pnl_equals_the_documents_and_the_truth(api):
    for tenant in api.tenants:
        truth = api.sb.truth()["tenants"][tenant]["project_pnl"]
        revenue, cost = documents_by_project(api, tenant)
        from_report = project_pnl(api, tenant)
        assert from_report == truth
        assert {k: Decimal(v) for k, v in revenue.items()} == {k: Decimal(v) for k, v in truth["revenue"].items()}
        assert {k: Decimal(v) for k, v in cost.items()} == {k: Decimal(v) for k, v in truth["cost"].items()}


def test_profit_and_loss_by_project_for_a_month_equals_that_months_documents(api):
    t = api.tenants[0]
    lo = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000)
    hi = int(datetime(2024, 3, 31, tzinfo=UTC).timestamp() * 1000)
    revenue, cost = documents_by_project(api, t, lo, hi)
    assert revenue and cost
    got = project_pnl(api, t, "2024-03-01", "2024-03-31")
    assert {k: Decimal(v) for k, v in got["revenue"].items()} == {k: Decimal(v) for k, v in revenue.items()}
    assert {k: Decimal(v) for k, v in got["cost"].items()} == {k: Decimal(v) for k, v in cost.items()}


def test_profit_and_loss_columns_add_up(api):
    t = api.tenants[0]
    cat = project_category(api, t)
    report = api.get("Reports/ProfitAndLoss", t, params={"fromDate": "2024-01-01", "toDate": "2024-06-30",
                                                         "trackingCategoryID": cat["TrackingCategoryID"]}
                     ).json()["Reports"][0]
    assert report["ReportID"] == "ProfitAndLoss" and report["ReportTitles"][-1] == "1 January 2024 to 30 June 2024"
    header = [c["Value"] for c in report["Rows"][0]["Cells"]]
    assert header[0] == "" and header[-2:] == ["Unassigned", "Total"]
    active = {o["Name"] for o in cat["Options"] if o["Status"] == "ACTIVE"}
    assert active <= set(header[1:-2])
    for section in report["Rows"][1:]:
        for row in section["Rows"]:
            values = [Decimal(c["Value"]) for c in row["Cells"][1:]]
            assert sum(values[:-1]) == values[-1], (section["Title"], row["Cells"][0]["Value"])
            if row["RowType"] == "Row" and section["Title"]:
                assert row["Cells"][0]["Attributes"][0]["Id"] == "account"
    titles = [s["Title"] for s in report["Rows"][1:]]
    assert titles[0] == "Income" and "Less Cost of Sales" in titles and "Less Operating Expenses" in titles
    net = next(r for s in report["Rows"][1:] for r in s["Rows"] if r["Cells"][0]["Value"] == "Net Profit")
    cols = pnl_columns(report)
    total = cols["Total"]
    assert Decimal(net["Cells"][-1]["Value"]) == sum(total["revenue"].values()) - sum(total["cost"].values())
    # the same range without tracking: one column equal to Total
    plain = api.get("Reports/ProfitAndLoss", t, params={"fromDate": "2024-01-01", "toDate": "2024-06-30"}
                    ).json()["Reports"][0]
    assert [c["Value"] for c in plain["Rows"][0]["Cells"]] == ["", "30 Jun 24"]
    only = pnl_columns(plain)["30 Jun 24"]
    for side in ("revenue", "cost"):
        assert {k: v for k, v in only[side].items() if v} == {k: v for k, v in total[side].items() if v}
    # one option narrows to its column
    option = next(h for h in header[1:-2] if any(cols[h]["revenue"].values()))
    option_id = next(o["TrackingOptionID"] for o in cat["Options"] if o["Name"] == option)
    one = api.get("Reports/ProfitAndLoss", t, params={"fromDate": "2024-01-01", "toDate": "2024-06-30",
                                                      "trackingCategoryID": cat["TrackingCategoryID"],
                                                      "trackingOptionID": option_id}).json()["Reports"][0]
    assert [c["Value"] for c in one["Rows"][0]["Cells"]] == ["", option]
    assert {k: v for k, v in pnl_columns(one)[option]["revenue"].items() if v} == \
        {k: v for k, v in cols[option]["revenue"].items() if v}


def test_profit_and_loss_periods_are_the_months_before(api):
    t = api.tenants[0]
    three = api.get("Reports/ProfitAndLoss", t, params={"fromDate": "2024-03-01", "toDate": "2024-03-31",
                                                        "periods": 2, "timeframe": "MONTH"}).json()["Reports"][0]
    header = [c["Value"] for c in three["Rows"][0]["Cells"]]
    assert header == ["", "31 Mar 24", "29 Feb 24", "31 Jan 24"]
    cols = pnl_columns(three)
    for label, (lo, hi) in zip(header[1:], (("2024-03-01", "2024-03-31"), ("2024-02-01", "2024-02-29"),
                                             ("2024-01-01", "2024-01-31")), strict=True):
        single = api.get("Reports/ProfitAndLoss", t, params={"fromDate": lo, "toDate": hi}).json()["Reports"][0]
        got = pnl_columns(single)
        only = next(iter(got.values()))
        for side in ("revenue", "cost"):
            assert {k: v for k, v in only[side].items() if v} == {k: v for k, v in cols[label][side].items() if v}


def test_profit_and_loss_refuses_bad_parameters(api):
    t = api.tenants[0]
    for params in ({"fromDate": "31/01/2024"}, {"fromDate": "2024-02-01", "toDate": "2024-01-01"},
                   {"periods": 13}, {"timeframe": "WEEK"},
                   {"trackingCategoryID": "00000000-0000-0000-0000-000000000000"}):
        r = api.get("Reports/ProfitAndLoss", t, params=params)
        assert r.status_code == 400, params
        assert r.json()["Type"] == "ValidationException"
    default = api.get("Reports/ProfitAndLoss", t).json()["Reports"][0]
    assert default["ReportTitles"][-1].startswith("1 ")  # the current month


def test_trial_balance_covers_the_new_postings(api):
    for t in api.tenants:
        _trial_balance_equals_journals(api, t)
    journals = api.all_journals(api.tenants[0])
    kinds = Counter(j["SourceType"] for j in journals)
    assert {"CASHPAID", "CASHREC", "ARPREPAYMENT", "AROVERPAYMENT", "MANJOURNAL"} <= set(kinds)
    codes = {ln["AccountCode"] for j in journals for ln in j["JournalLines"]}
    assert {"835", "814", "315", "477", "416", "721"} <= codes


def _trial_balance_equals_journals(api, t: str) -> None:
    by_account: dict[str, int] = {}
    for j in api.all_journals(t):
        assert sum(_cents(ln["NetAmount"]) for ln in j["JournalLines"]) == 0
        for ln in j["JournalLines"]:
            by_account[ln["AccountID"]] = by_account.get(ln["AccountID"], 0) + _cents(ln["NetAmount"])
    report = api.get("Reports/TrialBalance", t, params={"date": "2100-01-01"}).json()["Reports"][0]
    seen: dict[str, int] = {}
    for section in report["Rows"][1:]:
        for row in section["Rows"]:
            if row["RowType"] == "Row":
                aid = row["Cells"][0]["Attributes"][0]["Value"]
                seen[aid] = _cents(row["Cells"][3]["Value"] or 0) - _cents(row["Cells"][4]["Value"] or 0)
    assert seen == {k: v for k, v in by_account.items() if v}
    total = report["Rows"][-1]["Rows"][0]["Cells"]
    assert total[3]["Value"] == total[4]["Value"]


def test_journal_lines_carry_the_tracking_of_their_document_lines(api):
    t = api.tenants[0]
    invoices = {i["InvoiceID"]: i for i in api.all_pages("Invoices", t)}
    bank = {b["BankTransactionID"]: b for b in api.all_pages("BankTransactions", t)}
    checked = 0
    for j in api.all_journals(t):
        doc = invoices.get(j["SourceID"]) if j["SourceType"] in ("ACCREC", "ACCPAY") else \
            bank.get(j["SourceID"]) if j["SourceType"] in ("CASHPAID", "CASHREC") else None
        if doc is None or doc["Status"] in ("VOIDED", "DELETED"):
            continue
        wanted = Counter(tuple(sorted((tr["TrackingCategoryID"], tr["TrackingOptionID"]) for tr in ln["Tracking"]))
                         for ln in doc["LineItems"] if ln["LineAmount"])
        got = Counter(tuple(sorted((tr["TrackingCategoryID"], tr["TrackingOptionID"])
                                   for tr in ln["TrackingCategories"]))
                      for ln in j["JournalLines"] if ln["TrackingCategories"])
        assert got == Counter({k: v for k, v in wanted.items() if k}), j["JournalNumber"]
        for ln in j["JournalLines"]:
            for tr in ln["TrackingCategories"]:
                assert set(tr) >= {"Name", "Option", "TrackingCategoryID", "TrackingOptionID"}
        checked += 1
    assert checked > 100


# ----------------------------------------------------------------------------- project categories

@pytest.mark.parametrize("dataset,tenants", [("small", None), ("many", 4)])
def test_project_category_names_per_tenant(dataset, tenants, make_api):
    from xero_sandbox.generate import project_category_name

    extra = ["--tenants", str(tenants)] if tenants else []
    with running_sandbox(dataset, seed=1, limits=False, extra_args=extra) as sb:
        api = make_api(sb, sb.connect())
        names = [project_category(api, t)["Name"] for t in api.tenants]
        assert names[:2] == ["Job", "Projects"]
        assert all(n == "Project" for n in names[2:])
        assert names == [project_category_name(n) for n in range(len(names))]
        first = api.all_pages("Invoices", api.tenants[0])
        assert any(tr["Name"] == "Job" for i in first for ln in i["LineItems"] for tr in ln["Tracking"])


def test_full_sync_of_the_second_tenant_equals_truth(api):
    """Both organisations of small, whatever their project category is called."""
    t = api.tenants[1]
    assert full_sync(api, t) == api.sb.truth()["tenants"][t]
