"""Which tracking category (or Reference pattern) is a tenant's project: resolved once per load.

AEC firms track projects as a Xero tracking category, named as the firm likes ("Project",
"Projects", "Job", "Jobs"), and some write the job number into a document's Reference. Every
table with lines (invoice, credit-note and journal lines today; bank-transaction, manual-journal
and purchase-order lines the same way) gets a ``project`` column from :meth:`ProjectDimension.project`.

What decides a tenant's project, most specific first:

1. its row in ``project_dimension_overrides`` (the data team edits it): ``tracking_category`` and
   ``reference_pattern`` replace the connection's; a NULL column inherits the connection's, an
   empty ``tracking_category`` means "no tracking category" (the Reference pattern alone);
2. the Xero connection's extras ``project_tracking_category`` (a name or a TrackingCategoryID)
   and ``project_reference_pattern`` (a regex whose first group is the project); they reach the
   load through the stream's extract (``StreamExtract.extra["projects"]``), so a replay sees
   what the run saw;
3. otherwise the first of :data:`DEFAULT_CATEGORY_NAMES` the organisation has, compared without
   case. With none of them, ``project`` stays NULL and the log says, once per tenant and run,
   which categories the organisation has.

Names are matched without case, ids exactly; the tenant's categories are the ones the
``tracking_categories`` stream loaded (it runs before the documents). A line's own option of
the chosen category wins; the Reference pattern only fills in lines without one.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from intoaec_xero.schema import project_dimension_overrides, tracking_categories

log = logging.getLogger(__name__)

# The names firms give their project category, in order of preference.
DEFAULT_CATEGORY_NAMES = ("Project", "Projects", "Job", "Jobs")

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


@dataclass(frozen=True)
class ProjectConfig:
    """What someone configured: a tracking category (name or id) and a Reference pattern; None = not set."""

    tracking_category: str | None = None
    reference_pattern: str | None = None

    def __bool__(self) -> bool:
        return self.tracking_category is not None or self.reference_pattern is not None

    def to_extra(self) -> dict[str, str]:
        """JSON for ``StreamExtract.extra`` (only what is set)."""
        return {k: v for k, v in (("tracking_category", self.tracking_category),
                                  ("reference_pattern", self.reference_pattern)) if v is not None}

    @classmethod
    def from_extra(cls, value: Any) -> ProjectConfig:
        if not isinstance(value, Mapping):
            return cls()
        return cls(_text(value.get("tracking_category")), _text(value.get("reference_pattern")))

    @classmethod
    def from_settings(cls, settings: Any) -> ProjectConfig:
        """The connection's extras, as :class:`~intoaec_xero.settings.XeroSettings` carries them."""
        return cls(_blank_is_none(getattr(settings, "project_tracking_category", None)),
                   _blank_is_none(getattr(settings, "project_reference_pattern", None)))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _blank_is_none(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


@dataclass(frozen=True)
class ProjectDimension:
    """How one tenant's lines name their project.

    ``category_ids`` / ``category_names`` (folded, in order of preference) say which tracking
    category holds projects; ``pattern`` reads it from a document's Reference when a line has no
    option of that category. Without ids, names or pattern every project is NULL.
    """

    category_ids: frozenset[str] = frozenset()
    category_names: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    description: str = "no project dimension"

    def project(self, tracking: Iterable[Any] | None, reference: Any = None) -> str | None:
        """The project of one line: its option of the project category, else the Reference pattern's.

        ``tracking`` is the line's tracking as Xero sends it (``Tracking`` on document lines,
        ``TrackingCategories`` on journal lines): items with ``Name``, ``Option`` and
        ``TrackingCategoryID``. ``reference`` is the document's Reference.
        """
        best: str | None = None
        best_rank = len(self.category_names)
        for item in tracking or ():
            if not isinstance(item, Mapping):
                continue
            option = item.get("Option")
            if not isinstance(option, str) or not option.strip():
                continue
            if self.category_ids and item.get("TrackingCategoryID") in self.category_ids:
                return option
            name = item.get("Name")
            if isinstance(name, str) and best_rank:
                folded = name.strip().casefold()
                for rank, wanted in enumerate(self.category_names[:best_rank]):
                    if folded == wanted:
                        best, best_rank = option, rank
                        break
        if best is not None:
            return best
        if self.pattern is not None and isinstance(reference, str) and reference:
            match = self.pattern.search(reference)
            if match:
                found = match.group(1) if self.pattern.groups else match.group(0)
                if isinstance(found, str) and found.strip():
                    return found.strip()
        return None


# Before a tenant's categories are known (its tracking categories not synced yet), and where no
# load resolved one (a transform called on its own): the default names, matched on each line.
DEFAULT_DIMENSION = ProjectDimension(
    category_names=tuple(n.casefold() for n in DEFAULT_CATEGORY_NAMES),
    description="its option of the first of the tracking categories " + ", ".join(DEFAULT_CATEGORY_NAMES)
    + " the line carries",
)


@dataclass(frozen=True)
class _Category:
    id: str
    name: str
    status: str | None

    @property
    def folded(self) -> str:
        return self.name.strip().casefold()


@dataclass
class _Reported:
    """Log lines already written, so a tenant's dimension is described once per run, not once per stream."""

    seen: set[tuple[str, str, str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def first(self, key: tuple[str, str, str]) -> bool:
        with self.lock:
            if key in self.seen:
                return False
            if len(self.seen) > 10_000:  # a long-lived process: forget old runs
                self.seen.clear()
            self.seen.add(key)
            return True


_reported = _Reported()


def for_stream(conn: Connection, run_id: str, tenant_id: str, stream: Any,
               extra: Mapping[str, Any] | None) -> ProjectDimension | None:
    """The tenant's dimension for a stream whose lines have a project (None for other streams).

    ``extra`` is the stream's ``StreamExtract.extra``; its ``projects`` entry is the connection's
    configuration as the extract saw it.
    """
    if not getattr(stream, "project_lines", False):
        return None
    connection = ProjectConfig.from_extra((extra or {}).get("projects"))
    return resolve(conn, tenant_id, connection, run_id=run_id)


def resolve(conn: Connection, tenant_id: str, connection: ProjectConfig | None = None, *,
            run_id: str = "") -> ProjectDimension:
    """The tenant's project dimension from its override row, the connection's settings and its categories.

    Says once per tenant and run what it chose (info), or why lines get no project (a warning
    naming the organisation's categories).
    """
    config, source = _configured(conn, tenant_id, connection or ProjectConfig())
    categories = [_Category(id_, name, status) for id_, name, status in conn.execute(
        select(tracking_categories.c.tracking_category_id, tracking_categories.c.name, tracking_categories.c.status)
        .where(tracking_categories.c.tenant_id == tenant_id)
        .order_by(tracking_categories.c.tracking_category_id)) if isinstance(name, str) and name.strip()]
    pattern = _pattern(config.reference_pattern, tenant_id, source, run_id)
    wanted = config.tracking_category
    if wanted is not None and not wanted.strip():
        dimension, problem = ProjectDimension(description=f"from no tracking category (set so by {source})"), None
    elif wanted is not None:
        dimension, problem = _configured_category(wanted.strip(), categories, source)
    else:
        dimension, problem = _default_category(categories)
    if pattern is not None:
        dimension = ProjectDimension(dimension.category_ids, dimension.category_names, pattern,
                                     f"{dimension.description}, else the Reference pattern {pattern.pattern!r}")
    if problem:
        _note(run_id, tenant_id, logging.WARNING, f"Tenant {tenant_id}: {problem}" + (
            f"; lines get a project from the Reference pattern {pattern.pattern!r} only." if pattern is not None
            else "."))
    else:
        _note(run_id, tenant_id, logging.INFO, f"Tenant {tenant_id}: the project of a line is {dimension.description}.")
    return dimension


def _configured(conn: Connection, tenant_id: str, connection: ProjectConfig) -> tuple[ProjectConfig, str]:
    """The configuration that applies and where it came from; the override row's columns beat the connection's."""
    row = conn.execute(
        select(project_dimension_overrides.c.tracking_category, project_dimension_overrides.c.reference_pattern)
        .where(project_dimension_overrides.c.tenant_id == tenant_id)).first()
    if row is None:
        return connection, "the connection's project settings"
    category = row.tracking_category if row.tracking_category is not None else connection.tracking_category
    pattern = row.reference_pattern if row.reference_pattern is not None else connection.reference_pattern
    return ProjectConfig(category, pattern or None), "project_dimension_overrides"


def _pattern(text: str | None, tenant_id: str, source: str, run_id: str) -> re.Pattern[str] | None:
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error as error:
        _note(run_id, tenant_id, logging.ERROR,
              f"Tenant {tenant_id}: the project Reference pattern {text!r} of {source} is not a regular "
              f"expression ({error}); it is ignored until it is corrected.")
        return None


def _prefer_active(found: list[_Category]) -> _Category:
    return next((c for c in found if (c.status or "ACTIVE").upper() == "ACTIVE"), found[0])


def _seen(categories: list[_Category]) -> str:
    return ", ".join(repr(c.name) for c in categories) or "none"


def _configured_category(wanted: str, categories: list[_Category],
                         source: str) -> tuple[ProjectDimension, str | None]:
    by_id = [c for c in categories if c.id.casefold() == wanted.casefold()]
    by_name = [c for c in categories if c.folded == wanted.casefold()]
    found = by_id or by_name
    if found:
        chosen = _prefer_active(found)
        return ProjectDimension(frozenset({chosen.id}), (chosen.folded,),
                                description=f"its option of the tracking category {chosen.name!r} ({chosen.id}; "
                                f"by {'id' if by_id else 'name'} from {source})"), None
    is_id = bool(_GUID.match(wanted))
    if is_id:
        dimension = ProjectDimension(frozenset({wanted}),
                                     description=f"its option of the tracking category {wanted} (from {source})")
    else:
        dimension = ProjectDimension(category_names=(wanted.casefold(),),
                                     description=f"its option of the tracking category {wanted!r} (from {source})")
    if not categories:  # not synced yet: trust the configuration
        return dimension, None
    return dimension, (f"the project tracking category {wanted!r} set in {source} is not one of the organisation's "
                       f"tracking categories ({_seen(categories)}), so lines get no project from tracking")


def _default_category(categories: list[_Category]) -> tuple[ProjectDimension, str | None]:
    if not categories:
        # Not synced yet (or the organisation has none): read each line's own category names.
        return ProjectDimension(DEFAULT_DIMENSION.category_ids, DEFAULT_DIMENSION.category_names,
                                description=DEFAULT_DIMENSION.description + " (the organisation's tracking "
                                "categories are not synced yet)"), None
    for name in DEFAULT_CATEGORY_NAMES:
        found = [c for c in categories if c.folded == name.casefold()]
        if found:
            chosen = _prefer_active(found)
            return ProjectDimension(frozenset({chosen.id}), (chosen.folded,),
                                    description=f"its option of the tracking category {chosen.name!r} ({chosen.id}; "
                                    f"the first of {', '.join(DEFAULT_CATEGORY_NAMES)} it has)"), None
    return ProjectDimension(description="none (no tracking category is the project)"), (
        f"no tracking category is named {', '.join(DEFAULT_CATEGORY_NAMES[:-1])} or {DEFAULT_CATEGORY_NAMES[-1]} "
        f"(the organisation has {_seen(categories)}), so lines get no project from tracking: set the Xero "
        "connection's project_tracking_category extra, or a row in project_dimension_overrides for this tenant")


def _note(run_id: str, tenant_id: str, level: int, message: str) -> None:
    if _reported.first((run_id, tenant_id, message)):
        log.log(level, "%s", message)
