"""Pages of raw JSON per tenant × stream, with the fewest calls Xero allows.

Paged streams ask for ``pageSize=1000`` and follow the server's ``pagination``: they read on
while ``page < pageCount`` and fewer records than ``itemCount`` have come, whatever size the
pages turn out to be (a server may serve fewer rows than asked). A response without a
pagination object is read until an empty page. Journals walk forward by ``offset`` = highest
JournalNumber, up to 100 per call, until an empty page. Incremental runs send
``If-Modified-Since`` from the stored watermark, minus a small overlap.

A value the walk depends on that is not what Xero promises (a non-integer ``pageCount`` or
``JournalNumber``, an offset that does not advance) stops the stream with
:class:`XeroBadResponse` naming the stream and the record; values only the load reads (a date
out of range) are left to the load's checks, which name the record and quarantine it.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from intoaec_xero import collector
from intoaec_xero.client import Response, XeroClient
from intoaec_xero.errors import XeroAccessDenied, XeroBadResponse
from intoaec_xero.ledger import DERIVED, JOURNALS_NOT_USED, JOURNALS_REFUSED
from intoaec_xero.parsing import format_if_modified_since, parse_count, parse_datetime
from intoaec_xero.projects import ProjectConfig
from intoaec_xero.rawstore import RawStore
from intoaec_xero.state import StreamState
from intoaec_xero.streams import Paging, Stream

log = logging.getLogger(__name__)

# Re-read a little before the watermark: Xero's If-Modified-Since is second-accurate, and a
# record saved in the same second as the last one we saw must not slip through.
WATERMARK_OVERLAP = timedelta(seconds=60)

# How far a record's cursor may sit past Xero's clock at the start of the read (clocks differ a
# little) and still move the watermark. Later dates (a typo'd 2100) are loaded but ignored for
# the watermark, which would otherwise make If-Modified-Since skip every real edit until then.
FUTURE_SKEW = timedelta(minutes=5)


@dataclass
class StreamExtract:
    """What one stream's extract produced; small and JSON-serialisable (it travels by XCom)."""

    stream: str
    pages: int = 0
    records: int = 0
    api_calls: int = 0
    full: bool = True
    if_modified_since: str | None = None
    max_cursor: str | None = None
    last_offset: int | None = None
    unavailable: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def extract_stream(
    client: XeroClient,
    stream: Stream,
    tenant_id: str,
    state: StreamState,
    raw: RawStore,
    run_id: str,
    *,
    full: bool = False,
    where: str | None = None,
    start_offset: int | None = None,
    max_pages: int | None = None,
    tenant_name: str | None = None,
) -> StreamExtract:
    """Fetch every page the stream needs this run and keep them in the raw store.

    ``where`` narrows paged streams (a backfill's date window). ``start_offset`` and
    ``max_pages`` let a caller walk Journals in small steps from its own checkpoint, so a
    walk through years of ledger can stop at any page and resume there.

    A 401 ``AuthorizationUnsuccessful`` that a grant without the stream's scope explains (or, for
    Journals, the app's Xero tier) is not a failure: the stream comes back ``unavailable`` with
    a sentence naming the tenant (``tenant_name``) and what to do, and the other streams carry on.
    Journals refused (or not to be read, the connection's ``ledger_source``) say ``extra["ledger"]``
    = "derived": the load builds the ledger from the documents instead.
    """
    result = StreamExtract(stream=stream.name, full=full or state.watermark is None)
    if stream.project_lines:
        # The load runs without the connection (another task, a replay): what it needs of it travels here.
        projects = ProjectConfig.from_settings(getattr(client, "settings", None))
        if projects:
            result.extra["projects"] = projects.to_extra()
    if stream.plan_gated and getattr(getattr(client, "settings", None), "ledger_source", "journals") == "documents":
        raw.reset(run_id, tenant_id, stream.name)
        result.unavailable = f"{_who(tenant_id, tenant_name)}: {JOURNALS_NOT_USED}."
        result.extra["ledger"] = DERIVED
        return result
    mark = _Watermark(stream, tenant_id, result)
    raw.reset(run_id, tenant_id, stream.name)
    since = None
    if not result.full and stream.supports_if_modified_since and state.watermark:
        since = format_if_modified_since(state.watermark - WATERMARK_OVERLAP)
    result.if_modified_since = since
    calls_before = client.stats.calls
    try:
        with collector.paused():
            if stream.paging is Paging.OFFSET:
                _walk_offsets(client, stream, tenant_id, state, raw, run_id, result, mark, since, start_offset,
                              max_pages)
            else:
                _walk_pages(client, stream, tenant_id, raw, run_id, result, mark, since, where, max_pages)
    except XeroAccessDenied as error:
        if error.status != 401:
            raise
        if needs_consent(client, stream):
            result.unavailable = consent_sentence(stream, tenant_id, tenant_name)
            result.extra["needs_consent"] = stream.scope
        elif stream.plan_gated:
            # Xero's tier of the app, not the organisation: every tenant of the app gets the same 401.
            result.unavailable = (f"{_who(tenant_id, tenant_name)}: {JOURNALS_REFUSED} "
                                  f"({stream.label} answered 401 AuthorizationUnsuccessful).")
        else:
            raise
        if stream.plan_gated:
            result.extra["ledger"] = DERIVED
        raw.reset(run_id, tenant_id, stream.name)
        result.pages = result.records = 0
    finally:
        result.api_calls = client.stats.calls - calls_before
    return result


