"""The ``[systems]`` configuration section (to be added to ``ApiConfig`` as ``systems``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from soc_common.config import Section

DEFAULT_CONTENT_TYPES = [
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/zip",
    "image/png",
    "image/jpeg",
    "text/plain",
]


class SystemsSettings(Section):
    profile: str = "current"  # rule profile for new determinations (soc_api/profiles/<id>.yaml)
    profiles_dir: Path | None = None  # another folder of profile files (default: the packaged ones)
    calendar_file: Path | None = None  # another holiday calendar (default: profiles/calendar-vn.yaml)
    max_document_bytes: int = Field(default=20 * 1_048_576, ge=1024, le=1024 * 1_048_576)
    allowed_content_types: list[str] = Field(default_factory=lambda: list(DEFAULT_CONTENT_TYPES))
    # Law 116 Art 40.1.b: monitoring connected to the MPS national/provincial centre. No interface
    # is specified yet, so this is declared by the operator until the hand-over reports it.
    monitoring_connected: bool = False
    collector_registry: Path | None = None  # collector state.db, read for agents' last_seen
    agent_stale_hours: float = Field(default=24.0, gt=0, le=24 * 90)
