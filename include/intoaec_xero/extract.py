"""Pages of raw JSON per tenant × stream, with the fewest calls Xero allows.

Paged streams ask for ``pageSize=1000`` and stop at the pagination object's ``pageCount`` (or
at a short page), so a full read costs ⌈n/1000⌉ calls plus at most one empty page. Journals
walk forward by ``offset`` = last JournalNumber, 100 per call. Incremental runs send
``If-Modified-Since`` from the stored watermark, minus a small overlap.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from intoaec_xero import collector
from intoaec_xero.client import XeroClient
from intoaec_xero.errors import XeroAccessDenied, XeroBadResponse
from intoaec_xero.parsing import format_if_modified_since, parse_datetime
from intoaec_xero.rawstore import RawStore
from intoaec_xero.state import StreamState
from intoaec_xero.streams import Paging, Stream

log = logging.getLogger(__name__)

# Re-read a little before the watermark: Xero's If-Modified-Since is second-accurate, and a
# record saved in the same second as the last one we saw must not slip through.
WATERMARK_OVERLAP = timedelta(seconds=60)


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
) -> StreamExtract:
    """Fetch every page the stream needs this run and keep them in the raw store.

    ``where`` narrows paged streams (a backfill's date window). ``start_offset`` and
    ``max_pages`` let a caller walk Journals in small steps from its own checkpoint, so a
    walk through years of ledger can stop at any page and resume there.
    """
    result = StreamExtract(stream=stream.name, full=full or state.watermark is None)
    raw.reset(run_id, tenant_id, stream.name)
    since = None
    if not result.full and stream.supports_if_modified_since and state.watermark:
        since = format_if_modified_since(state.watermark - WATERMARK_OVERLAP)
    result.if_modified_since = since
    calls_before = client.stats.calls
    try:
        with collector.paused():
            if stream.paging is Paging.OFFSET:
                _walk_offsets(client, stream, tenant_id, state, raw, run_id, result, since, start_offset, max_pages)
            else:
                _walk_pages(client, stream, tenant_id, raw, run_id, result, since, where, max_pages)
    except XeroAccessDenied as error:
        if not stream.plan_gated or error.status != 401:
            raise
        result.unavailable = (
            f"Xero does not give this organisation's plan access to {stream.path} "
            "(401 AuthorizationUnsuccessful); the ledger is not synced for it."
        )
        raw.reset(run_id, tenant_id, stream.name)
        result.pages = result.records = 0
    finally:
        result.api_calls = client.stats.calls - calls_before
    return result


def _records(stream: Stream, payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, dict) or not isinstance(payload.get(stream.records_key), list):
        raise XeroBadResponse(f"{stream.label} returned no {stream.records_key} list.", endpoint=stream.path)
    return payload[stream.records_key]


def _note_cursor(stream: Stream, records: list[dict[str, Any]], result: StreamExtract) -> None:
    if not stream.cursor:
        return
    best = parse_datetime(result.max_cursor) if result.max_cursor else None
    for record in records:
        try:
            moment = parse_datetime(record.get(stream.cursor))
        except ValueError:
            continue  # validation names the bad record; the watermark just ignores it
        if moment and (best is None or moment > best):
            best = moment
    if best:
        result.max_cursor = best.isoformat()


class _NextCall:
    """The next page's request runs while this page is written and scanned.

    One call in flight at a time, as before, but Xero's response time (and the sandbox's)
    overlaps the gzip write and the cursor scan instead of adding to them. A call still in
    flight when the walk stops (a failure, a page limit) is waited for and its answer dropped.
    """

    def __init__(self, client: XeroClient, stream: Stream, tenant_id: str):
        self._client, self._stream, self._tenant_id = client, stream, tenant_id
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"xero-{stream.name}")
        self._pending: Future | None = None

    def start(self, **params: Any) -> None:
        self._pending = self._pool.submit(self._client.get, self._stream.sdk_method, self._tenant_id,
                                          self._stream.label, **self._stream.request_params(**params))

    def result(self):
        pending, self._pending = self._pending, None
        return pending.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> _NextCall:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _walk_pages(client, stream, tenant_id, raw, run_id, result, since, where=None, max_pages=None) -> None:
    page = 1
    with _NextCall(client, stream, tenant_id) as calls:
        calls.start(page=page, if_modified_since=since, where=where)
        while True:
            response = calls.result()
            records = _records(stream, response.payload)
            more = _more_pages(stream, response.payload, records, page, max_pages)
            if more:
                calls.start(page=page + 1, if_modified_since=since, where=where)
            if records or page == 1:
                result.pages += 1
                raw.write_page(run_id, tenant_id, stream.name, result.pages, response.body)
            result.records += len(records)
            _note_cursor(stream, records, result)
            if not more:
                return
            if page % 10 == 0:
                collector.collect_young()  # what the HTTP stack leaves behind
                log.info("%s %s: %d records over %d pages so far", tenant_id, stream.name, result.records, page)
            page += 1


def _more_pages(stream: Stream, payload: dict, records: list, page: int, max_pages: int | None) -> bool:
    if stream.paging is Paging.NONE:
        return False
    page_count = (payload.get("pagination") or {}).get("pageCount")
    if page_count is not None and page >= int(page_count):
        return False
    if len(records) < stream.page_size:
        return False
    return not (max_pages and page >= max_pages)


def _walk_offsets(client, stream, tenant_id, state, raw, run_id, result, since, start_offset=None,
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
                offset = max(int(r[stream.offset_field]) for r in records)
                more = len(records) >= stream.page_size and not (max_pages and result.pages + 1 >= max_pages)
                if more:
                    calls.start(offset=offset, if_modified_since=since)
            if records or result.pages == 0:
                result.pages += 1
                raw.write_page(run_id, tenant_id, stream.name, result.pages, response.body)
            result.records += len(records)
            _note_cursor(stream, records, result)
            if records:
                result.last_offset = offset
            if not more:
                break
            if result.pages % 20 == 0:
                collector.collect_young()
                log.info("%s %s: %d records, offset %d", tenant_id, stream.name, result.records, offset)


def now_iso() -> str:
    from datetime import UTC

    return datetime.now(UTC).isoformat()
