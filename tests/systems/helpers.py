"""Small builders shared by the systems API tests."""

from __future__ import annotations

from typing import Any

from tests.helpers.api_world import Api

PDF = b"%PDF-1.7\n% dossier part\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def system_body(system_id: str = "qlvb-hn", **facts: Any) -> dict[str, Any]:
    return {
        "id": system_id,
        "name": "Hệ thống quản lý văn bản và điều hành",
        "site": "hn",
        "owner_org": "tu-hn",
        "operator_org": "vp-tu-hn",
        "security_unit_org": "cntt-hn",
        "council_org": "hd-hn",
        "facts": {"information_types": ["private"], "handles_admin_procedures": True, **facts},
        "network_zones": ["dmz", "servers"],
        "cidrs": ["10.10.0.0/24"],
        "components": [{"name": "app-01", "kind": "server", "os": "Ubuntu 24.04", "purpose": "application"}],
    }


def create_system(api: Api, user: str = "officer_hn", **kw: Any) -> dict[str, Any]:
    r = api.client.post("/api/v1/systems", json=system_body(**kw), headers=api.headers(user))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def upload(
    api: Api,
    dossier_id: int,
    part: str,
    data: bytes = PDF,
    user: str = "officer_hn",
    content_type: str = "application/pdf",
    filename: str = "part.pdf",
) -> Any:
    return api.client.put(
        f"/api/v1/dossiers/{dossier_id}/documents/{part}",
        params={"filename": filename},
        content=data,
        headers={**api.headers(user), "Content-Type": content_type},
    )


def add_risk_assessment(api: Api, system_id: str, level: int | None = None) -> None:
    body = {
        "trigger": "first-determination",
        "assessed_on": "2026-09-01",
        "assessed_level": level,
        "content": {c: f"mục {c}" for c in "abcdefg"},
    }
    r = api.client.post(f"/api/v1/systems/{system_id}/risk-assessments", json=body, headers=api.headers("officer_hn"))
    assert r.status_code == 201, r.text
    assert r.json()["missing_content"] == []
