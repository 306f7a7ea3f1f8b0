"""KPIs and reports: the year's indicators against the plans' targets (province and per site, with
a chart drawn on the server), and downloads of the annual and quarterly reports as DOCX, PDF or
XLSX for a chosen year, quarter and site.

The figures come from the same computation as ``/api/v1/kpi``; the download forms submit to
``/api/v1/reports/...``, which the session cookie authenticates for GET requests.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from soc_api.assessments.routers import today_vn
from soc_api.db.models import Site
from soc_api.deps import SessionDep, StateDep
from soc_api.kpi.routers import kpi_for
from soc_api.kpi.schemas import Ratio, SiteKpi
from soc_api.reports.routers import MEDIA
from soc_api.systems import routers as systems_api
from soc_api.systems.services.access import READ_ROLES
from soc_api.systems.services.context import Ctx, RuleError
from soc_api.web import nav
from soc_api.web.charts import BarChart, stacked_bars
from soc_api.web.guard import PagePrincipal, allow, ip
from soc_api.web.i18n import N_
from soc_api.web.render import render

router = APIRouter()
nav.register(nav.NavEntry("kpi", N_("KPIs and reports"), "/kpi", order=50, allowed=nav.has_role(*READ_ROLES)))
INDICATORS: dict[str, str] = {
    "systems_level_approved": N_("Systems with an approved security level"),
    "systems_plan_full": N_("Systems with the protection plan fully deployed"),
    "systems_assessed_on_time": N_("Systems assessed on time"),
    "systems_protected_by_level": N_("Systems protected as their level requires"),
    "pcs_monitored": N_("Computers monitored"),
    "pcs_protected": N_("Computers protected"),
    "servers_monitored": N_("Servers monitored"),
    "servers_protected": N_("Servers protected"),
    "drills_done": N_("Planned drills carried out"),
}
YEARS_BACK = 5


def ratios(kpi: SiteKpi) -> list[tuple[str, Ratio]]:
    return [(key, getattr(kpi, key)) for key in INDICATORS]


def kpi_chart(kpi: SiteKpi) -> BarChart:
    """One bar per indicator, 0-100 %: the achieved share (green when the target is met, amber when
    not, blue without a target) topped up to 100 % in grey."""
    columns: list[tuple[str, dict[str, int]]] = []
    for i, (_key, r) in enumerate(ratios(kpi), start=1):
        share = round((r.share or 0.0) * 100)
        state = "none" if r.met is None else "met" if r.met else "short"
        columns.append((str(i), {state: share, "rest": 100 - share}))
    return stacked_bars(columns, ["met", "short", "none", "rest"], css_prefix="kpi-", height=200)


@router.get("/kpi")
def kpi_page(
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: PagePrincipal,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    site: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    allow(principal, nav.has_role(*READ_ROLES))
    this_year = today_vn().year
    year = year or this_year
    sites = [s for s in session.scalars(select(Site).order_by(Site.code)) if principal.sees_site(s.code)]
    chosen = site if any(s.code == site for s in sites) else ""
    ctx = Ctx(principal, ip(request), systems_api.settings_of(state), state.config.data_dir)
    try:
        report = kpi_for(session, state, ctx, chosen or None, year, (date(year, 1, 1), date(year, 12, 31)))
    except RuleError:
        report = None
    context: dict[str, Any] = {
        "report": report,
        "chart": kpi_chart(report.total) if report else None,
        "ratios": ratios,
        "indicators": INDICATORS,
        "year": year,
        "years": list(range(this_year, this_year - YEARS_BACK - 1, -1)),
        "site": chosen,
        "sites": sites,
        "formats": list(MEDIA),
        "quarter": (today_vn().month - 1) // 3 + 1,
    }
    return render(request, state, "kpi.html", context, principal=principal, active="kpi")
