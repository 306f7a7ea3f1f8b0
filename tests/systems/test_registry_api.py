"""Registry, host links, CSV export, re-determination, documents, plan tracking, calendar endpoint."""

from __future__ import annotations

import hashlib
from pathlib import Path

from collector.config import EnrichSettings
from collector.pipeline.systems import StaticSystemResolver
from collector.store.sqlite import SqliteEventStore
from soc_api.systems.services.documents import blob_path
from soc_common.ecs import new_event, put
from tests.helpers.api_world import Api
from tests.systems.helpers import PDF, create_system, system_body, upload


def test_state_secret_systems_refuse_host_links(api: Api) -> None:
    c, h = api.client, api.headers
    system = create_system(api, system_id="mat-hn", information_types=["state_secret"])
    assert system["state_secret"] and "never ingests" in system["state_secret_note"]
    r = c.post("/api/v1/systems/mat-hn/hosts", json={"host_name": "pc-mat-01"}, headers=h("officer_hn"))
    assert r.status_code == 409 and r.json()["type"].endswith(":state-secret")
    assert "never ingests" in r.json()["detail"]
    # A system with hosts cannot be turned into a state-secret system without unlinking them.
    create_system(api, system_id="web-hn")
    assert (
        c.post("/api/v1/systems/web-hn/hosts", json={"host_name": "WEB-01"}, headers=h("officer_hn")).status_code == 201
    )
    facts = {"facts": {"information_types": ["state_secret"]}}
    r = c.patch("/api/v1/systems/web-hn", json=facts, headers=h("officer_hn"))
    assert r.status_code == 409 and r.json()["type"].endswith(":state-secret")


