"""The vocabulary every quality module shares: a check's verdict and a rejected batch.

Kept free of pandas and Great Expectations so the pipeline, the CLI and the Airflow UI can
read verdicts without paying for those imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ERROR = "error"
WARN = "warn"
SEVERITIES = (ERROR, WARN)

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
               "observed": self.observed, "expected": self.expected,
               "failing_keys": [str(k) for k in self.failing_keys[:SAMPLE_KEYS]]}
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
    """``failed`` if an error check failed, ``warn`` if only warnings did, else ``passed``."""
    if any(r.failed_error for r in results):
        return "failed"
    if any(not r.passed for r in results):
        return "warn"
    return "passed"


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
        super().__init__(f"Tenant {tenant_id}, stream {stream}: batch rejected by "
                         + "; ".join(r.describe() for r in self.failed) + ".")

    @property
    def check_names(self) -> list[str]:
        return [r.label() for r in self.failed]
