"""Account administration (MFA reset, unlock, API keys) and suppression CRUD, all audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from soc_api.db.models import AuditEntry, User
from soc_api.services import audit
from tests.helpers.api_world import PASSWORD, Api


def test_user_lifecycle_mfa_reset_and_lockout(world: Api) -> None:
    h = world.headers("admin")
    body = {"username": "canbo.moi", "password": "mật-khẩu-thật-dài-1", "role": "officer", "site_scope": "hn",
            "email": "canbo@tinhuy.example"}  # fmt: skip
    r = world.client.post("/api/v1/users", headers=h, json=body)
    assert r.status_code == 201 and "password" not in r.text
    uid = r.json()["id"]
    assert world.client.post("/api/v1/users", headers=h, json=body).status_code == 409
    assert (
        world.client.post(
            "/api/v1/users", headers=h, json={**body, "username": "x", "site_scope": "nowhere"}
        ).status_code
        == 422
    )
    for _ in range(3):
        world.client.post("/api/v1/auth/login", json={"username": "canbo.moi", "password": "sai-mật-khẩu-123"})
    assert world.client.get(f"/api/v1/users/{uid}", headers=h).json()["locked"] is True
    r = world.client.post("/api/v1/auth/login", json={"username": "canbo.moi", "password": body["password"]})
    assert r.status_code == 401 and r.json()["type"].endswith("login-locked")
    assert world.client.post(f"/api/v1/users/{uid}/unlock", headers=h).json()["locked"] is False
    assert (
        world.client.post(
            "/api/v1/auth/login", json={"username": "canbo.moi", "password": body["password"]}
        ).status_code
        == 200
    )
    with world.state.sessions.begin() as s:
        user = s.get(User, uid)
        assert user is not None
        user.totp_enabled, user.totp_secret_enc = True, "sealed"
    r = world.client.post(f"/api/v1/users/{uid}/reset-mfa", headers=h)
    assert r.status_code == 200 and r.json()["totp_enabled"] is False
    r = world.client.patch(f"/api/v1/users/{uid}", headers=h, json={"is_active": False})
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert (
        world.client.patch(f"/api/v1/users/{world.user_ids['admin']}", headers=h, json={"role": "auditor"}).status_code
        == 409
    )
    assert world.client.post(f"/api/v1/users/{uid}/password", headers=h, json={"password": "short"}).status_code == 422
    with world.state.sessions() as s:
        actions = set(s.scalars(select(AuditEntry.action).where(AuditEntry.object_id == str(uid))))
        assert audit.verify(s).ok
    assert {"user.create", "user.unlock", "user.mfa_reset", "user.update"} <= actions
    assert PASSWORD  # the world's users keep their password


def test_api_keys_issue_use_revoke(world: Api) -> None:
    h = world.headers("admin")
    r = world.client.post(
        "/api/v1/api-keys", headers=h, json={"name": "soar", "scopes": ["incidents:read"], "site_scope": "hcm"}
    )
    assert r.status_code == 201
    key = r.json()
    assert world.client.get("/api/v1/incidents", headers={"X-API-Key": key["secret"]}).status_code == 200
    assert world.client.get("/api/v1/alerts", headers={"X-API-Key": key["secret"]}).status_code == 403
    listed = world.client.get("/api/v1/api-keys", headers=h).json()["items"]
    assert [k["name"] for k in listed] == ["soar"] and "secret" not in listed[0]
    assert world.client.post(f"/api/v1/api-keys/{key['id']}/revoke", headers=h).json()["revoked"] is True
    assert world.client.get("/api/v1/incidents", headers={"X-API-Key": key["secret"]}).status_code == 401
    bad = world.client.post("/api/v1/api-keys", headers=h, json={"name": "x", "scopes": ["root"]})
    assert bad.status_code == 422


def test_suppression_crud_with_expiry_reason_and_if_match(world: Api) -> None:
    h = world.headers("officer_hn")
    soon = datetime.now(UTC) + timedelta(days=7)
    body = {"rule_id": "rule-bruteforce", "conditions": {"host_name": ["pc-1", "pc-2"]},
            "reason": "máy quét lỗ hổng định kỳ", "expires_at": soon.isoformat()}  # fmt: skip
    r = world.client.post("/api/v1/suppressions", headers=h, json=body)
    assert r.status_code == 201, r.text
    sid, tag = r.json()["id"], r.headers["etag"]
    for bad in (
        {**body, "expires_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()},
        {**body, "expires_at": (datetime.now(UTC) + timedelta(days=400)).isoformat()},
        {**body, "reason": ""},
        {k: v for k, v in body.items() if k != "expires_at"},
        {**body, "conditions": {"Bad Field!": "x"}},
    ):
        assert world.client.post("/api/v1/suppressions", headers=h, json=bad).status_code == 422
    url = f"/api/v1/suppressions/{sid}"
    later = (soon + timedelta(days=7)).isoformat()
    assert world.client.patch(url, headers=h, json={"expires_at": later}).status_code == 422  # renewal needs a reason
    assert (
        world.client.patch(url, headers={**h, "If-Match": '"stale"'}, json={"reason": "gia hạn kiểm thử"}).status_code
        == 412
    )
    r = world.client.patch(
        url, headers={**h, "If-Match": tag}, json={"reason": "gia hạn kiểm thử", "expires_at": later}
    )
    assert r.status_code == 200 and r.headers["etag"] != tag
    assert world.client.delete(url, headers={**h, "If-Match": r.headers["etag"]}).status_code == 204
    assert world.client.get(url, headers=h).status_code == 404
    with world.state.sessions() as s:
        actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "suppression")))
    assert actions == ["suppression.create", "suppression.update", "suppression.delete"]
