"""Drills: plan, live drill window marking its participants' alerts as drill (excluded from the KPI),
timeline response times, minutes with SHA-256, improvement actions closed or overdue."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from soc_api.db.models import AlertRow, Incident, IncidentAlert
from soc_api.services.alert_sink import alert_to_row
from soc_common.ecs import utc_now
from tests.helpers.alerts import make_alert
from tests.helpers.api_world import Api
from tests.reports.seed import today_vn

PDF = b"%PDF-1.7\n% bien ban dien tap\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def _post(api: Api, path: str, body: dict[str, Any], user: str = "officer_hn") -> dict[str, Any]:
    r = api.client.post(path, json=body, headers=api.headers(user))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def test_live_drill_marks_alerts_and_measures_response(api: Api) -> None:
    start = utc_now() - timedelta(hours=3)
    with api.state.sessions.begin() as s:
        rows = [
            alert_to_row(make_alert(1, host_name="PC-KT-01", site="hn", timestamp=start + timedelta(minutes=12))),
            alert_to_row(make_alert(2, host_name="pc-kt-02", site="hn", timestamp=start + timedelta(minutes=40))),
            alert_to_row(make_alert(3, host_name="pc-other", site="hn", timestamp=start + timedelta(minutes=20))),
            alert_to_row(make_alert(4, host_name="pc-kt-01", site="hn", timestamp=start - timedelta(hours=2))),
        ]
        s.add_all(rows)
        s.flush()
        incident = Incident(title="Mã độc diễn tập", category="malware", severity="high", created_by="t")
        s.add(incident)
        s.flush()
        s.add(IncidentAlert(incident_id=incident.id, alert_id=rows[1].id))
        ids = [r.id for r in rows]
    year = today_vn().year
    plan = _post(api, "/api/v1/drills/plans", {"site": "hn", "year": year, "title": f"Kế hoạch diễn tập năm {year}"})
    r = api.client.post(
        "/api/v1/drills/plans", json={"site": "hn", "year": year, "title": "x"}, headers=api.headers("officer_hn")
    )
    assert r.status_code == 409
    drill = _post(
        api,
        "/api/v1/drills",
        {
            "site": "hn",
            "plan_id": plan["id"],
            "title": "Ứng cứu mã độc mã hóa dữ liệu",
            "kind": "live",
            "scenario": "Mã độc lây qua thư điện tử, mã hóa ổ đĩa chia sẻ",
            "planned_on": today_vn().isoformat(),
            "participants": [
                {"name": "Nguyễn Văn A", "team": "Đội ứng cứu", "organisation": "Phòng CNTT"},
                {"name": "Trần Thị B", "team": "Đội giám sát"},
            ],
            "participant_hosts": ["PC-KT-01", "pc-kt-02"],
        },
    )
    assert drill["teams"] == ["Đội giám sát", "Đội ứng cứu"]
    for minutes, phase in (
        (0, "start"),
        (15, "detection"),
        (25, "notification"),
        (55, "containment"),
        (120, "recovery"),
    ):
        _post(
            api,
            f"/api/v1/drills/{drill['id']}/timeline",
            {"at": (start + timedelta(minutes=minutes)).isoformat(), "phase": phase},
        )
    r = api.client.patch(
        f"/api/v1/drills/{drill['id']}",
        json={
            "status": "completed",
            "started_at": start.isoformat(),
            "ended_at": (start + timedelta(hours=2)).isoformat(),
            "coordination_findings": "Đội giám sát báo chậm 10 phút",
            "open_gaps": ["Chưa có kênh liên lạc dự phòng"],
            "evaluation": "Đạt",
        },
        headers={**api.headers("officer_hn"), "If-Match": f'"v{drill["version"]}"'},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["alert_ids"] == sorted(ids[:2])
    assert body["response_times"] == {
        "time_to_detect": 15.0,
        "time_to_notify": 10.0,
        "time_to_contain": 40.0,
        "time_to_recover": 120.0,
        "first_drill_alert_after": 12.0,
    }
    assert len(body["incident_ids"]) == 1
    with api.state.sessions() as s:
        flags = {a.id: a.drill for a in s.query(AlertRow).filter(AlertRow.id.in_(ids))}
    assert [flags[i] for i in ids] == [True, True, False, False]
    kpi = api.client.get("/api/v1/kpi", params={"site": "hn"}, headers=api.headers("admin")).json()["total"]
    assert (kpi["alerts_real"], kpi["alerts_drill"]) == (2, 2)
    assert kpi["incidents"]["total"] == 0  # the only incident came from the drill
    assert (kpi["drills_planned"], kpi["drills_done"]["count"]) == (1, 1)
    r = api.client.patch(f"/api/v1/drills/{drill['id']}", json={"status": "running"}, headers=api.headers("officer_hn"))
    assert r.status_code == 409


def test_minutes_and_improvement_actions(api: Api) -> None:
    drill = _post(
        api,
        "/api/v1/drills",
        {"site": "hn", "title": "Diễn tập trên bàn", "kind": "tabletop", "planned_on": today_vn().isoformat()},
    )
    r = api.client.put(
        f"/api/v1/drills/{drill['id']}/minutes",
        params={"filename": "biên bản.pdf"},
        content=PDF,
        headers={**api.headers("officer_hn"), "Content-Type": "application/pdf"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["sha256"] == hashlib.sha256(PDF).hexdigest()
    r = api.client.get(f"/api/v1/drills/{drill['id']}/minutes", headers=api.headers("auditor"))
    assert r.content == PDF and r.headers["x-content-sha256"] == hashlib.sha256(PDF).hexdigest()
    bad = api.client.put(
        f"/api/v1/drills/{drill['id']}/minutes",
        params={"filename": "x.pdf"},
        content=b"MZ\x90\x00 not a pdf",
        headers={**api.headers("officer_hn"), "Content-Type": "application/pdf"},
    )
    assert bad.status_code == 415
    late = _post(
        api,
        f"/api/v1/drills/{drill['id']}/actions",
        {
            "title": "Lập kênh liên lạc dự phòng",
            "owner": "Phòng CNTT",
            "due_date": (today_vn() - timedelta(days=1)).isoformat(),
        },
    )
    ontime = _post(
        api,
        f"/api/v1/drills/{drill['id']}/actions",
        {
            "title": "Cập nhật danh bạ ứng cứu",
            "owner": "Văn phòng",
            "due_date": (today_vn() + timedelta(days=30)).isoformat(),
        },
    )
    assert (late["overdue"], ontime["overdue"]) == (True, False)
    r = api.client.post(
        f"/api/v1/improvement-actions/{ontime['id']}/close",
        json={"closed_on": today_vn().isoformat()},
        headers=api.headers("officer_hn"),
    )
    assert r.status_code == 200
    got = api.client.get(f"/api/v1/drills/{drill['id']}", headers=api.headers("officer_hn")).json()
    assert {a["title"]: (a["overdue"], a["closed_on"] is not None) for a in got["actions"]} == {
        "Lập kênh liên lạc dự phòng": (True, False),
        "Cập nhật danh bạ ứng cứu": (False, True),
    }
    assert api.client.get(f"/api/v1/drills/{drill['id']}", headers=api.headers("officer_hcm")).status_code == 404
