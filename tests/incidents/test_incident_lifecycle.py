"""Incident lifecycle over HTTP: escalation from alerts, phases, closing rules, ETag/If-Match,
tasks from playbooks, timeline, and the audit chain staying intact."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from soc_api.db.models import AlertRow, AuditEntry
from soc_api.services import audit
from tests.helpers.api_world import Api

PROBLEM = "application/problem+json"


def _escalate(world: Api, user: str = "officer_hn", **extra: Any) -> dict[str, Any]:
    body = {"alert_ids": [world.alert_ids["hn"], world.alert_ids["hn2"]], "category": "malware", **extra}
    r = world.client.post("/api/v1/incidents/escalate", headers=world.headers(user), json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_escalation_links_alerts_systems_hosts_and_starts_them(world: Api) -> None:
    inc = _escalate(world)
    assert sorted(inc["alert_ids"]) == sorted([world.alert_ids["hn"], world.alert_ids["hn2"]])
    assert inc["systems"] == ["sys-hn-q1"] and inc["hosts"] == ["pc-hn", "pc-hn-2"]
    assert inc["site"] == "hn-q1" and inc["status"] == "detected"
    assert inc["detected_at"].startswith("2025-03-01T08:01:00")  # the earliest alert
    assert [t["step_id"] for t in inc["tasks"]][:2] == ["isolate", "preserve"]
    with world.state.sessions() as s:
        statuses = {a.status for a in s.scalars(select(AlertRow).where(AlertRow.site == "hn-q1"))}
        actions = list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)))
        assert audit.verify(s).ok
    assert statuses == {"in_progress"}
    assert actions.count("alert.escalate") == 2 and "incident.create" in actions


def test_escalation_refuses_other_site_and_mixed_sites(world: Api) -> None:
    h = world.headers("officer_hn")
    r = world.client.post("/api/v1/incidents/escalate", headers=h, json={"alert_ids": [world.alert_ids["hcm"]]})
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    mixed = {"alert_ids": [world.alert_ids["hn"], world.alert_ids["hcm"]]}
    r = world.client.post("/api/v1/incidents/escalate", headers=world.headers("admin"), json=mixed)
    assert r.status_code == 422 and r.json()["type"].endswith("other-site")


def test_full_lifecycle_with_lessons_and_reopen(world: Api) -> None:
    inc = _escalate(world)
    base = f"/api/v1/incidents/{inc['id']}"
    h = world.headers("officer_hn")
    for status in ("analysing", "contained", "eradicated", "recovered"):
        r = world.client.post(f"{base}/transition", headers=h, json={"status": status})
        assert r.status_code == 200, r.text
    assert world.client.post(f"{base}/transition", headers=h, json={"status": "contained"}).status_code == 409
    r = world.client.post(f"{base}/transition", headers=h, json={"status": "closed"})
    assert r.status_code == 422 and r.json()["type"].endswith("lessons-required")
    etag = world.client.get(base, headers=h).headers["etag"]
    r = world.client.patch(base, headers={**h, "If-Match": '"v0"'}, json={"lessons_learned": "x"})
    assert r.status_code == 412 and r.json()["type"].endswith("stale")
    r = world.client.patch(base, headers={**h, "If-Match": etag}, json={"lessons_learned": "Cập nhật chữ ký AV"})
    assert r.status_code == 200 and r.headers["etag"] != etag
    r = world.client.post(f"{base}/transition", headers=h, json={"status": "closed"})
    assert r.status_code == 200 and r.json()["closed_at"] is not None
    assert set(r.json()["state_times"]) == {"detected", "analysing", "contained", "eradicated", "recovered", "closed"}
    assert world.client.patch(base, headers=h, json={"title": "late edit"}).status_code == 409
    r = world.client.post(f"{base}/transition", headers=h, json={"status": "analysing", "note": "tái nhiễm"})
    assert r.status_code == 200 and r.json()["closed_at"] is None
    timeline = world.client.get(f"{base}/timeline", headers=h, params={"limit": 3})
    assert timeline.status_code == 200 and len(timeline.json()["items"]) == 3
    rest = world.client.get(f"{base}/timeline", headers=h, params={"cursor": timeline.json()["next_cursor"]})
    actions = [e["action"] for e in timeline.json()["items"] + rest.json()["items"]]
    assert actions[0] == "create" and actions[-1] == "reopen" and actions.count("transition") == 5
    with world.state.sessions() as s:
        assert audit.verify(s).ok
        trail = list(s.scalars(select(AuditEntry).where(AuditEntry.object_type == "incident")))
    assert {e.action for e in trail} >= {"incident.create", "incident.transition", "incident.update", "incident.reopen"}
    assert all(e.actor == "officer_hn" for e in trail)


def test_roles_read_only_and_scope(world: Api) -> None:
    inc = _escalate(world)
    base = f"/api/v1/incidents/{inc['id']}"
    for user in ("approver_hn", "auditor"):
        assert world.client.get(base, headers=world.headers(user)).status_code == 200
        r = world.client.post(f"{base}/transition", headers=world.headers(user), json={"status": "analysing"})
        assert r.status_code == 403
    assert world.client.get(base, headers=world.headers("officer_hcm")).status_code == 404
    lists = world.client.get("/api/v1/incidents", headers=world.headers("officer_hcm")).json()
    assert lists["items"] == []


def test_tasks_tracked_to_done_with_if_match(world: Api) -> None:
    inc = _escalate(world)
    task = inc["tasks"][0]
    url = f"/api/v1/incidents/{inc['id']}/tasks/{task['id']}"
    h = world.headers("officer_hn")
    r = world.client.patch(url, headers={**h, "If-Match": '"v9"'}, json={"status": "done"})
    assert r.status_code == 412
    r = world.client.patch(url, headers={**h, "If-Match": f'"v{task["version"]}"'}, json={"status": "done"})
    assert r.status_code == 200 and r.json()["done_by"] == "officer_hn"
    r = world.client.post(f"/api/v1/incidents/{inc['id']}/tasks", headers=h, json={"title": "Gọi nhà cung cấp"})
    assert r.status_code == 201 and r.json()["playbook"] is None


def test_assignment_checks_role_and_scope(world: Api) -> None:
    inc = _escalate(world)
    url = f"/api/v1/incidents/{inc['id']}/assign"
    h = world.headers("officer_hn")
    assert world.client.post(url, headers=h, json={"assignee": "officer_hcm"}).status_code == 422
    assert world.client.post(url, headers=h, json={"assignee": "auditor"}).status_code == 422
    r = world.client.post(url, headers=h, json={"assignee": "officer_hn"})
    assert r.status_code == 200 and r.json()["assignee"] == "officer_hn"


def test_manual_incident_validation_and_pagination(world: Api) -> None:
    h = world.headers("admin")
    for n in range(5):
        body = {"title": f"Sự cố {n}", "category": "phishing", "site": "hcm", "facts": {"personal_data_subjects": n}}
        assert world.client.post("/api/v1/incidents", headers=h, json=body).status_code == 201
    bad = {"title": "x", "category": "phishing", "site": "hcm", "facts": {"unknown": True}}
    assert world.client.post("/api/v1/incidents", headers=h, json=bad).status_code == 422
    assert world.client.post("/api/v1/incidents", headers=h, json={"title": "x", "category": "nope"}).status_code == 422
    own = {"title": "x", "category": "other", "site": "hcm"}
    assert world.client.post("/api/v1/incidents", headers=world.headers("officer_hn"), json=own).status_code == 403
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = world.client.get("/api/v1/incidents", headers=h, params=params).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == list(range(1, 6)) and len(set(seen)) == 5
    assert world.client.get("/api/v1/incidents", headers=h, params={"cursor": "garbage!"}).status_code == 400
