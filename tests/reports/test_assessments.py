"""Assessments: next-due dates per level from the obligations file, overdue flags, findings,
remediation actions tracked to closure with If-Match, site scoping and audit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from soc_api.assessments.models import Assessment
from soc_api.assessments.obligations import add_months, load_obligations
from soc_api.assessments.services.schedule import assessed_on_time, schedule_for
from soc_api.systems.models import InformationSystem
from tests.helpers.api_world import Api
from tests.reports.seed import seed_province, today_vn

OBLIGATIONS = load_obligations()


def _system(level: int, approved_on: date, profile: str = "current") -> InformationSystem:
    return InformationSystem(
        id=f"s{level}",
        site="hn",
        approved_level=level,
        approval_decision_date=approved_on,
        profile=profile,
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
    )


def _done(kind: str, on: date, phase: str = "periodic") -> Assessment:
    return Assessment(system_id="x", kind=kind, phase=phase, performed_on=on)


@pytest.mark.parametrize(
    ("level", "kinds"),
    [
        (1, {"compliance": 24, "effectiveness": 24, "vulnerability_scan": 12}),
        (3, {"compliance": 12, "effectiveness": 12, "vulnerability_scan": 6}),
        (4, {"compliance": 12, "effectiveness": 12, "vulnerability_scan": 6, "penetration_test": 12}),
        (5, {"compliance": 6, "effectiveness": 6, "vulnerability_scan": 3, "penetration_test": 6}),
    ],
)
def test_intervals_follow_the_level(level: int, kinds: dict[str, int]) -> None:
    items = schedule_for(_system(level, date(2026, 1, 31)), [], OBLIGATIONS, date(2026, 2, 1), 30)
    assert {i.kind: i.interval_months for i in items} == kinds
    assert {i.kind: i.next_due for i in items} == {k: add_months(date(2026, 1, 31), m) for k, m in kinds.items()}


def test_next_due_counts_from_the_last_scheduled_assessment_and_flags_overdue() -> None:
    system = _system(3, date(2025, 1, 10))
    done = [
        _done("compliance", date(2025, 3, 1), "pre_go_live"),
        _done("compliance", date(2025, 9, 15)),
        _done("compliance", date(2026, 1, 5), "ad_hoc"),  # ad hoc does not reset the cycle
        _done("effectiveness", date(2025, 2, 1)),
    ]
    items = {i.kind: i for i in schedule_for(system, done, OBLIGATIONS, date(2026, 8, 20), 30)}
    assert items["compliance"].next_due == date(2026, 9, 15)
    assert (items["compliance"].overdue, items["compliance"].due_soon) == (False, True)
    assert items["compliance"].pre_go_live_done is True
    assert items["effectiveness"].next_due == date(2026, 2, 1)
    assert items["effectiveness"].overdue is True
    assert items["vulnerability_scan"].next_due == date(2025, 7, 10)  # never done: approval + 6 months
    assert assessed_on_time(list(items.values())) is False


def test_legacy_profile_has_no_scan_cycle_below_level_3() -> None:
    items = schedule_for(_system(2, date(2025, 1, 1), "legacy-85-2016"), [], OBLIGATIONS, date(2025, 2, 1), 30)
    assert {i.kind for i in items} == {"compliance", "effectiveness"}


def test_add_months_clamps_to_month_end() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2027, 12, 31), 2) == date(2028, 2, 29)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)


def _create(api: Api, user: str = "officer_hn", **extra: Any) -> Any:
    body = {
        "system_id": "qlvb",
        "kind": "penetration_test",
        "phase": "periodic",
        "mode": "grey_box",
        "independent": False,
        "assessor_name": "Công ty kiểm định ATTT",
        "performed_on": (today_vn() - timedelta(days=3)).isoformat(),
        "findings": [{"title": "SQL injection ở trang tìm kiếm", "severity": "high"}],
        **extra,
    }
    return api.client.post("/api/v1/assessments", json=body, headers=api.headers(user))


def test_assessment_lifecycle_over_the_api(api: Api) -> None:
    seed_province(api.state)
    assert _create(api, "auditor").status_code == 403
    assert _create(api, "officer_hcm").status_code == 404
    r = _create(api)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["findings"][0]["severity"] == "high"
    finding_id = body["findings"][0]["id"]
    r = api.client.post(
        f"/api/v1/assessments/{body['id']}/actions",
        json={
            "title": "Sửa truy vấn tham số hóa",
            "owner": "Nhà thầu",
            "due_date": "2020-01-01",
            "finding_id": finding_id,
        },
        headers=api.headers("officer_hn"),
    )
    assert r.status_code == 201, r.text
    action = r.json()
    assert action["overdue"] is True
    r = api.client.get("/api/v1/improvement-actions", params={"overdue": True}, headers=api.headers("officer_hn"))
    assert action["id"] in [a["id"] for a in r.json()]
    stale = api.client.post(
        f"/api/v1/improvement-actions/{action['id']}/close",
        json={"closed_on": today_vn().isoformat()},
        headers={**api.headers("officer_hn"), "If-Match": '"v99"'},
    )
    assert stale.status_code == 412
    r = api.client.post(
        f"/api/v1/improvement-actions/{action['id']}/close",
        json={"closed_on": today_vn().isoformat(), "note": "Đã kiểm tra lại"},
        headers={**api.headers("officer_hn"), "If-Match": f'"v{action["version"]}"'},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["overdue"], r.json()["closed_by"]) == (False, "officer_hn")
    again = api.client.post(
        f"/api/v1/improvement-actions/{action['id']}/close",
        json={"closed_on": today_vn().isoformat()},
        headers=api.headers("officer_hn"),
    )
    assert again.status_code == 409
    r = api.client.get("/api/v1/audit", params={"object_type": "improvement_action"}, headers=api.headers("auditor"))
    assert "improvement_action.close" in r.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # DB-agnostic: PostgreSQL is covered above
def test_schedule_endpoint_flags_overdue_systems(api: Api) -> None:
    seed_province(api.state)
    r = api.client.get("/api/v1/assessments/schedule", params={"overdue": True}, headers=api.headers("officer_hn"))
    assert r.status_code == 200, r.text
    overdue = {(i["system_id"], i["kind"]) for i in r.json()}
    assert ("qlvb", "compliance") in overdue  # 420-day-old compliance on a 12-month cycle
    assert ("qlvb", "vulnerability_scan") in overdue
    assert not any(s == "cong-ttdt" for s, _k in overdue)
    assert not any(s == "hcm-web" for s, _k in overdue)  # other site


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # DB-agnostic: PostgreSQL is covered above
def test_level_5_without_independence_is_warned(api: Api) -> None:
    seed_province(api.state)
    with api.state.sessions.begin() as s:
        system = s.get(InformationSystem, "qlvb")
        assert system is not None
        system.approved_level = 5
    r = _create(api, kind="compliance", mode=None, findings=[])
    assert r.status_code == 201
    assert any("independent" in w for w in r.json()["warnings"])
