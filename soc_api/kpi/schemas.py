"""KPI bodies: each indicator is a count over a base, its share, the year's target and whether met."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field


class Ratio(BaseModel):
    count: int
    of: int
    share: float | None  # None when the base is 0
    target: float | None = None
    met: bool | None = None


class IncidentStats(BaseModel):
    total: int
    by_category: dict[str, int]
    mean_hours_to_report: float | None  # first alert -> incident opened (the incidents table has no report time yet)


class SiteKpi(BaseModel):
    site: str
    name: str
    systems_total: int
    systems_level_approved: Ratio
    systems_plan_full: Ratio
    systems_assessed_on_time: Ratio
    systems_protected_by_level: Ratio
    pcs_declared: bool  # False: the office declared no count, the base is the hosts we know
    pcs_registered: int
    pcs_monitored: Ratio
    pcs_protected: Ratio
    servers_registered: int
    servers_monitored: Ratio
    servers_protected: Ratio
    endpoint_data_complete: bool
    incidents: IncidentStats
    drills_planned: int
    drills_done: Ratio
    alerts_real: int
    alerts_drill: int
    actions_open: int
    actions_overdue: int


class KpiReport(BaseModel):
    year: int
    period_start: date
    period_end: date
    scope: str
    sites: list[SiteKpi]
    total: SiteKpi


class DeclaredAssetsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pcs: int = Field(ge=0, le=1_000_000)
    servers: int = Field(ge=0, le=1_000_000)


class DeclaredAssetsOut(BaseModel):
    site: str
    pcs: int
    servers: int
    updated_by: str
