"""Who may do what, where, on every incident, user, API-key, suppression and outbox endpoint.

Role x endpoint x own-site/other-site: a missing permission answers 403; an incident outside the
caller's site scope answers 404 (its existence does not leak). Every refusal is problem+json.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.helpers.api_world import Api

READ = {"admin", "officer", "approver", "auditor"}
MANAGE = {"admin", "officer"}
REPORT = {"admin", "officer", "approver"}
# (name, method, path template, json body, allowed roles); {id} an incident, {task}/{duty} its task/duty
INCIDENT_ENDPOINTS: list[tuple[str, str, str, dict[str, Any] | None, set[str]]] = [
    ("detail", "GET", "/api/v1/incidents/{id}", None, READ),
    ("timeline", "GET", "/api/v1/incidents/{id}/timeline", None, READ),
    ("patch", "PATCH", "/api/v1/incidents/{id}", {"description": "cập nhật"}, MANAGE),
    ("transition", "POST", "/api/v1/incidents/{id}/transition", {"status": "analysing"}, MANAGE),
    ("assign", "POST", "/api/v1/incidents/{id}/assign", {"assignee": None}, MANAGE),
    ("note", "POST", "/api/v1/incidents/{id}/notes", {"text": "ghi chú"}, MANAGE),
    ("add task", "POST", "/api/v1/incidents/{id}/tasks", {"title": "việc mới"}, MANAGE),
    ("task", "PATCH", "/api/v1/incidents/{id}/tasks/{task}", {"status": "done"}, MANAGE),
    ("report", "POST", "/api/v1/incidents/{id}/reports", {"kind": "initial", "format": "docx"}, REPORT),
    ("sent", "POST", "/api/v1/incidents/{id}/obligations/{duty}/sent", {}, REPORT),
]
CALLERS = {
    "admin": ("admin", None),
    "officer_hn": ("officer", "hn"),
    "approver_hn": ("approver", "hn"),
    "auditor": ("auditor", None),
}


def _expected(role: str, scope: str | None, target: str, allowed: set[str]) -> int:
    if role not in allowed:
        return 403
    if scope is not None and scope != target:
        return 404
    return 200


def _incident(world: Api, site: str) -> dict[str, Any]:
    body = {"title": "t", "category": "malware", "site": "hn-q1" if site == "hn" else "hcm",
            "detected_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}  # fmt: skip
    r = world.client.post("/api/v1/incidents", headers=world.headers("admin"), json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_incident_endpoints_matrix(world: Api) -> None:
    mismatches: list[str] = []
    for target in ("hn", "hcm"):
        for name, method, path, body, allowed in INCIDENT_ENDPOINTS:
            for username, (role, scope) in CALLERS.items():
                inc = _incident(world, target)  # fresh per case: earlier changes never decide later answers
                url = path.format(id=inc["id"], task=inc["tasks"][0]["id"], duty=inc["obligations"][0]["id"])
                r = world.client.request(method, url, headers=world.headers(username), json=body)
                got = 200 if r.status_code in (200, 201, 204) else r.status_code
                want = _expected(role, scope, target, allowed)
                if got != want:
                    mismatches.append(f"{username} {name} on {target}: got {r.status_code} {r.text[:120]}, want {want}")
                if got != 200:
                    assert r.headers["content-type"].startswith("application/problem+json")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize(
    ("username", "status"), [("admin", 201), ("officer_hn", 201), ("approver_hn", 403), ("auditor", 403)]
)
def test_create_and_escalate_need_manage(world: Api, username: str, status: int) -> None:
    body = {"title": "t", "category": "other", "site": "hn-q1"}
    assert world.client.post("/api/v1/incidents", headers=world.headers(username), json=body).status_code == status
    esc = {"alert_ids": [world.alert_ids["hn"]]}
    assert (
        world.client.post("/api/v1/incidents/escalate", headers=world.headers(username), json=esc).status_code == status
    )


def test_evidence_matrix(world: Api) -> None:
    for target in ("hn", "hcm"):
        inc = _incident(world, target)
        for username, (role, scope) in CALLERS.items():
            url = f"/api/v1/incidents/{inc['id']}/documents/evidence"
            r = world.client.put(url, headers={**world.headers(username), "Content-Type": "text/plain"},
                                 params={"filename": "log.txt"}, content=b"log")  # fmt: skip
            got = 200 if r.status_code == 201 else r.status_code
            assert got == _expected(role, scope, target, MANAGE), (username, target, r.text)


ADMIN_ONLY: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/v1/users", None),
    ("GET", "/api/v1/users/{uid}", None),
    ("PATCH", "/api/v1/users/{uid}", {"display_name": "Nguyễn Văn A"}),
    ("POST", "/api/v1/users/{uid}/reset-mfa", None),
    ("POST", "/api/v1/users/{uid}/unlock", None),
    ("GET", "/api/v1/api-keys", None),
    ("GET", "/api/v1/notifications/outbox", None),
]


@pytest.mark.parametrize("username", ["admin", "officer_hn", "approver_hn", "auditor"])
def test_admin_only_endpoints(world: Api, username: str) -> None:
    uid = world.user_ids["officer_hcm"]
    for method, path, body in ADMIN_ONLY:
        r = world.client.request(method, path.format(uid=uid), headers=world.headers(username), json=body)
        assert r.status_code == (200 if username == "admin" else 403), (method, path, r.text)


@pytest.mark.parametrize(
    ("username", "read", "write"),
    [("admin", 200, 201), ("officer_hn", 200, 201), ("approver_hn", 200, 403), ("auditor", 200, 403)],
)
def test_suppression_roles(world: Api, username: str, read: int, write: int) -> None:
    h = world.headers(username)
    assert world.client.get("/api/v1/suppressions", headers=h).status_code == read
    body = {"rule_id": "rule-bruteforce", "conditions": {"host_name": "pc-1"}, "reason": "máy quét lỗ hổng nội bộ",
            "expires_at": (datetime.now(UTC) + timedelta(days=7)).isoformat()}  # fmt: skip
    assert world.client.post("/api/v1/suppressions", headers=h, json=body).status_code == write


def test_unauthenticated_everywhere(world: Api) -> None:
    for path in ("/api/v1/incidents", "/api/v1/users", "/api/v1/suppressions", "/api/v1/notifications/outbox"):
        r = world.client.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
