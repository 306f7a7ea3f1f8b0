"""The ``[incidents]`` configuration section (``ApiConfig.incidents``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from soc_api.reports.settings import DEJAVU_DIR
from soc_common.config import Section


class IncidentsSettings(Section):
    # Rule profile for new incidents; unset = chosen by detection time (legacy before Law 116).
    profile: str | None = None
    profiles_dir: Path | None = None  # another folder of incident-*.yaml (default: soc_api/profiles)
    playbooks_dir: Path | None = None  # another folder of playbooks (default: soc_api/incidents/playbooks)
    calendar_file: Path | None = None  # holiday calendar for working-day deadlines (default: packaged)
    # Evidence size limit; the app's upload cap (max of security.max_body_bytes and
    # systems.max_document_bytes) also applies to the request.
    max_evidence_bytes: int = Field(default=20 * 1_048_576, ge=1024, le=1024 * 1_048_576)
    max_alerts_per_incident: int = Field(default=500, ge=1, le=10_000)
    page_size_max: int = Field(default=200, ge=10, le=1000)
    reporting_unit: str = Field(default="Văn phòng Tỉnh ủy", max_length=300)  # who reports
    owner_name: str = Field(default="Tỉnh ủy", max_length=300)  # chủ quản
    contact: str = Field(default="", max_length=500)  # name, title, phone, e-mail of the incident contact
    font_regular: Path = Field(default=DEJAVU_DIR / "DejaVuSans.ttf")
    font_bold: Path = Field(default=DEJAVU_DIR / "DejaVuSans-Bold.ttf")
