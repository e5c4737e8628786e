"""Ground truth: it equals what a full sync reads from the API, changes with activity, and is
deterministic for a dataset and seed."""

from __future__ import annotations

from decimal import Decimal

from xero_sandbox.testing import running_sandbox

TRUTH_KEYS = {"clients", "invoices", "invoice_lines", "payments", "credit_notes", "journals", "journal_lines",
              "credit_note_lines", "bank_transactions", "bank_transaction_lines", "manual_journals",
              "manual_journal_lines", "purchase_orders", "purchase_order_lines", "prepayments",
              "prepayment_allocations", "overpayments", "overpayment_allocations", "linked_transactions",
              "project_pnl", "bank_transfers"}
#: What AEC firms call their project tracking category.
PROJECT_CATEGORY_NAMES = {"Project", "Projects", "Job", "Jobs"}


def _d(x) -> Decimal:
    return Decimal(str(x)).quantize(Decimal("0.01"))


def _sum(values) -> str:
    return str(sum((_d(v) for v in values), Decimal("0.00")))


def _docs(items) -> dict:
    return {"count": len(items), "total": _sum(i["Total"] for i in items)}


def _lines(items, key: str = "LineItems") -> dict:
    lines = [ln for i in items for ln in i[key]]
    return {"count": len(lines), "line_amount": _sum(ln["LineAmount"] for ln in lines)}


def _allocations(items) -> dict:
    allocs = [a for i in items for a in i["Allocations"]]
    return {"count": len(allocs), "amount": _sum(a["Amount"] for a in allocs)}


def all_linked_transactions(api, tenant: str) -> list[dict]:
    out, page = [], 1
    while True:
        r = api.get("LinkedTransactions", tenant, params={"page": page})
        assert r.status_code == 200, r.text[:300]
        items = r.json()["LinkedTransactions"]
        if not items:
            return out
        out += items
        page += 1


def project_category(api, tenant: str) -> dict:
    cats = api.get("TrackingCategories", tenant, params={"includeArchived": "true"}).json()["TrackingCategories"]
    return next(c for c in cats if c["Name"] in PROJECT_CATEGORY_NAMES)


def pnl_columns(report: dict) -> dict[str, dict[str, dict[str, Decimal]]]:
    """{column: {"revenue"|"cost": {account name: amount}}} from a Profit and Loss report."""
    header = [c["Value"] for c in report["Rows"][0]["Cells"]][1:]
    out: dict = {h: {"revenue": {}, "cost": {}} for h in header}
    for section in report["Rows"][1:]:
        side = {"Income": "revenue", "Plus Other Income": "revenue", "Less Cost of Sales": "cost",
                "Less Operating Expenses": "cost"}.get(section["Title"])
        if side is None:
            continue
        for row in section["Rows"]:
            if row["RowType"] != "Row":
                continue
            for h, cell in zip(header, row["Cells"][1:], strict=True):
                out[h][side][row["Cells"][0]["Value"]] = Decimal(cell["Value"])
    return out


def project_pnl(api, tenant: str, from_date: str = "1900-01-01", to_date: str = "2100-12-31") -> dict:
    """Revenue and cost per project option, from Xero's P&L by the project tracking category."""
    cat = project_category(api, tenant)
    r = api.get("Reports/ProfitAndLoss", tenant, params={"fromDate": from_date, "toDate": to_date,
                                                         "trackingCategoryID": cat["TrackingCategoryID"]})
    assert r.status_code == 200, r.text[:300]
    cols = pnl_columns(r.json()["Reports"][0])
    out: dict = {"revenue": {}, "cost": {}}
    for name, sides in cols.items():
        if name in ("Unassigned", "Total"):
            continue
        for side in ("revenue", "cost"):
            value = sum(sides[side].values(), Decimal("0.00"))
            if value:
                out[side][name] = str(value.quantize(Decimal("0.01")))
    return {side: dict(sorted(v.items())) for side, v in out.items()}


def _bank_transfers(api, tenant: str) -> dict:
    r = api.get("BankTransfers", tenant)  # not paged: every transfer in one answer
    assert r.status_code == 200, r.text[:300]
    items = r.json()["BankTransfers"]
    return {"count": len(items), "amount": _sum(x["Amount"] for x in items)}


