"""Vietnamese lunar calendar (Hồ Ngọc Đức's astronomical algorithm, UTC+7).

Tết and Giỗ Tổ Hùng Vương move every year; computing them from astronomy keeps the calendar
correct for any year without a table. The Vietnamese calendar uses UTC+7, which is why it
sometimes differs from the Chinese one (UTC+8) by a day or a month.
"""

from __future__ import annotations

import math
from datetime import date

VN_TZ_HOURS = 7.0
_JD_EPOCH_ORDINAL = 1721425  # julian day number of date(1, 1, 1) minus its ordinal


def julian_day(day: date) -> int:
    return day.toordinal() + _JD_EPOCH_ORDINAL


def from_julian_day(jd: int) -> date:
    return date.fromordinal(jd - _JD_EPOCH_ORDINAL)


def _new_moon(k: int) -> float:
    """Julian date (UT) of the k-th new moon after 1900-01-01 (Meeus, simplified)."""
    t = k / 1236.85
    t2, t3 = t * t, t * t * t
    dr = math.pi / 180
    jd1 = 2415020.75933 + 29.53058868 * k + 0.0001178 * t2 - 0.000000155 * t3
    jd1 += 0.00033 * math.sin((166.56 + 132.87 * t - 0.009173 * t2) * dr)
    m = 359.2242 + 29.10535608 * k - 0.0000333 * t2 - 0.00000347 * t3
    mpr = 306.0253 + 385.81691806 * k + 0.0107306 * t2 + 0.00001236 * t3
    f = 21.2964 + 390.67050646 * k - 0.0016528 * t2 - 0.00000239 * t3
    c1 = (0.1734 - 0.000393 * t) * math.sin(m * dr) + 0.0021 * math.sin(2 * dr * m)
    c1 = c1 - 0.4068 * math.sin(mpr * dr) + 0.0161 * math.sin(dr * 2 * mpr)
    c1 = c1 - 0.0004 * math.sin(dr * 3 * mpr)
    c1 = c1 + 0.0104 * math.sin(dr * 2 * f) - 0.0051 * math.sin(dr * (m + mpr))
    c1 = c1 - 0.0074 * math.sin(dr * (m - mpr)) + 0.0004 * math.sin(dr * (2 * f + m))
    c1 = c1 - 0.0004 * math.sin(dr * (2 * f - m)) - 0.0006 * math.sin(dr * (2 * f + mpr))
    c1 = c1 + 0.0010 * math.sin(dr * (2 * f - mpr)) + 0.0005 * math.sin(dr * (2 * mpr + m))
    if t < -11:
        deltat = 0.001 + 0.000839 * t + 0.0002261 * t2 - 0.00000845 * t3 - 0.000000081 * t * t3
    else:
        deltat = -0.000278 + 0.000265 * t + 0.000262 * t2
    return jd1 + c1 - deltat


def _new_moon_day(k: int, tz: float) -> int:
    return math.floor(_new_moon(k) + 0.5 + tz / 24)


def _sun_longitude_sector(jdn: int, tz: float) -> int:
    """Which of the 12 30-degree sectors the sun is in at local midnight of ``jdn`` (0..11)."""
    t = (jdn - 2451545.5 - tz / 24) / 36525
    t2 = t * t
    dr = math.pi / 180
    m = 357.52910 + 35999.05030 * t - 0.0001559 * t2 - 0.00000048 * t * t2
    l0 = 280.46645 + 36000.76983 * t + 0.0003032 * t2
    dl = (1.914600 - 0.004817 * t - 0.000014 * t2) * math.sin(dr * m)
    dl += (0.019993 - 0.000101 * t) * math.sin(dr * 2 * m) + 0.000290 * math.sin(dr * 3 * m)
    longitude = (l0 + dl) * dr
    longitude -= math.pi * 2 * math.floor(longitude / (math.pi * 2))
    return math.floor(longitude / math.pi * 6)


def _lunar_month_11(year: int, tz: float) -> int:
    """Day number of the start of the lunar month containing the winter solstice of ``year``."""
    off = julian_day(date(year, 12, 31)) - 2415021
    k = math.floor(off / 29.530588853)
    nm = _new_moon_day(k, tz)
    if _sun_longitude_sector(nm, tz) >= 9:
        nm = _new_moon_day(k - 1, tz)
    return nm


def _leap_month_offset(a11: int, tz: float) -> int:
    k = math.floor((a11 - 2415021.076998695) / 29.530588853 + 0.5)
    i = 1
    arc = _sun_longitude_sector(_new_moon_day(k + i, tz), tz)
    while True:
        last = arc
        i += 1
        arc = _sun_longitude_sector(_new_moon_day(k + i, tz), tz)
        if arc == last or i >= 14:
            return i - 1


def lunar_to_solar(day: int, month: int, year: int, *, leap: bool = False, tz: float = VN_TZ_HOURS) -> date:
    """The Gregorian date of lunar ``day/month/year`` (``leap`` for the intercalary month)."""
    if not (1 <= day <= 30 and 1 <= month <= 12):
        raise ValueError(f"no lunar date {day}/{month}")
    if month < 11:
        a11, b11 = _lunar_month_11(year - 1, tz), _lunar_month_11(year, tz)
    else:
        a11, b11 = _lunar_month_11(year, tz), _lunar_month_11(year + 1, tz)
    k = math.floor(0.5 + (a11 - 2415021.076998695) / 29.530588853)
    off = month - 11
    if off < 0:
        off += 12
    if b11 - a11 > 365:
        leap_off = _leap_month_offset(a11, tz)
        leap_month = (leap_off - 2) % 12
        if leap and month != leap_month:
            raise ValueError(f"lunar year {year} has no leap month {month}")
        if leap or off >= leap_off:
            off += 1
    elif leap:
        raise ValueError(f"lunar year {year} has no leap month")
    month_start = _new_moon_day(k + off, tz)
    return from_julian_day(month_start + day - 1)


def solar_to_lunar(day: date, tz: float = VN_TZ_HOURS) -> tuple[int, int, int, bool]:
    """(lunar day, month, year, is leap month) of a Gregorian date."""
    jdn = julian_day(day)
    k = math.floor((jdn - 2415021.076998695) / 29.530588853)
    month_start = _new_moon_day(k + 1, tz)
    if month_start > jdn:
        month_start = _new_moon_day(k, tz)
    a11 = _lunar_month_11(day.year, tz)
    b11 = a11
    if a11 >= month_start:
        year = day.year
        a11 = _lunar_month_11(day.year - 1, tz)
    else:
        year = day.year + 1
        b11 = _lunar_month_11(day.year + 1, tz)
    lunar_day = jdn - month_start + 1
    diff = (month_start - a11) // 29
    leap = False
    month = diff + 11
    if b11 - a11 > 365:
        leap_diff = _leap_month_offset(a11, tz)
        if diff >= leap_diff:
            month = diff + 10
            if diff == leap_diff:
                leap = True
    if month > 12:
        month -= 12
    if month >= 11 and diff < 4:
        year -= 1
    return lunar_day, month, year, leap


def tet(year: int) -> date:
    """Mùng 1 Tết (lunar new year's day) that falls in Gregorian ``year``."""
    return lunar_to_solar(1, 1, year)
