"""Running the suites with Great Expectations 1.x, and turning its results into verdicts.

One ephemeral GX context per process, its suites registered once: a context costs little, but
rebuilding the suites for every batch would not. Clean data takes the fast path (``BASIC``
results); only an expectation that failed is run again with ``COMPLETE`` results to name
every failing row, which quarantine needs and a clean run never pays for.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from intoaec_xero.quality import suites
from intoaec_xero.quality.frames import Frame
from intoaec_xero.quality.model import SAMPLE_KEYS, SAMPLE_VALUES, CheckResult

log = logging.getLogger(__name__)

_lock = threading.Lock()
_runtime: _Runtime | None = None


def quiet_gx() -> None:
    """GX logs ~200 INFO lines per validation and phones home unless told not to."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    for name in ("great_expectations", "great_expectations.core", "great_expectations.data_context"):
        logging.getLogger(name).setLevel(logging.WARNING)


def import_gx():
    quiet_gx()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import great_expectations as gx
    # GX (with pandas, scipy, pydantic) leaves a few hundred thousand long-lived objects; the
    # cyclic collector would walk them on every full collection for the rest of the sync, which
    # cost more than the checks themselves. Freezing moves what exists now out of its sight
    # (reference counting still frees it).
    gc.freeze()
    return gx


def context_config(**overrides: Any):
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    return DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(),
                             progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
                             analytics_enabled=False, **overrides)


@dataclass
class _Table:
    suite: Any
    batch_definition: Any
    expectations: dict[str, Any]


class _Runtime:
    def __init__(self) -> None:
        gx = import_gx()
        from great_expectations.execution_engine import pandas_execution_engine

        # GX fingerprints every in-memory batch (a hash of every cell) for its batch markers only.
        # Batches here are named by run, tenant and table instead, and on a big table that hash
        # cost more than all the checks together; frames above this size (0 bytes) are not hashed.
        pandas_execution_engine.HASH_THRESHOLD = 0
        self.gx = gx
        self.context = gx.get_context(mode="ephemeral", project_config=context_config())
        self.source = self.context.data_sources.add_pandas("xero")
        self.tables: dict[str, _Table] = {}
        for name in suites.TABLES:  # once per process, like the import
            self.table(name)

    def table(self, name: str) -> _Table:
        if name not in self.tables:
            checks = suites.checks_for(name)
            expectations = {c.name: c.expectation(self.gx.expectations) for c in checks}
            suite = self.context.suites.add(
                self.gx.ExpectationSuite(name=suites.suite_name(name), expectations=list(expectations.values())))
            batch_definition = self.source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("batch")
            self.tables[name] = _Table(suite, batch_definition, {e.meta["check"]: e for e in suite.expectations})
        return self.tables[name]


def runtime() -> _Runtime:
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = _Runtime()
        return _runtime


def expectation_suites() -> list[Any]:
    """Every suite, registered; for Data Docs' suite pages."""
    rt = runtime()
    return [rt.table(name).suite for name in suites.TABLES]


def validate(frame: Frame) -> tuple[list[CheckResult], Any]:
    """Run the table's suite on one frame; returns the verdicts and GX's own result (for Data Docs)."""
    rt = runtime()
    table = rt.table(frame.table)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = table.batch_definition.get_batch(batch_parameters={"dataframe": frame.data})
        # Pass/fail only: a clean run needs no counts, and a failure is run again in full below.
        outcome = batch.validate(table.suite, result_format="BOOLEAN_ONLY")
        checks = {c.name: c for c in suites.checks_for(frame.table)}
        results = []
        for position, item in enumerate(outcome.results):
            check = checks[item.expectation_config.meta["check"]]
            result = _verdict(frame, check, item)
            if not result.passed:
                detail = _name_failures(batch, table.expectations[check.name], frame, check, result)
                if detail is not None:
                    outcome.results[position] = detail
            results.append(result)
    return results, outcome


