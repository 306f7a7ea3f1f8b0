"""PDF rendering with reportlab and a Unicode TTF font (the built-in PDF fonts lack Vietnamese).

A missing font fails with :class:`FontMissing` naming the file and the Debian package, instead of
producing a PDF with empty boxes where the diacritics should be.
"""

from __future__ import annotations

import io
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from soc_api.reports.document import Report
from soc_api.reports.formatting import vn_cell

REGULAR = "SocReport"
BOLD = "SocReport-Bold"


class FontMissing(RuntimeError):
    """The configured Unicode font file is not installed."""


def register_fonts(regular: Path, bold: Path) -> None:
    for name, path in ((REGULAR, regular), (BOLD, bold)):
        if not path.is_file():
            raise FontMissing(
                f"PDF reports need the Unicode font {path} (Vietnamese diacritics); install the Debian "
                "package fonts-dejavu-core or set reports.font_regular / reports.font_bold"
            )
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, str(path)))


def render_pdf(report: Report, regular: Path, bold: Path) -> bytes:
    register_fonts(regular, bold)
    body = ParagraphStyle("body", fontName=REGULAR, fontSize=9, leading=11)
    cell = ParagraphStyle("cell", fontName=REGULAR, fontSize=7, leading=8.5)
    head = ParagraphStyle("head", fontName=BOLD, fontSize=7, leading=8.5)
    title = ParagraphStyle("title", fontName=BOLD, fontSize=13, leading=16, alignment=1)
    centred = ParagraphStyle("centred", parent=body, alignment=1)
    h2 = ParagraphStyle("h2", fontName=BOLD, fontSize=10.5, leading=13, spaceBefore=8, spaceAfter=4)
    size = landscape(A4) if report.landscape else A4
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=size,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=report.title,
        author="SOC",
    )
    flow: list[object] = [Paragraph(escape(report.title), title)]
    flow += [Paragraph(escape(line), centred) for line in report.subtitle]
    for section in report.sections:
        flow.append(Paragraph(escape(section.heading), h2))
        flow += [Paragraph(escape(text), body) for text in section.paragraphs]
        if section.table is None:
            continue
        t = section.table
        widths = t.widths or [1.0] * len(t.header)
        scale = doc.width / sum(widths)
        data = [[Paragraph(escape(h), head) for h in t.header]]
        data += [[Paragraph(escape(vn_cell(v)), cell) for v in row] for row in t.rows]
        table = Table(data, colWidths=[w * scale for w in widths], repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        flow += [Spacer(1, 2 * mm), table]
    doc.build(flow)
    return out.getvalue()
