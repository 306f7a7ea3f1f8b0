"""KPIs per site and for the province (a site and everything below it), for one period.

Counts come from the registry (systems, levels, plans), the assessment schedule, endpoint coverage,
incidents, drills and alerts. Drill alerts, and incidents linked to drills or built only from drill
alerts, are excluded from the real statistics.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.orm import Session

from collector.store.base import EventStore
from soc_api.assessments.models import ImprovementAction
from soc_api.assessments.obligations import Obligations
from soc_api.assessments.services.schedule import assessed_on_time, schedules
from soc_api.db.models import AlertRow, Incident, IncidentAlert, Site
from soc_api.drills.models import Drill, DrillIncident
from soc_api.kpi.models import DeclaredAssets
from soc_api.kpi.schemas import IncidentStats, KpiReport, Ratio, SiteKpi
from soc_api.kpi.services.endpoints import AgentSeen, SiteEndpoints, site_endpoints
from soc_api.kpi.settings import KpiSettings, Targets
from soc_api.systems.calendar.holidays import VN_TZ
from soc_api.systems.models import InformationSystem, SystemHost


@dataclass(frozen=True)
class Inputs:
    """What a KPI computation reads besides the database."""

    store: EventStore | None
    agents: list[AgentSeen]
    obligations: Obligations
    settings: KpiSettings
    now: datetime
    due_soon_days: int = 30


def day_start(day: date) -> datetime:
    """Start of a Vietnamese calendar day, in UTC."""
    return datetime.combine(day, time(0), tzinfo=VN_TZ).astimezone(UTC)


def ratio(count: int, of: int, target: float | None = None) -> Ratio:
    share = round(count / of, 4) if of else None
    met = None if target is None or share is None else share >= target
    return Ratio(count=count, of=of, share=share, target=target, met=met)


def _incidents(
    session: Session, sites: list[str], start: datetime, end: datetime
) -> dict[str, list[tuple[str, float]]]:
    """site -> [(category, hours from first alert to incident)] of real incidents in the period."""
    drilled = select(DrillIncident.incident_id)
    q = (
        select(
            Incident.id,
            Incident.category,
            Incident.created_at,
            func.min(AlertRow.site),
            func.min(AlertRow.timestamp),
            func.min(cast(AlertRow.drill, Integer)),
        )
        .join(IncidentAlert, IncidentAlert.incident_id == Incident.id)
        .join(AlertRow, AlertRow.id == IncidentAlert.alert_id)
        .where(Incident.created_at >= start, Incident.created_at < end, Incident.id.not_in(drilled))
        .group_by(Incident.id, Incident.category, Incident.created_at)
    )
    out: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for _id, category, created, site, first_alert, all_drill in session.execute(q):
        if site not in sites or all_drill == 1:
            continue
        hours = max((created - first_alert).total_seconds() / 3600, 0.0) if first_alert else 0.0
        out[site].append((category, hours))
    return out


def _alerts(session: Session, sites: list[str], start: datetime, end: datetime) -> dict[tuple[str, bool], int]:
    q = (
        select(AlertRow.site, AlertRow.drill, func.count())
        .where(AlertRow.site.in_(sites), AlertRow.timestamp >= start, AlertRow.timestamp < end)
        .group_by(AlertRow.site, AlertRow.drill)
    )
    return {(str(site), bool(drill)): int(n) for site, drill, n in session.execute(q)}


def _drills(session: Session, sites: list[str], first: date, last: date) -> dict[str, tuple[int, int]]:
    q = select(Drill.site, Drill.status, func.count()).where(
        Drill.site.in_(sites), Drill.planned_on >= first, Drill.planned_on <= last, Drill.status != "cancelled"
    )
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for site, status, n in session.execute(q.group_by(Drill.site, Drill.status)):
        counts[site][0] += int(n)
        if status == "completed":
            counts[site][1] += int(n)
    return {k: (v[0], v[1]) for k, v in counts.items()}


def _actions(session: Session, sites: list[str], today: date) -> dict[str, tuple[int, int]]:
    q = select(ImprovementAction.site, ImprovementAction.due_date).where(
        ImprovementAction.site.in_(sites), ImprovementAction.closed_on.is_(None)
    )
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for site, due in session.execute(q):
        out[site][0] += 1
        out[site][1] += 1 if today > due else 0
    return {k: (v[0], v[1]) for k, v in out.items()}


@dataclass
class _Counts:
    """Additive counts of one site (the province total is their sum)."""

    systems: int = 0
    approved: int = 0
    plan_full: int = 0
    on_time: int = 0
    protected_by_level: int = 0
    pcs_registered: int = 0
    pcs_declared: bool = True
    servers_registered: int = 0
    pcs_monitored: int = 0
    pcs_protected: int = 0
    servers_monitored: int = 0
    servers_protected: int = 0
    endpoint_ok: bool = True
    incidents: tuple[tuple[str, float], ...] = ()
    drills_planned: int = 0
    drills_done: int = 0
    alerts_real: int = 0
    alerts_drill: int = 0
    actions_open: int = 0
    actions_overdue: int = 0

    def add(self, other: _Counts) -> None:
        for name, value in vars(other).items():
            if isinstance(value, bool):
                setattr(self, name, getattr(self, name) and value)
            else:
                setattr(self, name, getattr(self, name) + value)


def _to_kpi(site: str, name: str, c: _Counts, t: Targets) -> SiteKpi:
    by_category: dict[str, int] = defaultdict(int)
    for category, _h in c.incidents:
        by_category[category] += 1
    hours = [h for _c, h in c.incidents]
    return SiteKpi(
        site=site,
        name=name,
        systems_total=c.systems,
        systems_level_approved=ratio(c.approved, c.systems, t.systems_level_approved),
        systems_plan_full=ratio(c.plan_full, c.systems, t.systems_plan_full),
        systems_assessed_on_time=ratio(c.on_time, c.systems, t.systems_assessed_on_time),
        systems_protected_by_level=ratio(c.protected_by_level, c.systems, t.systems_protected_by_level),
        pcs_declared=c.pcs_declared,
        pcs_registered=c.pcs_registered,
        pcs_monitored=ratio(c.pcs_monitored, c.pcs_registered, t.pcs_monitored),
        pcs_protected=ratio(c.pcs_protected, c.pcs_registered, t.pcs_protected),
        servers_registered=c.servers_registered,
        servers_monitored=ratio(c.servers_monitored, c.servers_registered, t.servers_monitored),
        servers_protected=ratio(c.servers_protected, c.servers_registered),
        endpoint_data_complete=c.endpoint_ok,
        incidents=IncidentStats(
            total=len(c.incidents),
            by_category=dict(sorted(by_category.items())),
            mean_hours_to_report=round(sum(hours) / len(hours), 2) if hours else None,
        ),
        drills_planned=c.drills_planned,
        drills_done=ratio(c.drills_done, c.drills_planned, t.drills_done),
        alerts_real=c.alerts_real,
        alerts_drill=c.alerts_drill,
        actions_open=c.actions_open,
        actions_overdue=c.actions_overdue,
    )


def _endpoint_counts(c: _Counts, ep: SiteEndpoints, declared: DeclaredAssets | None) -> None:
    c.pcs_monitored = len(ep.pcs)
    c.servers_monitored = len(ep.servers)
    c.pcs_protected = len(ep.pcs & ep.protected)
    c.servers_protected = len(ep.servers & ep.protected)
    c.endpoint_ok = ep.store_ok
    if declared is not None:
        c.pcs_registered = max(declared.pcs, c.pcs_monitored)
        c.servers_registered = max(declared.servers, c.servers_monitored)
    else:
        c.pcs_declared = False
        c.pcs_registered = c.pcs_monitored
        c.servers_registered = c.servers_monitored


def compute(
    session: Session, inputs: Inputs, scope: str, sites: list[str], year: int, period: tuple[date, date]
) -> KpiReport:
    """KPIs of ``sites`` (the scope site and its descendants) for ``period`` (inclusive dates)."""
    first, last = period
    start, end = day_start(first), day_start(last + timedelta(days=1))
    today = min(inputs.now.astimezone(VN_TZ).date(), last)
    targets = inputs.settings.targets_for(year)
    names = {code: name for code, name in session.execute(select(Site.code, Site.name).where(Site.code.in_(sites)))}
    systems = list(session.scalars(select(InformationSystem).where(InformationSystem.site.in_(sites))))
    due = schedules(session, systems, inputs.obligations, today, inputs.due_soon_days)
    server_hosts = {
        (h or "").lower()
        for h in session.scalars(
            select(SystemHost.host_name)
            .join(InformationSystem, InformationSystem.id == SystemHost.system_id)
            .where(InformationSystem.site.in_(sites))
        )
    }
    declared = {d.site: d for d in session.scalars(select(DeclaredAssets).where(DeclaredAssets.site.in_(sites)))}
    incidents = _incidents(session, sites, start, end)
    alerts = _alerts(session, sites, start, end)
    drills = _drills(session, sites, first, last)
    actions = _actions(session, sites, today)
    rows: list[SiteKpi] = []
    total = _Counts()
    for site in sorted(sites):
        c = _Counts()
        for system in (s for s in systems if s.site == site):
            c.systems += 1
            approved = system.approved_level is not None
            full = system.plan_state == "full"
            on_time = assessed_on_time(due.get(system.id, []))
            c.approved += approved
            c.plan_full += full
            c.on_time += on_time
            c.protected_by_level += approved and full and on_time
        ep = site_endpoints(
            site,
            inputs.store,
            inputs.agents,
            server_hosts,
            inputs.settings.pc_os_types,
            inputs.now,
            inputs.settings.agent_stale_hours,
        )
        _endpoint_counts(c, ep, declared.get(site))
        c.incidents = tuple(incidents.get(site, []))
        c.drills_planned, c.drills_done = drills.get(site, (0, 0))
        c.alerts_real = alerts.get((site, False), 0)
        c.alerts_drill = alerts.get((site, True), 0)
        c.actions_open, c.actions_overdue = actions.get(site, (0, 0))
        rows.append(_to_kpi(site, names.get(site, site), c, targets))
        total.add(c)
    return KpiReport(
        year=year,
        period_start=first,
        period_end=last,
        scope=scope,
        sites=rows,
        total=_to_kpi(scope, names.get(scope, scope), total, targets),
    )
