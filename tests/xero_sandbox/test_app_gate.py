"""Xero's 2026 Journals gate: an app below the Advanced tier is refused GET /Journals for every
organisation it is connected to; everything else answers it as before. The gate is the app's,
never the organisation's, so the truth keeps every tenant's ledger."""

from __future__ import annotations

import pytest
from xero_sandbox.testing import CORE_CLIENT_ID, CORE_CLIENT_SECRET, DEMO_CLIENT_ID, running_sandbox

REFUSED = {"Type": None, "Title": "Unauthorized", "Status": 401, "Detail": "AuthorizationUnsuccessful"}
#: Every read endpoint except Journals, with the query each needs.
OTHER_ENDPOINTS = [("Contacts", {"page": 1}), ("Invoices", {"page": 1}), ("Payments", {"page": 1}),
                   ("CreditNotes", {"page": 1}), ("Accounts", {}), ("TrackingCategories", {}), ("Organisation", {}),
                   ("TaxRates", {}), ("BankTransactions", {"page": 1}), ("BankTransfers", {}),
                   ("ManualJournals", {"page": 1}), ("PurchaseOrders", {"page": 1}), ("Prepayments", {"page": 1}),
                   ("Overpayments", {"page": 1}), ("LinkedTransactions", {"page": 1}), ("Reports/TrialBalance", {}),
                   ("Reports/ProfitAndLoss", {})]


def _core(sb, make_api):
    return make_api(sb, sb.connect(client_id=CORE_CLIENT_ID, client_secret=CORE_CLIENT_SECRET))


def _assert_refused(r) -> None:
    assert r.status_code == 401
    body = r.json()
    assert {k: body[k] for k in REFUSED} == REFUSED
    # typed like every other AuthorizationUnsuccessful answer (a missing scope, say)
    assert set(body) == {"Type", "Title", "Status", "Detail", "Instance", "Extensions"} and body["Instance"]


def _assert_serves_everything_else(api, tenant: str) -> None:
    for path, params in OTHER_ENDPOINTS:
        assert api.get(path, tenant, params=params).status_code == 200, path


def test_the_core_tier_app_is_refused_journals_for_every_organisation(small, api, make_api):
    core = _core(small, make_api)
    assert core.tenants == api.tenants  # two apps of one developer: same user, same organisations
    narrow = make_api(small, small.connect(scope="offline_access accounting.invoices.read"))
    missing_scope = narrow.get("Journals", narrow.tenants[0]).json()
    assert set(missing_scope) == {"Type", "Title", "Status", "Detail", "Instance", "Extensions"}
    truth = small.truth()["tenants"]
    for t in core.tenants:
        _assert_refused(core.get("Journals", t, params={"offset": 0}))
        _assert_refused(core.get("Journals", t, params={"offset": 0, "paymentsOnly": "true"}))
        _assert_refused(core.get("Journals/1", t))
        _assert_serves_everything_else(core, t)
        # the demo app, allowed Journals, reads the same organisation's ledger
        assert api.get("Journals", t, params={"offset": 0}).status_code == 200
        assert truth[t]["journals"]["count"] > 0
    apps = {a["clientId"]: a for a in small.health()["apps"]}
    assert apps[DEMO_CLIENT_ID]["journals"] is True
    assert apps[CORE_CLIENT_ID] == {"clientId": CORE_CLIENT_ID, "name": "IntoAEC (sandbox, Core tier)",
                                    "journals": False}
    assert all(set(t) == {"tenantId", "tenantName"} for t in small.health()["tenants"])


def test_the_core_tier_app_uses_client_credentials_and_refresh_like_any_app(small, make_api):
    import requests

    token = small.connect(client_id=CORE_CLIENT_ID, client_secret=CORE_CLIENT_SECRET)
    r = requests.post(small.base_url + "/connect/token", data={"grant_type": "refresh_token",
                                                               "refresh_token": token["refresh_token"]},
                      auth=(CORE_CLIENT_ID, CORE_CLIENT_SECRET), timeout=30)
    assert r.status_code == 200
    refreshed = make_api(small, r.json())
    _assert_refused(refreshed.get("Journals", refreshed.tenants[0]))
    wrong = requests.post(small.base_url + "/connect/token", data={"grant_type": "refresh_token",
                                                                   "refresh_token": r.json()["refresh_token"]},
                          auth=(DEMO_CLIENT_ID, "sandbox-secret"), timeout=30)
    assert wrong.status_code == 400  # a grant belongs to the app that got it


def test_app_without_journals_refuses_the_demo_app_everywhere(make_api):
    with running_sandbox("mixed", seed=1, limits=False, app_without_journals=True) as sb:
        api = make_api(sb, sb.connect())
        assert len(api.tenants) == 2
        for t in api.tenants:
            _assert_refused(api.get("Journals", t, params={"offset": 0}))
            _assert_serves_everything_else(api, t)
        assert {a["clientId"]: a["journals"] for a in sb.health()["apps"]} == {DEMO_CLIENT_ID: False,
                                                                               CORE_CLIENT_ID: False}
        # the organisations still keep their ledgers: the truth a derived ledger must equal
        for truth in sb.truth()["tenants"].values():
            assert truth["journals"]["count"] > 0 and truth["journal_lines"]["net_by_account_code"]


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
@pytest.mark.parametrize("without", [False, True])
def test_create_app_flag(without):
    from fastapi.testclient import TestClient
    from xero_sandbox.app import create_app

    app = create_app("small", 1, limits=False, app_without_journals=without)
    store = app.state.sandbox.identity
    assert store.clients[DEMO_CLIENT_ID].allow_journals is not without
    assert store.clients[CORE_CLIENT_ID].allow_journals is False
    assert store.clients[CORE_CLIENT_ID].secret == CORE_CLIENT_SECRET
    tenant = app.state.sandbox.dataset.tenants[0].tenant_id
    with TestClient(app) as client:
        for client_id, allowed in ((DEMO_CLIENT_ID, not without), (CORE_CLIENT_ID, False)):
            token = store.issue(client_id, ["accounting.journals.read", "accounting.settings.read"], None, None,
                                tenant_nos=[0], with_refresh=False)["access_token"]
            headers = {"Authorization": f"Bearer {token}", "xero-tenant-id": tenant}
            r = client.get("/api.xro/2.0/Journals", headers=headers)
            assert r.status_code == (200 if allowed else 401), client_id
            if not allowed:
                _assert_refused(r)
            assert client.get("/api.xro/2.0/Accounts", headers=headers).status_code == 200
