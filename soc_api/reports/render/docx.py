"""DOCX rendering with python-docx (Word's built-in fonts cover Vietnamese)."""

from __future__ import annotations

import io

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt

from soc_api.reports.document import Report
from soc_api.reports.formatting import vn_cell

FONT = "Times New Roman"  # the font of Vietnamese administrative documents (NĐ 30/2020)


def render_docx(report: Report) -> bytes:
    doc = Document()
    style = doc.styles["Normal"]
    style.font.name = FONT
    style.font.size = Pt(11)
    if report.landscape:
        sect = doc.sections[0]
        sect.orientation = WD_ORIENT.LANDSCAPE
        sect.page_width, sect.page_height = sect.page_height, sect.page_width
    title = doc.add_paragraph()
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = title.add_run(report.title)
    run.bold = True
    run.font.size = Pt(14)
    for line in report.subtitle:
        p = doc.add_paragraph(line)
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    for section in report.sections:
        doc.add_heading(section.heading, level=2)
        for text in section.paragraphs:
            doc.add_paragraph(text)
        if section.table is not None:
            table = doc.add_table(rows=1, cols=len(section.table.header))
            table.style = "Table Grid"
            for cell, text in zip(table.rows[0].cells, section.table.header, strict=True):
                cell.text = text
                for r in cell.paragraphs[0].runs:
                    r.bold = True
            for row in section.table.rows:
                cells = table.add_row().cells
                for cell, value in zip(cells, row, strict=True):
                    cell.text = vn_cell(value)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()
