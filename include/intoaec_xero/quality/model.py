"""The vocabulary every quality module shares: a check's verdict, a held record, a rejected batch.

Kept free of pandas and Great Expectations so the pipeline, the CLI and the Airflow UI can
read verdicts without paying for those imports.

Severities say what a failure does:

- ``error`` — a batch-level invariant broke: the whole batch is rejected and quarantined;
- ``hold`` — a record-level check: each failing record (with its lines) is held back alone in
  quarantine and the rest of the batch loads;
- ``warn`` — recorded; everything loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from intoaec_xero.streams import Stream

ERROR = "error"
HOLD = "hold"
WARN = "warn"
SEVERITIES = (ERROR, HOLD, WARN)

# Enough keys to find the records in Xero; the full list lives in the quarantine tables.
SAMPLE_KEYS = 20
SAMPLE_VALUES = 5

SKIPPED_PREFIX = "skipped: "


@dataclass
class CheckResult:
    """One check's verdict on one tenant's batch (or, for reconciliation, on its whole ledger).

    Row checks carry counts (``unexpected`` of ``rows``) and example values, so verdicts of a
    stream validated in several chunks add up; ledger checks just say what they saw in
    ``observed``. ``failing_keys`` is a sample for people; ``record_keys`` maps every failing
    record (by the stream's Xero id) to why it failed, which is what quarantine needs.
    """

    table: str
    check: str
    severity: str
    passed: bool
    observed: str = ""
    expected: str = ""
    failing_keys: list[Any] = field(default_factory=list)
    record_keys: dict[str, str] = field(default_factory=dict, repr=False)
    skipped: str | None = None
    unexpected: int | None = None
    rows: int | None = None
    examples: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.observed and self.rows is not None:
            self.observed = self.count_text()

    def count_text(self) -> str:
        text = f"{self.unexpected or 0} of {self.rows} rows"
        if self.examples:
            text += " (e.g. " + ", ".join(_short(v) for v in self.examples[:SAMPLE_VALUES]) + ")"
        return text

    @property
    def failed_error(self) -> bool:
        return not self.passed and self.severity == ERROR

    @property
    def held(self) -> bool:
        """A record-level check failed: its failing records were held back, the batch loaded."""
        return not self.passed and self.severity == HOLD

    @classmethod
    def skip(cls, table: str, check: str, severity: str, reason: str, expected: str = "") -> CheckResult:
        """A check that could not run says why, so a gap in the verdicts is never silent."""
        return cls(table, check, severity, True, observed=SKIPPED_PREFIX + reason, expected=expected,
                   skipped=reason)

    def label(self) -> str:
        return f"{self.table}.{self.check}"

    def describe(self) -> str:
        keys = ", ".join(str(k) for k in self.failing_keys[:5])
        more = " …" if len(self.failing_keys) > 5 else ""
        return (f"{self.label()} [{self.severity}]: observed {self.observed or 'a failure'}"
                + (f", expected {self.expected}" if self.expected else "")
                + (f"; failing keys {keys}{more}" if keys else ""))

    def to_dict(self) -> dict[str, Any]:
        out = {"table": self.table, "check": self.check, "severity": self.severity, "passed": self.passed,
               "observed": storable(self.observed), "expected": self.expected,
               "failing_keys": [storable(str(k)) for k in self.failing_keys[:SAMPLE_KEYS]]}
        if self.skipped:
            out["skipped"] = self.skipped
        return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def merge(results: list[CheckResult]) -> list[CheckResult]:
    """One verdict per (table, check): a stream validated in several chunks reports once."""
    merged: dict[tuple[str, str], CheckResult] = {}
    for result in results:
        key = (result.table, result.check)
        current = merged.get(key)
        if current is None:
            merged[key] = CheckResult(
                result.table, result.check, result.severity, result.passed, result.observed, result.expected,
                list(result.failing_keys), dict(result.record_keys), result.skipped, result.unexpected,
                result.rows, list(result.examples))
            continue
        current.passed = current.passed and result.passed
        for k in result.failing_keys:
            if len(current.failing_keys) < SAMPLE_KEYS and k not in current.failing_keys:
                current.failing_keys.append(k)
        for k, reason in result.record_keys.items():
            current.record_keys.setdefault(k, reason)
        for v in result.examples:
            if len(current.examples) < SAMPLE_VALUES and v not in current.examples:
                current.examples.append(v)
        if current.rows is not None and result.rows is not None:
            current.rows += result.rows
            current.unexpected = (current.unexpected or 0) + (result.unexpected or 0)
            current.observed = current.count_text()
        elif not result.passed and result.observed:
            current.observed = result.observed
    return list(merged.values())


def verdict(results: list[CheckResult]) -> str:
    """``failed`` if an error check failed, ``warn`` if only warnings or held records did, else ``passed``."""
    if any(r.failed_error for r in results):
        return "failed"
    if any(not r.passed for r in results):
        return "warn"
    return "passed"


def storable(text: str) -> str:
    """Text both backends can store: NUL and unpaired surrogates written as escapes.

    Labels, reasons and messages may quote the very value a record was held for.
    """
    if is_storable(text):
        return text
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def is_storable(text: str) -> bool:
    """Whether PostgreSQL accepts the text: no NUL character, and valid UTF-8 (no unpaired surrogate)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass
class HeldRecord:
    """One record held back by record-level checks, with the lines that travel with it.

    ``label`` is its Xero id, or where it sat (page, position) when it has no readable id.
    """

    label: str
    page: int
    position: int
    reasons: list[tuple[str, str, str]] = field(default_factory=list)  # (table, check, reason)
    record: Any = None
    keyed: bool = True  # the label is the record's Xero id (not its place), so later runs can name it too

    @property
    def checks(self) -> list[str]:
        return list(dict.fromkeys(check for _table, check, _reason in self.reasons))


class BatchRejected(Exception):
    """An ``error`` check failed: nothing of the batch may load and the watermark must stay.

    Carries every verdict (passed ones too) so the caller can record them and quarantine the
    failing records.
    """

    def __init__(self, tenant_id: str, stream: str, results: list[CheckResult]):
        self.tenant_id = tenant_id
        self.stream = stream
        self.results = results
        self.failed = [r for r in results if r.failed_error]
        # Filled in on the way up: the GX results behind the verdicts (for Data Docs), and what the
        # records were read from (so the quarantine names keyless records as the checks did).
        self.validations: list[tuple[str, int, Any]] = []
        self.origin = ""
        super().__init__(f"Tenant {tenant_id}, stream {stream}: batch rejected by "
                         + "; ".join(r.describe() for r in self.failed) + ".")

    @property
    def check_names(self) -> list[str]:
        return [r.label() for r in self.failed]


# Longer ids cannot be Xero's (its ids are GUIDs) and would not fit the quarantine's key column.
LABEL_LENGTH = 255


def record_label(stream: Stream, page: int, position: int, record: Any, origin: str = "") -> str:
    """How verdicts and quarantine name a record: its Xero id, or where it sat when it has none.

    An id that could not be stored as text (a NUL in it, say) is no name either. ``origin`` tells
    apart pages of one run that were extracted separately (a journal backfill's pages).
    """
    return record_key_text(stream, record) or f"{origin}page {page} record {position + 1}"


def record_key_text(stream: Stream, record: Any) -> str | None:
    """The record's Xero id as a name, or None when it has none that can be stored as one."""
    key = record.get(stream.primary_key) if isinstance(record, dict) else None
    if isinstance(key, (str, int)) and not isinstance(key, bool) and key != "":
        key = str(key)
        if len(key) <= LABEL_LENGTH and is_storable(key):
            return key
    return None
