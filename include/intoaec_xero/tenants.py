"""The organisations (Xero tenants) a connection reaches: which they are, who holds each, how each stands.

One module owns ``xero_tenants``, so the words a data team and IntoAEC's users read (Connected,
Reconnect needed, Disconnected, Connection error) are defined once and written, compared and
shown the same way by the token store, the sync, the health verdicts, the CLI and the Xero page.
Those words are what ``xero_tenants.connection_status`` stores: renaming a member is fine,
changing a value is not (other parts of IntoAEC read them).

Xero's ``/connections`` is read twice in a connection's life, and both readings are recorded here
by one implementation: after a consent (:func:`record_connections`: every organisation is listed,
the tenant filter decides Sync Enabled) and at every sync's discovery (:func:`record_discovery`:
only the organisations the filter wants are taken). Either way an organisation another Xero
connection already holds stays with it (:func:`claim_tenants`), and one no longer in
``/connections`` reads Disconnected, its data kept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, or_, select, true
from sqlalchemy.engine import Connection

from intoaec_xero.db import upsert
from intoaec_xero.errors import XeroAuthError
from intoaec_xero.parsing import parse_datetime
from intoaec_xero.payloads import Refusal, TenantRef
from intoaec_xero.schema import intoaec_firm_tenants, xero_tenants

if TYPE_CHECKING:
    from intoaec_xero.settings import XeroSettings
    from intoaec_xero.tokens import GrantInfo

log = logging.getLogger(__name__)

ORGANISATION = "ORGANISATION"  # the only tenantType the accounting API serves


class TenantStatus(StrEnum):
    """``xero_tenants.connection_status``, in the help page's words; the values are stored as is."""

    CONNECTED = "Connected"
    RECONNECT_NEEDED = "Reconnect needed"  # the grant is dead (invalid_grant): sign in again
    DISCONNECTED = "Disconnected"  # no longer in /connections, or disconnected here; data kept
    CONNECTION_ERROR = "Connection error"  # the last run could not read /connections (not a verdict on the grant)

    @property
    def badge(self) -> str:
        """The page's badge class for this status: green, red, or grey."""
        return status_badge(self.value)


_BADGES = {TenantStatus.CONNECTED.value: "ok", TenantStatus.RECONNECT_NEEDED.value: "bad"}


def status_badge(status: str | None) -> str:
    """The badge class for a stored status, whatever it is (an unknown one is grey)."""
    return _BADGES.get(status or "", "off")


def parse_connection_date(value: Any) -> datetime | None:
    """A ``/connections`` date (``createdDateUtc``), or a ``connected_at`` read back, as aware UTC.

    Xero writes these as ISO 8601 in UTC with seven fractional digits and no zone
    (``2019-12-07T18:46:19.5165400``); the sandbox adds a ``Z``; SQLite hands stored ones back
    naive. All of those, and Xero's MS-JSON form, are read as UTC. Anything else is None rather
    than an error: a date Xero left out or mangled must not stop an organisation being recorded.
    """
    try:
        return parse_datetime(value)
    except ValueError:
        return None


@dataclass
class Discovery:
    """What one Xero connection reaches: the tenants it syncs, and those it was refused.

    A refused tenant is an organisation another connection already syncs; each entry has its
    ``tenant_id``, ``tenant_name``, the connection holding it (``held_by``) and the ``message``
    that says what to do.
    """

    tenants: list[TenantRef]
    refused: list[Refusal] = field(default_factory=list)


def connection_rows(settings: XeroSettings, connections: Sequence[Mapping[str, Any]],
                    now: datetime) -> list[dict[str, Any]]:
    """``xero_tenants`` rows for the organisations in a ``/connections`` answer, all Connected.

    Other tenant types (practices) are left out: the accounting API has nothing of theirs to
    sync. ``sync_enabled`` says whether the connection's tenant filter wants the organisation.
    """
    return [
        {
            "tenant_id": c["tenantId"],
            "tenant_name": c.get("tenantName") or c["tenantId"],
            "tenant_type": c.get("tenantType"),
            "connection_id": c.get("id"),
            "connection_key": settings.connection_key,
            "connection_status": TenantStatus.CONNECTED.value,
            "sync_enabled": settings.wants_tenant(c["tenantId"], c.get("tenantName") or ""),
            "connected_at": parse_connection_date(c.get("createdDateUtc")) or now,
            "updated_at": now,
        }
        for c in connections
        if c.get("tenantType", ORGANISATION) == ORGANISATION
    ]