def test_hosts_and_csv_export_feed_the_collector(api: Api, tmp_path: Path) -> None:
    c, h = api.client, api.headers
    create_system(api)
    create_system(api, system_id="mat-hn", information_types=["state_secret"])
    for body in ({"host_name": "SRV-QLVB-01", "agent_id": "a1", "ip": "10.20.0.5"}, {"host_name": "srv-qlvb-02"}):
        assert c.post("/api/v1/systems/qlvb-hn/hosts", json=body, headers=h("officer_hn")).status_code == 201
    # One system per host: the same name (any case) or agent cannot join a second system.
    create_system(api, system_id="other-hn")
    assert (
        c.patch("/api/v1/systems/other-hn", json={"cidrs": ["10.99.0.0/16"]}, headers=h("officer_hn")).status_code
        == 200
    )
    r = c.post("/api/v1/systems/other-hn/hosts", json={"host_name": "srv-qlvb-01"}, headers=h("officer_hn"))
    assert r.status_code == 409
    assert c.post("/api/v1/systems/other-hn/hosts", json={"agent_id": "a1"}, headers=h("officer_hn")).status_code == 409
    assert (
        c.post("/api/v1/systems/other-hn/hosts", json={"ip": "999.1.1.1"}, headers=h("officer_hn")).status_code == 422
    )
    r = c.get("/api/v1/systems/hosts.csv", headers=h("auditor"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.splitlines()
    assert lines[0] == "system_id,asset"
    assert "qlvb-hn,srv-qlvb-01" in lines and "qlvb-hn,10.20.0.5" in lines and "qlvb-hn,10.10.0.0/24" in lines
    assert not any(line.startswith("mat-hn") for line in lines)
    path = tmp_path / "systems.csv"
    path.write_text(r.text, encoding="utf-8")
    resolver = StaticSystemResolver(EnrichSettings(systems_file=path))
    assert resolver.resolve(["srv-qlvb-02"], []) == "qlvb-hn"
    assert resolver.resolve([], ["10.10.0.77"]) == "qlvb-hn"
    assert resolver.resolve(["unknown"], ["192.0.2.1"]) is None
    # Site scoping: another province sees none of it.
    assert c.get("/api/v1/systems/hosts.csv", headers=h("officer_hcm")).text.strip() == "system_id,asset"
    assert c.get("/api/v1/systems/qlvb-hn", headers=h("officer_hcm")).status_code == 404
    host_id = c.get("/api/v1/systems/qlvb-hn", headers=h("officer_hn")).json()["hosts"][1]["id"]
    assert c.delete(f"/api/v1/systems/qlvb-hn/hosts/{host_id}", headers=h("auditor")).status_code == 403
    assert c.delete(f"/api/v1/systems/qlvb-hn/hosts/{host_id}", headers=h("officer_hn")).status_code == 204


def test_level_fact_change_flags_the_approved_level_for_review(api: Api) -> None:
    c, h = api.client, api.headers
    create_system(api)
    with api.state.sessions.begin() as s:  # an approval made earlier (legacy import)
        from soc_api.systems.models import InformationSystem

        row = s.get(InformationSystem, "qlvb-hn")
        assert row is not None
        row.approved_level = 3
    etag = c.get("/api/v1/systems/qlvb-hn", headers=h("officer_hn")).headers["ETag"]
    r = c.patch("/api/v1/systems/qlvb-hn", json={"name": "QLVB"}, headers={**h("officer_hn"), "If-Match": etag})
    assert r.status_code == 200 and r.json()["level_review_required"] is False
    assert (
        c.patch(
            "/api/v1/systems/qlvb-hn", json={"name": "x"}, headers={**h("officer_hn"), "If-Match": etag}
        ).status_code
        == 412
    )
    facts = {
        "information_types": ["private", "personal"],
        "handles_admin_procedures": True,
        "system_type": "public_service",
        "personal_data_basic_subjects": 250_000,
    }
    r = c.patch("/api/v1/systems/qlvb-hn", json={"facts": facts}, headers=h("officer_hn"))
    assert r.status_code == 200
    body = r.json()
    assert body["level_review_required"] is True
    assert {"system_type changed", "personal_data_basic_subjects changed"} <= set(body["level_review_reasons"])
    det = c.get("/api/v1/systems/qlvb-hn/determination", headers=h("auditor")).json()
    assert det["level"] == 3 and {d["criterion_id"] for d in det["drivers"]} == {
        "l3-administrative-procedures",
        "l3-personal-data-large",
    }
    assert det["risk_assessment"]["required"] and not det["risk_assessment_recorded"]
    legacy = c.get(
        "/api/v1/systems/qlvb-hn/determination", params={"profile": "legacy-85-2016"}, headers=h("auditor")
    ).json()
    assert legacy["profile"] == "legacy-85-2016" and not legacy["risk_assessment"]["required"]
    # A risk assessment above the approved level also flags it (NĐ 331 Art 10.5).
    body2 = {"trigger": "serious-incident", "assessed_on": "2026-10-01", "assessed_level": 4, "content": {"a": "x"}}
    r = c.post("/api/v1/systems/qlvb-hn/risk-assessments", json=body2, headers=h("officer_hn"))
    assert r.status_code == 201 and "g" in r.json()["missing_content"]
    assert c.get("/api/v1/systems/qlvb-hn", headers=h("auditor")).json()["proposed_level"] == 4
    bad = {**body2, "trigger": "whim"}
    assert c.post("/api/v1/systems/qlvb-hn/risk-assessments", json=bad, headers=h("officer_hn")).status_code == 422


def test_what_if_determination_and_validation(api: Api) -> None:
    c, h = api.client, api.headers
    r = c.post("/api/v1/systems/determine", json={"facts": {"central_national_data": True}}, headers=h("auditor"))
    assert r.status_code == 200 and r.json()["level"] == 5
    r = c.post("/api/v1/systems/determine", json={"facts": {"bogus": 1}}, headers=h("auditor"))
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    bad_cidr = {**system_body(), "cidrs": ["10.0.0.0/33"]}
    assert c.post("/api/v1/systems", json=bad_cidr, headers=h("officer_hn")).status_code == 422
    assert c.get("/api/v1/systems").status_code == 401
    assert c.post("/api/v1/systems", json=bad_cidr | {"cidrs": []}, headers=h("auditor")).status_code == 403


def test_document_checks_versions_and_integrity(api: Api) -> None:
    c, h = api.client, api.headers
    create_system(api)
    did = c.post("/api/v1/systems/qlvb-hn/dossiers", json={}, headers=h("officer_hn")).json()["id"]
    assert upload(api, did, "overview", content_type="application/x-msdownload").status_code == 415
    r = upload(api, did, "overview", data=b"MZ\x90\x00 not a pdf")
    assert r.status_code == 415 and r.json()["type"].endswith(":content-mismatch")
    assert upload(api, did, "no-such-part").status_code == 422
    assert upload(api, did, "overview", data=b"").status_code == 422
    assert upload(api, did, "overview", user="auditor").status_code == 403
    first = upload(api, did, "overview", filename="../../etc/passwd.pdf").json()
    assert first["filename"] == "passwd.pdf" and first["version"] == 1
    second = upload(api, did, "overview", data=PDF + b"%v2\n").json()
    assert second["version"] == 2 and second["sha256"] != first["sha256"]
    parts = {p["id"]: p for p in c.get(f"/api/v1/dossiers/{did}", headers=h("auditor")).json()["parts"]}
    assert [d["version"] for d in parts["overview"]["documents"]] == [1, 2]
    r = c.get(f"/api/v1/dossiers/{did}/documents/{first['id']}/content", headers=h("auditor"))
    assert r.status_code == 200 and r.content == PDF
    assert r.headers["x-content-sha256"] == hashlib.sha256(PDF).hexdigest()
    # A file changed on disk is reported, never served.
    from soc_api.systems.services.context import Ctx
    from soc_api.systems.settings import SystemsSettings

    ctx = Ctx(principal=None, source_ip=None, settings=SystemsSettings(), data_dir=api.state.config.data_dir)  # type: ignore[arg-type]
    blob_path(ctx, first["sha256"]).write_bytes(PDF + b"tampered")
    r = c.get(f"/api/v1/dossiers/{did}/documents/{first['id']}/content", headers=h("auditor"))
    assert r.status_code == 500 and r.json()["type"].endswith(":integrity")


def test_plan_checklist_with_observed_controls(api: Api) -> None:
    c, h = api.client, api.headers
    create_system(api)
    for name in ("srv-a", "srv-b", "srv-c"):
        assert (
            c.post("/api/v1/systems/qlvb-hn/hosts", json={"host_name": name}, headers=h("officer_hn")).status_code
            == 201
        )
    store = api.state.store
    assert isinstance(store, SqliteEventStore)
    events = []
    for name, enabled in (("srv-a", True), ("srv-b", False)):
        event = new_event(kind="state", dataset="soc.inventory", module="soc")
        put(event, "host.name", name)
        put(event, "soc.inventory.protection", {"product": "ClamAV", "enabled": enabled, "running": enabled})
        events.append(event)
    assert store.write(events).stored == 2
    store.refresh()
    r = c.get("/api/v1/systems/qlvb-hn/plan", headers=h("auditor"))
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["level"] == 3 and plan["state"] == "not_started" and len(plan["plan_parts"]) == 7
    items = {i["group_id"]: i for i in plan["items"]}
    assert {"m-ops-monitoring", "m-ops-endpoints", "t-data"} <= set(items)
    assert sum(1 for i in items.values() if i["kind"] == "technical") == 4
    endpoints = items["m-ops-endpoints"]["observed"]
    assert endpoints["status"] == "gap" and endpoints["data"]["silent"] == ["srv-c"]
    protection = items["m-ops-malware"]["observed"]
    assert protection["status"] == "gap" and protection["data"]["unprotected"] == ["srv-b"]
    retention = items["t-servers"]["observed"]
    assert retention["status"] == "gap" and retention["data"] == {"retention_days": 60, "required_days": 90}
    assert items["m-ops-monitoring"]["observed"]["status"] == "gap"
    patch = {"state": "full", "target_date": "2026-12-31", "evidence": [{"title": "QĐ 12", "url": "doc://12"}]}
    r = c.patch("/api/v1/systems/qlvb-hn/plan/m-policy", json=patch, headers={**h("officer_hn"), "If-Match": '"v9"'})
    assert r.status_code == 412
    r = c.patch("/api/v1/systems/qlvb-hn/plan/m-policy", json=patch, headers=h("officer_hn"))
    assert r.status_code == 200 and r.json()["state"] == "full"
    assert c.patch("/api/v1/systems/qlvb-hn/plan/m-policy", json=patch, headers=h("auditor")).status_code == 403
    assert c.get("/api/v1/systems/qlvb-hn", headers=h("auditor")).json()["plan_state"] == "partial"


def test_working_days_endpoint_and_openapi(api: Api) -> None:
    c, h = api.client, api.headers
    r = c.get("/api/v1/calendar/working-days", params={"start": "2026-02-12", "days": 15}, headers=h("auditor"))
    assert r.status_code == 200
    body = r.json()
    assert body["due_date"] == "2026-03-12"
    assert "2026-02-17" in {d["date"] for d in body["holidays"]}
    r = c.get(
        "/api/v1/calendar/working-days", params={"start": "2026-02-12", "end": "2026-03-12"}, headers=h("auditor")
    )
    assert r.json()["working_days_between"] == 15
    assert (
        c.get(
            "/api/v1/calendar/working-days", params={"start": "2026-02-12", "days": -1}, headers=h("auditor")
        ).status_code
        == 422
    )
    paths = c.get("/openapi.json").json()["paths"]
    assert {"/api/v1/systems", "/api/v1/dossiers/{dossier_id}/approve", "/api/v1/calendar/working-days"} <= set(paths)
