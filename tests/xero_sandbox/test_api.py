"""Accounting API behaviour: paging, filters, dates, headers, errors, journals."""

from __future__ import annotations

import re
from datetime import UTC, datetime

MS = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def _ms(value: str) -> int:
    m = MS.match(value)
    assert m, value
    return int(m.group(1))


def test_envelope_paging_and_past_the_end(api):
    r = api.get("Invoices", params={"page": 1, "pageSize": 7})
    assert r.status_code == 200
    body = r.json()
    assert body["Status"] == "OK" and body["Id"] and body["ProviderName"]
    assert re.match(r"^/Date\(\d+\)/$", body["DateTimeUTC"])
    p = body["pagination"]
    assert p["page"] == 1 and p["pageSize"] == 7 and len(body["Invoices"]) == 7
    assert p["pageCount"] == -(-p["itemCount"] // 7)
    last = api.get("Invoices", params={"page": p["pageCount"], "pageSize": 7}).json()
    assert 1 <= len(last["Invoices"]) <= 7
    past = api.get("Invoices", params={"page": p["pageCount"] + 1, "pageSize": 7}).json()
    assert past["Invoices"] == [] and past["pagination"]["itemCount"] == p["itemCount"]
    default = api.get("Invoices", params={"page": 1}).json()
    assert default["pagination"]["pageSize"] == 100
    big = api.get("Invoices", params={"page": 1, "pageSize": 5000}).json()
    assert big["pagination"]["pageSize"] == 1000


def test_invoice_shape_lines_tracking_and_dates(api):
    invs = api.all_pages("Invoices", api.tenants[0])
    assert len(invs) > 200
    statuses = {i["Status"] for i in invs}
    assert {"AUTHORISED", "PAID", "VOIDED", "DELETED", "DRAFT"} <= statuses
    assert {"ACCREC", "ACCPAY"} <= {i["Type"] for i in invs}
    lines = [ln for i in invs for ln in i["LineItems"]]
    assert lines and all(ln["LineItemID"] for ln in lines)
    tracked = [t for ln in lines for t in ln["Tracking"] if t["Name"] == "Job"]  # the first firm says "Job"
    assert tracked and all(t["Option"] for t in tracked)
    assert any(ln["LineAmount"] == 0 for ln in lines)                 # zero-amount lines
    assert any(ln["LineAmount"] < 0 for ln in lines)                  # retention held back
    assert any(_ms(i["Date"]) < 0 for i in invs)                      # a pre-1970 date
    assert any(i["UpdatedDateUTC"].endswith("+1300)/") for i in invs)  # non-zero offsets
    assert len({i["CurrencyCode"] for i in invs}) > 1                 # foreign-currency clients
    for i in invs:
        assert _ms(i["Date"]) % 86_400_000 == 0
        expect = i["Total"] if i["LineAmountTypes"] == "Inclusive" else i["SubTotal"]
        assert round(sum(ln["LineAmount"] for ln in i["LineItems"]), 2) == round(expect, 2)
        assert round(i["SubTotal"] + i["TotalTax"], 2) == i["Total"]
        assert round(i["Total"] - i["AmountPaid"] - i["AmountCredited"], 2) == i["AmountDue"]


def test_without_page_all_invoices_come_without_lines(api):
    body = api.get("Invoices").json()
    assert "pagination" not in body
    assert all("LineItems" not in i for i in body["Invoices"])
    assert len(body["Invoices"]) == api.get("Invoices", params={"page": 1}).json()["pagination"]["itemCount"]


def test_unitdp(api):
    invs = api.all_pages("Invoices", api.tenants[0])
    four = api.all_pages("Invoices", api.tenants[0], params={"unitdp": 4})
    u2 = [ln["UnitAmount"] for i in invs for ln in i["LineItems"]]
    u4 = [ln["UnitAmount"] for i in four for ln in i["LineItems"]]
    assert all(round(u, 2) == u for u in u2)
    assert any(round(u, 2) != u for u in u4)


def test_filters(api):
    t = api.tenants[0]
    everyone = api.all_pages("Contacts", t, params={"includeArchived": "true"})
    active = api.all_pages("Contacts", t)
    assert len(active) < len(everyone)
    assert all(c["ContactStatus"] == "ACTIVE" for c in active)
    invs = api.all_pages("Invoices", t)
    paid = api.all_pages("Invoices", t, params={"Statuses": "PAID,VOIDED"})
    assert paid and {i["Status"] for i in paid} == {"PAID", "VOIDED"}
    assert len(paid) == sum(1 for i in invs if i["Status"] in ("PAID", "VOIDED"))
    ids = [invs[0]["InvoiceID"], invs[5]["InvoiceID"]]
    assert {i["InvoiceID"] for i in api.all_pages("Invoices", t, params={"IDs": ",".join(ids)})} == set(ids)
    cid = invs[0]["Contact"]["ContactID"]
    by_contact = api.all_pages("Invoices", t, params={"ContactIDs": cid})
    assert by_contact and all(i["Contact"]["ContactID"] == cid for i in by_contact)
    accrec = api.all_pages("Invoices", t, params={"where": 'Type=="ACCREC"'})
    assert accrec and all(i["Type"] == "ACCREC" for i in accrec)
    jan = api.all_pages("Invoices", t, params={
        "where": "Date >= DateTime(2024,01,01) && Date < DateTime(2024,02,01)"})
    lo = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
    hi = int(datetime(2024, 2, 1, tzinfo=UTC).timestamp() * 1000)
    assert jan and all(lo <= _ms(i["Date"]) < hi for i in jan)
    assert len(jan) == sum(1 for i in invs if lo <= _ms(i["Date"]) < hi)
    combo = api.all_pages("Invoices", t, params={"where": 'Type=="ACCREC" AND Status!="PAID"',
                                                 "order": "Date DESC"})
    dates = [_ms(i["Date"]) for i in combo]
    assert dates == sorted(dates, reverse=True) and all(i["Status"] != "PAID" for i in combo)
    bad = api.get("Invoices", params={"where": "Nonsense==1", "page": 1})
    assert bad.status_code == 400 and bad.json()["Type"] == "QueryParseException"


def test_if_modified_since(api):
    t = api.tenants[0]
    invs = api.all_pages("Invoices", t)
    stamps = sorted(_ms(i["UpdatedDateUTC"]) for i in invs)
    cut = stamps[len(stamps) * 3 // 4]
    iso = datetime.fromtimestamp(cut / 1000, tz=UTC).isoformat()
    r = api.get("Invoices", t, params={"page": 1, "pageSize": 1000}, headers={"If-Modified-Since": iso})
    newer = r.json()["Invoices"]
    assert newer and all(_ms(i["UpdatedDateUTC"]) >= cut - 1000 for i in newer)
    assert len(newer) == sum(1 for s in stamps if s >= (cut // 1000) * 1000)
    http_date = datetime.fromtimestamp(cut / 1000, tz=UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    r2 = api.get("Invoices", t, params={"page": 1, "pageSize": 1000}, headers={"If-Modified-Since": http_date})
    assert len(r2.json()["Invoices"]) == len(newer)
    # TrackingCategories ignores it
    cats = api.get("TrackingCategories", t, headers={"If-Modified-Since": "2100-01-01T00:00:00Z"}).json()
    assert cats["TrackingCategories"]


def test_tenant_header_errors(api):
    missing = api.get("Invoices", tenant=None, params={"page": 1})
    assert missing.status_code == 403
    body = missing.json()
    assert body["Type"] is None and body["Title"] == "Forbidden" and body["Status"] == 403
    assert body["Detail"] == "AuthenticationUnsuccessful" and body["Instance"]
    unknown = api.get("Invoices", tenant="00000000-0000-0000-0000-000000000000", params={"page": 1})
    assert unknown.status_code == 403
    bad_token = api.session.get(api.sb.base_url + "/api.xro/2.0/Invoices",
                                headers={"Authorization": "Bearer nope", "xero-tenant-id": api.tenants[0]})
    assert bad_token.status_code == 401 and bad_token.json()["Detail"].startswith("TokenExpired")


def test_limit_headers_on_every_api_response(api):
    for r in (api.get("Contacts", params={"page": 1}), api.get("Journals"), api.get("Nope")):
        if r.status_code == 404:
            continue
        for h in ("X-DayLimit-Remaining", "X-MinLimit-Remaining", "X-AppMinLimit-Remaining"):
            assert int(r.headers[h]) >= 0


def test_by_id_routes(api):
    t = api.tenants[0]
    inv = api.get("Invoices", t, params={"page": 1}).json()["Invoices"][3]
    one = api.get(f"Invoices/{inv['InvoiceID']}", t).json()["Invoices"]
    assert len(one) == 1 and one[0]["InvoiceID"] == inv["InvoiceID"] and one[0]["LineItems"] == inv["LineItems"]
    assert api.get(f"invoices/{inv['InvoiceNumber']}", t).json()["Invoices"][0]["InvoiceID"] == inv["InvoiceID"]
    c = api.get("Contacts", t, params={"page": 1}).json()["Contacts"][0]
    assert api.get(f"Contacts/{c['ContactID']}", t).json()["Contacts"][0]["Name"] == c["Name"]
    p = api.get("Payments", t, params={"page": 1}).json()["Payments"][0]
    assert api.get(f"Payments/{p['PaymentID']}", t).json()["Payments"][0]["Amount"] == p["Amount"]
    cn = api.get("CreditNotes", t, params={"page": 1}).json()["CreditNotes"][0]
    assert api.get(f"CreditNotes/{cn['CreditNoteID']}", t).json()["CreditNotes"][0]["Total"] == cn["Total"]
    a = api.get("Accounts", t).json()["Accounts"][0]
    assert api.get(f"Accounts/{a['AccountID']}", t).json()["Accounts"][0]["Code"] == a["Code"]
    tc = api.get("TrackingCategories", t).json()["TrackingCategories"][0]
    assert api.get(f"TrackingCategories/{tc['TrackingCategoryID']}", t).json()["TrackingCategories"][0]["Name"]
    j = api.get("Journals", t).json()["Journals"][4]
    by_number = api.get(f"Journals/{j['JournalNumber']}", t).json()["Journals"][0]
    by_id = api.get(f"Journals/{j['JournalID']}", t).json()["Journals"][0]
    assert by_number == by_id and "SourceID" not in by_id and by_id["JournalLines"] == j["JournalLines"]
    missing = api.get("Invoices/00000000-0000-0000-0000-000000000000", t)
    assert missing.status_code == 404
    # a record of another tenant is not visible
    assert api.get(f"Invoices/{inv['InvoiceID']}", api.tenants[1]).status_code == 404


def test_journals_offset_paging_and_payments_only(api):
    t = api.tenants[0]
    first = api.get("Journals", t, params={"offset": 0}).json()["Journals"]
    assert len(first) == 100 and [j["JournalNumber"] for j in first] == list(range(1, 101))
    nxt = api.get("Journals", t, params={"offset": 100, "page": 3}).json()["Journals"]
    assert nxt[0]["JournalNumber"] == 101
    everything = api.all_journals(t)
    assert [j["JournalNumber"] for j in everything] == list(range(1, len(everything) + 1))
    created = [_ms(j["CreatedDateUTC"]) for j in everything]
    assert created == sorted(created)
    for j in everything:
        assert round(sum(ln["NetAmount"] for ln in j["JournalLines"]), 2) == 0, j["JournalNumber"]
        assert j["SourceType"] and j["SourceID"]
        for ln in j["JournalLines"]:
            assert round(ln["GrossAmount"], 2) == round(ln["NetAmount"] + ln["TaxAmount"], 2)
    cash = api.get("Journals", t, params={"offset": 0, "paymentsOnly": "true"}).json()["Journals"]
    assert cash and all(j["SourceType"].endswith("PAYMENT") for j in cash)
    cut = created[len(created) // 2]
    iso = datetime.fromtimestamp(cut / 1000, tz=UTC).isoformat()
    newer = api.get("Journals", t, params={"offset": 0}, headers={"If-Modified-Since": iso}).json()["Journals"]
    assert all(_ms(j["CreatedDateUTC"]) >= cut - 1000 for j in newer)
    assert newer[0]["JournalNumber"] > 1


def test_every_organisation_serves_journals_to_an_app_allowed_them(medium_api):
    """Xero gates Journals per app (its partner tier), never per organisation."""
    truth = medium_api.sb.truth()["tenants"]
    for c in medium_api.connections():
        t = c["tenantId"]
        r = medium_api.get("Journals", t, params={"offset": 0})
        assert r.status_code == 200 and r.json()["Journals"], c["tenantName"]
        assert truth[t]["journals"]["count"] > 0 and truth[t]["journal_lines"]["net_by_account_code"]


def test_trial_balance_agrees_with_journal_lines(api):
    t = api.tenants[0]
    journals = api.all_journals(t)
    by_account: dict[str, int] = {}
    for j in journals:
        for ln in j["JournalLines"]:
            by_account[ln["AccountID"]] = by_account.get(ln["AccountID"], 0) + round(ln["NetAmount"] * 100)
    report = api.get("Reports/TrialBalance", t).json()["Reports"][0]
    assert report["ReportID"] == "TrialBalance"
    seen: dict[str, int] = {}
    for section in report["Rows"][1:]:
        for row in section["Rows"]:
            if row["RowType"] != "Row":
                continue
            aid = row["Cells"][0]["Attributes"][0]["Value"]
            ytd_dr = round(float(row["Cells"][3]["Value"] or 0) * 100)
            ytd_cr = round(float(row["Cells"][4]["Value"] or 0) * 100)
            seen[aid] = ytd_dr - ytd_cr
    assert seen == {k: v for k, v in by_account.items() if v}
    total = report["Rows"][-1]["Rows"][0]["Cells"]
    assert total[3]["Value"] == total[4]["Value"]
    early = api.get("Reports/TrialBalance", t, params={"date": "2023-06-30"}).json()["Reports"][0]
    assert early["ReportDate"] == "30 June 2023"