def _record(engine: Engine, settings: XeroSettings, connections: Sequence[Mapping[str, Any]], *,
            take_unwanted: bool) -> Discovery:
    """Record a ``/connections`` answer; the tenants to sync, and those another connection holds.

    ``take_unwanted`` records the organisations the tenant filter leaves out too (Connected,
    sync off), so the page lists them; otherwise only rows this connection already has are
    updated for them. Organisations no longer reached read Disconnected, their data kept.
    """
    now = datetime.now(UTC)
    rows = connection_rows(settings, connections, now)
    key = settings.connection_key
    reached = [r["tenant_id"] for r in rows]
    with engine.begin() as conn:
        switched_off = firm_sync_off(conn, key)
        for row in rows:
            if row["tenant_id"] in switched_off:
                row["sync_enabled"] = False
        taken = rows if take_unwanted else [r for r in rows if r["sync_enabled"]]
        held = claim_tenants(conn, key, taken)
        # Organisations no longer in /connections were disconnected in Xero: keep their data, say so.
        conn.execute(
            xero_tenants.update()
            .where(xero_tenants.c.connection_key == key,
                   xero_tenants.c.tenant_id.not_in(reached) if reached else true())
            .values(**_status_values(TenantStatus.DISCONNECTED, now))
        )
        # Still connected but left out by the tenant filter: not synced, not disconnected.
        left_out = sorted(set(reached) - {r["tenant_id"] for r in taken})
        if left_out:
            conn.execute(
                xero_tenants.update()
                .where(xero_tenants.c.connection_key == key, xero_tenants.c.tenant_id.in_(left_out))
                .values(connection_status=TenantStatus.CONNECTED.value, sync_enabled=False, updated_at=now)
            )
        mirror_firm_statuses(conn, now, connection_key=key)
    refused: list[Refusal] = [
        {"tenant_id": r["tenant_id"], "tenant_name": r["tenant_name"], "held_by": held[r["tenant_id"]],
         "message": already_connected(r["tenant_name"], r["tenant_id"], held[r["tenant_id"]], key)}
        for r in rows if r["tenant_id"] in held and r["sync_enabled"]
    ]
    synced: list[TenantRef] = [{"tenant_id": r["tenant_id"], "tenant_name": r["tenant_name"]}
                               for r in rows if r["sync_enabled"] and r["tenant_id"] not in held]
    return Discovery(synced, refused)


def record_connections(engine: Engine, settings: XeroSettings, connections: list[dict[str, Any]]) -> list[str]:
    """Store what ``/connections`` says after a consent; returns why organisations were not taken.

    Organisations the consent no longer covers read Disconnected; the tenant filter decides
    Sync Enabled. Every organisation is listed, filtered or not, so the page shows all of them,
    except one that another Xero connection still holds (see :func:`claim_tenants`); that
    connection keeps it, and the reason is returned (and logged) for each one this connection's
    tenant filter wants.
    """
    refusals = [r["message"] for r in _record(engine, settings, connections, take_unwanted=True).refused]
    for refusal in refusals:
        log.warning("%s", refusal)
    return refusals


def record_discovery(engine: Engine, settings: XeroSettings, connections: list[dict[str, Any]]) -> Discovery:
    """The organisations a sync takes from ``/connections``: those the tenant filter wants, less
    any that another Xero connection already syncs (it keeps them; see :func:`claim_tenants`)."""
    found = _record(engine, settings, connections, take_unwanted=False)
    log.info("Xero connection '%s' reaches %d organisation(s): %s", settings.connection_key, len(found.tenants),
             ", ".join(t["tenant_name"] for t in found.tenants) or "none")
    for refusal in found.refused:
        log.error("%s", refusal["message"])
    if settings.tenant_filter and not found.tenants and not found.refused:
        log.warning("The tenant filter %s matched none of the %d connected organisations.",
                    list(settings.tenant_filter), len(connections))
    return found


