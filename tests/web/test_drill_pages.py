"""Drill pages on the real app and database: record a drill, its timeline, findings, improvement
actions and signed minutes; the month calendar; permissions, CSRF and site scope."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import date, datetime

from sqlalchemy import select

from soc_api.assessments.models import ImprovementAction
from soc_api.drills.models import Drill, DrillPlan, DrillTimelineEntry
from soc_api.web.routers.drills import month_of, month_weeks
from tests.web.web_world import Web

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _post(web: Web, url: str, data: Mapping[str, str], page: str) -> str:
    r = web.client.post(url, data={**data, "csrf_token": web.csrf(page)}, follow_redirects=True)
    assert r.status_code == 200, r.text[:500]
    return r.text


def _record(web: Web, title: str = "Diễn tập ứng cứu mã độc", planned_on: str = "2026-11-20") -> int:
    r = web.client.post(
        "/drills",
        data={
            "site": "hn",
            "title": title,
            "kind": "live",
            "planned_on": planned_on,
            "csrf_token": web.csrf("/drills"),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:300]
    match = re.fullmatch(r"/drills/(\d+)", r.headers["location"])
    assert match, r.headers.get("set-cookie")
    return int(match.group(1))


def test_record_a_drill_with_timeline_findings_actions_and_minutes(web: Web) -> None:
    web.sign_in("officer_hn")
    drill_id = _record(web)
    page = f"/drills/{drill_id}"
    html = _post(web, f"{page}/timeline", {"at": "2026-11-20T08:00", "phase": "start", "team": "Đội A"}, page)
    html = _post(
        web, f"{page}/timeline", {"at": "2026-11-20T08:25", "phase": "detection", "note": "SOC phát hiện"}, page
    )
    assert "SOC phát hiện" in html and "Đội A" in html
    with web.api.state.sessions() as s:
        first = s.scalars(select(DrillTimelineEntry).where(DrillTimelineEntry.drill_id == drill_id)).first()
        assert first is not None and first.at.astimezone().utcoffset() is not None
        assert first.at.replace(tzinfo=None) == datetime(2026, 11, 20, 1, 0)  # 08:00 in Hà Nội is 01:00 UTC
    assert "25" in html.split("Thời gian phát hiện (phút)", 1)[1][:60]

    findings = {
        "status": "completed", "started_at": "2026-11-20T08:00", "ended_at": "2026-11-20T11:00",
        "coordination_findings": "Phối hợp giữa các đội chậm", "open_gaps": "Thiếu nhật ký máy chủ\nChưa có quy trình",
        "evaluation": "Đạt yêu cầu",
    }  # fmt: skip
    html = _post(web, f"{page}/record", findings, page)
    assert "Đã hoàn thành" in html and "Phối hợp giữa các đội chậm" in html
    with web.api.state.sessions() as s:
        drill = s.get(Drill, drill_id)
        assert drill is not None and drill.status == "completed"
        assert drill.open_gaps == ["Thiếu nhật ký máy chủ", "Chưa có quy trình"]
    html = _post(web, f"{page}/record", {"status": "running"}, page)  # completed is final
    assert "Thao tác bị từ chối." in html

    html = _post(
        web, f"{page}/actions", {"title": "Bổ sung nhật ký", "owner": "Phòng CNTT", "due_date": "2026-12-31"}, page
    )
    assert "Đã thêm biện pháp khắc phục." in html and "Phòng CNTT" in html and "31/12/2026" in html
    with web.api.state.sessions() as s:
        action = s.scalars(select(ImprovementAction).where(ImprovementAction.source_type == "drill")).one()
        assert action.owner == "Phòng CNTT" and action.source_id == drill_id
    html = _post(web, f"{page}/actions", {"title": "x", "owner": "y", "due_date": "2026-13-45"}, page)
    assert "Hãy kiểm tra lại các giá trị đã nhập." in html

    r = web.client.post(
        f"{page}/minutes", data={"csrf_token": web.csrf(page)},
        files={"file": ("biên-bản.pdf", PDF, "application/pdf")}, follow_redirects=True,
    )  # fmt: skip
    assert r.status_code == 200 and "Đã tải lên biên bản." in r.text and hashlib.sha256(PDF).hexdigest() in r.text
    got = web.client.get(f"/api/v1/drills/{drill_id}/minutes")
    assert got.status_code == 200 and got.content == PDF
    r = web.client.post(
        f"{page}/minutes", data={"csrf_token": web.csrf(page)},
        files={"file": ("x.pdf", b"not a pdf", "application/pdf")}, follow_redirects=True,
    )  # fmt: skip
    assert "Thao tác bị từ chối." in r.text  # the content does not match its type


def test_calendar_list_scope_and_permissions(web: Web) -> None:
    web.sign_in("officer_hn")
    drill_id = _record(web, "Diễn tập tháng mười một", "2026-11-20")
    html = web.client.get("/drills?month=2026-11").text
    cal = html.split('id="drill-calendar"', 1)[1].split("</table>", 1)[0]
    assert f'href="/drills/{drill_id}"' in cal and "<strong>20</strong><br>" in cal
    assert f'href="/drills/{drill_id}"' not in web.client.get("/drills?month=2026-12").text.split("</table>", 1)[0]
    assert web.client.get("/drills?month=rác").status_code == 200  # a malformed month shows this month
    r = web.client.post("/drills", data={"site": "hn", "title": "x", "kind": "live", "planned_on": "2026-11-20"})
    assert r.status_code == 403  # no CSRF token
    html = _post(web, "/drills", {"site": "hcm", "title": "x", "kind": "live", "planned_on": "2026-11-20"}, "/drills")
    assert "Thao tác bị từ chối." in html  # another site
    web.sign_in("officer_hcm")
    assert web.client.get(f"/drills/{drill_id}").status_code == 404
    web.sign_in("approver_hn")  # reads, cannot record
    html = web.client.get(f"/drills/{drill_id}?lang=en").text
    assert "Diễn tập tháng mười một" in html and 'id="timeline-form"' not in html and "Drills" in html
    r = web.client.post(f"/drills/{drill_id}/timeline", data={"at": "2026-11-20T08:00", "phase": "start",
                                                               "csrf_token": web.csrf("/drills")})  # fmt: skip
    assert r.status_code == 403
    for path in ("/drills", f"/drills/{drill_id}"):
        text = web.client.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", text) and " style=" not in text


def test_month_table_is_monday_first_and_marks_days() -> None:
    first = month_of("2026-02", date(2030, 1, 5))
    assert first == date(2026, 2, 1) and month_of("2026-13", date(2030, 1, 5)) == date(2030, 1, 1)
    drill = Drill(planned_on=date(2026, 2, 14), title="t")
    weeks = month_weeks(first, [drill])
    assert all(len(w) == 7 for w in weeks)
    assert weeks[0][6][0] == date(2026, 2, 1) and weeks[0][0] == (None, [])  # 1 Feb 2026 is a Sunday
    days = {day: items for week in weeks for day, items in week if day is not None}
    assert len(days) == 28 and days[date(2026, 2, 14)] == [drill] and days[date(2026, 2, 15)] == []


def test_drill_plan_created_and_a_drill_counted_in_it(web: Web) -> None:
    web.sign_in("officer_hn")
    form = {"site": "hn", "year": "2026", "title": "Kế hoạch diễn tập 2026", "decision_no": "12/QĐ-TU"}
    html = _post(web, "/drills/plans", form, "/drills/plans?year=2026")
    assert "Đã tạo kế hoạch diễn tập." in html and "12/QĐ-TU" in html and "0 / 0" in html
    again = _post(web, "/drills/plans", form, "/drills/plans?year=2026")  # one plan per site and year
    assert "already has a drill plan" in again
    with web.api.state.sessions() as s:
        plan_id = s.scalars(select(DrillPlan.id)).one()
    r = web.client.post("/drills", data={"site": "hn", "title": "Diễn tập theo kế hoạch", "kind": "tabletop",
                                         "planned_on": "2026-11-20", "plan_id": str(plan_id),
                                         "csrf_token": web.csrf("/drills")})  # fmt: skip
    assert r.status_code == 200
    html = web.client.get("/drills/plans?year=2026&lang=en").text
    assert "Diễn tập theo kế hoạch" in html and "0 / 1" in html
    web.sign_in("officer_hcm")  # another site's plan is not shown
    assert "12/QĐ-TU" not in web.client.get("/drills/plans?year=2026").text
    web.sign_in("auditor")  # reads plans, may not create one
    assert "plan-form" not in web.client.get("/drills/plans?year=2026").text
    assert web.client.post("/drills/plans", data={**form, "csrf_token": web.csrf()}).status_code == 403
