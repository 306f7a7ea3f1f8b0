"""A report as neutral data (title, sections, tables), rendered by each format's renderer.

Builders decide the content once; DOCX, PDF and XLSX only decide the look, so the three files
always carry the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

Cell = str | int | float | date | None


@dataclass
class Table:
    header: list[str]
    rows: list[list[Cell]]
    widths: list[float] | None = None  # relative column widths


@dataclass
class Section:
    heading: str
    paragraphs: list[str] = field(default_factory=list)
    table: Table | None = None


@dataclass
class Report:
    title: str
    subtitle: list[str]
    sections: list[Section]
    file_stem: str
    landscape: bool = True

    def section(self, heading_prefix: str) -> Section:
        return next(s for s in self.sections if s.heading.startswith(heading_prefix))
