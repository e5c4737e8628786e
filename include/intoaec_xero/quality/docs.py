"""Great Expectations Data Docs: the HTML view of every suite and of each run's validations.

Verdicts are kept as GX validation results under ``<data dir>/gx/validations`` (so every
load task of a run, whatever process it ran in, lands in one site) and rendered into
``<data dir>/data_docs``. A table's chunks that passed every check share one page (the first
of them); a chunk that failed one has its own. Older runs are pruned so building the index
stays quick. Building the docs never fails a load: the verdicts are already in ``dq_results``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from intoaec_xero.runtime import data_dir

log = logging.getLogger(__name__)

SITE = "intoaec_xero"
# The site is about the latest run; a few before it help compare. Building the index reads every
# kept result, so this also bounds what each build costs.
KEEP_RUNS = 5
_contexts: dict[str, Any] = {}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def docs_dir(root: Path | None = None) -> Path:
    return (root or data_dir()) / "data_docs"


def results_dir(root: Path | None = None) -> Path:
    return (root or data_dir()) / "gx" / "validations"


def latest_index(root: Path | None = None) -> Path | None:
    """The Data Docs home page, for the Airflow UI to link to; None until a run has built it."""
    index = docs_dir(root) / "index.html"
    return index if index.exists() else None


def publish(run_id: str, tenant_label: str, validations: list[tuple[str, int, Any]],
            root: Path | None = None) -> Path | None:
    """Add one tenant's validation results of a run to the site and rebuild the pages they touch."""
    if not validations:
        return latest_index(root)
    try:
        with _site_lock(root):
            return _publish(run_id, tenant_label, validations, root)
    except Exception as error:  # noqa: BLE001 - the docs are a view; the load already succeeded or failed
        log.warning("Data Docs were not updated: %s", error)
        return latest_index(root)


def _publish(run_id: str, tenant_label: str, validations: list[tuple[str, int, Any]], root: Path | None) -> Path:
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from intoaec_xero.quality import suites

    context = _context(root)
    run = RunIdentifier(run_name=_safe(run_id), run_time=datetime.now(UTC))
    keys = []
    for table, chunk, outcome in _shown(validations):
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suites.suite_name(table)),
            run_id=run, batch_identifier=_safe(f"{tenant_label}__{table}" + (f"__part{chunk}" if chunk > 1 else "")))
        context.validation_results_store.set(key, outcome)
        keys.append(key)
    _prune(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        context.build_data_docs(site_names=[SITE], resource_identifiers=keys)
    index = docs_dir(root) / "index.html"
    return index


def _shown(validations: list[tuple[str, int, Any]]) -> list[tuple[str, int, Any]]:
    """The results that get a page: every chunk that failed a check, and the first chunk of each
    table that passed them all.

    A large stream is checked in many chunks; a chunk that passed every check has a page that
    says just what the first such page of its table says (every expectation met), and each page
    costs its rendering (a large tenant's journals alone made dozens of pages). The verdicts over every
    chunk are in ``dq_results`` whatever is shown here.
    """
    passed: set[str] = set()
    pages = []
    for table, chunk, outcome in validations:
        if getattr(outcome, "success", False) is True:
            if table in passed:
                continue
            passed.add(table)
        pages.append((table, chunk, outcome))
    return pages


def _context(root: Path | None):
    """One docs context per process and site: its suites are registered once."""
    key = str(docs_dir(root).resolve())
    if key not in _contexts:
        _contexts[key] = _new_context(root)
    return _contexts[key]


def _new_context(root: Path | None):
    from great_expectations.data_context import EphemeralDataContext

    from intoaec_xero.quality import runner
    from intoaec_xero.quality.runner import context_config, quiet_gx

    quiet_gx()
    config = context_config(data_docs_sites={SITE: {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir(root))},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }})
    config.stores["validation_results_store"] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(results_dir(root))},
    }
    # Built directly rather than with gx.get_context(): that would make it the process's current
    # GX project and unbind the validation context's suites.
    context = EphemeralDataContext(project_config=config)
    for suite in runner.expectation_suites():
        context.expectations_store.add_or_update(context.expectations_store.get_key(name=suite.name, id=None), suite)
    return context


def _prune(root: Path | None) -> None:
    """Keep the newest runs' results (and their pages): the index lists everything kept."""
    runs: dict[str, float] = {}
    base = results_dir(root)
    for suite_dir in _suite_dirs(base):
        for run_dir in suite_dir.iterdir():
            runs[run_dir.name] = max(runs.get(run_dir.name, 0.0), run_dir.stat().st_mtime)
    stale = sorted(runs, key=runs.__getitem__, reverse=True)[KEEP_RUNS:]
    for name in stale:
        for folder in (base, docs_dir(root) / "validations"):
            for suite_dir in _suite_dirs(folder):
                shutil.rmtree(suite_dir / name, ignore_errors=True)


def _suite_dirs(folder: Path) -> list[Path]:
    """Each suite's folder: GX nests a suite named ``xero.invoices`` as ``xero/invoices``, whose
    children are the runs."""
    from intoaec_xero.quality import suites

    depth = suites.suite_name("table").count(".") + 1
    return [path for path in folder.glob("/".join(["*"] * depth)) if path.is_dir()] if folder.exists() else []


@contextlib.contextmanager
def _site_lock(root: Path | None):
    """Tenants load in parallel Airflow tasks; one of them rebuilds the index at a time."""
    folder = docs_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        try:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - not POSIX: builds may race, the next one repairs
            pass
        yield


def _safe(value: str) -> str:
    return _UNSAFE.sub("_", value).strip("_") or "run"


def describe(path: Path | None) -> str:
    return path.resolve().as_uri() if path else "not built yet"


__all__ = ["describe", "docs_dir", "latest_index", "publish", "results_dir"]