def claim_tenants(conn: Connection, connection_key: str, rows: list[dict[str, Any]]) -> dict[str, str]:
    """Record the organisations ``connection_key`` reaches, except those another connection holds.

    ``xero_tenants`` has one row per organisation. Were a second Xero connection reaching the
    same organisation allowed to take the row, it would flip between the two on every discovery
    and both would sync it. So the connection that recorded it first keeps it until it reads
    Disconnected there; the database decides inside the upsert, so two connections discovering
    at once cannot both take it. Returns tenant id -> the connection holding it, for the refused.
    """
    if not rows:
        return {}
    upsert(conn, xero_tenants, rows,
           where=or_(xero_tenants.c.connection_key == connection_key,
                     xero_tenants.c.connection_status == TenantStatus.DISCONNECTED.value))
    held = conn.execute(
        select(xero_tenants.c.tenant_id, xero_tenants.c.connection_key)
        .where(xero_tenants.c.tenant_id.in_([r["tenant_id"] for r in rows]),
               xero_tenants.c.connection_key != connection_key)
    ).all()
    return {row.tenant_id: row.connection_key for row in held}


def already_connected(tenant_name: str, tenant_id: str, holder: str, connection_key: str) -> str:
    """Why ``connection_key`` does not sync an organisation that ``holder`` already syncs."""
    return (f"Organisation '{tenant_name}' (tenant {tenant_id}) is already connected through connection "
            f"'{holder}'; disconnect it there first or remove it from connection '{connection_key}' "
            "(its tenant filter, or Xero's connected apps).")


FIRM_KEY_PREFIX = "firm:"  # the token-store key of a firm's grant (intoaec_xero.firms)


def firm_sync_off(conn: Connection, connection_key: str) -> set[str]:
    """The organisations a firm turned its sync off for, when ``connection_key`` is a firm's grant."""
    if not connection_key.startswith(FIRM_KEY_PREFIX):
        return set()
    return set(conn.execute(
        select(intoaec_firm_tenants.c.tenant_id)
        .where(intoaec_firm_tenants.c.firm_id == connection_key[len(FIRM_KEY_PREFIX):],
               intoaec_firm_tenants.c.sync_enabled.is_(False))).scalars())


def mirror_firm_statuses(conn: Connection, now: datetime, *, connection_key: str | None = None,
                         tenant_id: str | None = None) -> None:
    """Keep ``intoaec_firm_tenants.status`` in step with the organisations' status here.

    Run in the transaction that changed ``xero_tenants``, for the organisations of one grant (or one
    organisation). A firm's own Disconnected stays until the firm connects the organisation again.
    """
    if connection_key is not None:
        affected: Any = select(xero_tenants.c.tenant_id).where(xero_tenants.c.connection_key == connection_key)
    else:
        affected = [tenant_id]
    current = (select(xero_tenants.c.connection_status)
               .where(xero_tenants.c.tenant_id == intoaec_firm_tenants.c.tenant_id).scalar_subquery())
    conn.execute(intoaec_firm_tenants.update()
                 .where(intoaec_firm_tenants.c.tenant_id.in_(affected),
                        intoaec_firm_tenants.c.status != TenantStatus.DISCONNECTED.value)
                 .values(status=current, updated_at=now))


