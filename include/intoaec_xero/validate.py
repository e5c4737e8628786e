"""Checks a batch must pass before it reaches IntoAEC's tables.

A batch is one tenant × stream of one run: everything one load transaction would commit. Each
check has a severity: ``error`` rejects the batch (nothing of it is loaded, the watermark stays
put and the records go to quarantine), ``warn`` is recorded and the batch loads.

Three kinds of check run here, in the order the data gets readable:

- the raw pages: each one parses, none is missing or cut short (``page_readable``,
  ``pages_complete``);
- each record turns into rows (``record_readable``): transform names what it could not read;
- the rows, per table, against the Great Expectations suites in
  :mod:`intoaec_xero.quality.suites`, a chunk at a time so memory stays flat on large tenants.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from intoaec_xero import collector
from intoaec_xero.quality.model import (
    ERROR,
    SAMPLE_KEYS,
    WARN,
    BatchRejected,
    CheckResult,
    merge,
    verdict,
)
from intoaec_xero.streams import Paging, Stream

__all__ = ["BatchRejected", "CheckResult", "StreamValidator", "ERROR", "WARN", "record_label", "verdict"]

log = logging.getLogger(__name__)


class StreamValidator:
    """Collects one batch's verdicts while load reads, transforms and writes it.

    ``accept`` names checks a person has decided to let through for one release (e.g. a new
    enum value Xero started sending): they are still evaluated and recorded, as warnings.
    """

    def __init__(self, conn: Connection, tenant_id: str, stream: Stream, *, expected_pages: int | None = None,
                 expected_records: int | None = None, accept: tuple[str, ...] = ()):
        self.conn = conn
        self.tenant_id = tenant_id
        self.stream = stream
        self.table = stream.targets[0]
        self.accept = set(accept)
        self.expected_pages = expected_pages
        self.expected_records = expected_records
        self.results: list[CheckResult] = []
        self.validations: list[tuple[str, int, Any]] = []  # (table, chunk, GX result) for Data Docs
        self.pages = 0
        self.records = 0
        self.unreadable_pages: dict[str, str] = {}
        self.short_pages: dict[str, str] = {}
        self.unreadable_records: dict[str, str] = {}
        self._chunks = 0
        self._refs = None

    # -- raw pages and records -----------------------------------------------------------------
    def read_page(self, number: int, body: bytes | Exception) -> list[Any] | None:
        """The page's records, or None (and a finding) when the page cannot be read."""
        from intoaec_xero.parsing import loads

        self.pages += 1
        if isinstance(body, Exception):
            self.unreadable_pages[f"page {number}"] = f"the kept page cannot be read: {_first_line(body)}"
            return None
        try:
            payload = loads(body)
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            self.unreadable_pages[f"page {number}"] = (f"not complete JSON ({len(body)} bytes; "
                                                       f"{_first_line(error)})")
            return None
        records = payload.get(self.stream.records_key) if isinstance(payload, dict) else None
        if not isinstance(records, list):
            self.unreadable_pages[f"page {number}"] = f"no {self.stream.records_key} list in the page"
            return None
        self.records += len(records)
        if self.stream.paging is Paging.PAGE:
            self._check_page_full(number, payload, records)
        return records

    def _check_page_full(self, number: int, payload: dict, records: list) -> None:
        pagination = payload.get("pagination")
        if not isinstance(pagination, dict):
            return
        try:
            page, count, size = int(pagination["page"]), int(pagination["pageCount"]), int(pagination["pageSize"])
        except (KeyError, TypeError, ValueError):
            return
        # Only the last page may be short: a short page in the middle lost records on the way.
        if page < count and len(records) < size:
            self.short_pages[f"page {number}"] = (f"page {page} of {count} holds {len(records)} records, "
                                                  f"{size} expected")

    def unreadable(self, page: int, position: int, record: Any, error: Exception) -> None:
        self.unreadable_records[record_label(self.stream, page, position, record)] = _first_line(error)

    # -- rows ------------------------------------------------------------------------------------
    def check(self, rows_by_table: dict[str, list[dict[str, Any]]]) -> bool:
        """Run the suites on one chunk; True when nothing so far stops the batch (so it may be written)."""
        from intoaec_xero.quality import frames, runner

        self._chunks += 1
        refs = self._references()
        with collector.paused():
            built = frames.build_frames(self.stream.targets, rows_by_table, refs)
            for table, frame in built.items():
                results, outcome = runner.validate(frame)
                self.results.extend(results)
                self.validations.append((table, self._chunks, outcome))
        return not self.failed

    def _references(self):
        from intoaec_xero.quality.frames import References
        from intoaec_xero.schema import accounts, invoices

        if self._refs is None:
            self._refs = References()
            if "payments" in self.stream.targets:
                self._refs.invoice_ids = set(self.conn.execute(
                    select(invoices.c.invoice_id).where(invoices.c.tenant_id == self.tenant_id)).scalars())
            if "journal_lines" in self.stream.targets:
                self._refs.account_ids = set(self.conn.execute(
                    select(accounts.c.account_id).where(accounts.c.tenant_id == self.tenant_id)).scalars())
        return self._refs

    @property
    def failed(self) -> bool:
        structural = {"page_readable": self.unreadable_pages, "pages_complete": self.short_pages,
                      "record_readable": self.unreadable_records}
        return any(found and name not in self.accept for name, found in structural.items()) or any(
            r.failed_error and r.check not in self.accept for r in self.results)

    # -- the verdict -----------------------------------------------------------------------------
    def finish(self) -> list[CheckResult]:
        """Every verdict of the batch, one per check; raises :class:`BatchRejected` on an error."""
        results = self._structural() + merge(self.results)
        for result in results:
            if result.check in self.accept and not result.passed and result.severity == ERROR:
                result.severity = WARN
                result.observed += " (accepted for this release)"
        if any(r.failed_error for r in results):
            rejected = BatchRejected(self.tenant_id, self.stream.name, results)
            rejected.validations = self.validations
            raise rejected
        return results

    def _structural(self) -> list[CheckResult]:
        missing = []
        if self.expected_pages is not None and self.pages < self.expected_pages:
            missing.append(f"{self.pages} of {self.expected_pages} extracted pages are kept")
        elif (self.expected_records is not None and not self.unreadable_pages
              and self.records < self.expected_records):
            missing.append(f"{self.records} of {self.expected_records} extracted records are in the kept pages")
        incomplete = dict(self.short_pages)
        if missing:
            incomplete["pages"] = "; ".join(missing)
        return [
            _structural(self.table, "page_readable", self.unreadable_pages, self.pages, "pages",
                        "every kept page is complete JSON with its records list"),
            _structural(self.table, "pages_complete", incomplete, self.pages, "pages",
                        "no page is missing or short of records (only the last page may be short)"),
            _structural(self.table, "record_readable", self.unreadable_records, self.records, "records",
                        "every record can be read into rows (ids present, amounts, dates and flags parse)"),
        ]


def _structural(table: str, check: str, failures: dict[str, str], total: int, unit: str, rule: str) -> CheckResult:
    observed = f"{len(failures)} of {total} {unit}"
    if failures:
        observed += ": " + "; ".join(f"{k}: {v}" for k, v in list(failures.items())[:3])
    return CheckResult(table, check, ERROR, not failures, observed=observed, expected=rule,
                       failing_keys=list(failures)[:SAMPLE_KEYS],
                       record_keys={k: f"{check} (error): {v}" for k, v in failures.items()})


def record_label(stream: Stream, page: int, position: int, record: Any) -> str:
    """How verdicts and quarantine name a record: its Xero id, or where it sat when it has none."""
    key = record.get(stream.primary_key) if isinstance(record, dict) else None
    if isinstance(key, (str, int)) and not isinstance(key, bool) and key != "":
        return str(key)
    return f"page {page} record {position + 1}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]
