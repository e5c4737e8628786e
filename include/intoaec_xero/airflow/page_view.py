"""The Xero page's sync-health part as data and inline SVG: no request, no Airflow server.

The routes in ``plugins/xero_plugin.py`` render it; keeping it here lets it be tested alone.
The page's Firms section (:func:`firms_context`) is built here too, from the same plain data
``intoaec-xero firms`` prints (:func:`firm_overview`), so the page and the CLI use the same words.
The chart is drawn as inline SVG because the page must work where the API server has no
internet, and it adds no front-end build to the project.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import quote

from jinja2 import Environment
from markupsafe import Markup

from intoaec_xero import firms as intoaec_firms
from intoaec_xero import health as sync_health
from intoaec_xero.quality import docs
from intoaec_xero.tenants import Organisation, TenantStatus, status_badge
from intoaec_xero.tokens import STATUS_ACTIVE, STATUS_DISCONNECTED, STATUS_RECONNECT

SYNC_DAG, BACKFILL_DAG = "xero_sync", "xero_backfill"
HISTORY_DAYS = 30

# Worst first, so a tenant that needs someone is at the top of the page, not the bottom.
VERDICTS = {
    sync_health.RECONNECT: ("bad", TenantStatus.RECONNECT_NEEDED.value),
    sync_health.FAILING: ("bad", "Failing"),
    sync_health.STALE: ("warn", "Stale"),
    sync_health.NEVER_SYNCED: ("off", "Never synced"),
    sync_health.HEALTHY: ("ok", "Healthy"),
    sync_health.DISCONNECTED: ("off", TenantStatus.DISCONNECTED.value),
}
ATTENTION = {sync_health.RECONNECT, sync_health.FAILING, sync_health.STALE}
QUALITY = {"passed": ("ok", "Passed"), "warn": ("warn", "Warnings"), "failed": ("bad", "Failed"),
           "skipped": ("off", "Skipped")}
RUN_STATUS = {"success": "ok", "failed": "bad", "rejected": "bad", "quarantined": "bad", "partial": "warn",
              "unavailable": "off", "running": "info", "extracting": "info", "extracted": "info", "skipped": "off",
              "derived": "ok"}


@dataclass
class TenantView:
    """One tenant's card: its health verdict plus what the page adds (links, chart, backfill)."""

    health: sync_health.TenantHealth
    org: Organisation | None
    runs: list[sync_health.RunSummary]
    chart: Markup
    chart_unit: str
    backfill: dict[str, Any] | None
    links: dict[str, str] = field(default_factory=dict)
    # How many projects the tenant's project tables hold, and the latest project_pnl_matches_xero verdict.
    projects: dict[str, Any] = field(default_factory=dict)

    @property
    def tone(self) -> str:
        return VERDICTS.get(self.health.verdict, ("off", ""))[0]

    @property
    def label(self) -> str:
        return VERDICTS.get(self.health.verdict, ("off", self.health.verdict))[1]

    @property
    def attention(self) -> bool:
        return self.health.verdict in ATTENTION

    @property
    def sync_enabled(self) -> bool:
        # The organisations table's reading (enabled only while Connected), so the two never disagree.
        return self.org.sync_enabled if self.org else self.health.sync_enabled

    @property
    def last_run(self) -> sync_health.RunSummary | None:
        return self.runs[-1] if self.runs else None


def project_state(engine, tenant_ids: set[str]) -> dict[str, dict[str, Any]]:
    """Per tenant: its number of projects and its latest Profit and Loss check (passed, observed, when)."""
    from sqlalchemy import func, select

    from intoaec_xero.quality.model import SKIPPED_PREFIX
    from intoaec_xero.schema import dq_results, project_summary

    if not tenant_ids:
        return {}
    out: dict[str, dict[str, Any]] = {t: {"count": 0, "check": None} for t in tenant_ids}
    with engine.connect() as conn:
        for tenant_id, count in conn.execute(select(project_summary.c.tenant_id, func.count())
                                             .where(project_summary.c.tenant_id.in_(tenant_ids))
                                             .group_by(project_summary.c.tenant_id)):
            out[tenant_id]["count"] = int(count)
        latest = (select(dq_results.c.tenant_id, func.max(dq_results.c.id).label("id"))
                  .where(dq_results.c.check_name == "project_pnl_matches_xero",
                         dq_results.c.tenant_id.in_(tenant_ids))
                  .group_by(dq_results.c.tenant_id).subquery())
        for row in conn.execute(select(dq_results).join(latest, dq_results.c.id == latest.c.id)):
            skipped = (row.observed or "").startswith(SKIPPED_PREFIX)
            out[row.tenant_id]["check"] = {
                "tone": "off" if skipped else "ok" if row.passed else "warn",
                "label": "Skipped" if skipped else "Matches Xero" if row.passed else "Differs from Xero",
                "observed": row.observed, "checked_at": row.checked_at, "run_id": row.run_id}
    return out


