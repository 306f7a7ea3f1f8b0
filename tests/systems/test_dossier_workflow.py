"""A level-3 dossier through drafting, submission, return for completion, appraisal and approval,
with the authority checks, deadlines and the audit trail (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
from datetime import date, datetime

from sqlalchemy import select

from soc_api.db.models import AuditEntry
from soc_api.services import audit
from soc_api.systems.calendar.holidays import VN_TZ, calendar_from
from tests.helpers.api_world import Api
from tests.systems.helpers import PDF, add_risk_assessment, create_system, system_body, upload

SUBMIT_PARTS = ("overview", "design", "level_justification", "security_plan")


def test_full_workflow_with_return_loop_and_authority_checks(api: Api) -> None:
    c, h = api.client, api.headers
    system = create_system(api)
    assert system["proposed_level"] == 3

    r = c.post("/api/v1/systems/qlvb-hn/dossiers", json={}, headers=h("officer_hn"))
    assert r.status_code == 201, r.text
    dossier = r.json()
    did = dossier["id"]
    assert dossier["minimum_level"] == dossier["proposed_level"] == 3
    assert dossier["determination"]["drivers"][0]["criterion_id"] == "l3-administrative-procedures"
    assert set(dossier["missing_parts"]) == {*SUBMIT_PARTS, "security_regulation"}
    assert dossier["next"]["action"] == "complete_and_submit" and dossier["next"]["organisation"] == "Tỉnh ủy Hà Nội"
    assert c.post("/api/v1/systems/qlvb-hn/dossiers", json={}, headers=h("officer_hn")).status_code == 409

    # Incomplete: parts and the risk assessment are checked before submission.
    r = c.post(f"/api/v1/dossiers/{did}/submit", headers=h("officer_hn"))
    assert r.status_code == 409 and r.json()["type"].endswith(":incomplete")
    for part in SUBMIT_PARTS:
        assert upload(api, did, part).status_code == 201
    r = c.post(f"/api/v1/dossiers/{did}/submit", headers=h("officer_hn"))
    assert r.status_code == 409 and "risk assessment" in r.json()["detail"]
    add_risk_assessment(api, "qlvb-hn")

    # Auditors read but never act; approvers do not submit.
    assert c.post(f"/api/v1/dossiers/{did}/submit", headers=h("auditor")).status_code == 403
    assert c.post(f"/api/v1/dossiers/{did}/submit", headers=h("approver_hn")).status_code == 403
    r = c.post(f"/api/v1/dossiers/{did}/submit", headers=h("officer_hn"))
    assert r.status_code == 200, r.text
    submitted = r.json()
    assert submitted["status"] == "submitted"
    nxt = submitted["next"]
    assert (nxt["action"], nxt["authority"], nxt["organisation"]) == (
        "appraise",
        "dedicated_unit",
        "Phòng CNTT - Cơ yếu",
    )
    assert nxt["time_limit_source"] == "NĐ 331/2026 Art 23.3.a"
    sent_on = datetime.fromisoformat(submitted["submitted_at"]).astimezone(VN_TZ).date()
    expected = calendar_from().add_working_days(sent_on, 15)
    assert date.fromisoformat(nxt["due_date"]) == expected
    assert calendar_from().working_days_between(sent_on, expected) == 15

    # Wrong authority: the owner's approver may not appraise a level-3 dossier; officers neither.
    opinion = {"opinion": "Đủ điều kiện"}
    r = c.post(f"/api/v1/dossiers/{did}/appraise", json=opinion, headers=h("approver_owner"))
    assert r.status_code == 403 and r.json()["type"].endswith(":wrong-authority")
    assert c.post(f"/api/v1/dossiers/{did}/appraise", json=opinion, headers=h("officer_hn")).status_code == 403

    # Returned for completion, then completed (a second version of the overview) and resubmitted.
    r = c.post(f"/api/v1/dossiers/{did}/return", json={"reason": "Bổ sung quy hoạch IP"}, headers=h("approver_hn"))
    assert r.status_code == 200 and r.json()["status"] == "returned"
    assert r.json()["next"]["action"] == "complete_and_submit"
    v2 = PDF + b"% with the IP plan\n"
    r = upload(api, did, "overview", v2)
    assert r.status_code == 201 and r.json()["version"] == 2
    assert r.json()["sha256"] == hashlib.sha256(v2).hexdigest()
    etag = c.get(f"/api/v1/dossiers/{did}", headers=h("officer_hn")).headers["ETag"]
    stale = {**h("officer_hn"), "If-Match": '"v1"'}
    assert c.post(f"/api/v1/dossiers/{did}/submit", headers=stale).status_code == 412
    r = c.post(f"/api/v1/dossiers/{did}/submit", headers={**h("officer_hn"), "If-Match": etag})
    assert r.status_code == 200 and r.json()["status"] == "submitted"

    r = c.post(f"/api/v1/dossiers/{did}/appraise", json=opinion, headers=h("approver_hn"))
    assert r.status_code == 200, r.text
    appraised = r.json()
    assert appraised["status"] == "appraised" and appraised["appraised_by"] == "approver_hn"
    nxt = appraised["next"]
    assert (nxt["action"], nxt["authority"], nxt["organisation"]) == ("approve", "owner", "Tỉnh ủy Hà Nội")
    assert nxt["time_limit_source"] == "NĐ 331/2026 Art 24.2" and nxt["due_date"] is not None

    # Approval: the dedicated unit is not the approver at level 3; the regulation must be issued first.
    decision = {"decision_no": "123-QĐ/TU", "decision_date": "2026-10-05"}
    r = c.post(f"/api/v1/dossiers/{did}/approve", json=decision, headers=h("approver_hn"))
    assert r.status_code == 403 and r.json()["type"].endswith(":wrong-authority")
    r = c.post(f"/api/v1/dossiers/{did}/approve", json=decision, headers=h("approver_owner"))
    assert r.status_code == 409 and "security regulation" in r.json()["detail"]
    assert upload(api, did, "security_regulation").status_code == 201
    sys_etag = c.get("/api/v1/systems/qlvb-hn", headers=h("officer_hn")).headers["ETag"]
    r = c.patch(
        "/api/v1/systems/qlvb-hn",
        json={"security_regulation_no": "45-QĐ/VPTU", "security_regulation_date": "2026-09-20"},
        headers={**h("officer_hn"), "If-Match": sys_etag},
    )
    assert r.status_code == 200, r.text
    assert r.json()["level_review_required"] is False

    # A higher level than proposed needs a reason; a lower one is refused.
    r = c.post(f"/api/v1/dossiers/{did}/approve", json={**decision, "level": 4}, headers=h("approver_owner"))
    assert r.status_code == 422 and r.json()["type"].endswith(":reason-required")
    r = c.post(f"/api/v1/dossiers/{did}/approve", json={**decision, "level": 2}, headers=h("approver_owner"))
    assert r.status_code == 422
    body = {**decision, "level": 4, "reason": "Kết nối mạng diện rộng của Đảng"}
    r = c.post(f"/api/v1/dossiers/{did}/approve", json=body, headers=h("approver_owner"))
    assert r.status_code == 200, r.text
    approved = r.json()
    assert approved["status"] == "approved" and approved["approved_level"] == 4
    assert approved["decision_no"] == "123-QĐ/TU" and approved["override_reason"] == body["reason"]
    assert approved["next"]["action"] is None
    system = c.get("/api/v1/systems/qlvb-hn", headers=h("auditor")).json()
    assert system["approved_level"] == 4 and system["approval_decision_date"] == "2026-10-05"
    assert c.post(f"/api/v1/dossiers/{did}/approve", json=body, headers=h("approver_owner")).status_code == 409

    # Every step is in the audit trail, and the chain verifies.
    with api.state.sessions() as s:
        rows = list(s.scalars(select(AuditEntry).where(AuditEntry.object_type == "dossier").order_by(AuditEntry.seq)))
        actions = [(e.action, e.actor) for e in rows]
        assert actions[0] == ("dossier.create", "officer_hn")
        for step in [
            ("dossier.submit", "officer_hn"),
            ("dossier.return", "approver_hn"),
            ("dossier.appraise", "approver_hn"),
            ("dossier.approve", "approver_owner"),
        ]:
            assert step in actions
        assert sum(1 for a, _ in actions if a == "dossier.document_upload") == 6
        approve_entry = next(e for e in rows if e.action == "dossier.approve")
        assert approve_entry.after is not None and approve_entry.after["override_reason"] == body["reason"]
        result = audit.verify(s)
        assert result.ok, result


def test_level_4_goes_to_the_ministry_and_needs_expert_opinion(api: Api) -> None:
    c, h = api.client, api.headers
    create_system(api, system_id="mdr-hn", requires_24x7=True, national_egov=True)
    did = c.post("/api/v1/systems/mdr-hn/dossiers", json={}, headers=h("officer_hn")).json()["id"]
    dossier = c.get(f"/api/v1/dossiers/{did}", headers=h("officer_hn")).json()
    assert dossier["proposed_level"] == 4
    assert {"expert_opinion", "risk_report"} <= set(dossier["missing_parts"])
    for part in (*SUBMIT_PARTS, "expert_opinion", "risk_report"):
        assert upload(api, did, part).status_code == 201
    add_risk_assessment(api, "mdr-hn")
    r = c.post(f"/api/v1/dossiers/{did}/submit", headers=h("officer_hn"))
    assert r.status_code == 200, r.text
    nxt = r.json()["next"]
    assert (nxt["authority"], nxt["organisation"]) == ("mps", "Bộ Công an (A05)")
    assert nxt["time_limit_source"] == "NĐ 331/2026 Art 23.3.b"
    opinion = {"opinion": "Thẩm định đạt"}
    assert c.post(f"/api/v1/dossiers/{did}/appraise", json=opinion, headers=h("approver_hn")).status_code == 403
    assert c.post(f"/api/v1/dossiers/{did}/appraise", json=opinion, headers=h("approver_mps")).status_code == 200


def test_independent_council_when_the_dedicated_unit_operates(api: Api) -> None:
    c, h = api.client, api.headers
    body = {**system_body("ops-hn"), "operator_org": "cntt-hn"}
    assert c.post("/api/v1/systems", json=body, headers=h("officer_hn")).status_code == 201
    did = c.post("/api/v1/systems/ops-hn/dossiers", json={}, headers=h("officer_hn")).json()["id"]
    for part in SUBMIT_PARTS:
        upload(api, did, part)
    add_risk_assessment(api, "ops-hn")
    nxt = c.post(f"/api/v1/dossiers/{did}/submit", headers=h("officer_hn")).json()["next"]
    assert (nxt["authority"], nxt["organisation"]) == ("independent_council", "Hội đồng thẩm định độc lập")
    r = c.post(f"/api/v1/dossiers/{did}/appraise", json={"opinion": "x"}, headers=h("approver_hn"))
    assert r.status_code == 403


def test_dossier_level_rules(api: Api) -> None:
    c, h = api.client, api.headers
    create_system(api)
    r = c.post("/api/v1/systems/qlvb-hn/dossiers", json={"proposed_level": 2}, headers=h("officer_hn"))
    assert r.status_code == 422 and r.json()["type"].endswith(":level-too-low")
    r = c.post("/api/v1/systems/qlvb-hn/dossiers", json={"proposed_level": 4}, headers=h("officer_hn"))
    assert r.status_code == 422 and r.json()["type"].endswith(":reason-required")
    r = c.post(
        "/api/v1/systems/qlvb-hn/dossiers",
        json={"proposed_level": 3, "profile": "legacy-85-2016", "reason": "Hồ sơ cũ"},
        headers=h("officer_hn"),
    )
    assert r.status_code == 201 and r.json()["profile"] == "legacy-85-2016"
    assert r.json()["minimum_level"] == 2  # admin procedures are no criterion under Decree 85
    assert c.post("/api/v1/systems/qlvb-hn/dossiers", json={}, headers=h("auditor")).status_code == 403
    # Site scoping: another province neither sees nor drafts.
    assert c.get(f"/api/v1/dossiers/{r.json()['id']}", headers=h("officer_hcm")).status_code == 404
    assert c.get("/api/v1/dossiers", headers=h("officer_hcm")).json() == []
