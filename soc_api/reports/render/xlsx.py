"""XLSX rendering with openpyxl: numbers and dates stay native (sortable, summable) with
Vietnamese display formats."""

from __future__ import annotations

import io
from datetime import date

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from soc_api.reports.document import Report

DATE_FORMAT = "dd/mm/yyyy"
MAX_SHEET_TITLE = 31


def _sheet_title(heading: str, used: set[str]) -> str:
    base = heading.split(".", 1)[0].strip() or "Sheet"
    title = base[:MAX_SHEET_TITLE]
    n = 2
    while title in used:
        title = f"{base[: MAX_SHEET_TITLE - 3]}-{n}"
        n += 1
    used.add(title)
    return title


def render_xlsx(report: Report) -> bytes:
    wb = Workbook()
    first = wb.active
    assert first is not None
    first.title = "Tong quan"
    first["A1"] = report.title
    first["A1"].font = Font(bold=True, size=14)
    for i, line in enumerate(report.subtitle, start=2):
        first.cell(row=i, column=1, value=line)
    used = {first.title}
    for section in report.sections:
        ws = wb.create_sheet(_sheet_title(section.heading, used))
        ws["A1"] = section.heading
        ws["A1"].font = Font(bold=True)
        row = 2
        for text in section.paragraphs:
            ws.cell(row=row, column=1, value=text)
            row += 1
        if section.table is None:
            continue
        row += 1
        for col, text in enumerate(section.table.header, start=1):
            cell = ws.cell(row=row, column=col, value=text)
            cell.font = Font(bold=True)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            ws.column_dimensions[get_column_letter(col)].width = max(12, min(40, len(text) + 4))
        for values in section.table.rows:
            row += 1
            for col, value in enumerate(values, start=1):
                cell = ws.cell(row=row, column=col, value=value)
                if isinstance(value, date):
                    cell.number_format = DATE_FORMAT
                elif isinstance(value, float):
                    cell.number_format = "#,##0.0"
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