def health_context(engine, orgs: list[Organisation], airflow_home: str, root: str,
                   dag_of_runs: Callable[[set[str]], dict[str, str]]) -> dict[str, Any]:
    """What the page's sync-health part shows: a card per connected tenant, worst first.

    ``dag_of_runs`` maps run ids to the DAG that ran them, for the runs this Airflow has (those
    get a link to the run's page; the others, from the CLI say, get none).
    """
    now = datetime.now(UTC)
    threshold = sync_health.stale_after()
    by_id = {org.tenant_id: org for org in orgs}
    healths = [h for h in sync_health.tenant_health(engine, now=now, threshold=threshold) if h.tenant_id in by_id]
    history = sync_health.run_history(engine, days=HISTORY_DAYS, now=now)
    run_ids = {r.run_id for h in healths for r in history.get(h.tenant_id, [])}
    run_ids |= {s.last_run_id for h in healths for s in h.streams if s.last_run_id}
    dags = dag_of_runs(run_ids)
    links = {run_id: f"{airflow_home}dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
             for run_id, dag_id in dags.items()}
    order = list(VERDICTS)
    projects = project_state(engine, {h.tenant_id for h in healths})
    tenants = []
    for h in sorted(healths, key=lambda h: (order.index(h.verdict) if h.verdict in order else 0,
                                            h.tenant_name.lower())):
        runs = history.get(h.tenant_id, [])
        chart, unit = chart_svg(runs, links, now - timedelta(days=HISTORY_DAYS), now)
        tenants.append(TenantView(
            health=h, org=by_id.get(h.tenant_id), runs=runs, links=links, chart=chart, chart_unit=unit,
            backfill=h.backfill, projects=projects.get(h.tenant_id, {})))
    return {
        "tenants": tenants,
        "threshold_minutes": threshold.total_seconds() / 60,
        "history_days": HISTORY_DAYS,
        "data_docs": f"{root}/data-docs/" if docs.latest_index() else None,
        "dag_links": {dag_id: f"{airflow_home}dags/{dag_id}/runs" for dag_id in (SYNC_DAG, BACKFILL_DAG)},
        "checked_at": now,
    }


# -- firms ------------------------------------------------------------------------------------

# A firm's grant in the words the page uses for the saved access of a connection.
GRANT_WORDS = {
    STATUS_ACTIVE: ("ok", "Saved"),
    STATUS_RECONNECT: ("bad", TenantStatus.RECONNECT_NEEDED.value),
    STATUS_DISCONNECTED: ("off", TenantStatus.DISCONNECTED.value),
}
NO_GRANT = ("off", "Not connected")
# An organisation the sync has no record of yet (no xero_tenants row behind the firm's).
NO_HEALTH = ("off", "No sync record")
# The page's status choice that means what `intoaec-xero firms --unhealthy` does.
ATTENTION_FILTER = "attention"
FIRM_FILTER_MAX = 100


def health_words(verdict: str | None) -> tuple[str, str]:
    """(badge tone, label) of a health verdict, as the sync-health cards say it."""
    if not verdict:
        return NO_HEALTH
    return VERDICTS.get(verdict, ("off", verdict.replace("_", " ").capitalize()))


def grant_words(grant_status: str | None) -> tuple[str, str]:
    """(badge tone, label) of a firm's grant: Saved, Reconnect needed, or Not connected (none stored)."""
    if grant_status is None:
        return NO_GRANT
    return GRANT_WORDS.get(grant_status, ("off", grant_status))


