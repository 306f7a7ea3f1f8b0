"""What officers, approvers, administrators and auditors do through the pages, end to end on the
real app and database: triage, MFA enrolment, users and keys, the dossier workflow, audit export,
and hunting over the event store."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pyotp
from sqlalchemy import select

from soc_api.db.models import AlertRow, ApiKey, User
from soc_common.ecs import new_event, put
from tests.web.web_world import Web, csrf_of


def _post(web: Web, url: str, data: Mapping[str, str | list[str]], page: str) -> str:
    r = web.client.post(url, data={**data, "csrf_token": web.csrf(page)}, follow_redirects=True)
    assert r.status_code == 200, r.text[:500]
    return r.text


def test_triage_assign_acknowledge_comment_close_with_history(web: Web) -> None:
    web.sign_in("officer_hn")
    aid = web.api.alert_ids["hn"]
    page = f"/alerts/{aid}"
    html = _post(web, f"{page}/action", {"action": "assign_me"}, page)
    assert "Đã lưu." in html and "Đang xử lý" in html
    html = _post(web, f"{page}/action", {"action": "close"}, page)  # no reason: refused, shown, nothing changed
    assert "Thao tác bị từ chối." in html and "close needs a reason" in html
    _post(web, f"{page}/comment", {"body": "Đã xác minh với người dùng"}, page)
    html = _post(web, f"{page}/action", {"action": "close", "reason": "false_positive", "note": "thử nghiệm"}, page)
    assert "Đã đóng" in html and "Cảnh báo nhầm" in html and "Đã xác minh với người dùng" in html
    for action in ("alert.assign", "alert.comment", "alert.close"):
        assert action in html  # the alert's history from the audit trail
    with web.api.state.sessions() as s:
        row = s.get(AlertRow, aid)
        assert row is not None and row.status == "closed" and row.close_reason == "false_positive"
    # another site's alert is invisible, and an approver cannot triage
    assert web.client.get(f"/alerts/{web.api.alert_ids['hcm']}").status_code == 404
    web.sign_in("approver_hn")
    r = web.client.post(f"{page}/action", data={"action": "reopen", "csrf_token": web.csrf(page)})
    assert r.status_code == 403


def test_bulk_acknowledge_reports_what_failed(web: Web) -> None:
    web.sign_in("admin")
    ids = [web.api.alert_ids["hn"], web.api.alert_ids["hcm"]]
    html = _post(web, "/alerts/bulk", {"action": "acknowledge", "ids": ids, "back": "/alerts?status=new"}, "/alerts")
    assert "Đã lưu." in html
    html = _post(web, "/alerts/bulk", {"action": "acknowledge", "ids": [*ids, "nope"]}, "/alerts")
    assert "0 ✓ / 3 ✗" in html  # already acknowledged, and one unknown id


def test_mfa_enrolment_with_qr_code_then_login_needs_the_code(web: Web) -> None:
    web.sign_in("officer_hn")
    html = _post(web, "/account/totp", {}, "/account")
    assert "<svg" in html and 'class="qr"' in html
    secret = html.split('id="totp-secret">', 1)[1].split("<", 1)[0]
    html = _post(
        web,
        "/account/totp/confirm",
        {"code": "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"},
        "/account",
    )
    assert "Sai mã" in html
    html = _post(web, "/account/totp", {}, "/account")
    secret = html.split('id="totp-secret">', 1)[1].split("<", 1)[0]
    html = _post(web, "/account/totp/confirm", {"code": pyotp.TOTP(secret).now()}, "/account")
    assert "Mã khôi phục" in html and html.count("<li><code>") >= 5
    web.client.cookies.clear()
    login = web.client.get("/login")
    form = {"username": "officer_hn", "password": "mật-khẩu-đủ-dài-2025", "csrf_token": csrf_of(login.text)}
    assert web.client.post("/login", data=form, follow_redirects=False).status_code == 401
    r = web.client.post("/login", data={**form, "totp": pyotp.TOTP(secret).now()}, follow_redirects=False)
    assert r.status_code == 303


def test_admin_creates_deactivates_users_and_issues_a_key_once(web: Web) -> None:
    web.sign_in("admin")
    form = {"username": "can_bo_moi", "password": "mật khẩu rất dài 1", "role": "officer", "site_scope": "hn",
            "display_name": "Nguyễn Văn Ấn"}  # fmt: skip
    html = _post(web, "/admin/users", form, "/admin/users")
    assert "Đã tạo người dùng." in html and "Nguyễn Văn Ấn" in html
    with web.api.state.sessions() as s:
        uid = s.scalar(select(User.id).where(User.username == "can_bo_moi"))
    _post(web, f"/admin/users/{uid}/active", {"active": "false"}, "/admin/users")
    with web.api.state.sessions() as s:
        assert s.get(User, uid).is_active is False  # type: ignore[union-attr]
    html = _post(
        web, "/admin/api-keys", {"name": "collector", "scopes": ["systems:read"], "days": "30"}, "/admin/api-keys"
    )
    secret = html.split('class="secret">', 1)[1].split("<", 1)[0]
    assert secret.startswith("soc_")
    assert secret not in web.client.get("/admin/api-keys").text  # shown once only
    r = web.client.get("/api/v1/systems/hosts.csv", headers={"X-API-Key": secret})
    assert r.status_code == 200
    with web.api.state.sessions() as s:
        key_id = s.scalar(select(ApiKey.id).where(ApiKey.name == "collector"))
    _post(web, f"/admin/api-keys/{key_id}/revoke", {}, "/admin/api-keys")
    assert web.client.get("/api/v1/systems/hosts.csv", headers={"X-API-Key": secret}).status_code == 401


def test_audit_search_and_export_for_auditors(web: Web) -> None:
    web.sign_in("officer_hn")
    aid = web.api.alert_ids["hn"]
    _post(web, f"/alerts/{aid}/action", {"action": "acknowledge"}, f"/alerts/{aid}")
    web.sign_in("auditor")
    html = web.client.get("/audit?action=alert.&verify=true").text
    assert "alert.acknowledge" in html and "Chuỗi băm toàn vẹn" in html and "system.create" not in html
    r = web.client.get("/audit/export?format=csv&action=alert.")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert [row["action"] for row in rows] == ["alert.acknowledge"] and rows[0]["object_id"] == aid
    data = json.loads(web.client.get("/audit/export?format=json&actor=officer_hn").text)
    assert {e["actor"] for e in data} == {"officer_hn"} and all(len(e["hash"]) == 64 for e in data)


def test_dossier_upload_submit_and_approval_steps_by_the_right_people(web: Web) -> None:
    did = web.dossier_id
    page = f"/dossiers/{did}"
    web.sign_in("officer_hn")
    html = _post(web, f"{page}/submit", {}, page)
    assert "Thao tác bị từ chối." in html and "parts missing" in html
    pdf = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
    for part in ("overview", "design", "level_justification", "security_plan"):
        r = web.client.post(f"{page}/documents/{part}", data={"csrf_token": web.csrf(page)},
                            files={"file": (f"{part}.pdf", pdf, "application/pdf")})  # fmt: skip
        assert r.status_code == 200 and "Đã tải lên tài liệu." in r.text
    assert "v1 · overview.pdf" in r.text and "SHA-256" in r.text
    risk = {"trigger": "first-determination", "assessed_on": "2026-09-01", "content": {c: c for c in "abcdefg"}}
    assert web.client.post("/api/v1/systems/qlvb-hn/risk-assessments", json=risk,
                           headers=web.api.headers("officer_hn")).status_code == 201  # fmt: skip
    html = _post(web, f"{page}/submit", {}, page)
    assert "Đã trình" in html and "Phòng CNTT - Cơ yếu" in html and "Hạn chót" in html
    web.sign_in("approver_hn")
    html = _post(web, f"{page}/appraise", {"text": "Đủ điều kiện"}, page)
    assert "Đã thẩm định" in html and "Đủ điều kiện" in html and "dossier.appraise" in html


def test_hunting_finds_events_with_a_histogram(web: Web) -> None:
    store = web.api.state.store
    assert store is not None
    now = datetime.now(UTC)
    events = []
    for i in range(5):
        e = new_event(dataset="system.auth", timestamp=now - timedelta(minutes=10 * i))
        put(e, "host.name", "pc-hn" if i < 3 else "pc-hcm")
        put(e, "event.outcome", "failure")
        put(e, "soc.site", "hn" if i < 3 else "hcm")
        events.append(e)
    store.write(events)
    store.refresh()
    web.sign_in("officer_hn")
    html = web.client.get("/hunt?q=event.outcome:failure&range=24h").text
    assert "<strong>3</strong>" in html and "pc-hn" in html and "pc-hcm" not in html  # site scope applies
    assert '<rect class="hits"' in html
    html = web.client.get('/hunt?q=host.name:"unclosed').text
    assert "Không đọc được truy vấn." in html
