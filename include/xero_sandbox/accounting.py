"""``/api.xro/2.0/...``: the Accounting API routes, thin over the model.

One entry point handles every accounting call in Xero's order of checks: bearer token (401
``TokenExpired``), ``xero-tenant-id`` (403 ``AuthenticationUnsuccessful``), scope and the app's
tier (Journals only for apps allowed them; 401 ``AuthorizationUnsuccessful``), rate limits
(429), then injected faults, then the resource handler. Paths are case-insensitive as at Xero.
Every answer that reaches a tenant carries the three ``X-*Limit-Remaining`` headers.

Filtering and ordering results are cached per (tenant, query, data version), so paging through
a large result costs one filter pass, not one per page.
"""

from __future__ import annotations

import asyncio
import bisect
import calendar
import json
import math
import uuid
from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import overload

from starlette.requests import Request
from starlette.responses import Response

from . import ids
from . import serialize as ser
from .ids import DAY_MS, ms_date, ms_datetime
from .model import ACCOUNT_CLASS, Books
from .query import QueryError, compile_order, compile_where, sort_records

API_PREFIX = "/api.xro/2.0"
JOURNALS_PER_CALL = 100
LINKED_TRANSACTIONS_PER_PAGE = 100  # LinkedTransactions page by `page` only, 100 a page, no pageSize
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100

# Scope groups (any one suffices): the spec's broad scopes and the 2026 granular ones that split them.
_INVOICES = {"accounting.transactions", "accounting.transactions.read", "accounting.invoices",
             "accounting.invoices.read"}
_PAYMENTS = {"accounting.transactions", "accounting.transactions.read", "accounting.payments",
             "accounting.payments.read"}
_BANK = {"accounting.transactions", "accounting.transactions.read", "accounting.banktransactions",
         "accounting.banktransactions.read"}

# Canonical resource names, and which scopes let a token read them (any one suffices).
RESOURCES = {
    "contacts": ("Contacts", {"accounting.contacts", "accounting.contacts.read"}),
    "invoices": ("Invoices", {"accounting.transactions", "accounting.transactions.read", "accounting.invoices",
                              "accounting.invoices.read"}),
    "creditnotes": ("CreditNotes", {"accounting.transactions", "accounting.transactions.read",
                                    "accounting.invoices", "accounting.invoices.read"}),
    "payments": ("Payments", {"accounting.transactions", "accounting.transactions.read", "accounting.payments",
                              "accounting.payments.read"}),
    "accounts": ("Accounts", {"accounting.settings", "accounting.settings.read"}),
    "trackingcategories": ("TrackingCategories", {"accounting.settings", "accounting.settings.read"}),
    "journals": ("Journals", {"accounting.journals.read"}),
    "reports/trialbalance": ("Reports/TrialBalance", {"accounting.reports.read",
                                                      "accounting.reports.trialbalance.read"}),
    "organisation": ("Organisation", {"accounting.settings", "accounting.settings.read"}),
    "banktransactions": ("BankTransactions", _BANK),
    "banktransfers": ("BankTransfers", _BANK),
    "taxrates": ("TaxRates", {"accounting.settings", "accounting.settings.read"}),
    "manualjournals": ("ManualJournals", {"accounting.transactions", "accounting.transactions.read",
                                          "accounting.manualjournals", "accounting.manualjournals.read"}),
    "purchaseorders": ("PurchaseOrders", _INVOICES),
    "linkedtransactions": ("LinkedTransactions", _INVOICES),
    "prepayments": ("Prepayments", _PAYMENTS),
    "overpayments": ("Overpayments", _PAYMENTS),
    "reports/profitandloss": ("Reports/ProfitAndLoss", {"accounting.reports.read",
                                                        "accounting.reports.profitandloss.read"}),
}


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(ser.encode(body), status_code=status, headers=headers,
                    media_type="application/json; charset=utf-8")


def problem(status: int, title: str, detail: str, headers: dict | None = None, typed: bool = False) -> Response:
    body: dict[str, object] = {"Type": None, "Title": title, "Status": status, "Detail": detail} if typed else \
        {"Title": title, "Status": status, "Detail": detail}
    if typed:
        body["Instance"] = str(uuid.uuid4())
        body["Extensions"] = {}
    return json_response(body, status, headers)


def not_found(headers: dict | None = None) -> Response:
    return problem(404, "NotFound", "The resource you're looking for cannot be found", headers)


def query_error(message: str, headers: dict | None = None) -> Response:
    return json_response({"ErrorNumber": 16, "Type": "QueryParseException", "Message": message}, 400, headers)


def validation_error(message: str, headers: dict | None = None) -> Response:
    return json_response({"ErrorNumber": 10, "Type": "ValidationException",
                          "Message": "A validation exception occurred",
                          "Elements": [{"ValidationErrors": [{"Message": message}]}]}, 400, headers)