def organisation_view(org: intoaec_firms.FirmOrganisation) -> dict[str, Any]:
    """One firm organisation as plain data: the help page's words, its health, and whether it needs someone."""
    health_tone, health_label = health_words(org.health)
    return {
        "tenant_id": org.tenant_id,
        "tenant_name": org.tenant_name,
        "status": org.status,
        "status_tone": status_badge(org.status),
        "sync": intoaec_firms.SYNC_ENABLED if org.sync_enabled else intoaec_firms.SYNC_DISABLED,
        "sync_enabled": org.sync_enabled,
        "future_access": (intoaec_firms.FUTURE_ACCESS_SAVED if org.future_access_saved
                          else intoaec_firms.FUTURE_ACCESS_NOT_SAVED),
        "future_access_saved": org.future_access_saved,
        "connected_at": org.connected_at.isoformat() if org.connected_at else None,
        "last_successful_sync": org.last_successful_sync,
        "health": org.health,
        "health_label": health_label,
        "health_tone": health_tone,
        "health_reasons": list(org.health_reasons),
        "backfill": org.backfill,
        "backfill_label": sync_health.backfill_label(org.backfill),
        "shared_with": org.shared_with,
        "shared_with_label": _holder_words(org.shared_with),
        "attention": org.health != sync_health.HEALTHY or org.status != TenantStatus.CONNECTED,
    }


def _holder_words(connection_key: str | None) -> str | None:
    """Who syncs an organisation shared with another grant: "firm beta" or "connection 'xero_default'"."""
    if not connection_key:
        return None
    other = intoaec_firms.firm_of(connection_key)
    return f"firm {other}" if other else f"connection '{connection_key}'"


def firm_view(firm: intoaec_firms.Firm) -> dict[str, Any]:
    """One firm as plain data; a firm with no organisation needs someone too (nothing of it is synced)."""
    grant_tone, grant_label = grant_words(firm.grant_status)
    organisations = [organisation_view(org) for org in firm.organisations]
    return {
        "firm_id": firm.firm_id,
        "grant_status": firm.grant_status,
        "grant": grant_label,
        "grant_tone": grant_tone,
        "organisation_count": len(organisations),
        "organisations": organisations,
        "attention": not organisations or any(org["attention"] for org in organisations),
    }


