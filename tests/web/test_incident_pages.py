"""Incident pages on the real app and database: escalation from alerts, the board, the incident
record (tasks, evidence with SHA-256, reports, obligations, closing with lessons learned), and
"suppress similar" from an alert."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import date, timedelta

from sqlalchemy import select

from soc_api.db.models import Incident, Suppression
from soc_api.incidents.models import IncidentObligation, IncidentTask
from soc_api.services.alert_sink import DatabaseAlertSink
from tests.helpers.alerts import make_alert
from tests.web.web_world import Web


def _post(web: Web, url: str, data: Mapping[str, str | list[str]], page: str) -> str:
    r = web.client.post(url, data={**data, "csrf_token": web.csrf(page)}, follow_redirects=True)
    assert r.status_code == 200, r.text[:500]
    return r.text


def registered_alert(web: Web) -> str:
    """An alert on the registered system ``qlvb-hn`` (escalation links the alert's system)."""
    alert = make_alert(40, site="hn", host_name="pc-hn", system_id="qlvb-hn")
    DatabaseAlertSink(web.api.state.sessions).emit([alert])
    return alert.id


def _escalate(web: Web) -> tuple[int, str]:
    aid = registered_alert(web)
    r = web.client.post(
        "/incidents/escalate",
        data={"ids": [aid], "back": f"/alerts/{aid}", "csrf_token": web.csrf(f"/alerts/{aid}")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:300]
    match = re.fullmatch(r"/incidents/(\d+)", r.headers["location"])
    assert match, (r.headers["location"], r.headers.get("set-cookie"))
    web.api.alert_ids["escalated"] = aid
    return int(match.group(1)), web.client.get(r.headers["location"]).text


def test_escalate_an_alert_and_work_the_incident_to_closure(web: Web) -> None:
    web.sign_in("officer_hn")
    incident_id, html = _escalate(web)
    assert "Đã mở sự cố." in html and web.api.alert_ids["escalated"][:12] in html
    board = web.client.get("/incidents").text
    detected = board.split('id="column-detected"', 1)[1].split("</section>", 1)[0]
    assert f'href="/incidents/{incident_id}"' in detected
    page = f"/incidents/{incident_id}"

    with web.api.state.sessions() as s:
        task = s.scalars(select(IncidentTask).where(IncidentTask.incident_id == incident_id)).first()
        assert task is not None and task.status == "todo"
        task_id = task.id
    _post(web, f"{page}/tasks/{task_id}", {"status": "done"}, page)
    with web.api.state.sessions() as s:
        done = s.get(IncidentTask, task_id)
        assert done is not None and done.status == "done" and done.done_by == "officer_hn"

    content = "Nhật ký tường lửa 10.0.0.5 -> 203.0.113.9\n".encode()
    r = web.client.post(
        f"{page}/evidence",
        data={"description": "log tường lửa", "csrf_token": web.csrf(page)},
        files={"file": ("tường-lửa.log", content, "text/plain")},
        follow_redirects=True,
    )
    digest = hashlib.sha256(content).hexdigest()
    assert r.status_code == 200 and "Đã tải lên chứng cứ." in r.text and digest in r.text
    link = re.search(rf'href="(/api/v1/incidents/{incident_id}/evidence/\d+/content)"', r.text)
    assert link
    got = web.client.get(link.group(1))
    assert got.status_code == 200 and got.content == content and got.headers["x-content-sha256"] == digest

    html = _post(web, f"{page}/reports", {"kind": "initial", "format": "pdf"}, page)
    assert "Đã tạo báo cáo." in html
    report = re.search(rf'href="(/api/v1/incidents/{incident_id}/reports/\d+/content)"', html)
    assert report
    pdf = web.client.get(report.group(1))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert 'id="obligations"' in html

    html = _post(web, f"{page}/transition", {"status": "closed"}, page)  # no lessons learned: refused
    assert "closing needs the lessons learned" in html
    html = _post(web, f"{page}/transition", {"status": "closed", "lessons_learned": "Cập nhật bản vá kịp thời"}, page)
    assert "Cập nhật bản vá kịp thời" in html
    with web.api.state.sessions() as s:
        row = s.get(Incident, incident_id)
        assert row is not None and row.status == "closed" and row.lessons_learned == "Cập nhật bản vá kịp thời"
    assert "transition" in html and "task_update" in html  # the timeline shows what happened


def test_escalation_rules_csrf_scope_and_permission(web: Web) -> None:
    web.sign_in("officer_hn")
    aid = web.api.alert_ids["hn"]
    r = web.client.post("/incidents/escalate", data={"ids": [aid]})
    assert r.status_code == 403  # no CSRF token
    html = _post(web, "/incidents/escalate", {"ids": [web.api.alert_ids["hcm"]]}, "/alerts")
    assert "Thao tác bị từ chối." in html  # another site's alert is not visible
    html = _post(web, "/incidents/escalate", {"ids": []}, "/alerts")
    assert "Chọn cảnh báo để chuyển thành sự cố." in html
    with web.api.state.sessions() as s:
        assert s.scalars(select(Incident)).first() is None
    web.sign_in("approver_hn")  # may read incidents, not open them
    r = web.client.post("/incidents/escalate", data={"ids": [aid], "csrf_token": web.csrf("/incidents")})
    assert r.status_code == 403
    assert web.client.get("/incidents/999").status_code == 404


def test_board_and_record_in_english_without_inline_code(web: Web) -> None:
    web.sign_in("admin")
    incident_id, _ = _escalate(web)
    for path in ("/incidents?lang=en", f"/incidents/{incident_id}?lang=en"):
        r = web.client.get(path)
        assert r.status_code == 200
        assert "Incidents" in r.text and "Sự cố" not in r.text.split("<main", 1)[1]
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert not re.search(r"<script(?![^>]*\bsrc=)", r.text) and " style=" not in r.text
        assert r.text.count('name="csrf_token"') == r.text.count("<form") - r.text.count('method="get"')


def test_suppress_similar_from_an_alert(web: Web) -> None:
    web.sign_in("admin")
    aid = web.api.alert_ids["hn"]
    page = f"/alerts/{aid}"
    html = web.client.get(page).text
    assert 'data-key="s"' in html and 'data-key="e"' in html
    queue = web.client.get("/alerts").text  # the queue escalates its selected rows with the same endpoint
    assert 'formaction="/incidents/escalate"' in queue and 'data-key="e"' in queue
    default = (date.today() + timedelta(days=30)).isoformat()
    assert f'value="{default}"' in html or f'value="{(date.today() + timedelta(days=31)).isoformat()}"' in html
    html = _post(web, f"{page}/suppress", {"reason": "ngắn", "expires": default, "fields": ["host_name"]}, page)
    assert "Nêu lý do" in html  # too short a reason
    past = (date.today() - timedelta(days=2)).isoformat()
    html = _post(web, f"{page}/suppress", {"reason": "Máy quét lỗ hổng nội bộ", "expires": past}, page)
    assert "expires_at must be in the future" in html
    with web.api.state.sessions() as s:
        assert s.scalars(select(Suppression)).first() is None
    reason = "Máy quét lỗ hổng nội bộ được phép"
    html = _post(
        web, f"{page}/suppress", {"reason": reason, "expires": default, "fields": ["host_name", "bogus"]}, page
    )
    assert "Đã chặn các cảnh báo tương tự." in html
    with web.api.state.sessions() as s:
        rule = s.scalars(select(Suppression)).one()
        assert rule.reason == reason and rule.conditions == {"host_name": "pc-hn"} and rule.created_by == "admin"
        assert rule.rule_id and rule.expires_at is not None
    web.sign_in("approver_hn")
    r = web.client.post(f"{page}/suppress", data={"reason": reason, "expires": default, "csrf_token": web.csrf(page)})
    assert r.status_code == 403


def test_reporting_obligation_marked_sent_then_acknowledged(web: Web) -> None:
    web.sign_in("officer_hn")
    incident_id, _html = _escalate(web)
    page = f"/incidents/{incident_id}"
    with web.api.state.sessions() as s:
        duty = s.scalars(select(IncidentObligation).where(IncidentObligation.incident_id == incident_id)).first()
        assert duty is not None, "an incident always owes at least its initial report"
        duty_id = duty.id
    url = f"{page}/obligations/{duty_id}"
    html = _post(web, f"{url}/acknowledged", {}, page)  # not sent yet: refused by the service
    assert "only a sent report can be acknowledged" in html
    html = _post(web, f"{url}/sent", {"reference": "CV-123"}, page)
    assert "CV-123" in html and f'action="{url}/acknowledged"' in html
    html = _post(web, f"{url}/acknowledged", {}, page)
    assert "Đã ghi nhận xác nhận của nơi nhận." in html
    with web.api.state.sessions() as s:
        done = s.get(IncidentObligation, duty_id)
        assert done is not None and done.state == "acknowledged" and done.acknowledged_at is not None
    web.sign_in("auditor")  # may read the incident, may not record reporting steps
    r = web.client.post(f"{url}/acknowledged", data={"csrf_token": web.csrf(page)})
    assert r.status_code == 403
