"""The ``[kpi]`` configuration section (to be added to ``ApiConfig`` as ``kpi``): yearly targets of
the provincial plans and how endpoints are counted."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from soc_common.config import Section


class Targets(BaseModel):
    """Shares (0..1) the plans set for a year; None = no target that year."""

    model_config = ConfigDict(extra="forbid")

    systems_protected_by_level: float | None = Field(default=None, ge=0, le=1)  # approved, plan full, assessed
    systems_level_approved: float | None = Field(default=None, ge=0, le=1)
    systems_plan_full: float | None = Field(default=None, ge=0, le=1)
    systems_assessed_on_time: float | None = Field(default=None, ge=0, le=1)
    pcs_protected: float | None = Field(default=None, ge=0, le=1)  # centrally managed protection
    pcs_monitored: float | None = Field(default=None, ge=0, le=1)
    servers_monitored: float | None = Field(default=None, ge=0, le=1)
    drills_done: float | None = Field(default=None, ge=0, le=1)  # of the drills planned


def _default_targets() -> dict[int, Targets]:
    # One province's plan: 40% / 70% / 100% of systems assessed and protected by level in
    # 2025 / 2026 / 2027, and 100% of computers under central protection.
    return {
        2025: Targets(systems_protected_by_level=0.4, pcs_protected=1.0, pcs_monitored=1.0, drills_done=1.0),
        2026: Targets(systems_protected_by_level=0.7, pcs_protected=1.0, pcs_monitored=1.0, drills_done=1.0),
        2027: Targets(
            systems_protected_by_level=1.0,
            systems_level_approved=1.0,
            systems_plan_full=1.0,
            pcs_protected=1.0,
            pcs_monitored=1.0,
            servers_monitored=1.0,
            drills_done=1.0,
        ),
    }


class KpiSettings(Section):
    targets: dict[int, Targets] = Field(default_factory=_default_targets)
    agent_stale_hours: float = Field(default=24.0, gt=0, le=24 * 90)  # "monitored" = reported within this
    pc_os_types: list[str] = Field(default_factory=lambda: ["windows", "macos"])  # other OS = server
    collector_registry: Path | None = None  # collector state.db (default: systems.collector_registry)

    def targets_for(self, year: int) -> Targets:
        """The year's targets; a later year keeps the last year's targets (a 100% goal stays)."""
        years = sorted(y for y in self.targets if y <= year)
        return self.targets[years[-1]] if years else Targets()
