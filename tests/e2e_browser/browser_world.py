"""What the browser tests share: the seeded site, the password, screenshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "mật-khẩu-đủ-dài-2025"


@dataclass
class Site:
    base: str
    state: Any
    dossier_id: int
    alert_ids: list[str] = field(default_factory=list)


def shot(page: Any, name: str) -> None:
    """A full-page screenshot kept as a test artefact (test-artifacts/ is git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