def _verdict(frame: Frame, check: suites.Check, item: Any) -> CheckResult:
    info = item.exception_info or {}
    if info.get("raised_exception"):
        message = str(info.get("exception_message") or "error").splitlines()[0][:300]
        return CheckResult(frame.table, check.name, check.severity, False,
                           observed=f"could not be evaluated: {message}", expected=check.rule)
    return CheckResult(frame.table, check.name, check.severity, bool(item.success), expected=check.rule,
                       unexpected=0 if item.success else None, rows=frame.rows)


def _name_failures(batch: Any, expectation: Any, frame: Frame, check: suites.Check, result: CheckResult) -> Any:
    """Counts, examples and every failing row's key and record id, from a complete run of one
    expectation; returns that run's result, trimmed to what Data Docs shows.

    GX is asked for the failing rows' positions only: asked for their id columns, it looks each
    one up a cell at a time (about 80 µs a row, so a check failing on a whole large batch cost
    more than every other check together). The ids are taken here, a column at a time.
    """
    columns = list(dict.fromkeys(c for c in (frame.key, frame.record_key, check.show) if c))
    try:
        detail = batch.validate(expectation, result_format={"result_format": "COMPLETE"})
        res = detail.result or {}
        failing = _failing_rows(frame, res.get("unexpected_index_list") or [], [check.column, *columns])
    except Exception as error:  # noqa: BLE001 - the verdict stands; only the names are missing
        log.warning("Could not list the rows failing %s: %s", result.label(), error)
        return None
    result.unexpected = int(res.get("unexpected_count") or 0)
    if check.show:
        result.examples = [_plain(v) for v in dict.fromkeys(failing[check.show])][:SAMPLE_VALUES]
    else:
        result.examples = [_plain(v) for v in (res.get("partial_unexpected_list") or [])[:SAMPLE_VALUES]]
    result.observed = result.count_text()
    info = detail.exception_info or {}
    if info.get("raised_exception"):
        result.observed = "could not be evaluated: " + str(info.get("exception_message") or "error").splitlines()[0]
    shown = check.show or check.column
    for key, record, value in zip(failing[frame.key], failing[frame.record_key], failing[shown], strict=True):
        if len(result.failing_keys) < SAMPLE_KEYS and key not in result.failing_keys:
            result.failing_keys.append(_plain(key))
        if str(record) not in result.record_keys:
            result.record_keys[str(record)] = (f"{check.name} ({check.severity}): {shown}={_plain(value)!r}; "
                                               f"expected {check.rule}")
    # Data Docs show the first failing rows by their ids, as GX shows them when it looks them up itself.
    partial = len(res.get("partial_unexpected_index_list") or [])
    res["unexpected_index_column_names"] = columns
    res["partial_unexpected_index_list"] = [
        {name: failing[name][i] for name in dict.fromkeys([check.column, *columns])} for i in range(partial)]
    # Every failing value belongs in quarantine, not in the HTML page.
    for bulky in ("unexpected_list", "unexpected_index_list", "unexpected_index_query"):
        res.pop(bulky, None)
    return detail


def _failing_rows(frame: Frame, index: list[Any], columns: list[str]) -> dict[str, list[Any]]:
    """The failing rows' values of ``columns`` (each a list in GX's order), read column-wise."""
    positions = frame.data.index.get_indexer(index) if index else np.empty(0, dtype=np.intp)
    if (positions < 0).any():
        raise LookupError("GX named rows the frame does not have")
    return {name: frame.data[name].take(positions).tolist() for name in dict.fromkeys(columns)}


def _plain(value: Any) -> Any:
    """Values as JSON can hold them (numpy scalars, Decimals and dates are not)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if hasattr(value, "item"):
        try:
            value = value.item()
        except (ValueError, TypeError):
            pass
    if isinstance(value, float):
        return None if value != value else (int(value) if value.is_integer() else value)
    if isinstance(value, (str, bool, int)):
        return value
    return str(value)

