"""Upgrades: a database populated by release 0.1.0 migrates to today's head and keeps serving; old agents keep shipping.

Release 0.1.0 shipped schema revision ``0005``. The rows are written with plain SQL against the
schema as 0.1.0 left it (tables reflected from the database, not today's models), the way that
release's code wrote them, then the database is upgraded to whatever head is now. Every row must
survive (one row in every table 0005 has), the audit hash chain must still verify (``soc api
verify-audit``) and keep growing, and the API must serve the data (alerts, users, systems, dossiers,
incidents, drills, the hand-over outbox). On SQLite and PostgreSQL. The agent half posts the
recorded wire format of today's agent (tests/deploy/fixtures/agent_wire_v1.json, written by
make_agent_fixture.py) to a running collector.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, func, insert, inspect, select
from sqlalchemy.engine import Engine

from soc_api.app import create_app
from soc_api.db.migrate import alembic_config, current_revision, upgrade
from soc_api.db.models import AuditEntry
from soc_api.db.session import make_engine
from soc_api.services import audit
from tests.deploy.live_collector import live_collector
from tests.helpers.api_world import make_config, password_hash
from tests.helpers.db_fixtures import db_url

__all__ = ["db_url"]

RELEASES = {"0.1.0": "0005"}  # release -> the schema revision it shipped
FIXTURES = Path(__file__).resolve().parent / "fixtures"
T0 = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
ALERT_ID = "a" * 32


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _audit_rows() -> list[dict[str, Any]]:
    """Three chained entries, hashed by the audit code itself (as 0.1.0's API wrote them)."""
    rows: list[dict[str, Any]] = []
    prev = audit.GENESIS_HASH
    actions = [
        ("admin", "user.create", "user", "2", None, {"username": "officer_hn", "role": "officer"}),
        ("officer_hn", "alert.acknowledge", "alert", ALERT_ID, {"status": "new"}, {"status": "acknowledged"}),
        ("admin", "incident.create", "incident", "1", None, {"title": "Dò quét mật khẩu SSH"}),
    ]
    for seq, (actor, action, object_type, object_id, before, after) in enumerate(actions, start=1):
        entry = AuditEntry(
            seq=seq,
            ts=T0 + timedelta(minutes=seq, microseconds=123456),
            actor=actor,
            source_ip="10.1.0.9",
            action=action,
            object_type=object_type,
            object_id=object_id,
            before=before,
            after=after,
            prev_hash=prev,
        )
        entry.hash = audit.entry_hash(entry)
        prev = entry.hash
        rows.append({c: getattr(entry, c) for c in ("seq", "ts", "actor", "source_ip", "action", "object_type",
                                                     "object_id", "before", "after", "prev_hash", "hash")})  # fmt: skip
    return rows


def _release_rows() -> dict[str, list[dict[str, Any]]]:
    """What an office on 0.1.0 has: users, alerts, audit chain, a system and dossier, hand-over, drills, incidents."""
    hashed = password_hash()
    user: dict[str, Any] = {"email": None, "password_hash": hashed, "totp_secret_enc": None, "totp_enabled": False,
            "recovery_codes": [], "failed_attempts": 0, "locked_until": None, "is_active": True,
            "created_at": T0, "last_login_at": None}  # fmt: skip
    org = {"site": "hn", "contact": {"phone": "024 0000 0000"}, "created_at": T0}
    return {
        "sites": [{"code": "hn", "name": "Hà Nội", "parent_code": None}],
        "users": [
            {"id": 1, "username": "admin", "display_name": "Quản trị", "role": "admin", "site_scope": None, **user},
            {
                "id": 2,
                "username": "officer_hn",
                "display_name": "Cán bộ",
                "role": "officer",
                "site_scope": "hn",
                **user,
            },
        ],
        "alerts": [
            {
                "id": ALERT_ID,
                "source": "sigma",
                "rule_id": "5f1abf38-3f4b-4f0a-9a5c-1b2c3d4e5f60",
                "rule_title": "SSH brute force",
                "rule_level": "high",
                "rule_tags": ["attack.t1110"],
                "tactics": ["credential_access"],
                "techniques": ["T1110"],
                "severity": "high",
                "severity_rank": 3,
                "timestamp": T0,
                "detected_at": T0 + timedelta(seconds=2),
                "group_key": "pc-hn|10.9.0.7",
                "event_ids": ["ev-1", "ev-2"],
                "events": [{"event": {"id": "ev-1"}, "message": "Failed password"}],
                "host_name": "pc-hn",
                "user_name": "root",
                "source_ip": "10.9.0.7",
                "destination_ip": "10.1.0.5",
                "site": "hn",
                "zone": "party-wan",
                "system_id": None,
                "explanation": {"matched": ["selection"]},
                "drill": False,
                "status": "acknowledged",
                "assignee_id": 2,
                "close_reason": None,
                "close_note": None,
                "acknowledged_at": T0 + timedelta(minutes=2),
                "closed_at": None,
                "duplicate_count": 4,
                "last_seen": T0 + timedelta(minutes=5),
                "created_at": T0,
                "updated_at": T0 + timedelta(minutes=2),
                "version": 2,
            },
        ],
        "alert_techniques": [{"alert_id": ALERT_ID, "technique": "T1110", "timestamp": T0}],
        "audit_log": _audit_rows(),
        "organisations": [
            {"id": 1, "code": "tu-hn", "name": "Tỉnh ủy Hà Nội", "kind": "agency", **org},
            {"id": 2, "code": "vp-tu-hn", "name": "Văn phòng Tỉnh ủy", "kind": "agency", **org},
            {"id": 3, "code": "cntt-hn", "name": "Phòng CNTT", "kind": "dedicated_unit", **org},
        ],
        "information_systems": [
            {
                "id": "qlvb-hn",
                "name": "Quản lý văn bản",
                "description": "",
                "site": "hn",
                "owner_org_id": 1,
                "operator_org_id": 2,
                "security_unit_org_id": 3,
                "council_org_id": None,
                "facts": {"information_types": ["private"]},
                "state_secret": False,
                "admin_procedure_level": None,
                "network_zones": ["party-wan"],
                "cidrs": ["10.1.0.0/24"],
                "components": [],
                "profile": "current",
                "proposed_level": 2,
                "approved_level": None,
                "approved_profile": None,
                "approval_decision_no": None,
                "approval_decision_date": None,
                "security_regulation_no": None,
                "security_regulation_date": None,
                "level_review_required": False,
                "level_review_reasons": [],
                "plan_state": "partial",
                "plan_target_date": date(2026, 12, 31),
                "created_at": T0,
                "updated_at": T0,
                "version": 1,
            },
        ],
        "dossiers": [
            {
                "id": 1,
                "system_id": "qlvb-hn",
                "profile": "current",
                "minimum_level": 2,
                "proposed_level": 2,
                "determination": {"basis": ["private"]},
                "status": "drafting",
                "submitted_at": None,
                "appraised_at": None,
                "approved_at": None,
                "returned_reason": None,
                "appraisal_opinion": None,
                "appraised_by": None,
                "approved_by": None,
                "approved_level": None,
                "override_reason": None,
                "decision_no": None,
                "decision_date": None,
                "created_by": "officer_hn",
                "created_at": T0,
                "updated_at": T0,
                "version": 1,
            },
        ],
        "handover_sequences": [{"site": "hn", "last_sequence": 1}],
        "handover_outbox": [
            {
                "package_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
                "site": "hn",
                "sequence": 1,
                "type": "alert",
                "subject": ALERT_ID,
                "urgent": True,
                "document": {"type": "bundle", "objects": []},
                "sha256": "b" * 64,
                "created_at": T0,
                "status": "queued",
                "attempts": 0,
                "next_attempt_at": T0,
                "last_error": None,
                "sent_at": None,
                "acknowledged_at": None,
            },
        ],
        "drills": [
            {
                "id": 1,
                "plan_id": None,
                "site": "hn",
                "title": "Diễn tập ứng cứu 2026",
                "kind": "tabletop",
                "scenario": "Mã độc tống tiền",
                "status": "planned",
                "planned_on": date(2026, 6, 1),
                "started_at": None,
                "ended_at": None,
                "system_ids": ["qlvb-hn"],
                "participants": [{"name": "Nguyễn Văn An", "team": "Đội ứng cứu", "organisation": "Phòng CNTT"}],
                "participant_hosts": ["pc-hn"],
                "coordination_findings": "",
                "open_gaps": [],
                "evaluation": "",
                "minutes_filename": None,
                "minutes_content_type": None,
                "minutes_size": None,
                "minutes_sha256": None,
                "created_by": "admin",
                "created_at": T0,
                "updated_at": T0,
                "version": 1,
            },
        ],
        "drill_alerts": [{"drill_id": 1, "alert_id": ALERT_ID}],
        "incidents": [
            {
                "id": 1,
                "title": "Dò quét mật khẩu SSH",
                "category": "intrusion",
                "severity": "normal",
                "status": "detected",
                "created_by": "admin",
                "created_at": T0,
                "updated_at": T0,
                "site": "hn",
                "description": "Nhiều lần đăng nhập sai từ 10.9.0.7",
                "detected_at": T0,
                "profile": "incident-current",
                "facts": {},
                "serious_reasons": [],
                "assignee_id": 2,
                "lessons_learned": None,
                "state_times": {"detected": "2026-03-02T08:30:00.000Z"},
                "closed_at": None,
                "version": 1,
            },
        ],
        "incident_alerts": [{"incident_id": 1, "alert_id": ALERT_ID}],
        "incident_timeline": [
            {
                "id": 1,
                "incident_id": 1,
                "ts": T0,
                "actor": "admin",
                "kind": "system",
                "action": "created",
                "text": "Tạo sự cố",
                "data": {},
            },
        ],
    }


def _supporting_rows() -> dict[str, list[dict[str, Any]]]:
    """One realistic row in each remaining 0005 table (in foreign-key order)."""
    sha = "c" * 64
    doc = {"content_type": "application/pdf", "size": 20480, "sha256": sha}
    return {
        "alert_aliases": [{"alias_id": "b" * 32, "alert_id": ALERT_ID}],
        "alert_comments": [
            {"id": 1, "alert_id": ALERT_ID, "author": "officer_hn", "body": "Đã chặn IP", "created_at": T0}
        ],
        "api_keys": [
            {"id": 1, "name": "trung-tam-giam-sat", "prefix": "soc_ab12cd34", "secret_hash": sha,
             "scopes": ["alerts:read"], "site_scope": "hn", "expires_at": T0 + timedelta(days=365),
             "revoked": False, "created_by": "admin", "created_at": T0, "last_used_at": None},
        ],
        "revoked_tokens": [{"jti": "d" * 32, "expires_at": T0 + timedelta(hours=1)}],
        "suppressions": [
            {"id": 1, "rule_id": "5f1abf38-3f4b-4f0a-9a5c-1b2c3d4e5f60", "conditions": {"source.ip": "10.1.0.250"},
             "reason": "máy quét lỗ hổng nội bộ", "expires_at": None, "created_by": "admin", "created_at": T0,
             "hit_count": 12, "last_hit_at": T0},
        ],
        "organisation_members": [{"organisation_id": 3, "user_id": 2}],
        "dossier_documents": [
            {"id": 1, "dossier_id": 1, "part": "proposal", "version": 1, "filename": "de-xuat.pdf",
             "uploaded_by": "officer_hn", "uploaded_at": T0, **doc},
        ],
        "plan_items": [
            {"id": 1, "system_id": "qlvb-hn", "group_id": "8.1.1", "kind": "technical", "title": "Tường lửa",
             "source": "TCVN 11930:2017", "state": "full", "target_date": None, "evidence": ["firewall.pdf"],
             "note": "", "updated_at": T0, "version": 1},
        ],
        "risk_assessments": [
            {"id": 1, "system_id": "qlvb-hn", "trigger": "annual", "assessed_on": date(2026, 2, 1),
             "assessed_level": 2, "content": {"1.1": "Nguy cơ lộ lọt văn bản"}, "created_by": "officer_hn",
             "created_at": T0},
        ],
        "system_hosts": [
            {"id": 1, "system_id": "qlvb-hn", "host_name": "srv-qlvb", "agent_id": "e" * 32, "ip": "10.1.0.10",
             "role": "máy chủ ứng dụng", "created_at": T0},
        ],
        "handover_keys": [
            {"kid": "hn-2026", "owner": "hn", "public_key": "f" * 64, "valid_from": T0, "valid_until": None}
        ],
        "handover_receipts": [
            {"package_id": "0f8fad5b-d9cb-469f-a165-70867728950e", "receipt_id": "r-1",
             "receipt": {"status": "accepted"}, "received_at": T0, "stored_at": T0},
        ],
        "handover_stix_objects": [
            {"id": 1, "collection": "hn-indicators", "stix_id": "indicator--0f8fad5b-d9cb-469f-a165-70867728950e",
             "stix_type": "indicator", "modified": "2026-03-02T08:30:00.000Z", "date_added": T0,
             "object": {"type": "indicator", "pattern": "[ipv4-addr:value = '10.9.0.7']"},
             "package_id": "0f8fad5b-d9cb-469f-a165-70867728950e"},
        ],
        "drill_plans": [
            {"id": 1, "site": "hn", "year": 2026, "title": "Kế hoạch diễn tập 2026", "decision_no": "12/QĐ",
             "created_by": "admin", "created_at": T0},
        ],
        "drill_incidents": [{"drill_id": 1, "incident_id": 1}],
        "drill_timeline": [
            {"id": 1, "drill_id": 1, "at": T0, "phase": "start", "note": "Bắt đầu", "team": "CNTT",
             "created_by": "admin"},
        ],
        "assessments": [
            {"id": 1, "system_id": "qlvb-hn", "kind": "compliance", "phase": "periodic", "mode": None,
             "independent": False, "assessor_org_id": 3, "assessor_name": "Phòng CNTT",
             "performed_on": date(2026, 2, 15), "summary": "Đạt", "created_by": "officer_hn", "created_at": T0,
             "updated_at": T0, "version": 1},
        ],
        "assessment_findings": [
            {"id": 1, "assessment_id": 1, "title": "Mật khẩu yếu", "severity": "medium",
             "description": "Chính sách mật khẩu chưa áp dụng", "created_at": T0},
        ],
        "improvement_actions": [
            {"id": 1, "source_type": "assessment", "source_id": 1, "finding_id": 1, "site": "hn",
             "title": "Áp dụng chính sách mật khẩu", "owner": "Phòng CNTT", "due_date": date(2026, 6, 30),
             "closed_on": None, "closed_by": None, "closure_note": "", "created_by": "officer_hn",
             "created_at": T0, "updated_at": T0, "version": 1},
        ],
        "kpi_declared_assets": [
            {"site": "hn", "pcs": 180, "servers": 12, "updated_by": "admin", "updated_at": T0}
        ],
        "notifications": [
            {"id": 1, "user_id": 2, "site": "hn", "kind": "alert", "dedup_key": f"alert:{ALERT_ID}",
             "title": "Cảnh báo mới", "body": "SSH brute force", "due_date": None, "object_type": "alert",
             "object_id": ALERT_ID, "created_at": T0, "read_at": None, "emailed_at": None},
        ],
        "notification_outbox": [
            {"id": 1, "channel": "email", "target": "canbo@tinhuy.vn", "kind": "alert",
             "dedup_key": f"email:alert:{ALERT_ID}", "subject": "Cảnh báo mới", "body": "SSH brute force",
             "payload": {"alert_id": ALERT_ID}, "state": "pending", "attempts": 0, "next_attempt_at": T0,
             "last_error": None, "created_at": T0, "sent_at": None},
        ],
        "notification_watermarks": [{"name": "alerts", "value": 1, "at": T0}],
        "incident_hosts": [{"incident_id": 1, "host_name": "pc-hn"}],
        "incident_systems": [{"incident_id": 1, "system_id": "qlvb-hn"}],
        "incident_evidence": [
            {"id": 1, "incident_id": 1, "filename": "auth.log", "content_type": "text/plain", "size": 4096,
             "sha256": sha, "description": "nhật ký", "uploaded_by": "officer_hn", "uploaded_at": T0},
        ],
        "incident_reports": [
            {"id": 1, "incident_id": 1, "kind": "initial", "format": "pdf", "filename": "bao-cao.pdf",
             "size": 20480, "sha256": sha, "generated_by": "officer_hn", "generated_at": T0},
        ],
        "incident_obligations": [
            {"id": 1, "incident_id": 1, "obligation_id": "report-initial", "title": "Báo cáo ban đầu",
             "recipient": "Cục An toàn thông tin", "source": "Nghị định 85/2016", "report_kind": "initial",
             "due_at": T0 + timedelta(hours=24), "immediate": False, "state": "sent", "sent_at": T0,
             "sent_by": "officer_hn", "reference": "CV 01", "acknowledged_at": None, "report_id": 1,
             "version": 1},
        ],
        "incident_tasks": [
            {"id": 1, "incident_id": 1, "position": 1, "playbook": "brute-force", "step_id": "block-ip",
             "phase": "containment", "title": "Chặn IP nguồn", "owner_role": "officer", "assignee_id": 2,
             "status": "done", "note": None, "done_by": "officer_hn", "done_at": T0, "version": 2},
        ],
    }  # fmt: skip


def _populate(engine: Engine) -> dict[str, int]:
    meta = MetaData()
    meta.reflect(engine)  # the 0005 schema as it is in the database, not today's models
    rows = {**_release_rows(), **_supporting_rows()}
    missing = set(meta.tables) - set(rows) - {"alembic_version"}
    assert not missing, f"tables of 0005 with no 0.1.0 row in this test: {sorted(missing)}"
    with engine.begin() as conn:
        for name, values in rows.items():
            table = meta.tables[name]
            pk = [c.name for c in table.primary_key.columns]
            if pk != ["id"] or not isinstance(values[0]["id"], int):  # natural or composite keys: as given
                conn.execute(insert(table), values)
                continue
            for row in values:  # serial ids come from the database (its sequence must stay in step)
                given = {k: v for k, v in row.items() if k != "id"}
                assigned = conn.execute(insert(table).values(given)).inserted_primary_key
                assert assigned is not None and assigned[0] == row["id"], (name, assigned, row["id"])
    return {table: len(values) for table, values in rows.items()}


def _counts(engine: Engine, tables: list[str]) -> dict[str, int]:
    meta = MetaData()
    meta.reflect(engine, only=tables)
    with engine.connect() as conn:
        return {t: int(conn.execute(select(func.count()).select_from(meta.tables[t])).scalar_one()) for t in tables}


def test_release_schema_revisions_exist() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    for release, revision in RELEASES.items():
        assert script.get_revision(revision) is not None, f"{release} shipped {revision}: it must stay migratable"


def test_upgrade_from_0_1_0_keeps_every_row_and_serves_them(db_url: str, engine: Engine, tmp_path: Path) -> None:
    upgrade(db_url, RELEASES["0.1.0"], engine=engine)
    assert current_revision(db_url) == "0005"
    written = _populate(engine)

    upgrade(db_url, "head", engine=engine)
    assert current_revision(db_url) == _head()
    assert _counts(engine, list(written)) == written
    alerts = _table(engine, "alerts")
    with engine.connect() as conn:
        alert = conn.execute(select(alerts).where(alerts.c.id == ALERT_ID)).one()
    assert (alert.status, alert.duplicate_count, alert.assignee_id) == ("acknowledged", 4, 2)

    app = create_app(make_config(db_url, tmp_path), migrate=False)
    state = app.state.soc
    with state.sessions() as session:
        result = audit.verify(session)  # what `soc api verify-audit` runs
    assert result.ok and result.checked == 3, result
    token, _ = state.signer.issue(1, "access", state.config.security.token_lifetime)
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app, base_url="https://testserver") as client:
        got = client.get(f"/api/v1/alerts/{ALERT_ID}", headers=headers)
        assert got.status_code == 200, got.text
        assert got.json()["rule_title"] == "SSH brute force" and got.json()["status"] == "acknowledged"
        listed = client.get("/api/v1/alerts", headers=headers)
        assert listed.status_code == 200 and ALERT_ID in listed.text
        verified = client.get("/api/v1/audit/verify", headers=headers)
        assert verified.status_code == 200 and verified.json()["ok"] is True, verified.text
        served = {
            "/api/v1/systems/qlvb-hn": ("name", "Quản lý văn bản"),
            "/api/v1/dossiers/1": ("status", "drafting"),
            "/api/v1/incidents/1": ("title", "Dò quét mật khẩu SSH"),
            "/api/v1/drills/1": ("title", "Diễn tập ứng cứu 2026"),
        }
        for path, (key, value) in served.items():
            got = client.get(path, headers=headers)
            assert got.status_code == 200 and got.json()[key] == value, (path, got.status_code, got.text[:300])
        outbox = client.get("/api/v1/handover/outbox", headers=headers)
        assert outbox.status_code == 200 and outbox.json()["counts"] == {"queued": 1}, outbox.text
        users = client.get("/api/v1/users", headers=headers)
        assert users.status_code == 200 and "officer_hn" in users.text
        # writes after the upgrade extend the old chain and the old row's version
        comment = client.post(f"/api/v1/alerts/{ALERT_ID}/comment", json={"body": "sau nâng cấp"}, headers=headers)
        assert comment.status_code == 201, comment.text
        closed = client.post(
            f"/api/v1/alerts/{ALERT_ID}/close", json={"reason": "true_positive", "note": "xử lý xong"}, headers=headers
        )
        assert closed.status_code == 200 and closed.json()["status"] == "closed", closed.text
    with state.sessions() as session:
        after = audit.verify(session)
    assert after.ok and after.checked > 3, after