def granted_scopes(client: Any) -> frozenset[str] | None:
    """The scopes of the client's grant as Xero issued them; None when they are not known."""
    try:
        scopes = client.current_tokens().scope
    except Exception:  # noqa: BLE001 - a client without a token store (a test double): not known
        return None
    return frozenset(scopes) if scopes else None


def needs_consent(client: Any, stream: Stream) -> bool:
    """Whether a 401 AuthorizationUnsuccessful on the stream means its scope was never granted.

    Granular scopes are never added to an existing grant: a scope the sync asks for since the
    organisation consented is missing until it consents again. A grant whose scopes are known and
    cover the stream was refused for another reason (Journals: the app's tier), so that is not this case;
    a grant whose scopes are not known is taken as missing the scope, except on a plan-gated stream.
    """
    if not stream.scope:
        return False
    granted = granted_scopes(client)
    if granted is None:
        return not stream.plan_gated
    return not granted & stream.granting_scopes


def _who(tenant_id: str, tenant_name: str | None) -> str:
    return f"{tenant_name} ({tenant_id})" if tenant_name else f"The organisation {tenant_id}"


def consent_sentence(stream: Stream, tenant_id: str, tenant_name: str | None = None) -> str:
    """What the data team reads in sync_runs / sync_state when a stream's scope is missing."""
    who = _who(tenant_id, tenant_name)
    return (f"{who} needs re-consent for {stream.title}: the Xero connection's grant does not include the "
            f"{stream.scope} scope, so Xero refused {stream.label} (401 AuthorizationUnsuccessful) and "
            f"{stream.title} are not synced for it. Reconnect Xero for this organisation (the Xero page's "
            "Reconnect, or `intoaec-xero connect`) and approve the new access; the other streams still sync.")


def _records(stream: Stream, payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, dict) or not isinstance(payload.get(stream.records_key), list):
        raise XeroBadResponse(f"{stream.label} returned no {stream.records_key} list.", endpoint=stream.path)
    return payload[stream.records_key]


def _bad_value(stream: Stream, message: str) -> XeroBadResponse:
    error = XeroBadResponse(f"{stream.label} ({stream.name}): {message}", endpoint=stream.path)
    error.retriable = False  # the same answer comes back on a retry: a person has to look
    return error


def _record_key(stream: Stream, record: Any, position: int) -> str:
    key = record.get(stream.primary_key) if isinstance(record, dict) else None
    return f"{stream.primary_key} {key}" if isinstance(key, str) and key else f"record {position + 1} of the page"


