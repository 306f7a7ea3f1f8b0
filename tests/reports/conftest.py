"""Fixtures: the real app (SQLite and PostgreSQL) with the systems, assessments, drills, KPI,
reports and notifications routers, configured the way the lead wires the new config sections."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import Field

from soc_api.app import create_app
from soc_api.assessments.settings import ComplianceSettings
from soc_api.config import ApiConfig
from soc_api.db.models import Site, User
from soc_api.kpi.settings import KpiSettings
from soc_api.reminders.settings import RemindersSettings
from soc_api.reports.settings import ReportsSettings
from soc_api.state import AppState
from soc_api.systems.settings import SystemsSettings

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.helpers.api_world import USERS, Api, password_hash  # noqa: E402
from tests.helpers.db_fixtures import db_url  # noqa: E402

__all__ = ["api", "db_url"]

SITES = [("hn", "Tỉnh ủy Hà Nội", None), ("hn-q1", "Huyện ủy Sóc Sơn", "hn"), ("hcm", "Thành ủy TP. HCM", None)]
EMAILS = {"officer_hn": "officer.hn@tinhuy.example", "approver_hn": "approver.hn@tinhuy.example"}


class WiredConfig(ApiConfig):
    """ApiConfig with the sections this area defines, as the lead will add them."""

    systems: SystemsSettings = Field(default_factory=SystemsSettings)
    compliance: ComplianceSettings = Field(default_factory=ComplianceSettings)
    kpi: KpiSettings = Field(default_factory=KpiSettings)
    reports: ReportsSettings = Field(default_factory=ReportsSettings)
    reminders: RemindersSettings = Field(default_factory=lambda: RemindersSettings(enabled=False))


def make_config(db_url: str, tmp_path: Path, **sections: object) -> WiredConfig:
    return WiredConfig.model_validate(
        {
            "data_dir": str(tmp_path / "api"),
            "database": {"url": db_url},
            "security": {"session_secret": "k" * 48, "max_body_bytes": 4 * 1_048_576},
            "store": {"kind": "sqlite", "sqlite_path": str(tmp_path / "events.db"), "retention_days": 60},
            **sections,
        }
    )


@pytest.fixture
def config_sections() -> dict[str, object]:
    return {}


@pytest.fixture
def api(db_url: str, tmp_path: Path, config_sections: dict[str, object]) -> Iterator[Api]:
    app = create_app(make_config(db_url, tmp_path, **config_sections))
    state: AppState = app.state.soc
    out = Api(client=TestClient(app, base_url="https://testserver"), state=state)
    with state.sessions.begin() as s:
        for code, name, parent in SITES:
            s.add(Site(code=code, name=name, parent_code=parent))
            s.flush()
        for name, (role, site) in USERS.items():
            user = User(
                username=name,
                password_hash=password_hash(),
                role=role,
                site_scope=site,
                recovery_codes=[],
                email=EMAILS.get(name),
            )
            s.add(user)
            s.flush()
            out.user_ids[name] = user.id
    with out.client:
        yield out
