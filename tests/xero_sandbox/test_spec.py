"""Every sandbox response validates against Xero's own OpenAPI specs (openapi-core).

Success bodies are validated by openapi-core against the operation's declared response in
``xero_accounting.yaml`` / ``xero-identity.yaml``. The spec declares no error responses for these
GET operations, so error bodies are checked against the spec's ``Error`` schema where Xero uses
it (400 ``QueryParseException``/``ValidationException``) and otherwise against the problem shape
Xero documents for 401/403/404/429/5xx (``Title``/``Status``/``Detail``).

small is validated exhaustively (every page of every stream), medium and many on the first
pages of every tenant, and medium's biggest organisation on full 1000-record pages from the
start, middle and end of each stream.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import requests
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator
from xero_sandbox.testing import CORE_CLIENT_ID, CORE_CLIENT_SECRET, running_sandbox

SPEC_DIR = Path(__file__).resolve().parents[3] / "shared" / "xero-openapi"
if not SPEC_DIR.exists():  # the specs live next to the repository
    SPEC_DIR = Path("/work/shared/xero-openapi")

PROBLEM = {
    "type": "object",
    "required": ["Title", "Status", "Detail"],
    "properties": {
        "Type": {"type": "string", "nullable": True},
        "Title": {"type": "string"},
        "Status": {"type": "integer"},
        "Detail": {"type": "string"},
        "Instance": {"type": "string"},
    },
}
PAGED = ("Contacts", "Invoices", "Payments", "CreditNotes", "BankTransactions", "ManualJournals", "PurchaseOrders",
         "Prepayments", "Overpayments")
IDS = {"Contacts": "ContactID", "Invoices": "InvoiceID", "Payments": "PaymentID", "CreditNotes": "CreditNoteID",
       "BankTransactions": "BankTransactionID", "ManualJournals": "ManualJournalID",
       "PurchaseOrders": "PurchaseOrderID", "Prepayments": "PrepaymentID", "Overpayments": "OverpaymentID"}


class Validator:
    def __init__(self) -> None:
        cfg = Config(spec_validator_cls=None)  # Xero's spec has string defaults on booleans; skip spec lint
        self.accounting = OpenAPI.from_file_path(str(SPEC_DIR / "xero_accounting.yaml"), config=cfg)
        self.identity = OpenAPI.from_file_path(str(SPEC_DIR / "xero-identity.yaml"), config=cfg)
        raw = yaml.safe_load((SPEC_DIR / "xero_accounting.yaml").read_text())
        self.error_schema = OAS30Validator({"components": raw["components"], "$ref": "#/components/schemas/Error"})
        self.problem_schema = OAS30Validator(PROBLEM)
        self.checked: dict[str, int] = {}

    def response(self, path: str, args: dict, resp: requests.Response, identity: bool = False) -> None:
        key = f"{resp.status_code} {path.split('/')[0] if not identity else path}"
        self.checked[key] = self.checked.get(key, 0) + 1
        if resp.status_code >= 400:
            body = resp.json()
            if resp.status_code == 400 and "Type" in body and "ErrorNumber" in body:
                self.error_schema.validate(body)
            else:
                self.problem_schema.validate(body)
            return
        api = self.identity if identity else self.accounting
        url = path if identity else f"/api.xro/2.0/{path}"
        req = MockRequest("https://api.xero.com", "get", url, args={k: str(v) for k, v in args.items()})
        res = MockResponse(resp.content, status_code=resp.status_code, content_type="application/json")
        api.validate_response(req, res)


@pytest.fixture(scope="module")
def validator():
    return Validator()


def _get(api, v: Validator, path: str, tenant, args=None, headers=None) -> requests.Response:
    args = dict(args or {})
    r = api.get(path, tenant, params=args, headers=headers)
    v.response(path, args, r)
    return r


def _walk_tenant(api, v: Validator, tenant: str, max_pages: int | None, page_size: int = 100) -> None:
    firsts = {}
    for entity in PAGED:
        page = 1
        while max_pages is None or page <= max_pages:
            args = {"page": page, "pageSize": page_size}
            if entity == "Contacts":
                args["includeArchived"] = "true"
            items = _get(api, v, entity, tenant, args).json()[entity]
            if page == 1 and items:
                firsts[entity] = items[0]
            if not items:
                break
            page += 1
    _get(api, v, "Invoices", tenant, {"page": 1, "unitdp": 4})
    _get(api, v, "Invoices", tenant, {"page": 1, "summaryOnly": "true"})
    _get(api, v, "Contacts", tenant, {"page": 1, "summaryOnly": "true"})
    _get(api, v, "Invoices", tenant, {"page": 1, "where": 'Type=="ACCPAY"', "order": "UpdatedDateUTC DESC"})
    _get(api, v, "Invoices", tenant, {"page": 1}, headers={"If-Modified-Since": "2025-01-01T00:00:00"})
    _get(api, v, "Accounts", tenant)
    org = _get(api, v, "Organisation", tenant).json()["Organisations"][0]
    assert org["OrganisationID"] == tenant and org["BaseCurrency"]
    cats = _get(api, v, "TrackingCategories", tenant, {"includeArchived": "true"}).json()["TrackingCategories"]
    _get(api, v, "TrackingCategories", tenant)
    _get(api, v, "Reports/TrialBalance", tenant)
    _get(api, v, "Reports/TrialBalance", tenant, {"date": "2024-03-31"})
    for entity, first in firsts.items():
        _get(api, v, f"{entity}/{first[IDS[entity]]}", tenant)
    _walk_cost_side(api, v, tenant, cats, max_pages)
    acct = api.get("Accounts", tenant).json()["Accounts"][0]
    _get(api, v, f"Accounts/{acct['AccountID']}", tenant)
    _get(api, v, f"TrackingCategories/{cats[0]['TrackingCategoryID']}", tenant)
    offset, pages = 0, 0
    while max_pages is None or pages < max_pages:
        js = _get(api, v, "Journals", tenant, {"offset": offset}).json()["Journals"]
        pages += 1
        if not js:
            break
        offset = js[-1]["JournalNumber"]
    _get(api, v, "Journals", tenant, {"offset": 0, "paymentsOnly": "true"})
    _get(api, v, "Journals/1", tenant)
    j = api.get("Journals", tenant).json()["Journals"][0]
    _get(api, v, f"Journals/{j['JournalID']}", tenant)


def _walk_cost_side(api, v: Validator, tenant: str, cats: list[dict], max_pages: int | None) -> None:
    """The cost side's extra query forms, LinkedTransactions' own paging, and every P&L layout."""
    _get(api, v, "BankTransactions", tenant, {"page": 1, "unitdp": 4})
    _get(api, v, "BankTransactions", tenant, {"page": 1, "where": 'Type=="SPEND"', "order": "Date DESC"})
    _get(api, v, "ManualJournals", tenant, {"page": 1}, headers={"If-Modified-Since": "2025-01-01T00:00:00"})
    _get(api, v, "PurchaseOrders", tenant, {"page": 1, "Status": "AUTHORISED", "DateFrom": "2023-01-01"})
    _get(api, v, "Prepayments", tenant, {"page": 1, "unitdp": 4})
    _get(api, v, "Overpayments", tenant, {"page": 1, "where": 'Status=="PAID"'})
    page = 1
    while max_pages is None or page <= max_pages:
        links = _get(api, v, "LinkedTransactions", tenant, {"page": page}).json()["LinkedTransactions"]
        if not links:
            break
        if page == 1:
            _get(api, v, f"LinkedTransactions/{links[0]['LinkedTransactionID']}", tenant)
            _get(api, v, "LinkedTransactions", tenant, {"ContactID": links[0]["ContactID"], "Status": "BILLED"})
        page += 1
    transfers = _get(api, v, "BankTransfers", tenant).json()["BankTransfers"]
    assert transfers
    _get(api, v, f"BankTransfers/{transfers[0]['BankTransferID']}", tenant)
    _get(api, v, "BankTransfers", tenant, {"where": "Amount>=1000", "order": "Amount DESC", "includeDeleted": "true"},
         headers={"If-Modified-Since": "2025-01-01T00:00:00"})
    rates = _get(api, v, "TaxRates", tenant).json()["TaxRates"]
    _get(api, v, f"TaxRates/{rates[-1]['TaxType']}", tenant)
    _get(api, v, "TaxRates", tenant, {"where": 'Status=="ACTIVE"', "order": "Name ASC"})
    _get(api, v, "Reports/ProfitAndLoss", tenant)
    _get(api, v, "Reports/ProfitAndLoss", tenant, {"fromDate": "2024-01-01", "toDate": "2024-12-31"})
    _get(api, v, "Reports/ProfitAndLoss", tenant, {"fromDate": "2024-06-01", "toDate": "2024-06-30", "periods": 3,
                                                   "timeframe": "MONTH"})
    for cat in cats:
        args = {"fromDate": "2024-01-01", "toDate": "2024-03-31", "trackingCategoryID": cat["TrackingCategoryID"]}
        _get(api, v, "Reports/ProfitAndLoss", tenant, args)
        if cat["Options"]:
            _get(api, v, "Reports/ProfitAndLoss", tenant,
                 {**args, "trackingOptionID": cat["Options"][0]["TrackingOptionID"]})


def test_small_every_endpoint_every_page(api, validator):
    v = validator
    conns = requests.get(api.sb.base_url + "/connections", headers=api.auth(), timeout=30)
    v.response("/Connections", {}, conns, identity=True)
    for tenant in api.tenants:
        _walk_tenant(api, v, tenant, max_pages=None)
    # error bodies
    t = api.tenants[0]
    assert _get(api, v, "Invoices", None, {"page": 1}).status_code == 403
    assert _get(api, v, "Invoices", "11111111-1111-1111-1111-111111111111", {"page": 1}).status_code == 403
    assert _get(api, v, "Invoices", t, {"page": 1, "where": "Bogus>>1"}).status_code == 400
    assert _get(api, v, "Reports/TrialBalance", t, {"date": "31/12/2024"}).status_code == 400
    assert _get(api, v, "Reports/ProfitAndLoss", t, {"periods": 40}).status_code == 400
    assert _get(api, v, "BankTransactions", t, {"page": 1, "where": "Bogus==1"}).status_code == 400
    assert _get(api, v, "ManualJournals/00000000-0000-0000-0000-000000000000", t).status_code == 404
    narrow = api.__class__(api.sb, api.sb.connect(scope="offline_access accounting.invoices.read"))
    for path in ("BankTransactions", "BankTransfers", "TaxRates", "ManualJournals", "Prepayments",
                 "Reports/ProfitAndLoss"):
        r = narrow.get(path, t, params={"page": 1})
        assert r.status_code == 401
        v.response(path, {"page": 1}, r)
    assert _get(api, v, "Invoices/00000000-0000-0000-0000-000000000000", t).status_code == 404
    assert _get(api, v, "BankTransfers/00000000-0000-0000-0000-000000000000", t).status_code == 404
    core = api.__class__(api.sb, api.sb.connect(client_id=CORE_CLIENT_ID, client_secret=CORE_CLIENT_SECRET))
    r = core.get("Journals", t, params={"offset": 0})
    assert r.status_code == 401
    v.response("Journals", {"offset": 0}, r)
    r = api.session.get(api.sb.base_url + "/api.xro/2.0/Invoices", headers={"Authorization": "Bearer x"})
    assert r.status_code == 401
    v.response("Invoices", {}, r)
    for status in (429, 500, 503):
        api.sb.faults(endpoint="Payments", status=status, count=1)
        assert _get(api, v, "Payments", t, {"page": 1}).status_code == status
    api.sb.clear_faults()
    assert {k.split()[0] for k in v.checked} >= {"200", "400", "401", "403", "404", "429", "500", "503"}
    assert {"200 BankTransfers", "200 TaxRates", "401 Journals", "404 BankTransfers"} <= set(v.checked)


@pytest.mark.slow  # medium
def test_medium_every_endpoint(medium_api, validator):
    conns = medium_api.connections()
    for c in conns:
        _walk_tenant(medium_api, validator, c["tenantId"], max_pages=3)


@pytest.mark.slow  # the 50-organisation dataset
def test_many_tenants_sampled(validator, make_api):
    with running_sandbox("many", seed=3, limits=False) as sb:
        api = make_api(sb, sb.connect())
        assert len(api.tenants) == 50
        for n in (0, 17, 49):
            _walk_tenant(api, validator, api.tenants[n], max_pages=2)


@pytest.mark.slow  # medium
def test_full_pages_from_the_start_middle_and_end_validate(medium_api, validator):
    """Full 1000-record pages (lines included) and journal pages deep into a 24,000-journal ledger."""
    api = medium_api
    t = api.tenants[0]
    page_counts = {}
    for entity in PAGED:
        first = _get(api, validator, entity, t, {"page": 1, "pageSize": 1000}).json()
        pagination = first["pagination"]
        assert len(first[entity]) == min(1000, pagination["itemCount"])
        pages = page_counts[entity] = pagination["pageCount"]
        for page in sorted({pages // 2, pages}):
            if page > 1:
                _get(api, validator, entity, t, {"page": page, "pageSize": 1000})
    assert page_counts["Invoices"] >= 3  # a full page from the middle too, not only the first
    n_journals = medium_api.sb.truth()["tenants"][t]["journals"]["count"]
    assert n_journals >= 20_000
    for offset in (0, n_journals // 2, n_journals - 50):
        assert _get(api, validator, "Journals", t, {"offset": offset}).json()["Journals"]


def test_pages_capped_below_page_size_stay_truthful_and_valid(validator, make_api):
    """A server serving fewer rows than asked: pagination says what it served, and every row is reachable."""
    with running_sandbox("small", seed=1, limits=False, extra_args=["--max-page-size", "40"]) as sb:
        api = make_api(sb, sb.connect())
        assert sb.health()["max_page_size"] == 40
        t = api.tenants[0]
        truth = sb.truth()["tenants"][t]
        for entity, count in (("Invoices", truth["invoices"]["count"]), ("Payments", truth["payments"]["count"])):
            first = _get(api, validator, entity, t, {"page": 1, "pageSize": 1000}).json()
            p = first["pagination"]
            assert len(first[entity]) == 40
            assert p == {"page": 1, "pageSize": 40, "pageCount": math.ceil(count / 40), "itemCount": count}
            seen = len(first[entity])
            for page in range(2, p["pageCount"] + 1):
                body = _get(api, validator, entity, t, {"page": page, "pageSize": 1000}).json()
                assert body["pagination"] == {**p, "page": page}
                seen += len(body[entity])
            assert seen == count
            # asking for less than the cap is served as asked
            assert _get(api, validator, entity, t, {"page": 1, "pageSize": 7}).json()["pagination"]["pageSize"] == 7
        journals = _get(api, validator, "Journals", t, {"offset": 0}).json()["Journals"]
        assert [j["JournalNumber"] for j in journals] == list(range(1, 41))

        # The cap moves at run time; null restores Xero's limits.
        assert sb.set_max_page_size(250)["max_page_size"] == 250
        assert api.get("Invoices", t, params={"page": 1, "pageSize": 1000}).json()["pagination"]["pageSize"] == 250
        assert sb.set_max_page_size(None)["max_page_size"] is None
        assert api.get("Invoices", t, params={"page": 1, "pageSize": 1000}).json()["pagination"]["pageSize"] == 1000
        assert len(api.get("Journals", t, params={"offset": 0}).json()["Journals"]) == 100
        for bad in (0, -3, "10", True, 2.5):
            r = requests.post(sb.base_url + "/_sandbox/paging", json={"max_page_size": bad}, timeout=10)
            assert r.status_code == 400, bad