class _Watermark:
    """The highest cursor the read saw, never past Xero's clock at its start (plus FUTURE_SKEW).

    Xero's clock is the envelope's ``DateTimeUTC`` on the first answer (our clock if it has
    none): If-Modified-Since is compared with Xero's clock, so that is the one a cursor must not
    pass. A record dated later still loads; it just does not move the watermark.
    """

    def __init__(self, stream: Stream, tenant_id: str, result: StreamExtract):
        self.stream, self.tenant_id, self.result = stream, tenant_id, result
        self.started = datetime.now(UTC)
        self.limit: datetime | None = None
        self.best: datetime | None = None
        self.beyond = 0

    def note(self, payload: Any, records: list[Any]) -> None:
        cursor = self.stream.cursor
        if not cursor:
            return
        if self.limit is None:
            self.limit = _server_clock(payload, self.started) + FUTURE_SKEW
        for position, record in enumerate(records):
            if not isinstance(record, dict):
                continue  # the load's record_readable check names it
            try:
                moment = parse_datetime(record.get(cursor))
            except ValueError:
                continue  # likewise: validation names the bad record, the watermark ignores it
            if moment is None:
                continue
            if moment > self.limit:
                self._beyond(record, position, moment, self.limit)
                continue
            if self.best is None or moment > self.best:
                self.best = moment
        if self.best:
            self.result.max_cursor = self.best.isoformat()

    def _beyond(self, record: dict[str, Any], position: int, moment: datetime, limit: datetime) -> None:
        self.beyond += 1
        self.result.extra["cursor_beyond_clock"] = {"records": self.beyond, "limit": limit.isoformat()}
        if self.beyond <= 5:  # one line per record would flood the log on a badly imported org
            log.warning("Tenant %s, stream %s: %s has %s %s, after Xero's clock at the start of the read "
                        "(%s); it is loaded, but the watermark does not move past %s.", self.tenant_id,
                        self.stream.name, _record_key(self.stream, record, position), self.stream.cursor,
                        moment.isoformat(), (limit - FUTURE_SKEW).isoformat(), limit.isoformat())


def _server_clock(payload: Any, fallback: datetime) -> datetime:
    try:
        moment = parse_datetime(payload.get("DateTimeUTC")) if isinstance(payload, dict) else None
    except ValueError:
        moment = None
    return moment or fallback


class _NextCall:
    """The next page's request runs while this page is written and scanned.

    One call in flight at a time, as before, but Xero's response time (and the sandbox's)
    overlaps the gzip write and the cursor scan instead of adding to them. A call still in
    flight when the walk stops (a failure, a page limit) is waited for and its answer dropped.
    """

    def __init__(self, client: XeroClient, stream: Stream, tenant_id: str):
        self._client, self._stream, self._tenant_id = client, stream, tenant_id
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"xero-{stream.name}")
        self._pending: Future[Response] | None = None

    def start(self, **params: Any) -> None:
        self._pending = self._pool.submit(self._client.get, self._stream.sdk_method, self._tenant_id,
                                          self._stream.label, **self._stream.request_params(**params))

    def result(self) -> Response:
        pending, self._pending = self._pending, None
        if pending is None:
            raise RuntimeError("result() without a call started")
        return pending.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> _NextCall:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _walk_pages(client, stream, tenant_id, raw, run_id, result, mark, since, where=None, max_pages=None) -> None:
    page = 1
    with _NextCall(client, stream, tenant_id) as calls:
        calls.start(page=page, if_modified_since=since, where=where)
        while True:
            response = calls.result()
            records = _records(stream, response.payload)
            counts = _server_counts(stream, response.payload, page)
            if counts:
                result.extra["xero_pagination"] = counts
            more = _more_pages(stream, counts, records, page, result.records + len(records), max_pages)
            if more:
                calls.start(page=page + 1, if_modified_since=since, where=where)
            if records or page == 1:
                result.pages += 1
                raw.write_page(run_id, tenant_id, stream.name, result.pages, response.body)
            result.records += len(records)
            mark.note(response.payload, records)
            if not more:
                return
            if page % 10 == 0:
                collector.collect_young()  # what the HTTP stack leaves behind
                log.info("%s %s: %d records over %d pages so far", tenant_id, stream.name, result.records, page)
            page += 1


