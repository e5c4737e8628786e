"""Checks a batch must pass before it reaches IntoAEC's tables.

Each check has a severity: ``error`` rejects the batch (nothing of it is loaded and the
watermark stays put), ``warn`` is recorded and the batch loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from intoaec_xero.schema import metadata


@dataclass
class CheckResult:
    table: str
    check: str
    severity: str
    passed: bool
    observed: str = ""
    expected: str = ""
    failing_keys: list[Any] = field(default_factory=list)


class BatchRejected(Exception):
    """An ``error`` check failed; carries every result so the caller can record them."""

    def __init__(self, tenant_id: str, stream: str, results: list[CheckResult]):
        failed = [r for r in results if not r.passed and r.severity == "error"]
        names = "; ".join(
            f"{r.table}.{r.check} (observed {r.observed}, expected {r.expected}, keys {r.failing_keys[:5]})"
            for r in failed
        )
        super().__init__(f"Tenant {tenant_id}, stream {stream}: batch rejected by {names}.")
        self.results = results


def _keys(table: str) -> list[str]:
    return [c.name for c in metadata.tables[table].primary_key.columns]


def check_table(table: str, rows: list[dict[str, Any]]) -> list[CheckResult]:
    """Keys present and unique within the batch."""
    if not rows:
        return []
    frame = pd.DataFrame.from_records(rows, columns=list(rows[0].keys()))
    keys = _keys(table)
    results = []
    missing = frame[frame[keys].isna().any(axis=1)]
    results.append(
        CheckResult(table, "keys_present", "error", missing.empty, observed=f"{len(missing)} rows without a key",
                    expected="0", failing_keys=missing.index.tolist()[:20])
    )
    dupes = frame[frame.duplicated(subset=keys, keep=False)]
    # Xero may list a record twice when it changes between pages; identical keys with the
    # same content are harmless (the upsert keeps one), so this is a warning.
    results.append(
        CheckResult(table, "keys_unique", "warn", dupes.empty, observed=f"{len(dupes)} duplicated rows",
                    expected="0", failing_keys=["/".join(map(str, k)) for k in dupes[keys].itertuples(index=False)][:20])
    )
    return results


def check_batch(tenant_id: str, stream: str, rows_by_table: dict[str, list[dict[str, Any]]]) -> list[CheckResult]:
    results: list[CheckResult] = []
    for table, rows in rows_by_table.items():
        results.extend(check_table(table, rows))
    if any(not r.passed and r.severity == "error" for r in results):
        raise BatchRejected(tenant_id, stream, results)
    return results