def known_tenants(engine: Engine, connection_key: str) -> list[TenantRef]:
    """Tenants this connection reached before, for when it cannot be read now."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(xero_tenants.c.tenant_id, xero_tenants.c.tenant_name)
            .where(xero_tenants.c.connection_key == connection_key)
            .order_by(xero_tenants.c.tenant_name)
        ).all()
    return [{"tenant_id": r.tenant_id, "tenant_name": r.tenant_name} for r in rows]


# -- statuses ---------------------------------------------------------------------------------

def mark_tenants(conn: Connection, connection_key: str, status: TenantStatus, now: datetime | None = None) -> None:
    """Say ``status`` of every organisation ``connection_key`` reaches, in the caller's transaction.

    The token store calls this when a grant's status changes (Xero refused it, or it was
    revoked). Disconnected also turns the sync off: nothing of the organisation can be read.
    """
    now = now or datetime.now(UTC)
    conn.execute(xero_tenants.update().where(xero_tenants.c.connection_key == connection_key)
                 .values(**_status_values(status, now)))
    mirror_firm_statuses(conn, now, connection_key=connection_key)


def _status_values(status: TenantStatus, now: datetime) -> dict[str, Any]:
    """The columns a status change writes: Disconnected also turns the sync off."""
    values: dict[str, Any] = {"connection_status": status.value, "updated_at": now}
    if status is TenantStatus.DISCONNECTED:
        values["sync_enabled"] = False
    return values


def mark_connection_failed(engine: Engine, connection_key: str, error: Exception) -> None:
    """The connection could not be read: its organisations say why, except those disconnected from it
    (they stay Disconnected, so another connection may take them)."""
    status = TenantStatus.RECONNECT_NEEDED if isinstance(error, XeroAuthError) else TenantStatus.CONNECTION_ERROR
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            xero_tenants.update()
            .where(xero_tenants.c.connection_key == connection_key,
                   xero_tenants.c.connection_status != TenantStatus.DISCONNECTED.value)
            .values(connection_status=status.value, updated_at=now)
        )
        mirror_firm_statuses(conn, now, connection_key=connection_key)


def mark_connection_ok(engine: Engine, connection_key: str) -> None:
    """The grant works again: an earlier "Connection error" or "Reconnect needed" is over."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        changed = conn.execute(
            xero_tenants.update()
            .where(xero_tenants.c.connection_key == connection_key,
                   xero_tenants.c.connection_status.in_([TenantStatus.CONNECTION_ERROR.value,
                                                         TenantStatus.RECONNECT_NEEDED.value]))
            .values(connection_status=TenantStatus.CONNECTED.value, updated_at=now)
        ).rowcount
        if changed:
            mirror_firm_statuses(conn, now, connection_key=connection_key)


def mark_organisation_disconnected(engine: Engine, tenant_id: str) -> None:
    """One organisation disconnected here (Xero's DELETE /connections/{id} done): the others stay."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            xero_tenants.update().where(xero_tenants.c.tenant_id == tenant_id)
            .values(**_status_values(TenantStatus.DISCONNECTED, now))
        )
        mirror_firm_statuses(conn, now, tenant_id=tenant_id)


# -- the organisations as the page and the CLI show them ---------------------------------------

@dataclass(frozen=True)
class Organisation:
    """One organisation as the Xero page and ``intoaec-xero connect`` show it."""

    tenant_id: str
    name: str
    connection_id: str | None
    status: str
    sync_enabled: bool
    future_access_saved: bool
    connected_at: datetime | None

    @property
    def disconnected(self) -> bool:
        return self.status == TenantStatus.DISCONNECTED


def organisations(engine: Engine, connection_key: str, grant: GrantInfo | None,
                  custom_connection: bool = False) -> list[Organisation]:
    """The organisations of one Xero connection, with the three statuses IntoAEC users know.

    Sync Enabled and Future Access Saved hold only while an organisation is Connected; future
    access also needs a working grant that can mint access tokens without the user.
    """
    with engine.connect() as conn:
        rows = conn.execute(
            select(xero_tenants).where(xero_tenants.c.connection_key == connection_key)
            .order_by(xero_tenants.c.tenant_name)
        ).mappings().all()
    saved = grant is not None and grant.offline_access(custom_connection)
    return [
        Organisation(
            tenant_id=row["tenant_id"],
            name=row["tenant_name"],
            connection_id=row["connection_id"],
            status=row["connection_status"],
            sync_enabled=bool(row["sync_enabled"]) and row["connection_status"] == TenantStatus.CONNECTED,
            future_access_saved=saved and row["connection_status"] == TenantStatus.CONNECTED,
            connected_at=parse_connection_date(row["connected_at"]),
        )
        for row in rows
    ]


def find_organisation(engine: Engine, connection_key: str, wanted: str) -> Organisation | None:
    """An organisation of this connection by tenant id or (case-insensitive) name."""
    for org in organisations(engine, connection_key, None):
        if wanted.strip().lower() in (org.tenant_id.lower(), org.name.strip().lower()):
            return org
    return None