def _table(engine: Engine, name: str) -> Any:
    meta = MetaData()
    meta.reflect(engine, only=[name])
    return meta.tables[name]


def test_downgrade_to_the_release_and_back_on_an_empty_database(db_url: str, engine: Engine) -> None:
    upgrade(db_url, "head", engine=engine)
    head_tables = set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        cfg = alembic_config(db_url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, RELEASES["0.1.0"])
    assert current_revision(db_url) == "0005"
    upgrade(db_url, "head", engine=engine)
    assert current_revision(db_url) == _head()
    assert set(inspect(engine).get_table_names()) == head_tables


# -- agents of the previous version against this collector ------------------------------------------
def _wire_fixture() -> dict[str, Any]:
    data = json.loads((FIXTURES / "agent_wire_v1.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("variant", ["as-recorded", "without-sent-at"])
def test_recorded_agent_batch_is_accepted_and_stored(tmp_path: Path, variant: str) -> None:
    """The exact bytes and headers a released agent sends: a protocol change that breaks them fails here."""
    wire = _wire_fixture()
    headers = dict(wire["headers"])
    if variant == "without-sent-at":
        headers.pop("X-Soc-Sent-At", None)  # agents before the clock-skew header (0.1.0)
    body = base64.b64decode(wire["body_base64"])
    with live_collector(tmp_path) as live:
        creds = live.enroll(tmp_path / "agent")
        status, answer = live.post(creds, body, headers)
        assert status == 200, answer
        reply = json.loads(answer)
        assert reply == {"accepted": len(wire["event_ids"]), "duplicates": 0, "rejected": []}
        store = live.collector.store
        assert store is not None
        stored = store.get(list(wire["event_ids"]))
        assert sorted(e["event"]["id"] for e in stored) == sorted(wire["event_ids"])
        assert all(e["soc"]["agent_id"] == creds.agent_id for e in stored)
        status, answer = live.post(creds, body, headers)  # a retry after a lost answer: deduplicated
        assert status == 200 and json.loads(answer)["duplicates"] == len(wire["event_ids"])
