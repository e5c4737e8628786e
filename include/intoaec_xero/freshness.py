"""Freshness: a check that fails when a tenant's data is older than its threshold, alerting once
per incident (a tenant that stays stale is reported when it turns stale, not on every run)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from intoaec_xero.db import upsert
from intoaec_xero.health import HEALTHY, tenant_health
from intoaec_xero.schema import sync_state

INCIDENT_STREAM = "_alert"  # a sync_state row per tenant remembering the open incident


def check(engine: Engine, *, threshold: timedelta | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Returns {"unhealthy": [...], "new_incidents": [...]}; the caller alerts on new ones."""
    now = now or datetime.now(UTC)
    healths = [h for h in tenant_health(engine, now=now, threshold=threshold) if h.sync_enabled]
    unhealthy, new = [], []
    with engine.begin() as conn:
        open_incidents = {
            r.tenant_id: (r.details or {}).get("incident")
            for r in conn.execute(select(sync_state.c.tenant_id, sync_state.c.details)
                                  .where(sync_state.c.stream == INCIDENT_STREAM))
        }
        for health in healths:
            incident = None if health.verdict == HEALTHY else f"{health.verdict}: {'; '.join(health.reasons)}"
            if incident:
                unhealthy.append({"tenant": health.tenant_name, "verdict": health.verdict, "reasons": health.reasons})
            previous = open_incidents.get(health.tenant_id)
            kind = incident.split(":", 1)[0] if incident else None
            if kind and (previous is None or previous.split(":", 1)[0] != kind):
                new.append({"tenant": health.tenant_name, "incident": incident})
            if (previous or None) != (incident or None):
                upsert(conn, sync_state, [{"tenant_id": health.tenant_id, "stream": INCIDENT_STREAM,
                                           "details": {"incident": incident, "since": now.isoformat()}
                                           if incident else {"incident": None}, "updated_at": now}])
    return {"unhealthy": unhealthy, "new_incidents": new}
