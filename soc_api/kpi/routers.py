"""HTTP endpoints: ``/api/v1/kpi`` (indicators per site and for the province) and the declared
endpoint counts each office keeps up to date (``/api/v1/kpi/declared-assets/{site}``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from soc_api.agents.routers import agents_settings
from soc_api.assessments.routers import compliance_settings, obligations_of, today_vn
from soc_api.deps import SessionDep, StateDep
from soc_api.kpi.models import DeclaredAssets
from soc_api.kpi.schemas import DeclaredAssetsIn, DeclaredAssetsOut, KpiReport
from soc_api.kpi.services.compute import Inputs, compute
from soc_api.kpi.services.endpoints import AgentSeen, collector_agents, registry_agents
from soc_api.kpi.services.scope import covered_sites, registry_path
from soc_api.kpi.settings import KpiSettings
from soc_api.services import audit
from soc_api.state import AppState
from soc_api.systems.routers import CtxDep, rules, settings_of
from soc_api.systems.services.access import EDIT_ROLES, require_role
from soc_api.systems.services.context import Ctx
from soc_common.ecs import utc_now

router = APIRouter(prefix="/api/v1/kpi")


def kpi_settings(state: AppState) -> KpiSettings:
    settings = getattr(state.config, "kpi", None)
    return settings if isinstance(settings, KpiSettings) else KpiSettings()


def enrolled_agents(state: AppState, settings: KpiSettings) -> list[AgentSeen]:
    """The collector's agents: over its admin API when configured, else from the local registry file."""
    remote = agents_settings(state)
    if remote.configured:
        return collector_agents(remote)
    return registry_agents(registry_path(settings.collector_registry, settings_of(state).collector_registry))


def kpi_inputs(state: AppState) -> Inputs:
    settings = kpi_settings(state)
    return Inputs(
        store=state.store,
        agents=enrolled_agents(state, settings),
        obligations=obligations_of(state),
        settings=settings,
        now=utc_now(),
        due_soon_days=compliance_settings(state).due_soon_days,
    )


def kpi_for(
    session: Session, state: AppState, ctx: Ctx, site: str | None, year: int, period: tuple[date, date]
) -> KpiReport:
    with rules():
        scope, sites = covered_sites(session, ctx.principal, site)
    return compute(session, kpi_inputs(state), scope, sites, year, period)


@router.get("", response_model=KpiReport, tags=["kpi"])
def get_kpi(
    session: SessionDep,
    state: StateDep,
    ctx: CtxDep,
    site: Annotated[str | None, Query(max_length=64)] = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> KpiReport:
    """Indicators for the calendar ``year`` (default: this year) of ``site`` and the sites below it."""
    year = year or today_vn().year
    return kpi_for(session, state, ctx, site, year, (date(year, 1, 1), date(year, 12, 31)))


@router.put("/declared-assets/{site}", response_model=DeclaredAssetsOut, tags=["kpi"])
def declare_assets(site: str, body: DeclaredAssetsIn, session: SessionDep, ctx: CtxDep) -> DeclaredAssetsOut:
    """How many computers and servers the office has: the base of the coverage indicators."""
    with rules():
        require_role(ctx.principal, EDIT_ROLES, "declaring endpoint counts")
        covered_sites(session, ctx.principal, site[:64])
    row = session.get(DeclaredAssets, site)
    before = {"pcs": row.pcs, "servers": row.servers} if row else None
    if row is None:
        row = DeclaredAssets(site=site, pcs=body.pcs, servers=body.servers, updated_by=ctx.actor)
        session.add(row)
    else:
        row.pcs, row.servers, row.updated_by = body.pcs, body.servers, ctx.actor
    session.flush()
    audit.append(
        session,
        actor=ctx.actor,
        action="kpi.declared_assets",
        object_type="site",
        object_id=site,
        before=before,
        after=body.model_dump(),
        source_ip=ctx.source_ip,
    )
    return DeclaredAssetsOut(site=row.site, pcs=row.pcs, servers=row.servers, updated_by=row.updated_by)


__all__ = ["router"]
