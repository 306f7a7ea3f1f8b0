"""Fixtures: the real app (SQLite; PostgreSQL too when marked) with users of every role, alerts,
an organisation tree, one information system with a dossier, and an embedded event store."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from soc_api.app import create_app
from soc_api.config import ApiConfig
from soc_api.services.alert_sink import DatabaseAlertSink
from soc_api.state import AppState

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.helpers.alerts import make_alert  # noqa: E402
from tests.helpers.api_world import Api, seed_people  # noqa: E402
from tests.helpers.db_fixtures import db_url  # noqa: E402
from tests.web.web_world import Web  # noqa: E402

__all__ = ["db_url", "web"]
ORGS = [
    {"code": "tu-hn", "name": "Tỉnh ủy Hà Nội", "kind": "agency", "site": "hn"},
    {"code": "vp-tu-hn", "name": "Văn phòng Tỉnh ủy Hà Nội", "kind": "agency", "site": "hn"},
    {"code": "cntt-hn", "name": "Phòng CNTT - Cơ yếu", "kind": "dedicated_unit", "site": "hn"},
    {"code": "hd-hn", "name": "Hội đồng thẩm định độc lập", "kind": "independent_council", "site": "hn"},
]
SYSTEM = {
    "id": "qlvb-hn",
    "name": "Hệ thống quản lý văn bản và điều hành",
    "site": "hn",
    "owner_org": "tu-hn",
    "operator_org": "vp-tu-hn",
    "security_unit_org": "cntt-hn",
    "council_org": "hd-hn",
    "facts": {"information_types": ["private"], "handles_admin_procedures": True},
}


def make_config(db_url: str, tmp_path: Path) -> ApiConfig:
    return ApiConfig.model_validate(
        {
            "data_dir": str(tmp_path / "api"),
            "database": {"url": db_url},
            "security": {"session_secret": "w" * 48},
            "store": {"kind": "sqlite", "sqlite_path": str(tmp_path / "events.db"), "retention_days": 3650},
        }
    )


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Web]:
    app = create_app(make_config(db_url, tmp_path))
    state: AppState = app.state.soc
    api = Api(client=TestClient(app, base_url="https://testserver"), state=state)
    seed_people(api)
    sink = DatabaseAlertSink(state.sessions)
    hn = make_alert(1, site="hn", host_name="pc-hn")
    hcm = make_alert(2, site="hcm", host_name="pc-hcm", techniques=["T1059.001"], severity="critical")
    sink.emit([hn, hcm])
    api.alert_ids = {"hn": hn.id, "hcm": hcm.id}
    with api.client as c:
        for org in ORGS:
            assert c.post("/api/v1/organisations", json=org, headers=api.headers("admin")).status_code == 201
        member = {"username": "approver_hn"}
        assert (
            c.post("/api/v1/organisations/cntt-hn/members", json=member, headers=api.headers("admin")).status_code
            == 200
        )
        assert c.post("/api/v1/systems", json=SYSTEM, headers=api.headers("officer_hn")).status_code == 201
        r = c.post("/api/v1/systems/qlvb-hn/dossiers", json={}, headers=api.headers("officer_hn"))
        assert r.status_code == 201, r.text
        c.cookies.clear()
        yield Web(api, r.json()["id"])
