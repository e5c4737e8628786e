"""Great Expectations Data Docs: the HTML view of every suite and of each run's validations.

Verdicts are kept as GX validation results under ``<data dir>/gx/validations`` (so every
load task of a run, whatever process it ran in, lands in one site) and rendered into
``<data dir>/data_docs``. A table's chunks that passed every check share one page (the first
of them); a chunk that failed one has its own. Older runs are pruned so building the index
stays quick. Building the docs never fails a load: the verdicts are already in ``dq_results``.

GX's pages load their scripts, styles and fonts from CDNs; the site gets its own copy of them
(``docs_assets``, under ``static/vendor``) and its pages point there, so they render offline, both
through the Airflow page and opened as files.
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
# kept result, so this also bounds what each build costs: older runs go once the kept results pass
# KEEP_RESULTS (hundreds of tenants make thousands of results a run; the latest run always stays).
KEEP_RUNS = 5
KEEP_RESULTS = 3000
_contexts: dict[str, Any] = {}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

_VENDORED = Path(__file__).with_name("docs_assets")
# What GX's page templates load from the internet -> its copy under docs_assets (whose README says
# where each file comes from).
_ASSETS = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap-4.3.1/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap-4.3.1/js/bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery-3.7.1/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js-1.12.9/umd/popper.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css":
        "bootstrap-table-1.19.1/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js":
        "bootstrap-table-1.19.1/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table-1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table-1.19.0/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table-1.19.0/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker-1.9.0/css/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker-1.9.0/js/bootstrap-datepicker.min.js",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "bootstrap-dark-1.1.0/css/bootstrap-prefers-dark.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css":
        "fontawesome-free-6.6.0/css/all.min.css",
}
# GX's logo, from its S3 bucket -> the file in the site's static/images (GX copies that folder in).
# The dark theme's logo (white lettering) is not among them: the light one stands in.
_GX_IMAGES = {"logo-long.png": "logo-long.png", "full_logo_dark.png": "logo-long.png"}
_GX_IMAGE_URL = re.compile(r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/"
                           r"(?P<name>" + "|".join(map(re.escape, _GX_IMAGES)) + r")(?:\?[^\s\"')]*)?")
# Vega draws only graphs, and no expectation of ours renders one.
_UNUSED_SCRIPTS = re.compile(r'<script src="https://cdn\.jsdelivr\.net/npm/vega(?:-lite|-embed)?@\d+"></script>\s*')
_ASSET_TAG = re.compile(r"<(?:script|link|img)\b[^>]*>", re.IGNORECASE)
_ASSET_URL = re.compile(r'(?<![\w-])(?:src|href)="([^"]*)"')
# A page opened as a file can neither make the CORS request ``crossorigin`` asks for nor check ``integrity``
# (its scripts would not run); the site's own copy needs neither.
_CORS_ATTRIBUTES = re.compile(r'\s+(?:integrity|crossorigin)="[^"]*"')
# GX's own links into static/ are re-based as well: its validation pages' favicon is one ../ short.
_SITE_STATIC = re.compile(r"^(?:\./|(?:\.\./)+)?static/")


def docs_dir(root: Path | None = None) -> Path:
    return (root or data_dir()) / "data_docs"


def results_dir(root: Path | None = None) -> Path:
    return (root or data_dir()) / "gx" / "validations"


def latest_index(root: Path | None = None) -> Path | None:
    """The Data Docs home page, for the Airflow UI to link to; None until a run has built it."""
    index = docs_dir(root) / "index.html"
    return index if index.exists() else None


def publish(run_id: str, tenant_label: str, validations: list[tuple[str, int, Any]],
            root: Path | None = None, *, build_index: bool = True) -> Path | None:
    """Add one tenant's validation results of a run to the site and render their pages.

    ``build_index=False`` leaves the home page for :func:`rebuild_index`: it reads every kept
    result, so a run of many tenants builds it once at its end rather than once per tenant.
    """
    if not validations:
        return latest_index(root)
    try:
        with _site_lock(root):
            return _publish(run_id, tenant_label, validations, root, build_index)
    except Exception as error:  # noqa: BLE001 - the docs are a view; the load already succeeded or failed
        log.warning("Data Docs were not updated: %s", error)
        return latest_index(root)


def rebuild_index(root: Path | None = None) -> Path | None:
    """The home page over every kept result (a run's last step); None when there is nothing to list."""
    if not results_dir(root).exists():
        return latest_index(root)
    try:
        with _site_lock(root), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _prune(root)
            site = docs_dir(root)
            before = _page_times(site)
            # GX's build_data_docs renders every kept result's page when given none; only the index is wanted.
            context = _context(root)
            builder = context._init_site_builder_for_data_docs_site_creation(
                site_name=SITE, site_config=context.variables.data_docs_sites[SITE])
            builder.target_store.copy_static_assets()
            builder.site_index_builder.build(build_index=True)
            _make_offline(site, before)
    except Exception as error:  # noqa: BLE001 - the docs are a view
        log.warning("The Data Docs index was not rebuilt: %s", error)
    return latest_index(root)


def _publish(run_id: str, tenant_label: str, validations: list[tuple[str, int, Any]], root: Path | None,
             build_index: bool = True) -> Path:
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from intoaec_xero.quality import suites

    context = _context(root)
    # GX's page builder lists every result its store holds to find the ones asked for, so with hundreds
    # of tenants' results kept each load would read them all: the pages are built from a store holding
    # only this load's results, and the kept store (which the index reads) gets them too.
    pages = context if build_index else _context(root, only_new_results=True)
    if pages is not context:
        for old in pages.validation_results_store.list_keys():
            pages.validation_results_store.remove_key(old)
    run = RunIdentifier(run_name=_safe(run_id), run_time=datetime.now(UTC))
    keys = []
    for table, chunk, outcome in _shown(validations):
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suites.suite_name(table)),
            run_id=run, batch_identifier=_safe(f"{tenant_label}__{table}" + (f"__part{chunk}" if chunk > 1 else "")))
        context.validation_results_store.set(key, outcome)
        if pages is not context:
            pages.validation_results_store.set(key, outcome)
        keys.append(key)
    site = docs_dir(root)
    if build_index:
        _prune(root)
        before = _page_times(site)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pages.build_data_docs(site_names=[SITE], resource_identifiers=keys, build_index=build_index)
    if build_index:
        _make_offline(site, before)
    else:
        # Only this tenant's pages: walking the whole site on every load costs hundreds of tenants O(n²).
        _make_offline(site, {}, pages=[site / "validations" / Path(*key.to_tuple()).with_suffix(".html")
                                       for key in keys])
    return site / "index.html"


