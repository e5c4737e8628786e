"""What crosses task boundaries, typed: Airflow passes these between tasks as XCom JSON.

They are plain dicts at run time (XCom stores them as JSON, and a retry reads them back), so
every value is JSON-ready: strings, numbers, booleans, lists and dicts of those.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class TenantRef(TypedDict):
    """One organisation to sync, as discovery lists it."""

    tenant_id: str
    tenant_name: str


class MappedTenant(TenantRef):
    """A mapped task's input: the tenant and the Xero connection that reaches it.

    ``tenant_id`` is empty for an entry that must fail on its own: a connection that could not
    be read and had no known tenants, or an organisation another connection syncs (``refused``
    says what to do about it).
    """

    conn_id: NotRequired[str]
    firm_id: NotRequired[str]  # the firm whose grant reaches it (the connect API), on conn_id's Xero app
    refused: NotRequired[str]
    # Small organisations synced one after another by one task (tenant_id empty, tenant_name the label).
    batch: NotRequired[list[MappedTenant]]


class Refusal(TenantRef):
    """An organisation this connection reaches but another connection already syncs."""

    held_by: str
    message: str


class StreamFailure(TypedDict):
    """A stream whose extract failed, carried in the manifest to the load and the run's verdict."""

    stream: str
    message: str
    retriable: bool


class Manifest(TypedDict):
    """What one extract kept for one tenant, written next to its raw pages and handed to the load."""

    run_id: str
    tenant_id: str
    tenant_name: str
    streams: list[dict[str, Any]]  # StreamExtract.to_dict() of each stream extracted
    failed: NotRequired[list[StreamFailure]]
    connection_key: NotRequired[str]
    quota: NotRequired[dict[str, Any]]
    window: NotRequired[str]  # a backfill window's label, e.g. 2024-03
    project_pnl: NotRequired[dict[str, Any]]  # where Xero's P&L by project is kept, or why it was not fetched
    batch: NotRequired[list[Manifest]]  # a batch's tenants' manifests (tenant_id empty)
    batch_failed: NotRequired[list[str]]  # a batch's tenants whose extract failed outright, each a sentence


class StreamOutcome(TypedDict, total=False):
    """How one stream's load went: ``status`` always, the rest as it applies."""

    status: str  # success | rejected | failed | unavailable | derived (the journals, from documents)
    reason: str
    rows: dict[str, int]
    inserted: int
    updated: int
    held: int
    seconds: float  # derived: how long building the ledger took


class TenantSummary(TypedDict):
    """One tenant's load: per stream, what failed (each a sentence naming tenant and stream)."""

    tenant_id: str
    tenant_name: str
    streams: dict[str, StreamOutcome]
    failed: list[str]
    retriable: bool
    quality: NotRequired[dict[str, str]]
    # The project tables' rebuild: status, and the counts or the reason.
    projects: NotRequired[dict[str, Any]]
    batch: NotRequired[list[TenantSummary]]  # a batch's tenants' loads (tenant_id empty)
