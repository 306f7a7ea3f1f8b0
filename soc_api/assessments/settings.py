"""The ``[compliance]`` configuration section (to be added to ``ApiConfig`` as ``compliance``):
obligations file, what counts as "due soon", and where drill minutes are kept."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from soc_common.config import Section


class ComplianceSettings(Section):
    obligations_file: Path | None = None  # default: soc_api/profiles/calendar-obligations.yaml
    due_soon_days: int = Field(default=30, ge=0, le=366)  # assessments/drills shown as coming due