def _page_times(site: Path) -> dict[Path, int]:
    return {page: page.stat().st_mtime_ns for page in site.rglob("*.html")}


def _make_offline(site: Path, before: dict[Path, int], pages: list[Path] | None = None) -> None:
    """Point the pages GX just wrote (``pages``, else those newer than ``before``) at the site's own
    copy of their assets.

    The copy is made when it is missing or differs from the package's, and then every page is
    rewritten, so that a site built before (or with other assets) keeps no link to a CDN either.
    """
    vendor = site / "static" / "vendor"
    copied = _listing(vendor) != _listing(_VENDORED)
    if copied:
        _install(_VENDORED, vendor)
    if pages is not None and not copied:
        for page in pages:
            if page.is_file():
                _rewrite_page(site, page)
        return
    for page, written in _page_times(site).items():
        if copied or page.name == "index.html" or before.get(page) != written:
            _rewrite_page(site, page)


def _listing(folder: Path) -> dict[str, int]:
    return {path.relative_to(folder).as_posix(): path.stat().st_size
            for path in folder.rglob("*") if path.is_file()} if folder.exists() else {}


def _install(source: Path, target: Path) -> None:
    """Replace the folder whole, so the site never serves a half-copied one."""
    staging, old = target.with_name(f".{target.name}.new"), target.with_name(f".{target.name}.old")
    for leftover in (staging, old):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.copytree(source, staging)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _rewrite_page(site: Path, page: Path) -> None:
    html = page.read_bytes().decode("utf-8")
    offline = _offline_html(html, len(page.relative_to(site).parts) - 1)
    if offline != html:
        staging = page.with_name(f".{page.name}.new")
        staging.write_bytes(offline.encode("utf-8"))
        staging.replace(page)


def _offline_html(html: str, depth: int) -> str:
    """A page ``depth`` folders below the site's root with its scripts, styles and images taken from
    the site itself, as relative links (which work through the Airflow page and as files alike)."""
    up = "../" * depth

    def local(tag: re.Match[str]) -> str:
        text = tag.group(0)
        found = _ASSET_URL.search(text)
        if not found:
            return text
        url = found.group(1)
        if url in _ASSETS:
            target = f"{up}static/vendor/{_ASSETS[url]}"
        elif _SITE_STATIC.match(url):
            target = up + _SITE_STATIC.sub("static/", url)
        else:
            return text
        return _CORS_ATTRIBUTES.sub("", text[:found.start(1)] + target + text[found.end(1):])

    html = _UNUSED_SCRIPTS.sub("", html)
    html = _GX_IMAGE_URL.sub(lambda image: f"{up}static/images/{_GX_IMAGES[image.group('name')]}", html)
    return _ASSET_TAG.sub(local, html)


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


def _context(root: Path | None, only_new_results: bool = False):
    """One docs context per process and site: its suites are registered once. ``only_new_results``:
    the same site, but its results store is in memory and holds what one load is rendering."""
    key = f"{'new:' if only_new_results else ''}{docs_dir(root).resolve()}"
    if key not in _contexts:
        _contexts[key] = _new_context(root, only_new_results)
    return _contexts[key]


def _new_context(root: Path | None, only_new_results: bool = False):
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
        "store_backend": {"class_name": "InMemoryStoreBackend"} if only_new_results else
        {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(results_dir(root))},
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
    sizes: dict[str, int] = {}
    base = results_dir(root)
    for suite_dir in _suite_dirs(base):
        for run_dir in suite_dir.iterdir():
            runs[run_dir.name] = max(runs.get(run_dir.name, 0.0), run_dir.stat().st_mtime)
            sizes[run_dir.name] = sizes.get(run_dir.name, 0) + sum(1 for _ in run_dir.rglob("*.json"))
    newest = sorted(runs, key=runs.__getitem__, reverse=True)
    kept, total = 0, 0
    for name in newest[:KEEP_RUNS]:
        if kept and total + sizes[name] > KEEP_RESULTS:
            break
        kept, total = kept + 1, total + sizes[name]
    stale = newest[kept:]
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