def full_sync(api, tenant: str, journals: bool = True) -> dict:
    contacts = api.all_pages("Contacts", tenant, params={"includeArchived": "true"})
    invoices = api.all_pages("Invoices", tenant)
    payments = api.all_pages("Payments", tenant)
    credit_notes = api.all_pages("CreditNotes", tenant)
    bank = api.all_pages("BankTransactions", tenant)
    manual = api.all_pages("ManualJournals", tenant)
    orders = api.all_pages("PurchaseOrders", tenant)
    prepayments = api.all_pages("Prepayments", tenant)
    overpayments = api.all_pages("Overpayments", tenant)
    out = {
        "clients": {"count": len(contacts)},
        "invoices": {"count": len(invoices), "total": _sum(i["Total"] for i in invoices)},
        "invoice_lines": {"count": sum(len(i["LineItems"]) for i in invoices)},
        "payments": {"count": len(payments), "amount": _sum(p["Amount"] for p in payments)},
        "credit_notes": {"count": len(credit_notes), "total": _sum(c["Total"] for c in credit_notes)},
        "credit_note_lines": _lines(credit_notes),
        "bank_transactions": _docs(bank),
        "bank_transaction_lines": _lines(bank),
        "manual_journals": {"count": len(manual)},
        "manual_journal_lines": {"count": sum(len(m["JournalLines"]) for m in manual)},
        "purchase_orders": _docs(orders),
        "purchase_order_lines": _lines(orders),
        "prepayments": _docs(prepayments),
        "prepayment_allocations": _allocations(prepayments),
        "overpayments": _docs(overpayments),
        "overpayment_allocations": _allocations(overpayments),
        "linked_transactions": {"count": len(all_linked_transactions(api, tenant))},
        "project_pnl": project_pnl(api, tenant),
        "bank_transfers": _bank_transfers(api, tenant),
    }
    if journals:
        js = api.all_journals(tenant)
        by_code: dict[str, Decimal] = {}
        for j in js:
            for ln in j["JournalLines"]:
                by_code[ln["AccountCode"]] = by_code.get(ln["AccountCode"], Decimal("0.00")) + _d(ln["NetAmount"])
        out["journals"] = {"count": len(js)}
        out["journal_lines"] = {"count": sum(len(j["JournalLines"]) for j in js),
                                "net_by_account_code": {k: str(v) for k, v in sorted(by_code.items())}}
    return out


def test_truth_shape(small):
    truth = small.truth()
    assert set(truth) == {"tenants"}
    assert len(truth["tenants"]) == 2
    for t in truth["tenants"].values():
        assert set(t) == TRUTH_KEYS
        for key, entry in t.items():  # flat counts and sums, except the project P&L and net by account
            if key not in ("project_pnl", "journal_lines"):
                assert all(isinstance(v, int) if k == "count" else isinstance(v, str) for k, v in entry.items()), key
        assert t["project_pnl"]["revenue"] and t["project_pnl"]["cost"]
        assert isinstance(t["invoices"]["total"], str) and t["invoices"]["total"].count(".") == 1
        assert len(t["invoices"]["total"].split(".")[1]) == 2
        assert sum(Decimal(v) for v in t["journal_lines"]["net_by_account_code"].values()) == 0


def test_truth_equals_a_full_sync(api):
    truth = api.sb.truth()["tenants"]
    for tenant in api.tenants:
        assert full_sync(api, tenant) == truth[tenant]


def test_activity_changes_truth_and_a_sync_still_matches(fresh, make_api):
    api = make_api(fresh, fresh.connect())
    before = fresh.truth()["tenants"]
    t0 = api.tenants[0]
    invs_before = api.all_pages("Invoices", t0)
    newest = max(int(i["UpdatedDateUTC"][6:-7]) for i in invs_before)
    fresh.advance_clock(120)
    changes = fresh.activity(invoices=30, payments=20)["changes"]
    assert changes[t0]
    after = fresh.truth()["tenants"]
    assert after != before
    assert after[t0]["journals"]["count"] > before[t0]["journals"]["count"]
    # limits are on in this sandbox: spread the calls over "minutes"
    for tenant in api.tenants:
        got = _sync_slowly(fresh, api, tenant)
        assert got == after[tenant]
    # the changed records carry the sandbox clock's "now"
    from datetime import UTC, datetime
    iso = datetime.fromtimestamp(newest / 1000 + 1, tz=UTC).isoformat()
    r = api.get("Invoices", t0, params={"page": 1, "pageSize": 1000}, headers={"If-Modified-Since": iso})
    changed = r.json()["Invoices"]
    assert changed
    now_ms = fresh.clock()["now_ms"]
    assert all(now_ms - 120_000 < int(i["UpdatedDateUTC"][6:-7]) <= now_ms for i in changed)


def _sync_slowly(sb, api, tenant):
    import requests

    orig = api.get

    def get(*a, **kw):
        r = orig(*a, **kw)
        if r.status_code == 429:
            sb.advance_clock(int(r.headers["Retry-After"]))
            r = orig(*a, **kw)
        assert r.status_code == 200, r.text[:200]
        return r
    api.get = get
    try:
        return full_sync(api, tenant)
    finally:
        api.get = orig
        del requests


def test_same_seed_same_books_other_seed_other_books(small):
    again_truth = None
    with running_sandbox("small", seed=1, limits=False) as sb:
        again_truth = sb.truth()
    assert again_truth == small.truth()
    with running_sandbox("small", seed=2, limits=False) as sb:
        other = sb.truth()
    assert set(other["tenants"]) != set(again_truth["tenants"])
