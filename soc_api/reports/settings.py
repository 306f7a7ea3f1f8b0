"""The ``[reports]`` configuration section (to be added to ``ApiConfig`` as ``reports``)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import Field

from soc_common.config import Section

DEJAVU_DIR = Path("/usr/share/fonts/truetype/dejavu")


class ReportsSettings(Section):
    reporting_unit: str = "Văn phòng Tỉnh ủy"  # who signs the report
    owner_name: str = "Tỉnh ủy"  # chủ quản
    # A Unicode TTF with full Vietnamese coverage (Debian: fonts-dejavu-core).
    font_regular: Path = Field(default=DEJAVU_DIR / "DejaVuSans.ttf")
    font_bold: Path = Field(default=DEJAVU_DIR / "DejaVuSans-Bold.ttf")
    approve_all_by: date | None = None  # "target date for approving all" (form 08 summary)
