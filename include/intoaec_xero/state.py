"""Per tenant × stream sync state (watermarks, journal offsets) and the sync_runs history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.engine import Connection

from intoaec_xero.db import as_utc, retry_transient, upsert
from intoaec_xero.schema import sync_runs, sync_state


@dataclass(frozen=True)
class StreamState:
    watermark: datetime | None = None
    journal_offset: int | None = None
    last_full_sync_at: datetime | None = None


# Each write below is one short transaction of its own, outside the load's: on a transient database
# error (a dropped connection, a restart) it is tried again whole, so a run's bookkeeping survives
# what its load survives. All of them may be repeated: they set values, never add to them.

def read_state(engine: Engine, tenant_id: str, stream: str) -> StreamState:
    def read():
        with engine.connect() as conn:
            return conn.execute(
                select(sync_state.c.watermark, sync_state.c.journal_offset, sync_state.c.last_full_sync_at)
                .where(sync_state.c.tenant_id == tenant_id, sync_state.c.stream == stream)
            ).first()

    row = retry_transient(read, f"{stream} sync state of tenant {tenant_id}")
    if row is None:
        return StreamState()
    return StreamState(
        watermark=as_utc(row.watermark),
        journal_offset=row.journal_offset,
        last_full_sync_at=as_utc(row.last_full_sync_at),
    )


def advance(conn: Connection, tenant_id: str, stream: str, *, watermark: datetime | None,
            journal_offset: int | None, full: bool) -> None:
    """Record a successful load; called inside the load's transaction so both commit together.

    An incremental read only moves the watermark forward. A full read saw every record, so its
    watermark replaces the stored one even when lower: a watermark stored in the future (before
    the extract capped cursors at Xero's clock) heals at the next full reconcile, and a replayed
    full run re-reads what changed since the data it put back.
    """
    now = datetime.now(UTC)
    current = conn.execute(
        select(sync_state.c.watermark, sync_state.c.journal_offset, sync_state.c.last_full_sync_at)
        .where(sync_state.c.tenant_id == tenant_id, sync_state.c.stream == stream)
    ).first()
    old_mark = as_utc(current.watermark) if current else None
    old_offset = current.journal_offset if current else None
    row = {
        "tenant_id": tenant_id,
        "stream": stream,
        # Incremental: never backwards (a replay of an old run must not re-open a window).
        "watermark": watermark if full else max(filter(None, (old_mark, watermark)), default=None),
        "journal_offset": max((v for v in (old_offset, journal_offset) if v is not None), default=None),
        "last_success_at": now,
        "last_full_sync_at": now if full else (as_utc(current.last_full_sync_at) if current else None),
        "last_error": None,
        "last_error_at": None,
        "updated_at": now,
    }
    upsert(conn, sync_state, [row])


def record_error(engine: Engine, tenant_id: str, stream: str, message: str) -> None:
    now = datetime.now(UTC)
    retry_transient(lambda: _record_error(engine, tenant_id, stream, message, now),
                    f"{stream} error record of tenant {tenant_id}")


def _record_error(engine: Engine, tenant_id: str, stream: str, message: str, now: datetime) -> None:
    with engine.begin() as conn:
        exists = conn.execute(
            select(sync_state.c.stream).where(sync_state.c.tenant_id == tenant_id, sync_state.c.stream == stream)
        ).first()
        if exists:
            conn.execute(
                sync_state.update()
                .where(sync_state.c.tenant_id == tenant_id, sync_state.c.stream == stream)
                .values(last_error=message, last_error_at=now, updated_at=now)
            )
        else:
            upsert(conn, sync_state, [{"tenant_id": tenant_id, "stream": stream, "last_error": message,
                                       "last_error_at": now, "updated_at": now}])


def record_run(engine: Engine | Connection, **row: Any) -> None:
    """Upsert one sync_runs row (run × tenant × stream); later phases fill in more columns."""
    if isinstance(engine, Connection):
        _record_run(engine, row)
    else:
        def write() -> None:
            with engine.begin() as conn:
                _record_run(conn, row)

        retry_transient(write, f"{row.get('stream')} run record of tenant {row.get('tenant_id')}")


def _record_run(conn: Connection, row: dict[str, Any]) -> None:
    existing = conn.execute(
        select(sync_runs).where(
            sync_runs.c.run_id == row["run_id"],
            sync_runs.c.tenant_id == row["tenant_id"],
            sync_runs.c.stream == row["stream"],
        )
    ).mappings().first()
    merged = {**(dict(existing) if existing else {}), **{k: v for k, v in row.items() if v is not None}}
    merged.setdefault("status", "running")
    upsert(conn, sync_runs, [{c.name: merged.get(c.name) for c in sync_runs.columns}])


UNFINISHED = ("running", "extracting", "extracted")


def close_abandoned(engine: Engine, tenant_id: str, stream: str, run_id: str, now: datetime) -> list[str]:
    """Close, as failed, this tenant's and stream's sync rows that an earlier run left unfinished.

    A run whose process was killed (or lost its database) mid-stream never writes its end, so
    its row would read ``extracting`` for ever. xero_sync runs one at a time, so when a new run
    reaches the stream, any other run's open row for it has been abandoned. Returns their run ids.
    """
    return retry_transient(lambda: _close_abandoned(engine, tenant_id, stream, run_id, now),
                           f"{stream} open runs of tenant {tenant_id}")


def _close_abandoned(engine: Engine, tenant_id: str, stream: str, run_id: str, now: datetime) -> list[str]:
    with engine.begin() as conn:
        open_runs = list(conn.execute(select(sync_runs.c.run_id).where(
            sync_runs.c.tenant_id == tenant_id, sync_runs.c.stream == stream, sync_runs.c.run_id != run_id,
            sync_runs.c.status.in_(UNFINISHED), or_(sync_runs.c.kind.is_(None), sync_runs.c.kind == "sync"),
        )).scalars())
        if open_runs:
            conn.execute(update(sync_runs).where(
                sync_runs.c.tenant_id == tenant_id, sync_runs.c.stream == stream,
                sync_runs.c.run_id.in_(open_runs), sync_runs.c.status.in_(UNFINISHED),
            ).values(status="failed", finished_at=now,
                     message=f"abandoned: the run stopped before this stream finished (its process was killed or "
                             f"lost the database); closed by run {run_id}"))
    return open_runs
