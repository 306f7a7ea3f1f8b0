"""Login, lock-out, TOTP, token expiry and revocation, API keys; errors are problem+json."""

from __future__ import annotations

import time
from datetime import timedelta

import pyotp
from sqlalchemy import select

from soc_api.db.models import ApiKey
from soc_api.services.auth import create_api_key
from tests.helpers.api_world import PASSWORD, Api

PROBLEM = "application/problem+json"


def _login(api: Api, username: str, password: str = PASSWORD, totp: str | None = None):  # type: ignore[no-untyped-def]
    body = {"username": username, "password": password}
    if totp is not None:
        body["totp"] = totp
    return api.client.post("/api/v1/auth/login", json=body)


def test_health_needs_no_auth(api: Api) -> None:
    r = api.client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok", "database": "ok"}


def test_login_gives_bearer_token_and_secure_session_cookie(api: Api) -> None:
    r = _login(api, "officer_hn")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["role"] == "officer" and body["token_type"] == "bearer"
    cookies = r.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("soc_session="))
    for attr in ("HttpOnly", "Secure", "SameSite=strict"):
        assert attr.lower() in session_cookie.lower()
    me = api.client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200


def test_wrong_password_is_problem_json_and_locks_out(api: Api) -> None:
    for _ in range(2):
        r = _login(api, "officer_hn", "definitely-wrong-pw")
        assert r.status_code == 401
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["type"].endswith("login-bad-credentials")
    r = _login(api, "officer_hn", "definitely-wrong-pw")  # third failure: threshold 3
    assert r.json()["type"].endswith("login-locked")
    assert _login(api, "officer_hn").json()["type"].endswith("login-locked")
    assert _login(api, "admin").status_code == 200  # other accounts unaffected
    assert _login(api, "nobody").json()["type"].endswith("login-bad-credentials")


def test_totp_enrolment_then_login_needs_code(api: Api) -> None:
    h = api.headers("approver_hn")
    enrol = api.client.post("/api/v1/auth/totp/enrol", headers=h)
    assert enrol.status_code == 200
    totp = pyotp.TOTP(enrol.json()["secret"])
    confirm = api.client.post("/api/v1/auth/totp/confirm", headers=h, json={"code": totp.now()})
    assert confirm.status_code == 200 and len(confirm.json()["recovery_codes"]) == 10
    assert _login(api, "approver_hn").json()["type"].endswith("login-totp-required")
    assert _login(api, "approver_hn", totp="000000" if totp.now() != "000000" else "111111").status_code == 401
    assert _login(api, "approver_hn", totp=totp.now()).status_code == 200


def test_expired_forged_and_revoked_tokens_are_refused(api: Api) -> None:
    uid = api.user_ids["admin"]
    expired, _ = api.state.signer.issue(uid, "access", timedelta(seconds=-1))
    r = api.client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    forged = api.token("admin")[:-3] + "AAA"
    assert api.client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    assert api.client.get("/api/v1/alerts").status_code == 401
    h = api.headers("admin")
    assert api.client.post("/api/v1/auth/logout", headers=h).status_code == 204
    r = api.client.get("/api/v1/alerts", headers=h)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_api_key_scopes_and_site_scope(api: Api) -> None:
    with api.state.sessions.begin() as s:
        reader = create_api_key(s, name="soar", scopes=["alerts:read"], site_scope="hcm").secret
    r = api.client.get("/api/v1/alerts", headers={"X-API-Key": reader})
    assert r.status_code == 200
    assert [a["site"] for a in r.json()["items"]] == ["hcm"]

    def last_used() -> object:
        with api.state.sessions() as s:
            return s.scalar(select(ApiKey.last_used_at).where(ApiKey.name == "soar"))

    deadline = time.monotonic() + 10  # recorded off the request path, shortly after it
    while last_used() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert last_used() is not None
    r = api.client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {reader}"})
    assert r.status_code == 200
    alert = api.alert_ids["hcm"]
    r = api.client.post(f"/api/v1/alerts/{alert}/acknowledge", headers={"X-API-Key": reader})
    assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM)
    assert api.client.get("/api/v1/alerts", headers={"X-API-Key": reader + "x"}).status_code == 401


def test_cookie_session_needs_csrf_for_changes(api: Api) -> None:
    assert _login(api, "officer_hn").status_code == 200  # the client keeps the cookies
    alert = api.alert_ids["hn"]
    r = api.client.post(f"/api/v1/alerts/{alert}/acknowledge")
    assert r.status_code == 403 and r.json()["type"].endswith("csrf")
    csrf = api.client.cookies.get("soc_csrf")
    r = api.client.post(f"/api/v1/alerts/{alert}/acknowledge", headers={"X-CSRF-Token": csrf or ""})
    assert r.status_code == 200, r.text


def test_oversized_body_is_refused(api: Api) -> None:
    r = api.client.post("/api/v1/auth/login", content=b"x" * 2_000_000, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.headers["content-type"].startswith(PROBLEM)


def test_validation_errors_are_problem_json(api: Api) -> None:
    r = api.client.post("/api/v1/auth/login", json={"username": "a" * 100, "password": "x"})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["errors"]
