"""Ground truth: it equals what a full sync reads from the API, changes with activity, and is
deterministic for a dataset and seed."""

from __future__ import annotations

from decimal import Decimal

from xero_sandbox.testing import running_sandbox

TRUTH_KEYS = {"clients", "invoices", "invoice_lines", "payments", "credit_notes", "journals", "journal_lines"}


def _d(x) -> Decimal:
    return Decimal(str(x)).quantize(Decimal("0.01"))


def _sum(values) -> str:
    return str(sum((_d(v) for v in values), Decimal("0.00")))


def full_sync(api, tenant: str, journals: bool = True) -> dict:
    contacts = api.all_pages("Contacts", tenant, params={"includeArchived": "true"})
    invoices = api.all_pages("Invoices", tenant)
    payments = api.all_pages("Payments", tenant)
    credit_notes = api.all_pages("CreditNotes", tenant)
    out = {
        "clients": {"count": len(contacts)},
        "invoices": {"count": len(invoices), "total": _sum(i["Total"] for i in invoices)},
        "invoice_lines": {"count": sum(len(i["LineItems"]) for i in invoices)},
        "payments": {"count": len(payments), "amount": _sum(p["Amount"] for p in payments)},
        "credit_notes": {"count": len(credit_notes), "total": _sum(c["Total"] for c in credit_notes)},
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
