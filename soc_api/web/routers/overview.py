"""The overview: alerts by severity over the last days, open work, agents heard from, and the
level dossiers against the year's target with the deadlines coming up."""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from soc_api.db.models import SEVERITIES, AlertRow, Incident
from soc_api.deps import SessionDep, StateDep
from soc_api.services.alerts import scope_clause
from soc_api.services.principal import ALERTS_READ, Principal
from soc_api.state import AppState
from soc_api.systems.models import Dossier, InformationSystem
from soc_api.systems.routers import settings_of
from soc_api.systems.services import dossiers as dsvc
from soc_api.systems.services.context import Ctx, RuleError
from soc_api.web import nav, userprefs
from soc_api.web.charts import BarChart, stacked_bars
from soc_api.web.guard import PagePrincipal, ip
from soc_api.web.i18n import N_
from soc_api.web.render import render
from soc_common.ecs import utc_now

log = logging.getLogger(__name__)
router = APIRouter()
nav.register(nav.NavEntry("overview", N_("Overview"), "/overview", order=10))
DAYS = 14
OPEN_STATUSES = ("new", "acknowledged", "in_progress")


def severity_by_day(
    session: Session, principal: Principal, tz: ZoneInfo, today: date
) -> list[tuple[date, dict[str, int]]]:
    """Alert counts per local day and severity for the last :data:`DAYS` days (oldest first)."""
    first = today - timedelta(days=DAYS - 1)
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    conds: list[ColumnElement[bool]] = [AlertRow.timestamp >= start]
    scope = scope_clause(principal)
    if scope is not None:
        conds.append(scope)
    counts: dict[date, Counter[str]] = {first + timedelta(days=i): Counter() for i in range(DAYS)}
    for ts, severity in session.execute(select(AlertRow.timestamp, AlertRow.severity).where(*conds)):
        day = ts.astimezone(tz).date()
        if day in counts:
            counts[day][severity] += 1
    return [(d, dict(c)) for d, c in sorted(counts.items())]


def open_alerts(session: Session, principal: Principal) -> dict[str, int]:
    conds: list[ColumnElement[bool]] = [AlertRow.status.in_(OPEN_STATUSES)]
    scope = scope_clause(principal)
    if scope is not None:
        conds.append(scope)
    stmt = select(AlertRow.severity, func.count()).where(*conds).group_by(AlertRow.severity)
    return {str(sev): int(n) for sev, n in session.execute(stmt)}


def open_incidents(session: Session, principal: Principal) -> int | None:
    """Incidents carry no site yet, so only callers who see every site get the count."""
    if principal.sites is not None:
        return None
    stmt = select(func.count()).select_from(Incident).where(Incident.status.not_in(("closed", "resolved")))
    return int(session.scalar(stmt) or 0)


@dataclass(frozen=True)
class AgentCounts:
    configured: bool
    online: int = 0
    silent: int = 0
    never: int = 0


def agent_counts(registry_path: Path | None, principal: Principal, stale: timedelta) -> AgentCounts:
    """Agents heard from within ``stale`` (collector registry ``last_seen``), in the caller's sites."""
    if registry_path is None or not registry_path.exists():
        return AgentCounts(False)
    from collector.ingest.registry import Registry

    try:
        registry = Registry(registry_path)
        try:
            agents = [a for a in registry.list_agents() if a.revoked_at is None and principal.sees_site(a.site)]
        finally:
            registry.close()
    except Exception:
        log.warning("collector registry %s unreadable", registry_path, exc_info=True)
        return AgentCounts(False)
    now = utc_now()
    online = sum(1 for a in agents if a.last_seen is not None and now - a.last_seen <= stale)
    never = sum(1 for a in agents if a.last_seen is None)
    return AgentCounts(True, online, len(agents) - online - never, never)


def yearly_target(state: AppState, year: int) -> float | None:
    from soc_api.kpi.settings import KpiSettings

    settings = getattr(state.config, "kpi", None)
    kpi = settings if isinstance(settings, KpiSettings) else KpiSettings()
    targets = kpi.targets_for(year)
    return targets.systems_level_approved or targets.systems_protected_by_level


def dossier_summary(session: Session, ctx: Ctx, state: AppState, year: int) -> dict[str, Any]:
    q = select(Dossier, InformationSystem).join(InformationSystem, InformationSystem.id == Dossier.system_id)
    systems_q = select(func.count()).select_from(InformationSystem)
    approved_q = (
        select(func.count()).select_from(InformationSystem).where(InformationSystem.approved_level.is_not(None))
    )
    if ctx.principal.sites is not None:
        sites = sorted(ctx.principal.sites)
        q = q.where(InformationSystem.site.in_(sites))
        systems_q = systems_q.where(InformationSystem.site.in_(sites))
        approved_q = approved_q.where(InformationSystem.site.in_(sites))
    by_status: Counter[str] = Counter()
    deadlines: list[dict[str, Any]] = []
    for dossier, system in session.execute(q):
        by_status[dossier.status] += 1
        if dossier.status in ("submitted", "appraised"):
            try:
                nxt = dsvc.next_step(session, ctx, dossier, system)
            except RuleError:
                continue
            if nxt.due_date is not None:
                deadlines.append({"dossier": dossier, "system": system, "next": nxt})
    deadlines.sort(key=lambda d: d["next"].due_date)
    systems = int(session.scalar(systems_q) or 0)
    target = yearly_target(state, year)
    return {
        "by_status": dict(by_status),
        "systems": systems,
        "approved": int(session.scalar(approved_q) or 0),
        "target_share": target,
        "target_count": math.ceil(target * systems) if target is not None else None,
        "deadlines": deadlines[:10],
    }


@router.get("/overview")
def overview(request: Request, session: SessionDep, state: StateDep, principal: PagePrincipal) -> HTMLResponse:
    tz = userprefs.zone(request, state)
    today = utc_now().astimezone(tz).date()
    settings = settings_of(state)
    ctx = Ctx(principal, ip(request), settings, state.config.data_dir)
    days = severity_by_day(session, principal, tz, today) if principal.can(ALERTS_READ) else []
    chart: BarChart = stacked_bars(
        [(d.strftime("%d/%m"), values) for d, values in days], list(SEVERITIES), label_every=2
    )
    context = {
        "days": days,
        "chart": chart,
        "severities": SEVERITIES,
        "open_alerts": open_alerts(session, principal) if principal.can(ALERTS_READ) else {},
        "open_incidents": open_incidents(session, principal),
        "agents": agent_counts(settings.collector_registry, principal, timedelta(hours=settings.agent_stale_hours)),
        "dossiers": dossier_summary(session, ctx, state, today.year),
        "year": today.year,
    }
    return render(request, state, "overview.html", context, principal=principal, active="overview")