_COUNTS = {"pageSize": "page_size", "pageCount": "page_count", "itemCount": "item_count"}


def _server_counts(stream: Stream, payload: dict, page: int) -> dict[str, int] | None:
    """The page's ``pagination`` as whole numbers (absent ones left out); None without one."""
    if stream.paging is not Paging.PAGE or payload.get("pagination") is None:
        return None
    pagination = payload["pagination"]
    if not isinstance(pagination, dict):
        raise _bad_value(stream, f"page {page} has a pagination that is not an object ({pagination!r}).")
    counts = {}
    for name, key in _COUNTS.items():
        if pagination.get(name) is None:
            continue
        try:
            counts[key] = parse_count(pagination[name])
        except ValueError:
            raise _bad_value(stream, f"page {page} says pagination.{name} is {pagination[name]!r}, not a whole "
                                     "number, so the pages left to read are unknown.") from None
    return counts


def _more_pages(stream: Stream, counts: dict[str, int] | None, records: list, page: int, seen: int,
                max_pages: int | None) -> bool:
    """Whether to ask for the next page: the server's counts decide, never the page's length.

    ``seen`` counts the records so far, this page's included.
    """
    if stream.paging is Paging.NONE or not records:
        return False  # an empty page is past the end, whatever its counts say
    if max_pages and page >= max_pages:
        return False
    page_count, item_count = (counts or {}).get("page_count"), (counts or {}).get("item_count")
    if page_count is not None and page >= page_count:
        return False
    if item_count is not None and seen >= item_count:
        return False
    # Without counts (no pagination object) a short page proves nothing: only an empty one ends it.
    return True


def _walk_offsets(client, stream, tenant_id, state, raw, run_id, result, mark, since, start_offset=None,
                  max_pages=None) -> None:
    if start_offset is not None:
        offset = start_offset
    else:
        offset = 0 if result.full else (state.journal_offset or 0)
    with _NextCall(client, stream, tenant_id) as calls:
        calls.start(offset=offset, if_modified_since=since)
        while True:
            response = calls.result()
            records = _records(stream, response.payload)
            more = False
            if records:
                reached = _highest_number(stream, records)
                if reached <= offset:
                    # Asking again from the same offset would return this same page until the day limit.
                    raise _bad_value(stream, f"the page after offset {offset} ends at {stream.offset_field} "
                                             f"{reached}: the offset did not advance, so the walk stopped.")
                offset = reached
                # Xero serves up to 100 a call; only an empty answer says there are no more.
                more = not (max_pages and result.pages + 1 >= max_pages)
                if more:
                    calls.start(offset=offset, if_modified_since=since)
            if records or result.pages == 0:
                result.pages += 1
                raw.write_page(run_id, tenant_id, stream.name, result.pages, response.body)
            result.records += len(records)
            mark.note(response.payload, records)
            if records:
                result.last_offset = offset
            if not more:
                break
            if result.pages % 20 == 0:
                collector.collect_young()
                log.info("%s %s: %d records, offset %d", tenant_id, stream.name, result.records, offset)


def _highest_number(stream: Stream, records: list[Any]) -> int:
    """The highest ``offset_field`` on a page of records (never an empty one)."""
    numbers: list[int] = []
    for position, record in enumerate(records):
        value = record.get(stream.offset_field) if isinstance(record, dict) else None
        try:
            number = parse_count(value)
        except ValueError:
            raise _bad_value(stream, f"{_record_key(stream, record, position)} has {stream.offset_field} "
                                     f"{value!r}, not a whole number, so the walk cannot go past it.") from None
        numbers.append(number)
    return max(numbers)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