def firm_overview(engine, *, firm_ids: list[str] | None = None, firm_text: str = "", status: str = "",
                  attention: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every firm (or those in ``firm_ids``), and those the filters keep, as :func:`firm_view` data.

    ``firm_text``: part of the firm id, any case. ``status``: an organisation status, any case.
    ``attention``: organisations that are not Healthy or not Connected, and firms with none.
    A status or attention filter keeps only the matching organisations of a firm, and a firm
    only when one matches (or, for ``attention``, when it has none at all).
    """
    every = [firm_view(firm) for firm in intoaec_firms.firms(engine, firm_ids)]
    text, wanted_status = firm_text.strip().lower(), status.strip().lower()
    kept = []
    for firm in every:
        if text and text not in firm["firm_id"].lower():
            continue
        if not wanted_status and not attention:
            kept.append(firm)
            continue
        orgs = [org for org in firm["organisations"]
                if (not wanted_status or org["status"].lower() == wanted_status)
                and (not attention or org["attention"])]
        if orgs or (attention and not wanted_status and not firm["organisations"]):
            kept.append(firm | {"organisations": orgs})
    return every, kept


def firm_status_choices() -> list[dict[str, str]]:
    """The Firms section's status filter: each organisation status, and "needs attention"."""
    return [{"value": status.value, "label": status.value} for status in TenantStatus] + [
        {"value": ATTENTION_FILTER, "label": "Needs attention (not Healthy or not Connected)"}]


def firms_context(engine, firm_filter: str | None, status_filter: str | None) -> dict[str, Any]:
    """What the page's Firms section shows: the firms the filters keep, and counts of all of them.

    ``firm_filter`` is part of a firm id (the form's text box, ``firm=``); ``status_filter`` an
    organisation status or ``attention`` (``firm_status=``). Both come from the query string, so
    they are trimmed and matched, never trusted as anything else.
    """
    firm_filter = (firm_filter or "").strip()[:FIRM_FILTER_MAX]
    status_filter = (status_filter or "").strip()[:FIRM_FILTER_MAX]
    attention = status_filter.lower() == ATTENTION_FILTER
    every, kept = firm_overview(engine, firm_text=firm_filter, status="" if attention else status_filter,
                                attention=attention)
    return {
        "firms": kept,
        "firms_total": len(every),
        "firms_attention": sum(1 for firm in every if firm["attention"]),
        "firm_filter": firm_filter,
        "firm_status_filter": status_filter,
        "firm_status_choices": firm_status_choices(),
    }


# -- the 30-day chart -------------------------------------------------------------------------

CHART_W, CHART_H = 720, 156
PAD_L, PAD_R, PAD_T, PAD_B = 44, 10, 10, 28
MAX_BARS = 180  # an hourly schedule makes 720 runs a month: more bars than pixels, and a heavy page
ROWS_COLOUR, CALLS_COLOUR = "#017cee", "#805ad5"
BAR_COLOUR = {"failed": "#c53030", "partial": "#dd6b20"}
WORSE = {"failed": 2, "partial": 1}


@dataclass
class Bar:
    at: str | None
    rows: int
    calls: int
    status: str
    title: str
    run_id: str


def bars(runs: list[sync_health.RunSummary], since: datetime, now: datetime) -> tuple[list[Bar], str]:
    """One bar per run while they fit; beyond MAX_BARS, one per time slot summing its runs.

    A slot's bar links to its worst run (the latest of them), the one someone would open.
    """
    if len(runs) <= MAX_BARS:
        return [Bar(r.started_at, r.rows_loaded, r.api_calls, r.status, _run_title(r), r.run_id) for r in runs], "run"
    slot = (now - since) / MAX_BARS
    slots: dict[int, list[sync_health.RunSummary]] = {}
    for run in runs:
        at = datetime.fromisoformat(run.started_at) if run.started_at else now  # as x() draws an unstarted run
        slots.setdefault(int((at - since) / slot), []).append(run)
    merged = []
    for group in slots.values():
        worst = max(reversed(group), key=lambda r: WORSE.get(r.status, 0))
        rows, calls = sum(r.rows_loaded for r in group), sum(r.api_calls for r in group)
        title = (f"{len(group)} runs, {_when(group[0].started_at)} – {_when(group[-1].started_at)}\n"
                 f"{rows:,} rows loaded · {calls:,} API calls"
                 + (f"\n{sum(WORSE.get(r.status, 0) > 0 for r in group)} with failures, e.g. {worst.run_id}"
                    if WORSE.get(worst.status) else ""))
        merged.append(Bar(group[-1].started_at, rows, calls, worst.status, title, worst.run_id))
    hours = slot.total_seconds() / 3600
    return merged, f"{hours:g}-hour slot" if hours >= 1 else f"{slot.total_seconds() / 60:g}-minute slot"


def _run_title(run: sync_health.RunSummary) -> str:
    return (f"{run.run_id}\n{_when(run.started_at)} · {run.status}\n{run.rows_loaded:,} rows loaded · "
            f"{run.api_calls:,} API calls" + (f" · {run.rate_limited} × 429" if run.rate_limited else "")
            + (f" · quota left {run.quota_day_remaining:,}" if run.quota_day_remaining is not None else ""))


def chart_svg(runs: list[sync_health.RunSummary], links: dict[str, str], since: datetime,
              now: datetime) -> tuple[Markup, str]:
    """Rows loaded (bars) and API calls (line) per run on one log axis; returns the SVG and its unit.

    Log, because a first full sync loads thousands of rows and an hourly incremental a handful:
    on a linear axis every run after the first would be a flat line. While each run has its own
    bar, runs stand side by side in order (a first day's runs, minutes apart, would otherwise
    share one pixel of a 30-day axis); summed slots sit on the time axis. Each bar links to its run.
    """
    drawn, unit = bars(runs, since, now)
    plot_w, plot_h = CHART_W - PAD_L - PAD_R, CHART_H - PAD_T - PAD_B
    span = (now - since).total_seconds()
    top = max([1] + [b.rows for b in drawn] + [b.calls for b in drawn])
    decades = max(1, math.ceil(math.log10(top + 1)))
    in_order = unit == "run"

    def at_time(moment: str | None) -> float:
        seconds = (datetime.fromisoformat(moment) - since).total_seconds() if moment else span
        return PAD_L + plot_w * min(1.0, max(0.0, seconds / span))

    def x(index: int) -> float:
        return PAD_L + plot_w * (index + 0.5) / len(drawn) if in_order else at_time(drawn[index].at)

    def y(value: int) -> float:
        return PAD_T + plot_h * (1 - math.log10(value + 1) / decades)

    parts = [f'<svg class="chart" viewBox="0 0 {CHART_W} {CHART_H}" width="{CHART_W}" height="{CHART_H}" '
             f'role="img" aria-label="Rows loaded and API calls per {unit}, last {HISTORY_DAYS} days" '
             f'xmlns="http://www.w3.org/2000/svg">']
    for power in range(decades + 1):
        level = y(10 ** power - 1)
        parts.append(f'<line x1="{PAD_L}" x2="{CHART_W - PAD_R}" y1="{level:.1f}" y2="{level:.1f}" class="grid"/>')
        parts.append(f'<text x="{PAD_L - 6}" y="{level + 3:.1f}" text-anchor="end" class="tick">'
                     f'{_short(10 ** power if power else 0)}</text>')
    parts.extend(_run_ticks(drawn, x) if in_order else _day_ticks(now, at_time))
    if not drawn:
        parts.append(f'<text x="{PAD_L + plot_w / 2}" y="{PAD_T + plot_h / 2}" text-anchor="middle" class="empty">'
                     f'No runs in the last {HISTORY_DAYS} days</text>')
    width = min(14.0, max(1.5, plot_w / max(len(drawn), 1) * 0.6))
    base = y(0)
    for index, bar in enumerate(drawn):
        # A failed run that loaded nothing still shows as a bar tall enough to see and click.
        height = max(8.0 if bar.status in BAR_COLOUR else 1.5, base - y(bar.rows))
        rect = (f'<rect class="run {bar.status}" x="{x(index) - width / 2:.1f}" y="{base - height:.1f}" '
                f'width="{width:.1f}" height="{height:.1f}" fill="{BAR_COLOUR.get(bar.status, ROWS_COLOUR)}">'
                f'<title>{escape(bar.title)}</title></rect>')
        link = links.get(bar.run_id)
        parts.append(f'<a href="{escape(link)}" target="_top">{rect}</a>' if link else rect)
    if drawn:
        points = " ".join(f"{x(i):.1f},{y(b.calls):.1f}" for i, b in enumerate(drawn))
        parts.append(f'<polyline class="calls" points="{points}" fill="none" stroke="{CALLS_COLOUR}" '
                     f'stroke-width="2.5" stroke-linejoin="round"/>')
        if len(drawn) <= 60:  # dots only while they can be told apart
            parts.extend(f'<circle class="calls" cx="{x(i):.1f}" cy="{y(b.calls):.1f}" r="3.5" '
                         f'fill="{CALLS_COLOUR}" stroke="#fff" stroke-width="1"/>' for i, b in enumerate(drawn))
    parts.append("</svg>")
    return Markup("".join(parts)), unit


def _run_ticks(drawn: list[Bar], x) -> list[str]:
    """Up to six runs' start times under their bars, first and last included."""
    if not drawn:
        return []
    step = max(1, math.ceil(len(drawn) / 6))
    picked = sorted({*range(0, len(drawn), step), len(drawn) - 1})
    if len(picked) > 1 and picked[-1] - picked[-2] < step / 2:
        picked.pop(-2)  # the last label would overlap its neighbour
    return [f'<text x="{x(i):.1f}" y="{CHART_H - 4}" text-anchor="middle" class="tick">{_tick_time(drawn[i].at)}'
            f'</text>' for i in picked]


def _day_ticks(now: datetime, at_time) -> list[str]:
    parts = []
    for days_back in range(0, HISTORY_DAYS + 1, 7):
        moment = now - timedelta(days=days_back)
        tick = at_time(moment.isoformat())
        anchor = "end" if days_back == 0 else "middle"
        parts.append(f'<line x1="{tick:.1f}" x2="{tick:.1f}" y1="{PAD_T}" y2="{CHART_H - PAD_B}" class="grid"/>')
        parts.append(f'<text x="{tick:.1f}" y="{CHART_H - 4}" text-anchor="{anchor}" class="tick">'
                     f'{"now" if days_back == 0 else moment.strftime("%b %-d")}</text>')
    return parts


def _tick_time(moment: str | None) -> str:
    return datetime.fromisoformat(moment).strftime("%b %-d %H:%M") if moment else "now"


def _short(value: int) -> str:
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return str(value)


def _when(moment: str | datetime | None) -> str:
    if not moment:
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _age(minutes: float | None) -> str:
    if minutes is None:
        return "-"
    if minutes < 1:
        return "just now"
    if minutes < 120:
        return f"{minutes:.0f} min ago"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h ago"
    return f"{minutes / 1440:.1f} days ago"


def register(templates: Environment) -> None:
    """The filters and names the page's templates use."""
    templates.filters["when"] = _when
    templates.filters["age"] = _age
    templates.filters["count"] = lambda value: "-" if value is None else f"{value:,}"
    # An organisation's status is shown and compared in the vocabulary's words, never the template's own.
    templates.filters["status_badge"] = status_badge
    templates.globals.update(RUN_STATUS=RUN_STATUS, QUALITY=QUALITY, TENANT_STATUS=TenantStatus)
