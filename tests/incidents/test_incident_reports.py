"""Report documents (PDF via reportlab + DejaVu, DOCX via python-docx) carry the required fields in
correct Vietnamese, are archived with their SHA-256 and re-verified on download; evidence too."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from docx import Document
from sqlalchemy import select

from soc_api.incidents.models import IncidentEvidence, IncidentReport
from tests.helpers.api_world import Api

REQUIRED_PHRASES = [
    "BÁO CÁO BAN ĐẦU SỰ CỐ AN NINH MẠNG",
    "Đơn vị báo cáo",
    "Cơ quan chủ quản",
    "Thời điểm phát hiện",
    "Loại sự cố: Mã độc",
    "Mức độ (sơ bộ): Nghiêm trọng",
    "Biện pháp đã thực hiện",
    "Cổng thông tin điện tử hn-q1",
    "Nghĩa vụ báo cáo",
]


def _incident(world: Api) -> dict[str, Any]:
    body = {"alert_ids": [world.alert_ids["hn"]], "category": "malware", "title": "Mã độc tống tiền trên máy chủ",
            "description": "Phát hiện tệp bị mã hoá, đuôi .lockbit"}  # fmt: skip
    r = world.client.post("/api/v1/incidents/escalate", headers=world.headers("officer_hn"), json=body)
    assert r.status_code == 201, r.text
    inc = dict(r.json())
    r = world.client.patch(f"/api/v1/incidents/{inc['id']}", headers=world.headers("officer_hn"),
                           json={"facts": {"declared_serious": True}})  # fmt: skip
    assert r.json()["severity"] == "serious"
    return inc


def _generate(world: Api, inc_id: int, fmt: str, user: str = "approver_hn") -> tuple[dict[str, Any], bytes]:
    r = world.client.post(f"/api/v1/incidents/{inc_id}/reports", headers=world.headers(user),
                          json={"kind": "initial", "format": fmt})  # fmt: skip
    assert r.status_code == 201, r.text
    meta = dict(r.json())
    content = world.client.get(f"/api/v1/incidents/{inc_id}/reports/{meta['id']}/content", headers=world.headers(user))
    assert content.status_code == 200
    assert content.headers["x-content-sha256"] == meta["sha256"] == hashlib.sha256(content.content).hexdigest()
    return meta, content.content


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (Debian poppler-utils) not installed")
def test_pdf_report_has_the_required_vietnamese_fields(world: Api, tmp_path: Path) -> None:
    inc = _incident(world)
    meta, pdf = _generate(world, inc["id"], "pdf")
    assert pdf.startswith(b"%PDF-") and meta["filename"].endswith(".pdf")
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    flat = " ".join(text.split())
    missing = [p for p in REQUIRED_PHRASES if p not in flat]
    assert not missing, f"missing in PDF text: {missing}\n{flat[:2000]}"
    assert "Mã độc tống tiền trên máy chủ" in flat


def test_docx_report_has_the_required_vietnamese_fields(world: Api) -> None:
    inc = _incident(world)
    _meta, data = _generate(world, inc["id"], "docx")
    doc = Document(io.BytesIO(data))
    parts = [p.text for p in doc.paragraphs]
    parts += [cell.text for table in doc.tables for row in table.rows for cell in row.cells]
    flat = " ".join(" ".join(parts).split())
    assert not [p for p in REQUIRED_PHRASES if p not in flat]


def test_report_archive_is_verified_and_sending_is_recorded(world: Api) -> None:
    inc = _incident(world)
    meta, _pdf = _generate(world, inc["id"], "docx")
    with world.state.sessions() as s:
        row = s.scalars(select(IncidentReport).where(IncidentReport.id == meta["id"])).one()
        assert row.sha256 == meta["sha256"]
    stored = world.state.config.data_dir / "incidents" / "reports" / meta["sha256"][:2] / meta["sha256"]
    detail = world.client.get(f"/api/v1/incidents/{inc['id']}", headers=world.headers("approver_hn")).json()
    duty = detail["obligations"][0]  # alerts from 2025: the legacy 5-day notice
    r = world.client.post(f"/api/v1/incidents/{inc['id']}/obligations/{duty['id']}/sent",
                          headers={**world.headers("approver_hn"), "If-Match": f'"v{duty["version"]}"'},
                          json={"report_id": meta["id"], "reference": "Công văn 45-CV/VPTU"})  # fmt: skip
    assert r.status_code == 200 and r.json()["report_id"] == meta["id"]
    stored.write_bytes(b"tampered")
    r = world.client.get(f"/api/v1/incidents/{inc['id']}/reports/{meta['id']}/content", headers=world.headers("admin"))
    assert r.status_code == 500 and r.json()["type"].endswith("integrity")
    assert world.client.post(f"/api/v1/incidents/{inc['id']}/reports", headers=world.headers("auditor"),
                             json={"kind": "initial"}).status_code == 403  # fmt: skip
    r = world.client.post(f"/api/v1/incidents/{inc['id']}/reports", headers=world.headers("admin"),
                          json={"kind": "closure"})  # fmt: skip
    assert r.status_code == 409  # not closed yet


def test_evidence_is_hashed_limited_and_verified(world: Api) -> None:
    inc = _incident(world)
    url = f"/api/v1/incidents/{inc['id']}/documents/evidence"
    data = b"\x00\x01pcap-bytes" * 1000
    h = {**world.headers("officer_hn"), "Content-Type": "application/vnd.tcpdump.pcap"}
    r = world.client.put(url, headers=h, params={"filename": "../../bắt gói.pcap", "description": "Lưu lượng C2"},
                         content=data)  # fmt: skip
    assert r.status_code == 201, r.text
    ev = r.json()
    assert ev["sha256"] == hashlib.sha256(data).hexdigest() and ev["size"] == len(data)
    assert "/" not in ev["filename"] and ev["filename"].endswith(".pcap")
    got = world.client.get(
        f"/api/v1/incidents/{inc['id']}/evidence/{ev['id']}/content", headers=world.headers("auditor")
    )
    assert got.status_code == 200 and got.content == data
    assert world.client.put(url, headers=world.headers("approver_hn"), params={"filename": "x"},
                            content=b"x").status_code == 403  # fmt: skip
    assert world.client.put(url, headers=h, params={"filename": "empty"}, content=b"").status_code == 422
    with world.state.sessions() as s:
        assert s.scalar(select(IncidentEvidence.sha256)) == ev["sha256"]
    blob = world.state.config.data_dir / "incidents" / "evidence" / ev["sha256"][:2] / ev["sha256"]
    blob.write_bytes(data[:-1] + b"!")
    bad = world.client.get(f"/api/v1/incidents/{inc['id']}/evidence/{ev['id']}/content", headers=world.headers("admin"))
    assert bad.status_code == 500 and bad.json()["type"].endswith("integrity")
    assert world.client.get(f"/api/v1/incidents/{inc['id']}/evidence/{ev['id']}/content",
                            headers=world.headers("officer_hcm")).status_code == 404  # fmt: skip


def test_evidence_size_limit(db_url: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from soc_api.app import create_app
    from tests.incidents.world import incident_config, seed

    app = create_app(incident_config(db_url, tmp_path, incidents={"max_evidence_bytes": 2048}))
    world = seed(app.state.soc)
    world.client = TestClient(app, base_url="https://testserver")
    with world.client:
        inc = _incident(world)
        url = f"/api/v1/incidents/{inc['id']}/documents/evidence"
        r = world.client.put(url, headers=world.headers("admin"), params={"filename": "big.bin"}, content=b"x" * 4096)
        assert r.status_code == 413 and r.json()["type"].endswith("too-large")
