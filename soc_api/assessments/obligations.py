"""Recurring obligations (assessment and drill intervals per level, reporting calendar) as data.

They live in ``profiles/calendar-obligations.yaml`` beside the level profiles: the intervals come
from standards that are still being issued (TCVN 14423:2026, MPS methods), so they change without
a code release. Kept out of the level-profile files because those are validated strictly.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from soc_api.systems.profiles import PROFILES_DIR, Confidence

DEFAULT_FILE = PROFILES_DIR / "calendar-obligations.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Interval(_Strict):
    months_by_level: dict[int, int]
    source: str
    confidence: Confidence

    def months(self, level: int | None) -> int | None:
        return self.months_by_level.get(level) if level is not None else None


class AssessmentRule(Interval):
    pre_go_live_levels: list[int] = Field(default_factory=list)
    independent_levels: list[int] = Field(default_factory=list)


class ProfileObligations(_Strict):
    assessments: dict[str, AssessmentRule]
    drills: Interval


class AnnualReportRule(_Strict):
    period_start: str = Field(pattern=r"^\d{2}-\d{2}$")
    period_end: str = Field(pattern=r"^\d{2}-\d{2}$")
    internal_due: str = Field(pattern=r"^\d{2}-\d{2}$")
    authority_due: str = Field(pattern=r"^\d{2}-\d{2}$")
    source: str
    confidence: Confidence

    def period(self, year: int) -> tuple[date, date]:
        """Data period of the report for ``year``: 15/12 of the year before to 14/12."""
        return _md(self.period_start, year - 1), _md(self.period_end, year)

    def internal_due_date(self, year: int) -> date:
        return _md(self.internal_due, year)

    def authority_due_date(self, year: int) -> date:
        return _md(self.authority_due, year)


class QuarterlyReportRule(_Strict):
    due_day_after_quarter: int = Field(ge=1, le=28)
    source: str
    confidence: Confidence


class SelfCheckRule(_Strict):
    due: str = Field(pattern=r"^\d{2}-\d{2}$")
    levels: list[int]
    source: str
    confidence: Confidence


class ReportCalendar(_Strict):
    annual: AnnualReportRule
    quarterly: QuarterlyReportRule
    national_security_self_check: SelfCheckRule


class Obligations(_Strict):
    version: str
    profiles: dict[str, ProfileObligations]
    reports: ReportCalendar

    def for_profile(self, profile_id: str | None) -> ProfileObligations:
        """The obligations of ``profile_id``; unknown ids fall back to the current rules."""
        return self.profiles.get(profile_id or "current") or self.profiles["current"]


def _md(value: str, year: int) -> date:
    month, day = (int(x) for x in value.split("-"))
    return date(year, month, day)


@lru_cache(maxsize=8)
def load_obligations(path: Path | None = None) -> Obligations:
    raw = yaml.safe_load((path or DEFAULT_FILE).read_text(encoding="utf-8"))
    return Obligations.model_validate(raw)


def add_months(day: date, months: int) -> date:
    """``day`` plus whole months, clamped to the month's last day (31/1 + 1 month = 28/2 or 29/2)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")
