"""Reporting deadlines under both rule profiles, the serious-incident criteria and their
explanation, and working-day deadlines on the Vietnamese holiday calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from soc_api.incidents.deadlines import Anchors, duties, is_overdue
from soc_api.incidents.rules import FACT_DEFAULTS, IncidentProfile, load_profiles, profile_for
from soc_api.systems.calendar.holidays import VN_TZ, calendar_from
from tests.helpers.api_world import Api

DETECTED = datetime(2026, 9, 1, 3, 0, tzinfo=UTC)
CAL = calendar_from()


def _facts(**over: Any) -> dict[str, Any]:
    return {**FACT_DEFAULTS, "max_system_level": 2, "state_secret_system": False, "serious": False, **over}


def _due(profile: IncidentProfile, facts: dict[str, Any], anchors: Anchors | None = None) -> dict[str, Any]:
    return {d.obligation_id: d.due_at for d in duties(profile, facts, anchors or Anchors(DETECTED, None, None), CAL)}


def test_profile_is_chosen_by_detection_date() -> None:
    profiles = load_profiles()
    assert profile_for(profiles, DETECTED, None).id == "incident-current"
    assert profile_for(profiles, datetime(2025, 3, 1, tzinfo=UTC), None).id == "incident-legacy"
    assert profile_for(profiles, DETECTED, "incident-legacy").id == "incident-legacy"


def test_current_normal_incident_owes_72h_report_and_open_ended_closure() -> None:
    due = _due(load_profiles()["incident-current"], _facts())
    assert due == {"cause-scope-72h": DETECTED + timedelta(hours=72), "closure-report": None}


def test_current_serious_incident_owes_24h_initial_notice() -> None:
    due = _due(load_profiles()["incident-current"], _facts(serious=True))
    assert due["initial-notice-24h"] == DETECTED + timedelta(hours=24)
    assert due["cause-scope-72h"] == DETECTED + timedelta(hours=72)


def test_current_personal_data_breach_and_national_security() -> None:
    current = load_profiles()["incident-current"]
    due = _due(current, _facts(personal_data_breach=True))
    assert due["personal-data-72h"] == DETECTED + timedelta(hours=72)
    due = _due(current, _facts(national_security_harm=True, serious=True))
    assert due["immediate-notice"] == DETECTED  # "immediately": due at detection, overdue once unsent


def test_legacy_five_days_and_closure_after_response() -> None:
    legacy = load_profiles()["incident-legacy"]
    recovered = DETECTED + timedelta(days=3)
    due = _due(legacy, _facts(beyond_capacity=True), Anchors(DETECTED, recovered, None))
    assert due["notice-5d"] == DETECTED + timedelta(days=5)
    assert due["initial-immediate"] == DETECTED
    assert due["closure-5d"] == recovered + timedelta(days=5)


def test_working_day_deadline_skips_tet() -> None:
    from soc_api.incidents.deadlines import due_time
    from soc_api.incidents.rules import ObligationRule

    rule = ObligationRule.model_validate(
        {"id": "x", "title": "x", "recipient": "x", "source": "x", "confidence": "I", "report_kind": "initial",
         "applies": {"all": []}, "anchor": "detected", "within": {"working_days": 5}}
    )  # fmt: skip
    before_tet = datetime(2026, 2, 13, 2, 0, tzinfo=UTC)  # Friday before Tết Bính Ngọ (17/2/2026)
    due = due_time(rule, Anchors(before_tet, None, None), CAL)
    assert due is not None and due - before_tet > timedelta(days=14)  # five working days span the holiday
    assert CAL.is_working_day(due.astimezone(VN_TZ).date())


def test_overdue_flag() -> None:
    now = DETECTED + timedelta(hours=25)
    assert is_overdue(DETECTED + timedelta(hours=24), "pending", now)
    assert not is_overdue(DETECTED + timedelta(hours=24), "sent", now)
    assert not is_overdue(None, "pending", now)


@pytest.mark.parametrize(
    ("facts", "serious", "reason"),
    [
        ({}, True, "level-3-plus"),  # the linked system of hn-q1 is level 3
        ({"personal_data_subjects": 20000}, True, "personal-data-volume"),
        ({"service_outage_hours": 5}, True, "service-outage"),
    ],
)
def test_serious_criteria_are_evaluated_and_explained(
    world: Api, facts: dict[str, Any], serious: bool, reason: str
) -> None:
    body = {
        "title": "Rò rỉ dữ liệu", "category": "data_leak", "site": "hn-q1", "facts": facts,
        "system_ids": ["sys-hn-q1"] if reason == "level-3-plus" else [],
        "detected_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
    }  # fmt: skip
    r = world.client.post("/api/v1/incidents", headers=world.headers("officer_hn"), json=body)
    assert r.status_code == 201, r.text
    inc = r.json()
    assert inc["profile"] == "incident-current"
    assert (inc["severity"] == "serious") is serious
    assert reason in {x["id"] for x in inc["serious_reasons"]}
    duties_ = {o["obligation_id"]: o for o in inc["obligations"]}
    initial = duties_["initial-notice-24h"]
    assert initial["state"] == "pending" and not initial["overdue"] and 20 * 3600 < initial["seconds_left"] <= 22 * 3600


def test_facts_change_reclassifies_and_keeps_sent_duties(world: Api) -> None:
    h = world.headers("officer_hn")
    detected = (datetime.now(UTC) - timedelta(hours=30)).isoformat()
    body = {"title": "Thư lừa đảo", "category": "phishing", "site": "hn-q1", "detected_at": detected}
    inc = world.client.post("/api/v1/incidents", headers=h, json=body).json()
    assert inc["severity"] == "normal" and "initial-notice-24h" not in {o["obligation_id"] for o in inc["obligations"]}
    base = f"/api/v1/incidents/{inc['id']}"
    inc = world.client.patch(
        base, headers=h, json={"facts": {"declared_serious": True, "personal_data_breach": True}}
    ).json()
    duties_ = {o["obligation_id"]: o for o in inc["obligations"]}
    assert inc["severity"] == "serious" and duties_["initial-notice-24h"]["overdue"] is True
    assert "personal-data-72h" in duties_
    sent = world.client.post(f"{base}/obligations/{duties_['initial-notice-24h']['id']}/sent",
                             headers=world.headers("approver_hn"), json={"reference": "CV 12/VPTU"})  # fmt: skip
    assert sent.status_code == 200 and sent.json()["state"] == "sent" and sent.json()["overdue"] is False
    inc = world.client.patch(
        base, headers=h, json={"facts": {"declared_serious": False, "personal_data_breach": False}}
    ).json()
    ids = {o["obligation_id"]: o["state"] for o in inc["obligations"]}
    assert ids.get("initial-notice-24h") == "sent"  # a sent report stays on record
    assert "personal-data-72h" not in ids  # a pending one follows the facts
    ack = world.client.post(f"{base}/obligations/{duties_['initial-notice-24h']['id']}/acknowledged",
                            headers=world.headers("approver_hn"), json={})  # fmt: skip
    assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
    again = world.client.post(f"{base}/obligations/{duties_['initial-notice-24h']['id']}/sent",
                              headers=world.headers("approver_hn"), json={})  # fmt: skip
    assert again.status_code == 409
