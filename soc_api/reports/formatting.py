"""Vietnamese number and date formats: 1.234,5 and dd/mm/yyyy (TCVN conventions in official forms)."""

from __future__ import annotations

from datetime import date, datetime

from soc_api.systems.calendar.holidays import VN_TZ


def vn_number(value: float, decimals: int = 0) -> str:
    """``1234.5`` -> ``"1.234,5"`` (dot groups thousands, comma marks decimals)."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def vn_percent(share: float | None, decimals: int = 1) -> str:
    return "—" if share is None else f"{vn_number(share * 100, decimals)}%"


def vn_date(value: date | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(VN_TZ).date()
    return value.strftime("%d/%m/%Y")


def vn_cell(value: object) -> str:
    """A table cell as text in the document formats (XLSX keeps native numbers and dates)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Có" if value else "Không"
    if isinstance(value, int):
        return vn_number(value)
    if isinstance(value, float):
        return vn_number(value, 1)
    if isinstance(value, date | datetime):
        return vn_date(value)
    return str(value)
