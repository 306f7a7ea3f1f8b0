"""Fixtures: the real app (SQLite and PostgreSQL) with the systems router, users of every role,
the organisations that own, operate, appraise and approve, and an embedded event store."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from soc_api.app import create_app
from soc_api.config import ApiConfig
from soc_api.db.models import Site, User
from soc_api.state import AppState

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.helpers.api_world import USERS, Api, password_hash  # noqa: E402
from tests.helpers.db_fixtures import db_url  # noqa: E402

__all__ = ["api", "db_url"]

# Extra users: approvers acting for other authorities than the dedicated unit.
EXTRA_USERS: dict[str, tuple[str, str | None]] = {
    "approver_owner": ("approver", "hn"),
    "approver_mps": ("approver", None),
}
ORGANISATIONS = [
    {"code": "tu-hn", "name": "Tỉnh ủy Hà Nội", "kind": "agency", "site": "hn"},
    {"code": "vp-tu-hn", "name": "Văn phòng Tỉnh ủy Hà Nội", "kind": "agency", "site": "hn"},
    {"code": "cntt-hn", "name": "Phòng CNTT - Cơ yếu", "kind": "dedicated_unit", "site": "hn"},
    {"code": "hd-hn", "name": "Hội đồng thẩm định độc lập", "kind": "independent_council", "site": "hn"},
    {"code": "bca", "name": "Bộ Công an (A05)", "kind": "mps"},
]
MEMBERS = {"cntt-hn": "approver_hn", "tu-hn": "approver_owner", "bca": "approver_mps", "hd-hn": "approver_owner"}


def make_config(db_url: str, tmp_path: Path) -> ApiConfig:
    return ApiConfig.model_validate(
        {
            "data_dir": str(tmp_path / "api"),
            "database": {"url": db_url},
            "security": {"session_secret": "k" * 48, "max_body_bytes": 4 * 1_048_576},
            "store": {"kind": "sqlite", "sqlite_path": str(tmp_path / "events.db"), "retention_days": 60},
        }
    )


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    app = create_app(make_config(db_url, tmp_path))
    state: AppState = app.state.soc
    out = Api(client=TestClient(app, base_url="https://testserver"), state=state)
    with state.sessions.begin() as s:
        s.add_all([Site(code="hn", name="Hà Nội"), Site(code="hcm", name="TP. Hồ Chí Minh")])
        s.flush()
        for name, (role, site) in {**USERS, **EXTRA_USERS}.items():
            user = User(username=name, password_hash=password_hash(), role=role, site_scope=site, recovery_codes=[])
            s.add(user)
            s.flush()
            out.user_ids[name] = user.id
    with out.client:
        for org in ORGANISATIONS:
            r = out.client.post("/api/v1/organisations", json=org, headers=out.headers("admin"))
            assert r.status_code == 201, r.text
        for code, member in MEMBERS.items():
            r = out.client.post(
                f"/api/v1/organisations/{code}/members", json={"username": member}, headers=out.headers("admin")
            )
            assert r.status_code == 200, r.text
        yield out
