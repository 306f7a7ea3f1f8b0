"""HTTP endpoints: ``/api/v1/reports/annual`` and ``/api/v1/reports/quarterly`` as DOCX, PDF or XLSX."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from soc_api.assessments.routers import obligations_of, today_vn
from soc_api.deps import SessionDep, StateDep
from soc_api.kpi.routers import kpi_for
from soc_api.kpi.services.scope import covered_sites
from soc_api.problems import Problem
from soc_api.reports.document import Report
from soc_api.reports.render.docx import render_docx
from soc_api.reports.render.pdf import FontMissing, render_pdf
from soc_api.reports.render.xlsx import render_xlsx
from soc_api.reports.services import annual, quarterly
from soc_api.reports.settings import ReportsSettings
from soc_api.state import AppState
from soc_api.systems.routers import CtxDep, rules

router = APIRouter(prefix="/api/v1/reports")
Format = Literal["docx", "pdf", "xlsx"]
MEDIA = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
SiteQuery = Annotated[str | None, Query(max_length=64)]
YearQuery = Annotated[int | None, Query(ge=2000, le=2100)]


def reports_settings(state: AppState) -> ReportsSettings:
    settings = getattr(state.config, "reports", None)
    return settings if isinstance(settings, ReportsSettings) else ReportsSettings()


def render(report: Report, fmt: Format, settings: ReportsSettings) -> bytes:
    if fmt == "docx":
        return render_docx(report)
    if fmt == "xlsx":
        return render_xlsx(report)
    return render_pdf(report, settings.font_regular, settings.font_bold)


def file_response(report: Report, fmt: Format, settings: ReportsSettings) -> Response:
    try:
        data = render(report, fmt, settings)
    except FontMissing as exc:
        raise Problem(503, str(exc), kind="font-missing") from None
    headers = {"Content-Disposition": f'attachment; filename="{report.file_stem}.{fmt}"'}
    return Response(data, media_type=MEDIA[fmt], headers=headers)


@router.get("/annual", tags=["reports"], response_class=Response)
def annual_report(
    session: SessionDep,
    state: StateDep,
    ctx: CtxDep,
    year: YearQuery = None,
    format: Format = "docx",
    site: SiteQuery = None,
) -> Response:
    """Form 08 annual report for ``year`` (data 15/12 of the year before to 14/12)."""
    year = year or today_vn().year
    obligations = obligations_of(state)
    settings = reports_settings(state)
    period = obligations.reports.annual.period(year)
    kpi = kpi_for(session, state, ctx, site, year, period)
    with rules():
        _scope, sites = covered_sites(session, ctx.principal, site)
        data = annual.collect(session, ctx, obligations, year, sites, kpi)
    report = annual.build(data, settings.reporting_unit, settings.owner_name, settings.approve_all_by)
    return file_response(report, format, settings)


@router.get("/quarterly", tags=["reports"], response_class=Response)
def quarterly_report(
    session: SessionDep,
    state: StateDep,
    ctx: CtxDep,
    quarter: Annotated[int, Query(ge=1, le=4)],
    year: YearQuery = None,
    format: Format = "docx",
    site: SiteQuery = None,
) -> Response:
    """Progress of the plans' security targets: indicators to the quarter's end, work done in it."""
    year = year or today_vn().year
    settings = reports_settings(state)
    first, last = quarterly.quarter_period(year, quarter)
    kpi = kpi_for(session, state, ctx, site, year, (first.replace(month=1, day=1), last))
    with rules():
        _scope, sites = covered_sites(session, ctx.principal, site)
    report = quarterly.build(session, sites, year, quarter, kpi, settings.reporting_unit)
    return file_response(report, format, settings)


__all__ = ["router"]
