"""Working days on the Vietnamese public-holiday calendar.

Statutory time limits (appraisal within 15 working days, approval within 7...) are counted in
working days, so a deadline that crosses Tết can move by more than a week. The fixed rules and the
per-year announced swaps are data (``soc_api/profiles/calendar-vn.yaml``); Tết and Giỗ Tổ come from
the lunar algorithm, so an unlisted year still gets the statutory holidays.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field

from soc_api.systems.calendar.lunar import lunar_to_solar, tet

DEFAULT_CALENDAR_FILE = Path(__file__).resolve().parents[2] / "profiles" / "calendar-vn.yaml"
VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
MAX_SPAN_DAYS = 3660  # refuse absurd requests instead of looping for ever


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FixedHoliday(_Strict):
    date: str = Field(pattern=r"^\d{2}-\d{2}$")
    name: str


class LunarHoliday(_Strict):
    day: int = Field(ge=1, le=30)
    month: int = Field(ge=1, le=12)
    name: str


class TetRule(_Strict):
    name: str
    days_before: int = Field(ge=0, le=10)
    days_after: int = Field(ge=0, le=10)


class AdjacentRule(_Strict):
    name: str
    default: Literal["auto", "before", "after", "none"] = "auto"


class NamedDate(_Strict):
    date: date
    name: str = ""


class YearOverride(_Strict):
    source: str = ""
    confidence: str = ""
    days_off: list[NamedDate] = Field(default_factory=list)
    working_days: list[NamedDate] = Field(default_factory=list)
    national_day_adjacent: date | None = None


class CalendarData(_Strict):
    version: str
    source: str
    confidence: str
    weekend: list[int] = Field(default_factory=lambda: [5, 6])
    compensate_weekend: bool = True
    fixed: list[FixedHoliday]
    lunar: list[LunarHoliday]
    tet: TetRule
    national_day_adjacent: AdjacentRule
    years: dict[int, YearOverride] = Field(default_factory=dict)


def load_calendar_data(path: Path | None = None) -> CalendarData:
    raw = yaml.safe_load((path or DEFAULT_CALENDAR_FILE).read_text(encoding="utf-8"))
    return CalendarData.model_validate(raw)


class WorkingCalendar:
    """Answers "is this a working day" and "which day is N working days after X"."""

    def __init__(self, data: CalendarData) -> None:
        self.data = data
        self._weekend = frozenset(data.weekend)
        self._years: dict[int, dict[date, str]] = {}
        self._working: dict[int, frozenset[date]] = {}

    def _statutory(self, year: int) -> dict[date, str]:
        out: dict[date, str] = {}
        for fixed in self.data.fixed:
            month, day = (int(x) for x in fixed.date.split("-"))
            out[date(year, month, day)] = fixed.name
        for lunar in self.data.lunar:
            out[lunar_to_solar(lunar.day, lunar.month, year)] = lunar.name
        new_year = tet(year)
        for offset in range(-self.data.tet.days_before, self.data.tet.days_after):
            out[new_year + timedelta(days=offset)] = self.data.tet.name
        adjacent = self._adjacent_national_day(year)
        if adjacent is not None:
            out[adjacent] = self.data.national_day_adjacent.name
        return out

    def _adjacent_national_day(self, year: int) -> date | None:
        override = self.data.years.get(year)
        if override is not None and override.national_day_adjacent is not None:
            return override.national_day_adjacent
        rule = self.data.national_day_adjacent.default
        national = date(year, 9, 2)
        if rule == "none":
            return None
        if rule == "before" or (rule == "auto" and national.weekday() == 1):
            return national - timedelta(days=1)
        return national + timedelta(days=1)

    def holidays(self, year: int) -> dict[date, str]:
        """Every day off (besides ordinary weekends) in ``year``, with its name."""
        cached = self._years.get(year)
        if cached is not None:
            return cached
        # Tết of the next year can start on 31 Dec; include neighbours so compensation sees them.
        statutory = {**self._statutory(year - 1), **self._statutory(year), **self._statutory(year + 1)}
        off: dict[date, str] = {}
        for day in sorted(statutory):
            off[day] = statutory[day]
            if self.data.compensate_weekend and day.weekday() in self._weekend:
                comp = day + timedelta(days=1)
                while comp.weekday() in self._weekend or comp in statutory or comp in off:
                    comp += timedelta(days=1)
                off[comp] = f"Nghỉ bù {statutory[day]}"
        for y in (year - 1, year, year + 1):
            override = self.data.years.get(y)
            if override is not None:
                for item in override.days_off:
                    off[item.date] = item.name or "Nghỉ theo thông báo"
                for item in override.working_days:
                    off.pop(item.date, None)
        result = {d: n for d, n in off.items() if d.year == year}
        self._years[year] = result
        return result

    def _announced_working(self, year: int) -> frozenset[date]:
        cached = self._working.get(year)
        if cached is None:
            override = self.data.years.get(year)
            cached = frozenset(i.date for i in override.working_days) if override else frozenset()
            self._working[year] = cached
        return cached

    def is_working_day(self, day: date) -> bool:
        if day in self._announced_working(day.year):
            return True
        return day.weekday() not in self._weekend and day not in self.holidays(day.year)

    def add_working_days(self, start: date, count: int) -> date:
        """The day on which the ``count``-th working day after ``start`` falls (``start`` excluded)."""
        if count < 0 or count > MAX_SPAN_DAYS:
            raise ValueError("count must be between 0 and 3660")
        day = start
        left = count
        while left > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in ``(start, end]`` (negative when ``end`` is before ``start``)."""
        if abs((end - start).days) > MAX_SPAN_DAYS:
            raise ValueError("span longer than ten years")
        lo, hi, sign = (start, end, 1) if end >= start else (end, start, -1)
        count = sum(1 for i in range(1, (hi - lo).days + 1) if self.is_working_day(lo + timedelta(days=i)))
        return sign * count

    def deadline(self, since: datetime, working_days: int) -> datetime:
        """End (23:59:59 Vietnam time, returned in UTC) of the N-th working day after ``since``."""
        local_day = since.astimezone(VN_TZ).date()
        due = self.add_working_days(local_day, working_days)
        end = datetime.combine(due, time(23, 59, 59), tzinfo=VN_TZ)
        return end.astimezone(UTC)


@lru_cache(maxsize=8)
def calendar_from(path: Path | None = None) -> WorkingCalendar:
    return WorkingCalendar(load_calendar_data(path))