def resolve(path: str) -> tuple[str | None, str | None]:
    """'Invoices/<id>' -> ('invoices', '<id>'); unknown -> (None, None)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return None, None
    head = parts[0].lower()
    if head == "reports" and len(parts) >= 2:
        key = "reports/" + parts[1].lower()
        rest = parts[2:]
    else:
        key, rest = head, parts[1:]
    if key not in RESOURCES or len(rest) > 1:
        return None, None
    return key, (rest[0] if rest else None)


def endpoint_label(method: str, path: str) -> str:
    """Stats key: 'GET /api.xro/2.0/Invoices' or 'GET /api.xro/2.0/Invoices/{id}'."""
    if path.lower().startswith(API_PREFIX.lower() + "/"):
        key, item = resolve(path[len(API_PREFIX) + 1:])
        if key is None:
            return f"{method} {API_PREFIX}/(unknown)"
        return f"{method} {API_PREFIX}/{RESOURCES[key][0]}" + ("/{id}" if item else "")
    low = path.lower()
    if low.startswith("/connections/"):
        return f"{method} /connections/{{id}}"
    if low == "/connections":
        return f"{method} /connections"
    return f"{method} {path}"


# ----------------------------------------------------------------------------- params

def _bool(v: str | None) -> bool:
    return (v or "").strip().lower() in ("true", "1", "yes")


def _csv(v: str | None) -> list[str]:
    return [x.strip().strip('"').strip() for x in (v or "").split(",") if x.strip().strip('"').strip()]


def parse_if_modified_since(v: str | None) -> int | None:
    """Accept an ISO 8601 timestamp (what the SDK sends) or an HTTP date. Returns epoch ms."""
    if not v:
        return None
    v = v.strip()
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        try:
            dt = parsedate_to_datetime(v)
        except (TypeError, ValueError):
            raise QueryError(f"Invalid If-Modified-Since header: {v}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


@overload
def _int_param(q, name: str, default: int) -> int: ...


@overload
def _int_param(q, name: str, default: None) -> int | None: ...


def _int_param(q, name: str, default: int | None) -> int | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise QueryError(f"'{raw}' is not a valid value for {name}") from None


# ----------------------------------------------------------------------------- the gate

async def api_entry(request: Request) -> Response:
    sb = request.app.state.sandbox
    key, item = resolve(request.path_params["path"])
    if key is None:
        return not_found()
    name, scopes_ok = RESOURCES[key]
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
    at, detail = sb.identity.check_access(token)
    if at is None:
        return problem(401, "Unauthorized", detail, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    tenant_id = request.headers.get("xero-tenant-id", "").strip()
    allowed = sb.identity.tenant_nos_for(at)
    if not tenant_id and at.tenant_nos is not None and len(allowed) == 1:
        books = sb.dataset.tenants[allowed[0]]  # custom connection: one org, header optional
    else:
        books = sb.dataset.by_id(tenant_id.lower()) if tenant_id else None
        if books is None or books.no not in allowed:
            return problem(403, "Forbidden", "AuthenticationUnsuccessful", typed=True)
    if not scopes_ok & set(at.scopes):
        return problem(401, "Unauthorized", "AuthorizationUnsuccessful", typed=True)
    if key == "journals" and not sb.identity.clients[at.client_id].allow_journals:
        # The app's partner tier has no Journals: the same refusal for every organisation.
        return problem(401, "Unauthorized", "AuthorizationUnsuccessful", typed=True)
    decision = sb.limiter.acquire(books.no)
    headers = decision.headers
    if not decision.ok:
        return problem(429, "Too Many Requests", f"Rate limit exceeded ({decision.problem})", headers)
    sb.stats.tenant_call(books.tenant_id)
    try:
        fault = sb.faults.pick(name, books.tenant_id)
        if fault is not None:
            if fault.latency_ms:
                await asyncio.sleep(fault.latency_ms / 1000)
            if fault.timeout:
                await asyncio.sleep(fault.timeout_seconds)
                return problem(504, "Gateway Timeout", "The request timed out", headers)
            if fault.status:
                return injected_status(fault, headers)
        try:
            resp = HANDLERS[key](sb, books, request, item, headers)
        except QueryError as e:
            return query_error(str(e), headers)
        if fault is not None and fault.mangle and resp.status_code == 200:
            resp = Response(mangled(resp.body, fault.mangle), status_code=200, headers=headers,
                            media_type="application/json; charset=utf-8")
        if fault is not None and fault.truncate:
            body = resp.body
            cut = body[: max(1, len(body) // 2)]
            resp = Response(cut, status_code=resp.status_code, headers=headers,
                            media_type="application/json; charset=utf-8")
        return resp
    finally:
        sb.limiter.release(books.no)


def mangled(body: bytes, fields: dict) -> bytes:
    """The response with ``fields`` set on its first record (the first item of its records list)."""
    payload = json.loads(body)
    for value in payload.values():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            value[0].update(fields)
            break
    return json.dumps(payload).encode()


def injected_status(fault, headers: dict) -> Response:
    status = fault.status
    h = dict(headers)
    if status == 429:
        h["Retry-After"] = str(fault.retry_after)
        h["X-Rate-Limit-Problem"] = fault.problem
        return problem(429, "Too Many Requests", f"Rate limit exceeded ({fault.problem})", h)
    if status == 503:
        return problem(503, "Service Unavailable", "The Xero API is temporarily unavailable", h)
    if status == 500:
        return problem(500, "Internal Server Error", "An error occurred in Xero. Check the API Status page", h)
    if status == 401:
        return problem(401, "Unauthorized", "TokenExpired: token expired at " + datetime.now(UTC).strftime(
            "%m/%d/%Y %H:%M:%S"), h)
    return problem(status, "Error", f"Injected fault ({status})", h)


# ----------------------------------------------------------------------------- helpers

def _cached(sb, b: Books, key: tuple, build):
    cache: OrderedDict = sb.query_cache
    full = (b.no, b.version) + key
    hit = cache.get(full)
    if hit is not None:
        cache.move_to_end(full)
        return hit
    value = build()
    cache[full] = value
    if len(cache) > 64:
        cache.popitem(last=False)
    return value


def _paged(sb, b: Books, request: Request, headers: dict, entity: str, records: list, to_json):
    q = request.query_params
    page = _int_param(q, "page", None)
    if page is None:
        return json_response(ser.envelope(entity, [to_json(r) for r in records], sb.clock.now_ms()),
                             headers=headers)
    page = max(1, page)
    size = _int_param(q, "pageSize", DEFAULT_PAGE_SIZE)
    size = min(MAX_PAGE_SIZE, sb.max_page_size or MAX_PAGE_SIZE, max(1, size))
    n = len(records)
    chunk = records[(page - 1) * size: page * size]
    pagination = {"page": page, "pageSize": size, "pageCount": math.ceil(n / size), "itemCount": n}
    return json_response(ser.envelope(entity, [to_json(r) for r in chunk], sb.clock.now_ms(), pagination),
                         headers=headers)


def _select(sb, b: Books, request: Request, entity: str, records, extra_filters: list, extra_key: tuple):
    """Filter (If-Modified-Since, where, extra) and order ``records`` once per query and data version."""
    q = request.query_params
    ims = parse_if_modified_since(request.headers.get("if-modified-since"))
    where_text = q.get("where")
    order_text = q.get("order")
    key = (entity, ims, where_text, order_text) + extra_key

    def build():
        where = compile_where(entity, where_text)
        order = compile_order(entity, order_text)
        out = []
        for r in records:
            if ims is not None and r.updated_ms < ims:
                continue
            if any(not f(r) for f in extra_filters):
                continue
            if where is not None and not where(b, r):
                continue
            out.append(r)
        if order:
            out = sort_records(b, out, order)
        return out
    return _cached(sb, b, key, build)


def _single(sb, entity: str, item_json: dict | None, headers: dict) -> Response:
    if item_json is None:
        return not_found(headers)
    return json_response(ser.envelope(entity, [item_json], sb.clock.now_ms()), headers=headers)


def _by_guid(b: Books, guid: str, kind: int, table: list):
    idx = b.index_of(guid.lower(), kind)
    if idx is None or idx >= len(table):
        return None
    return table[idx]


# ----------------------------------------------------------------------------- resources

def contacts(sb, b: Books, request: Request, item, headers):
    q = request.query_params
    summary = _bool(q.get("summaryOnly"))
    if item:
        c = _by_guid(b, item, ids.CONTACT, b.contacts)
        return _single(sb, "Contacts", ser.contact(b, c) if c else None, headers)
    include_archived = _bool(q.get("includeArchived"))
    wanted = {x.lower() for x in _csv(q.get("IDs"))}
    term = (q.get("searchTerm") or "").lower()
    filters = []
    if not include_archived:
        filters.append(lambda c: c.status != "ARCHIVED")
    if wanted:
        filters.append(lambda c: b.guid(ids.CONTACT, c.idx) in wanted)
    if term:
        filters.append(lambda c: term in c.name.lower() or term in c.email.lower() or term in c.first.lower()
                       or term in c.last.lower())
    recs = _select(sb, b, request, "Contacts", b.contacts, filters,
                   (include_archived, tuple(sorted(wanted)), term))
    return _paged(sb, b, request, headers, "Contacts", recs, lambda c: ser.contact(b, c, summary))


def invoices(sb, b: Books, request: Request, item, headers):
    q = request.query_params
    unitdp = _int_param(q, "unitdp", 2) or 2
    if item:
        inv = _by_guid(b, item, ids.INVOICE, b.invoices)
        if inv is None:  # Xero also accepts an InvoiceNumber here
            inv = next((i for i in b.invoices if i.number == item), None)
        return _single(sb, "Invoices", ser.invoice(b, inv, unitdp) if inv else None, headers)
    wanted = {x.lower() for x in _csv(q.get("IDs"))}
    numbers = set(_csv(q.get("InvoiceNumbers")))
    contact_ids = {x.lower() for x in _csv(q.get("ContactIDs"))}
    statuses = {x.upper() for x in _csv(q.get("Statuses"))}
    term = (q.get("searchTerm") or "").lower()
    created_by_app = _bool(q.get("createdByMyApp"))
    filters = []
    if wanted:
        filters.append(lambda i: b.guid(ids.INVOICE, i.idx) in wanted)
    if numbers:
        filters.append(lambda i: i.number in numbers)
    if contact_ids:
        filters.append(lambda i: b.guid(ids.CONTACT, i.contact) in contact_ids)
    if statuses:
        filters.append(lambda i: i.status in statuses)
    if term:
        filters.append(lambda i: term in i.number.lower() or term in i.reference.lower())
    if created_by_app:
        filters.append(lambda i: False)  # nothing in the sandbox was created through the API
    recs = _select(sb, b, request, "Invoices", b.invoices, filters,
                   (tuple(sorted(wanted)), tuple(sorted(numbers)), tuple(sorted(contact_ids)),
                    tuple(sorted(statuses)), term, created_by_app))
    summary = _bool(q.get("summaryOnly"))
    # Without `page`, Xero answers with every invoice but no line items.
    with_lines = q.get("page") is not None and not summary
    return _paged(sb, b, request, headers, "Invoices", recs,
                  lambda i: ser.invoice(b, i, unitdp, summary=not with_lines))


def credit_notes(sb, b: Books, request: Request, item, headers):
    q = request.query_params
    unitdp = _int_param(q, "unitdp", 2) or 2
    if item:
        cn = _by_guid(b, item, ids.CREDIT_NOTE, b.credit_notes)
        if cn is None:
            cn = next((c for c in b.credit_notes if c.number == item), None)
        return _single(sb, "CreditNotes", ser.credit_note(b, cn, unitdp) if cn else None, headers)
    recs = _select(sb, b, request, "CreditNotes", b.credit_notes, [], ())
    return _paged(sb, b, request, headers, "CreditNotes", recs, lambda c: ser.credit_note(b, c, unitdp))


def payments(sb, b: Books, request: Request, item, headers):
    if item:
        p = _by_guid(b, item, ids.PAYMENT, b.payments)
        return _single(sb, "Payments", ser.payment(b, p) if p else None, headers)
    recs = _select(sb, b, request, "Payments", b.payments, [], ())
    return _paged(sb, b, request, headers, "Payments", recs, lambda p: ser.payment(b, p))


def accounts(sb, b: Books, request: Request, item, headers):
    if item:
        a = _by_guid(b, item, ids.ACCOUNT, b.accounts)
        return _single(sb, "Accounts", ser.account(b, a) if a else None, headers)
    recs = _select(sb, b, request, "Accounts", b.accounts, [], ())
    return json_response(ser.envelope("Accounts", [ser.account(b, a) for a in recs], sb.clock.now_ms()),
                         headers=headers)


def tracking_categories(sb, b: Books, request: Request, item, headers):
    q = request.query_params
    include_archived = _bool(q.get("includeArchived"))
    if item:
        c = _by_guid(b, item, ids.TRACKING_CATEGORY, b.categories)
        return _single(sb, "TrackingCategories", ser.tracking_category(b, c, True) if c else None, headers)
    where = compile_where("TrackingCategories", q.get("where"))
    order = compile_order("TrackingCategories", q.get("order"))
    recs = [c for c in b.categories if (include_archived or c.status == "ACTIVE")
            and (where is None or where(b, c))]
    if order:
        recs = sort_records(b, recs, order)
    # No If-Modified-Since here: Xero's TrackingCategories endpoint ignores it.
    return json_response(ser.envelope("TrackingCategories",
                                      [ser.tracking_category(b, c, include_archived) for c in recs],
                                      sb.clock.now_ms()), headers=headers)


def journals(sb, b: Books, request: Request, item, headers):
    js = b.journals
    q = request.query_params
    if item:
        number = None
        if item.isdigit():
            number = int(item)
        else:
            j = b.index_of(item.lower(), ids.JOURNAL)
            number = j + 1 if j is not None else None
        if number is None or not 1 <= number <= len(js):
            return not_found(headers)
        # A single journal comes without SourceID/SourceType, as at Xero.
        return _single(sb, "Journals", ser.journal(b, number, with_source=False), headers)
    offset = max(0, _int_param(q, "offset", 0) or 0)
    per_call = min(JOURNALS_PER_CALL, sb.max_page_size or JOURNALS_PER_CALL)
    ims = parse_if_modified_since(request.headers.get("if-modified-since"))
    first = offset  # index of journal number offset+1
    if ims is not None:
        first = max(first, bisect.bisect_left(js.created, ims))
    if _bool(q.get("paymentsOnly")):
        pn = js.payment_numbers
        k = bisect.bisect_right(pn, first)
        numbers = list(pn[k:k + per_call])
    else:
        numbers = list(range(first + 1, min(len(js), first + per_call) + 1))
    body = ser.envelope("Journals", [ser.journal(b, n) for n in numbers], sb.clock.now_ms())
    return json_response(body, headers=headers)


def trial_balance(sb, b: Books, request: Request, item, headers):
    q = request.query_params
    raw = q.get("date")
    now_day = sb.clock.now_ms() // DAY_MS
    try:
        day = ids.day_of(datetime.strptime(raw, "%Y-%m-%d").date()) if raw else now_day
    except ValueError:
        return validation_error(f"'{raw}' is not a valid date (use YYYY-MM-DD)", headers)
    report = _cached(sb, b, ("tb", day), lambda: build_trial_balance(b, day, sb.clock.now_ms()))
    return json_response(ser.envelope("Reports", [report], sb.clock.now_ms()), headers=headers)


def trial_balance_figures(b: Books, day: int) -> tuple[dict[int, int], dict[int, int]]:
    """(balance to date, movement in the month of ``day``) in cents per account index."""
    js = b.journals
    month_start = ids.day_of(ids.date_of(day).replace(day=1))
    bal: dict[int, int] = {}
    mon: dict[int, int] = {}
    dates, starts = js.date, js.start
    l_acct, l_net = js.l_account, js.l_net
    n = len(dates)
    total_lines = len(l_net)
    for j in range(n):
        d = dates[j]
        if d > day:
            continue
        end = starts[j + 1] if j + 1 < n else total_lines
        in_month = d >= month_start
        for i in range(starts[j], end):
            a = l_acct[i]
            v = l_net[i]
            bal[a] = bal.get(a, 0) + v
            if in_month:
                mon[a] = mon.get(a, 0) + v
    return bal, mon


SECTIONS = [("REVENUE", "Revenue"), ("EXPENSE", "Expenses"), ("ASSET", "Assets"), ("LIABILITY", "Liabilities"),
            ("EQUITY", "Equity")]


def build_trial_balance(b: Books, day: int, now_ms: int) -> dict:
    """Xero's Trial Balance report as at ``day``.

    Debit/Credit: the account's movement in the month up to ``day``. YTD Debit/YTD Credit: its
    balance from all journals dated on or before ``day`` (profit and loss is not closed into
    retained earnings, so each YTD figure equals the sum of that account's journal lines).
    """
    bal, mon = trial_balance_figures(b, day)

    def money(c: int) -> str:
        return f"{c / 100:.2f}" if c else ""

    def cells(a, bal_c, mon_c):
        attr = [{"Value": b.guid(ids.ACCOUNT, a.idx), "Id": "account"}]
        vals = [max(mon_c, 0), max(-mon_c, 0), max(bal_c, 0), max(-bal_c, 0)]
        return [{"Value": f"{a.name} ({a.code})", "Attributes": attr}] + \
               [{"Value": money(v), "Attributes": attr} for v in vals]

    rows = [{"RowType": "Header", "Cells": [{"Value": "Account"}, {"Value": "Debit"}, {"Value": "Credit"},
                                            {"Value": "YTD Debit"}, {"Value": "YTD Credit"}]}]
    totals = [0, 0, 0, 0]
    for cls, title in SECTIONS:
        section_rows = []
        for a in b.accounts:
            if ACCOUNT_CLASS[a.type] != cls:
                continue
            bc, mc = bal.get(a.idx, 0), mon.get(a.idx, 0)
            if not bc and not mc:
                continue
            section_rows.append({"RowType": "Row", "Cells": cells(a, bc, mc)})
            totals[0] += max(mc, 0)
            totals[1] += max(-mc, 0)
            totals[2] += max(bc, 0)
            totals[3] += max(-bc, 0)
        rows.append({"RowType": "Section", "Title": title, "Rows": section_rows})
    rows.append({"RowType": "Section", "Title": "", "Rows": [
        {"RowType": "SummaryRow", "Cells": [{"Value": "Total"}] + [{"Value": f"{t / 100:.2f}"} for t in totals]}]})
    d = ids.date_of(day)
    label = f"{d.day} {d.strftime('%B')} {d.year}"
    return {
        "ReportID": "TrialBalance",
        "ReportName": "Trial Balance",
        "ReportType": "TrialBalance",
        "ReportTitles": ["Trial Balance", b.name, f"As at {label}"],
        "ReportDate": label,
        "UpdatedDateUTC": ms_datetime(now_ms),
        "Fields": [],
        "Rows": rows,
    }


# ----------------------------------------------------------------------------- the cost side

def _unitdp(q) -> int:
    return _int_param(q, "unitdp", 2) or 2


def bank_transactions(sb, b: Books, request: Request, item, headers):
    unitdp = _unitdp(request.query_params)
    if item:
        bt = _by_guid(b, item, ids.BANK_TRANSACTION, b.bank_transactions)
        return _single(sb, "BankTransactions", ser.bank_transaction(b, bt, unitdp) if bt else None, headers)
    refs = set(_csv(request.query_params.get("References")))
    filters = [lambda t: t.reference in refs] if refs else []
    recs = _select(sb, b, request, "BankTransactions", b.bank_transactions, filters, (tuple(sorted(refs)),))
    return _paged(sb, b, request, headers, "BankTransactions", recs, lambda r: ser.bank_transaction(b, r, unitdp))


def bank_transfers(sb, b: Books, request: Request, item, headers):
    """Every transfer in one answer: Xero does not page BankTransfers. ``includeDeleted`` is accepted;
    transfers here are never deleted."""
    if item:
        x = _by_guid(b, item, ids.BANK_TRANSFER, b.bank_transfers)
        return _single(sb, "BankTransfers", ser.bank_transfer(b, x) if x else None, headers)
    recs = _select(sb, b, request, "BankTransfers", b.bank_transfers, [], ())
    return json_response(ser.envelope("BankTransfers", [ser.bank_transfer(b, x) for x in recs], sb.clock.now_ms()),
                         headers=headers)


def tax_rates(sb, b: Books, request: Request, item, headers):
    """The organisation's tax rates, unpaged; ``/TaxRates/{TaxType}`` for one (no If-Modified-Since)."""
    if item:
        t = next((t for t in b.tax_rates if t.code == item.upper()), None)
        return _single(sb, "TaxRates", ser.tax_rate(b, t) if t else None, headers)
    q = request.query_params
    where = compile_where("TaxRates", q.get("where"))
    order = compile_order("TaxRates", q.get("order"))
    recs = [t for t in b.tax_rates if where is None or where(b, t)]
    if order:
        recs = sort_records(b, recs, order)
    return json_response(ser.envelope("TaxRates", [ser.tax_rate(b, t) for t in recs], sb.clock.now_ms()),
                         headers=headers)


def manual_journals(sb, b: Books, request: Request, item, headers):
    if item:
        mj = _by_guid(b, item, ids.MANUAL_JOURNAL, b.manual_journals)
        return _single(sb, "ManualJournals", ser.manual_journal(b, mj) if mj else None, headers)
    recs = _select(sb, b, request, "ManualJournals", b.manual_journals, [], ())
    return _paged(sb, b, request, headers, "ManualJournals", recs, lambda r: ser.manual_journal(b, r))


def _day_param(q, name: str) -> int | None:
    raw = q.get(name)
    if not raw:
        return None
    try:
        return ids.day_of(datetime.strptime(raw[:10], "%Y-%m-%d").date())
    except ValueError:
        raise QueryError(f"'{raw}' is not a valid value for {name} (use YYYY-MM-DD)") from None


def purchase_orders(sb, b: Books, request: Request, item, headers):
    q = request.query_params
    unitdp = _unitdp(q)
    if item:
        po = _by_guid(b, item, ids.PURCHASE_ORDER, b.purchase_orders)
        if po is None:  # Xero also accepts a PurchaseOrderNumber here
            po = next((p for p in b.purchase_orders if p.number == item), None)
        return _single(sb, "PurchaseOrders", ser.purchase_order(b, po, unitdp) if po else None, headers)
    status = (q.get("Status") or "").strip().upper()
    date_from, date_to = _day_param(q, "DateFrom"), _day_param(q, "DateTo")
    filters = []
    if status:
        filters.append(lambda p: p.status == status)
    if date_from is not None:
        filters.append(lambda p: p.date >= date_from)
    if date_to is not None:
        filters.append(lambda p: p.date <= date_to)
    recs = _select(sb, b, request, "PurchaseOrders", b.purchase_orders, filters, (status, date_from, date_to))
    return _paged(sb, b, request, headers, "PurchaseOrders", recs, lambda r: ser.purchase_order(b, r, unitdp))


def _deposits(kind: str):
    entity = "Prepayments" if kind == "PREPAYMENT" else "Overpayments"
    id_kind = ids.PREPAYMENT if kind == "PREPAYMENT" else ids.OVERPAYMENT

    def handler(sb, b: Books, request: Request, item, headers):
        q = request.query_params
        unitdp = _unitdp(q)
        table = b.prepayments if kind == "PREPAYMENT" else b.overpayments
        if item:
            dep = _by_guid(b, item, id_kind, table)
            return _single(sb, entity, ser.deposit(b, dep, unitdp) if dep else None, headers)
        filters = []
        wanted: set[str] = set()
        if kind == "PREPAYMENT":
            wanted = set(_csv(q.get("InvoiceNumbers")))
            if wanted:
                filters.append(lambda d: d.number in wanted)
        else:
            wanted = set(_csv(q.get("References")))
            if wanted:
                filters.append(lambda d: b.bank_transactions[d.bank_txn].reference in wanted)
        recs = _select(sb, b, request, entity, table, filters, (tuple(sorted(wanted)),))
        return _paged(sb, b, request, headers, entity, recs, lambda r: ser.deposit(b, r, unitdp))
    return handler


def linked_transactions(sb, b: Books, request: Request, item, headers):
    """Billable expenses: ``page`` only, 100 a page, no pagination object and no If-Modified-Since
    (the spec lists neither for this endpoint)."""
    q = request.query_params
    if item:
        lt = _by_guid(b, item, ids.LINKED_TRANSACTION, b.linked_transactions)
        return _single(sb, "LinkedTransactions", ser.linked_transaction(b, lt) if lt else None, headers)

    def idx_param(name: str, kind: int) -> int | None:
        raw = (q.get(name) or "").strip().lower()
        if not raw:
            return None
        got = b.index_of(raw, kind)
        return -2 if got is None else got  # an unknown id matches nothing

    only = idx_param("LinkedTransactionID", ids.LINKED_TRANSACTION)
    contact = idx_param("ContactID", ids.CONTACT)
    target = idx_param("TargetTransactionID", ids.INVOICE)
    source_raw = (q.get("SourceTransactionID") or "").strip().lower()
    source = None
    if source_raw:
        for kind, stype in ((ids.INVOICE, "ACCPAY"), (ids.BANK_TRANSACTION, "SPEND")):
            got = b.index_of(source_raw, kind)
            if got is not None:
                source = (stype, got)
        source = source or ("", -2)
    status = (q.get("Status") or "").strip().upper()
    recs = [lt for lt in b.linked_transactions
            if (only is None or lt.idx == only) and (contact is None or lt.contact == contact)
            and (target is None or lt.target == target) and (not status or lt.status == status)
            and (source is None or (lt.source_type, lt.source) == source)]
    page = max(1, _int_param(q, "page", 1) or 1)
    size = min(LINKED_TRANSACTIONS_PER_PAGE, sb.max_page_size or LINKED_TRANSACTIONS_PER_PAGE)
    chunk = recs[(page - 1) * size: page * size]
    return json_response(ser.envelope("LinkedTransactions", [ser.linked_transaction(b, lt) for lt in chunk],
                                      sb.clock.now_ms()), headers=headers)


# ----------------------------------------------------------------------------- profit and loss

PL_SECTIONS = [  # (title, account types, sign: +1 debits count positive, -1 credits do)
    ("Income", ("REVENUE", "SALES"), -1, "Total Income"),
    ("Less Cost of Sales", ("DIRECTCOSTS",), 1, "Total Cost of Sales"),
    ("Plus Other Income", ("OTHERINCOME",), -1, "Total Other Income"),
    ("Less Operating Expenses", ("EXPENSE", "OVERHEADS", "DEPRECIATN"), 1, "Total Operating Expenses"),
]
PL_TYPES = {t for _, types, _, _ in PL_SECTIONS for t in types}
UNASSIGNED = -1
MAX_ACTIVE_OPTIONS = 100  # Xero's limit of active options in a tracking category


def _cents_text(c: int) -> str:
    sign = "-" if c < 0 else ""
    c = abs(c)
    return f"{sign}{c // 100}.{c % 100:02d}"


def _long_date(day: int) -> str:
    d = ids.date_of(day)
    return f"{d.day} {d.strftime('%B')} {d.year}"


def _short_date(day: int) -> str:
    d = ids.date_of(day)
    return f"{d.day} {d.strftime('%b')} {d.strftime('%y')}"


def _shift_months(day: int, months: int) -> int:
    """The same day ``months`` earlier; a month end stays a month end."""
    d = ids.date_of(day)
    month_end = (d + timedelta(days=1)).day == 1
    y, m = divmod(d.year * 12 + d.month - 1 - months, 12)
    m += 1
    last = calendar.monthrange(y, m)[1]
    return ids.day_of(date(y, m, last if month_end else min(d.day, last)))


def journals_by_date(sb, b: Books) -> tuple[list[int], list[int]]:
    """(journal dates ascending, their journal indexes): the ledger sliced by date in one bisect."""
    def build():
        dates = b.journals.date
        order = sorted(range(len(dates)), key=dates.__getitem__)
        return [dates[j] for j in order], order
    return _cached(sb, b, ("journals-by-date",), build)


def pl_figures(sb, b: Books, first: int, last: int, category: int | None) -> dict[tuple[int, int], int]:
    """Net cents per (account, option of ``category`` or UNASSIGNED) on P&L accounts, journals dated
    ``first``..``last`` (``category`` None: one bucket, UNASSIGNED)."""
    js = b.journals
    dates, order = journals_by_date(sb, b)
    pl = [a.type in PL_TYPES for a in b.accounts]
    opt_cat = [o.category for o in b.options]
    out: dict[tuple[int, int], int] = {}
    starts, l_acct, l_net, l_t1, l_t2 = js.start, js.l_account, js.l_net, js.l_track, js.l_track2
    n, total = len(starts), len(l_net)
    for k in range(bisect.bisect_left(dates, first), bisect.bisect_right(dates, last)):
        j = order[k]
        end = starts[j + 1] if j + 1 < n else total
        for i in range(starts[j], end):
            a = l_acct[i]
            if not pl[a]:
                continue
            bucket = UNASSIGNED
            if category is not None:
                t = l_t1[i]
                if t >= 0 and opt_cat[t] == category:
                    bucket = t
                else:
                    t = l_t2[i]
                    if t >= 0 and opt_cat[t] == category:
                        bucket = t
            key = (a, bucket)
            out[key] = out.get(key, 0) + l_net[i]
    return out


def profit_and_loss(sb, b: Books, request: Request, item, headers):
    q = request.query_params
    now_day = sb.clock.now_ms() // DAY_MS
    try:
        from_day = _day_param(q, "fromDate")
        to_day = _day_param(q, "toDate")
    except QueryError as e:
        return validation_error(str(e), headers)
    # Xero's defaults: the current month; a missing end is its start's month end and vice versa.
    month = ids.date_of(from_day if from_day is not None else to_day if to_day is not None else now_day)
    first = from_day if from_day is not None else ids.day_of(month.replace(day=1))
    last = to_day if to_day is not None else \
        ids.day_of(month.replace(day=calendar.monthrange(month.year, month.month)[1]))
    if first > last:
        return validation_error("fromDate must be on or before toDate", headers)
    periods = _int_param(q, "periods", None)
    timeframe = (q.get("timeframe") or "MONTH").upper()
    if timeframe not in ("MONTH", "QUARTER", "YEAR"):
        return validation_error("timeframe must be MONTH, QUARTER or YEAR", headers)
    if periods is not None and not 1 <= periods <= 12:
        return validation_error("periods must be between 1 and 12", headers)
    category = option = None
    cat_raw = (q.get("trackingCategoryID") or "").strip().lower()
    opt_raw = (q.get("trackingOptionID") or "").strip().lower()
    if cat_raw:
        category = b.index_of(cat_raw, ids.TRACKING_CATEGORY)
        if category is None or category >= len(b.categories):
            return validation_error(f"TrackingCategory {cat_raw} could not be found", headers)
    if opt_raw:
        option = b.index_of(opt_raw, ids.TRACKING_OPTION)
        if option is None or option >= len(b.options):
            return validation_error(f"TrackingOption {opt_raw} could not be found", headers)
        if category is None:
            category = b.options[option].category
        elif b.options[option].category != category:
            return validation_error("trackingOptionID is not an option of trackingCategoryID", headers)
    key = ("pl", first, last, periods, timeframe, category, option)
    report = _cached(sb, b, key, lambda: build_profit_and_loss(sb, b, first, last, periods, timeframe, category,
                                                               option, now_day))
    return json_response(ser.envelope("Reports", [report], sb.clock.now_ms()), headers=headers)


def build_profit_and_loss(sb, b: Books, first: int, last: int, periods: int | None, timeframe: str,
                          category: int | None, option: int | None, now_day: int) -> dict:
    """Xero's Profit and Loss: one column per option of ``category`` plus Unassigned and Total (or the
    one ``option``); without a category, the period asked and ``periods`` earlier ones of ``timeframe``
    (most recent first). Income and other income show credits as positive, costs debits."""
    columns: list[tuple[str, dict[tuple[int, int], int], list[int] | None]] = []  # (label, figures, buckets)
    if category is not None:
        figs = pl_figures(sb, b, first, last, category)
        if option is not None:
            columns.append((b.options[option].name, figs, [option]))
        else:
            used = {bucket for (_, bucket), v in figs.items() if v and bucket != UNASSIGNED}
            active = [o for o in b.categories[category].options if b.options[o].status == "ACTIVE"]
            # Xero lists every active option, figures or not; it allows 100 active options a category.
            # The sandbox's oversized datasets have thousands, so past that only options with figures show.
            shown = set(active) if len(active) <= MAX_ACTIVE_OPTIONS else set()
            opts = [o for o in b.categories[category].options if o in shown or o in used]
            opts.sort(key=lambda o: b.options[o].name.lower())
            columns += [(b.options[o].name, figs, [o]) for o in opts]
            columns.append(("Unassigned", figs, [UNASSIGNED]))
            columns.append(("Total", figs, None))
    else:
        step = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}[timeframe]
        for k in range((periods or 0) + 1):
            lo, hi = _shift_months(first, k * step), _shift_months(last, k * step)
            columns.append((_short_date(hi), pl_figures(sb, b, lo, hi, None), None))

    by_account: dict[int, dict[int, int]] = {}  # id(figures) -> account -> all buckets together
    for _, figs, _ in columns:
        if id(figs) not in by_account:
            sums: dict[int, int] = {}
            for (acct_idx, _), v in figs.items():
                sums[acct_idx] = sums.get(acct_idx, 0) + v
            by_account[id(figs)] = sums

    def value(col, acct: int) -> int:
        _, figs, buckets = col
        if buckets is None:
            return by_account[id(figs)].get(acct, 0)
        return sum(figs.get((acct, bk), 0) for bk in buckets)

    per_account: dict[int, list[int]] = {}
    for account in b.accounts:
        if account.type in PL_TYPES:
            vals = [value(col, account.idx) for col in columns]
            if any(vals):
                per_account[account.idx] = vals

    def money_cells(vals, attr=None):
        return [{"Value": _cents_text(v), **({"Attributes": attr} if attr else {})} for v in vals]

    width = len(columns)
    rows: list[dict] = [{"RowType": "Header", "Cells": [{"Value": ""}] + [{"Value": c[0]} for c in columns]}]
    totals: dict[str, list[int]] = {}
    for title, types, sign, summary in PL_SECTIONS:
        section_rows = []
        tot = [0] * width
        for a in sorted((b.accounts[i] for i in per_account if b.accounts[i].type in types),
                        key=lambda a: a.code):
            vals = [sign * v for v in per_account[a.idx]]
            tot = [x + y for x, y in zip(tot, vals, strict=True)]
            attr = [{"Value": b.ref_guid(ids.ACCOUNT, a.idx), "Id": "account"}]
            section_rows.append({"RowType": "Row", "Cells": [{"Value": a.name, "Attributes": attr}]
                                 + money_cells(vals, attr)})
        totals[title] = tot
        if section_rows:
            section_rows.append({"RowType": "SummaryRow", "Cells": [{"Value": summary}] + money_cells(tot)})
            rows.append({"RowType": "Section", "Title": title, "Rows": section_rows})
        if title == "Less Cost of Sales":
            gross = [x - y for x, y in zip(totals["Income"], tot, strict=True)]
            rows.append({"RowType": "Section", "Title": "", "Rows": [
                {"RowType": "Row", "Cells": [{"Value": "Gross Profit"}] + money_cells(gross)}]})
    net = [g + o - e for g, o, e in zip(
        [x - y for x, y in zip(totals["Income"], totals["Less Cost of Sales"], strict=True)],
        totals["Plus Other Income"], totals["Less Operating Expenses"], strict=True)]
    rows.append({"RowType": "Section", "Title": "", "Rows": [
        {"RowType": "Row", "Cells": [{"Value": "Net Profit"}] + money_cells(net)}]})
    titles = ["Profit & Loss", b.name]
    if option is not None:
        titles.append(b.options[option].name)
    elif category is not None:
        titles.append(f"All {b.categories[category].name}")
    titles.append(f"{_long_date(first)} to {_long_date(last)}")
    return {
        "ReportID": "ProfitAndLoss",
        "ReportName": "Profit and Loss",
        "ReportType": "ProfitAndLoss",
        "ReportTitles": titles,
        "ReportDate": _long_date(now_day),
        "UpdatedDateUTC": ms_datetime(sb.clock.now_ms()),
        "Fields": [],
        "Rows": rows,
    }


def organisation(sb, b: Books, request: Request, item, headers):
    if item:
        return not_found(headers)
    return json_response(ser.envelope("Organisations", [ser.organisation(b)], sb.clock.now_ms()), headers=headers)


HANDLERS = {
    "contacts": contacts,
    "invoices": invoices,
    "creditnotes": credit_notes,
    "payments": payments,
    "accounts": accounts,
    "trackingcategories": tracking_categories,
    "journals": journals,
    "reports/trialbalance": trial_balance,
    "organisation": organisation,
    "banktransactions": bank_transactions,
    "banktransfers": bank_transfers,
    "taxrates": tax_rates,
    "manualjournals": manual_journals,
    "purchaseorders": purchase_orders,
    "linkedtransactions": linked_transactions,
    "prepayments": _deposits("PREPAYMENT"),
    "overpayments": _deposits("OVERPAYMENT"),
    "reports/profitandloss": profit_and_loss,
}

__all__ = ["api_entry", "endpoint_label", "HANDLERS", "build_trial_balance", "trial_balance_figures", "ms_date",
           "build_profit_and_loss", "pl_figures"]
