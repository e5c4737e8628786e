"""Checks a batch must pass before it reaches IntoAEC's tables.

A batch is one tenant × stream of one run: everything one load transaction would commit. Each
check has a severity: ``error`` rejects the batch (nothing of it is loaded, the watermark stays
put and the records go to quarantine), ``hold`` holds back only the records that fail it (each
with its lines; the rest loads and the watermark moves), ``warn`` is recorded and everything loads.

Three kinds of check run here, in the order the data gets readable:

- the raw pages: each one parses, none is missing or cut short (``page_readable``,
  ``pages_complete``): batch-level;
- each record turns into rows (``record_readable``): transform names what it could not read,
  and the record is held;
- the rows, per table, against the Great Expectations suites in
  :mod:`intoaec_xero.quality.suites`, a chunk at a time so memory stays flat on large tenants.
  When a chunk holds records back, its batch-level checks are run again without them, so a
  held record never rejects the batch it was taken out of.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from intoaec_xero import collector
from intoaec_xero.quality.model import (
    ERROR,
    HOLD,
    SAMPLE_KEYS,
    WARN,
    BatchRejected,
    CheckResult,
    merge,
    record_key_text,
    record_label,
    verdict,
)
from intoaec_xero.streams import Paging, Stream

if TYPE_CHECKING:
    from intoaec_xero.quality.frames import References

__all__ = ["BatchRejected", "CheckResult", "StreamValidator", "ERROR", "HOLD", "WARN", "record_key_text",
           "record_label", "verdict", "without"]

Reasons = dict[str, list[tuple[str, str, str]]]  # record label -> [(table, check, reason)]

log = logging.getLogger(__name__)


class StreamValidator:
    """Collects one batch's verdicts while load reads, transforms and writes it.

    ``accept`` names checks a person has decided to let through for one release (e.g. a new
    enum value Xero started sending): they are still evaluated and recorded, as warnings, and
    hold nothing back.
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
        self.server_items: int | None = None  # pagination.itemCount of the last kept page that has one
        self.unreadable_records: dict[str, str] = {}
        self._chunks = 0
        self._refs: References | None = None

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
        if type(pagination.get("itemCount")) is int:
            self.server_items = pagination["itemCount"]
        try:
            page, count, size = int(pagination["page"]), int(pagination["pageCount"]), int(pagination["pageSize"])
        except (KeyError, TypeError, ValueError):
            return
        # Only the last page may be short: a short page in the middle lost records on the way.
        if page < count and len(records) < size:
            self.short_pages[f"page {number}"] = (f"page {page} of {count} holds {len(records)} records, "
                                                  f"{size} expected")

    def unreadable(self, label: str, error: Exception) -> str:
        """A record transform could not read (so it is held whatever is accepted); returns why."""
        reason = _first_line(error)
        self.unreadable_records[label] = reason
        return f"record_readable ({HOLD}): {reason}"

    def readable_after_all(self, label: str) -> None:
        """A later version of a record that could not be read was read and loaded."""
        self.unreadable_records.pop(label, None)

    # -- rows ------------------------------------------------------------------------------------
    def check(self, rows_by_table: dict[str, list[dict[str, Any]]], labels: dict[str, list[str]]) -> Reasons:
        """Run the suites on one chunk; returns the records to hold back and why.

        ``labels`` names each row's record (per table, in row order). Whether the rest of the chunk
        may be written is :attr:`failed`.
        """
        from intoaec_xero.quality import frames, runner

        self._chunks += 1
        refs = self._references()
        with collector.paused():
            first = []
            for table, frame in frames.build_frames(self.stream.targets, rows_by_table, refs, labels).items():
                results, outcome = runner.validate(frame)
                first.extend(results)
                self.validations.append((table, self._chunks, outcome))
            record_level = [r for r in first if r.severity == HOLD]
            held = self._held(first)
            if not held:
                self.results.extend(first)
                return held
            # The batch-level checks judge what will be written: without the held records.
            kept_rows, kept_labels = without(rows_by_table, labels, held)
            second = []
            kept = frames.build_frames(self.stream.targets, kept_rows, refs, kept_labels)
            for frame in kept.values():
                second.extend(runner.validate(frame)[0])
        self.results.extend(record_level)
        self.results.extend(r for r in second if r.severity != HOLD)
        # A table whose every row was held still says its batch-level checks ran (on no rows).
        self.results.extend(CheckResult(r.table, r.check, r.severity, True, expected=r.expected, unexpected=0, rows=0)
                            for r in first if r.table not in kept and all(r is not h for h in record_level))
        return held

    def _held(self, results: list[CheckResult]) -> Reasons:
        held: Reasons = {}
        for result in results:
            if not result.held or result.check in self.accept:
                continue
            if not result.record_keys:
                # The failing rows could not be named, so none can be held alone: the batch stops.
                result.severity = ERROR
                continue
            for label, reason in result.record_keys.items():
                held.setdefault(label, []).append((result.table, result.check, reason))
        if held:  # everything else the held records fail, for whoever looks at them
            for result in results:
                if not result.passed and not (result.held and result.check not in self.accept):
                    for label in result.record_keys.keys() & held.keys():
                        held[label].append((result.table, result.check, result.record_keys[label]))
        return held

    def _references(self) -> References:
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
        structural = {"page_readable": self.unreadable_pages, "pages_complete": self.short_pages}
        return any(found and name not in self.accept for name, found in structural.items()) or any(
            r.failed_error and r.check not in self.accept for r in self.results)

    # -- the verdict -----------------------------------------------------------------------------
    def finish(self) -> list[CheckResult]:
        """Every verdict of the batch, one per check; raises :class:`BatchRejected` on an error."""
        results = self._structural() + merge(self.results)
        for result in results:
            # A record that cannot be read has no rows to let through: record_readable is never accepted.
            if (result.check in self.accept and not result.passed and result.severity in (ERROR, HOLD)
                    and result.check != "record_readable"):
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
        if self.server_items is not None and not self.unreadable_pages and self.records < self.server_items:
            missing.append(f"{self.records} of the {self.server_items} records Xero counted (pagination "
                           "itemCount) are in the kept pages")
        incomplete = dict(self.short_pages)
        if missing:
            incomplete["pages"] = "; ".join(missing)
        return [
            _structural(self.table, "page_readable", self.unreadable_pages, self.pages, "pages",
                        "every kept page is complete JSON with its records list"),
            _structural(self.table, "pages_complete", incomplete, self.pages, "pages",
                        "no page is missing or short of records (only the last page may be short) and "
                        "every record Xero counted is kept"),
            _structural(self.table, "record_readable", self.unreadable_records, self.records, "records",
                        "every record can be read into rows (ids present, amounts, dates and flags parse)",
                        severity=HOLD),
        ]


def _structural(table: str, check: str, failures: dict[str, str], total: int, unit: str, rule: str,
                severity: str = ERROR) -> CheckResult:
    observed = f"{len(failures)} of {total} {unit}"
    if failures:
        observed += ": " + "; ".join(f"{k}: {v}" for k, v in list(failures.items())[:3])
    return CheckResult(table, check, severity, not failures, observed=observed, expected=rule,
                       failing_keys=list(failures)[:SAMPLE_KEYS],
                       record_keys={k: f"{check} ({severity}): {v}" for k, v in failures.items()})


def without(rows_by_table: dict[str, list[dict[str, Any]]], labels: dict[str, list[str]],
            held: Reasons | set[str]) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[str]]]:
    """The rows (and their labels) of every record but the held ones."""
    rows: dict[str, list[dict[str, Any]]] = {}
    kept: dict[str, list[str]] = {}
    for table, table_rows in rows_by_table.items():
        names = labels[table]
        keep = [i for i, label in enumerate(names) if label not in held]
        rows[table] = [table_rows[i] for i in keep]
        kept[table] = [names[i] for i in keep]
    return rows, kept


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]
