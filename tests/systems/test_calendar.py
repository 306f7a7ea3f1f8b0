"""The lunar algorithm, the holiday calendar and working-day deadlines across Tết."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from soc_api.systems.calendar.holidays import VN_TZ, WorkingCalendar, calendar_from, load_calendar_data
from soc_api.systems.calendar.lunar import lunar_to_solar, solar_to_lunar, tet

# Published Vietnamese calendar dates (lunar new year and Giỗ Tổ 10/3 lunar).
TET = {
    2019: date(2019, 2, 5),
    2020: date(2020, 1, 25),
    2023: date(2023, 1, 22),
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
}
GIO_TO = {2024: date(2024, 4, 18), 2025: date(2025, 4, 7), 2026: date(2026, 4, 26)}


@pytest.mark.parametrize("year", sorted(TET))
def test_tet_dates(year: int) -> None:
    assert tet(year) == TET[year]


@pytest.mark.parametrize("year", sorted(GIO_TO))
def test_gio_to_hung_vuong(year: int) -> None:
    assert lunar_to_solar(10, 3, year) == GIO_TO[year]


def test_vietnamese_and_chinese_calendars_differ_in_1985() -> None:
    """UTC+7 puts Tết 1985 on 21 Jan; China (UTC+8) celebrated on 20 Feb."""
    assert tet(1985) == date(1985, 1, 21)


def test_leap_month_and_round_trip() -> None:
    assert lunar_to_solar(1, 6, 2025, leap=True) == date(2025, 7, 25)  # nhuận tháng 6 Ất Tỵ
    with pytest.raises(ValueError):
        lunar_to_solar(1, 3, 2025, leap=True)
    for day in (date(2026, 2, 16), date(2025, 7, 25), date(2024, 12, 31), date(2030, 6, 1)):
        d, m, y, leap = solar_to_lunar(day)
        assert lunar_to_solar(d, m, y, leap=leap) == day
    assert solar_to_lunar(date(2026, 2, 16)) == (29, 12, 2025, False)  # the last day of Ất Tỵ


def test_holidays_2026() -> None:
    cal = calendar_from()
    off = cal.holidays(2026)
    # Tết Bính Ngọ: 29 Tết (16/2) to mùng 4 (20/2), Mon-Fri; with the weekends 14-22 Feb off.
    assert sorted(d for d in off if d.month == 2) == [date(2026, 2, d) for d in range(16, 21)]
    assert date(2026, 4, 27) in off and "Nghỉ bù" in off[date(2026, 4, 27)]  # Giỗ Tổ on a Sunday
    assert {date(2026, 1, 1), date(2026, 4, 30), date(2026, 5, 1), date(2026, 9, 2)} <= set(off)
    assert not any(cal.is_working_day(date(2026, 2, d)) for d in range(14, 23))


def test_compensation_when_tet_falls_on_a_weekend_2027() -> None:
    off = calendar_from().holidays(2027)
    # 5-9 Feb 2027 include Sat 6 and Sun 7: compensated on Wed 10 and Thu 11.
    assert sorted(d for d in off if d.month == 2) == [date(2027, 2, d) for d in range(5, 12)]
    assert date(2027, 5, 3) in off  # 1/5/2027 is a Saturday


def test_announced_swaps_2025_are_data() -> None:
    cal = calendar_from()
    assert not cal.is_working_day(date(2025, 1, 27))  # swapped day off
    assert cal.is_working_day(date(2025, 2, 8))  # a Saturday worked in exchange
    assert cal.is_working_day(date(2025, 2, 3))  # no compensation: the announced schedule ends 2/2
    assert cal.is_working_day(date(2025, 4, 26)) and not cal.is_working_day(date(2025, 5, 2))


def test_fifteen_working_days_across_tet_2026() -> None:
    cal = calendar_from()
    # Submitted Thursday 12 Feb 2026: 13 Feb is day 1, Tết closes 14-22 Feb, 23 Feb is day 2 ...
    assert cal.add_working_days(date(2026, 2, 12), 15) == date(2026, 3, 12)
    assert cal.working_days_between(date(2026, 2, 12), date(2026, 3, 12)) == 15
    assert cal.working_days_between(date(2026, 3, 12), date(2026, 2, 12)) == -15
    # The same 15 days in plain weeks are exactly three calendar weeks.
    assert cal.add_working_days(date(2026, 3, 12), 15) == date(2026, 4, 2)


def test_seven_working_days_across_tet_2027_and_deadline_in_utc() -> None:
    cal = calendar_from()
    # Wed 3 Feb: 4 Feb is day 1, 5-11 Feb are Tết + weekend + compensation, 12 Feb is day 2.
    assert cal.add_working_days(date(2027, 2, 3), 7) == date(2027, 2, 19)
    # Late evening UTC is already the next day in Vietnam.
    since = datetime(2027, 2, 2, 18, 0, tzinfo=UTC)  # 3 Feb 01:00 in Hà Nội
    due = cal.deadline(since, 7)
    assert due.astimezone(VN_TZ).date() == date(2027, 2, 19)
    assert due == datetime(2027, 2, 19, 16, 59, 59, tzinfo=UTC)


def test_the_2_9_adjacent_day_rule() -> None:
    cal = calendar_from()
    assert date(2025, 9, 1) in cal.holidays(2025)  # announced (data)
    assert date(2026, 9, 3) in cal.holidays(2026)  # default: 3/9 when 2/9 is not a Tuesday
    assert date(2030, 9, 2).weekday() == 0 and date(2030, 9, 3) in cal.holidays(2030)


def test_calendar_file_is_configurable(tmp_path: Path) -> None:
    data = load_calendar_data().model_copy(update={"compensate_weekend": False, "years": {}})
    cal = WorkingCalendar(data)
    assert date(2027, 2, 10) not in cal.holidays(2027)
    assert cal.is_working_day(date(2025, 2, 3))  # no compensation for Sat 1 Feb, no swaps


def test_bad_requests_are_refused() -> None:
    with pytest.raises(ValueError):
        calendar_from().add_working_days(date(2026, 1, 1), -1)
    with pytest.raises(ValueError):
        calendar_from().working_days_between(date(2000, 1, 1), date(2030, 1, 1))
