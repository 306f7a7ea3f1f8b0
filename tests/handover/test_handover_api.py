"""``/api/v1/handover``: build on demand, outbox status, receipts, permissions."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from soc_api.app import create_app
from soc_api.db.models import ApiKey, Incident
from soc_api.db.session import begin_write
from soc_api.handover.keys import KeyRing
from soc_api.handover.settings import HandoverSettings
from soc_api.state import AppState
from soc_common.ecs import utc_now
from tests.helpers.api_world import make_config

SECRET = "t" * 43


def _key(state: AppState, prefix: str, scopes: list[str]) -> dict[str, str]:
    with state.sessions() as s, s.begin():
        begin_write(s)
        # last_used_at = now: soc_api.deps._touch_api_key writes in a second transaction, which on
        # SQLite waits out the busy timeout behind a POST's own write lock (reported to the lead).
        s.add(
            ApiKey(
                name=prefix,
                prefix=prefix,
                secret_hash=hashlib.sha256(SECRET.encode()).hexdigest(),
                scopes=scopes,
                last_used_at=utc_now(),
            )
        )
    return {"X-API-Key": f"soc_{prefix}_{SECRET}"}


@pytest.fixture
def client(db_url: str, tmp_path: Path, ring: KeyRing) -> Iterator[tuple[TestClient, AppState]]:
    app = create_app(make_config(db_url, tmp_path))
    app.state.handover = HandoverSettings(site="hn", site_name="VP Tỉnh ủy Hà Nội", key_dir=ring.directory)
    state: AppState = app.state.soc
    with TestClient(app, base_url="https://testserver") as c:
        yield c, state


def test_build_list_and_permissions(client: tuple[TestClient, AppState]) -> None:
    c, state = client
    builder = _key(state, "build1", ["handover:build", "handover:read"])
    reader = _key(state, "read1", ["handover:read"])
    with state.sessions() as s, s.begin():
        begin_write(s)
        incident = Incident(title="Tấn công dò mật khẩu", category="intrusion", severity="normal", created_by="officer")
        s.add(incident)
        s.flush()
        incident_id = incident.id
    assert (
        c.post("/api/v1/handover/packages", json={"type": "incident_report", "incident_id": incident_id}).status_code
        == 401
    )
    assert (
        c.post(
            "/api/v1/handover/packages", json={"type": "incident_report", "incident_id": incident_id}, headers=reader
        ).status_code
        == 403
    )
    built = c.post(
        "/api/v1/handover/packages", json={"type": "incident_report", "incident_id": incident_id}, headers=builder
    )
    assert built.status_code == 201, built.text
    assert built.json()["sequence"] == 1 and built.json()["subject"] == f"incident:{incident_id}"
    period = {"start": "2026-01-01T00:00:00Z", "end": "2026-04-01T00:00:00Z"}
    kpi = c.post("/api/v1/handover/packages", json={"type": "kpi_snapshot", "period": period}, headers=builder)
    assert kpi.status_code == 201 and kpi.json()["sequence"] == 2
    assert c.post("/api/v1/handover/packages", json={"type": "kpi_snapshot"}, headers=builder).status_code == 422
    assert (
        c.post(
            "/api/v1/handover/packages", json={"type": "incident_report", "incident_id": 999}, headers=builder
        ).status_code
        == 404
    )
    listing = c.get("/api/v1/handover/outbox", headers=reader).json()
    assert listing["counts"] == {"queued": 2} and [i["sequence"] for i in listing["items"]] == [2, 1]
    assert c.get(f"/api/v1/handover/receipts/{built.json()['package_id']}", headers=reader).status_code == 404
    assert c.post(f"/api/v1/handover/outbox/{built.json()['package_id']}/requeue", headers=builder).status_code == 409
