"""A seeded province with known counts (see EXPECTED), written straight to the database and the
event store, so the KPI and report tests compare against numbers computed by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from soc_api.assessments.models import Assessment, ImprovementAction
from soc_api.db.models import Incident, IncidentAlert
from soc_api.drills.models import Drill, DrillIncident
from soc_api.kpi.models import DeclaredAssets
from soc_api.services.alert_sink import alert_to_row
from soc_api.state import AppState
from soc_api.systems.calendar.holidays import VN_TZ
from soc_api.systems.models import Dossier, InformationSystem, Organisation, SystemHost
from soc_common.ecs import new_event, put, utc_now
from tests.helpers.alerts import make_alert


def today_vn() -> date:
    return utc_now().astimezone(VN_TZ).date()


def report_year(day: date) -> int:
    """The annual-report year whose period (15/12 of the year before to 14/12) contains ``day``."""
    return day.year + 1 if (day.month, day.day) >= (12, 15) else day.year


@dataclass(frozen=True)
class Seeded:
    today: date
    recent: date  # inside the current annual-report period
    year: int  # report year containing ``recent``


def _org(s: Session, code: str, name: str, kind: str, site: str | None) -> int:
    org = Organisation(code=code, name=name, kind=kind, site=site, contact={})
    s.add(org)
    s.flush()
    return org.id


def _system(s: Session, orgs: dict[str, int], sid: str, name: str, site: str, **kw: Any) -> InformationSystem:
    system = InformationSystem(
        id=sid,
        name=name,
        site=site,
        owner_org_id=orgs["owner"],
        operator_org_id=orgs["operator"],
        security_unit_org_id=orgs["unit"],
        facts={},
        network_zones=[],
        cidrs=[],
        components=[],
        **kw,
    )
    s.add(system)
    s.flush()
    return system


def _inventory(host: str, site: str, os_type: str, enabled: bool, at: datetime) -> dict[str, Any]:
    event = new_event(kind="state", dataset="soc.inventory", module="soc", timestamp=at)
    put(event, "host.name", host)
    put(event, "host.os", {"type": os_type, "name": os_type.title()})
    put(event, "soc.site", site)
    put(
        event,
        "soc.inventory.protection",
        {"product": "Defender", "installed": True, "enabled": enabled, "running": enabled},
    )
    return event


def seed_province(state: AppState) -> Seeded:
    today = today_vn()
    recent = today - timedelta(days=30)
    now = utc_now()
    with state.sessions.begin() as s:
        orgs = {
            "owner": _org(s, "tu-hn", "Tỉnh ủy Hà Nội", "agency", "hn"),
            "operator": _org(s, "vp-tu-hn", "Văn phòng Tỉnh ủy Hà Nội", "agency", "hn"),
            "unit": _org(s, "cntt-hn", "Phòng Công nghệ thông tin - Cơ yếu", "dedicated_unit", "hn"),
        }
        s1 = _system(
            s,
            orgs,
            "cong-ttdt",
            "Cổng thông tin điện tử",
            "hn",
            proposed_level=2,
            approved_level=2,
            approval_decision_no="01/QĐ-TU",
            approval_decision_date=today - timedelta(days=100),
            security_regulation_no="02/QĐ-TU",
            security_regulation_date=today - timedelta(days=120),
            plan_state="full",
        )
        s2 = _system(
            s,
            orgs,
            "qlvb",
            "Hệ thống quản lý văn bản và điều hành",
            "hn",
            proposed_level=3,
            approved_level=3,
            approval_decision_no="15/QĐ-TU",
            approval_decision_date=today - timedelta(days=400),
            security_regulation_no="16/QĐ-TU",
            security_regulation_date=today - timedelta(days=410),
            plan_state="partial",
        )
        s3 = _system(
            s, orgs, "thu-dien-tu", "Hệ thống thư điện tử", "hn-q1", proposed_level=3, plan_state="not_started"
        )
        s4 = _system(s, orgs, "ha-tang", "Hạ tầng mạng nội bộ", "hn-q1", proposed_level=2, plan_state="not_started")
        s5 = _system(
            s,
            orgs,
            "luu-tru",
            "Hệ thống lưu trữ tài liệu mật",
            "hn",
            proposed_level=3,
            state_secret=True,
            plan_state="not_started",
        )
        _system(
            s, orgs, "hcm-web", "Cổng thông tin TP. HCM", "hcm", proposed_level=1, approved_level=1, plan_state="full"
        )
        s.add_all(
            [
                Dossier(
                    system_id=s3.id,
                    profile="current",
                    proposed_level=3,
                    status="submitted",
                    submitted_at=now - timedelta(days=2),
                    created_by="officer_hn",
                ),
                Dossier(
                    system_id=s4.id, profile="current", proposed_level=2, status="drafting", created_by="officer_hn"
                ),
                Dossier(
                    system_id=s5.id,
                    profile="current",
                    proposed_level=3,
                    status="appraised",
                    submitted_at=now - timedelta(days=20),
                    appraised_at=now - timedelta(days=3),
                    created_by="officer_hn",
                ),
                Assessment(system_id=s1.id, kind="compliance", phase="periodic", performed_on=recent, created_by="t"),
                Assessment(
                    system_id=s2.id,
                    kind="compliance",
                    phase="pre_go_live",
                    performed_on=today - timedelta(days=420),
                    created_by="t",
                ),
                Assessment(
                    system_id=s2.id, kind="effectiveness", phase="periodic", performed_on=recent, created_by="t"
                ),
                SystemHost(system_id=s1.id, host_name="srv-01"),
                DeclaredAssets(site="hn", pcs=4, servers=2, updated_by="t"),
                ImprovementAction(
                    source_type="assessment",
                    source_id=1,
                    site="hn",
                    title="Vá lỗ hổng máy chủ",
                    owner="Phòng CNTT",
                    due_date=today - timedelta(days=5),
                    created_by="t",
                ),
                ImprovementAction(
                    source_type="assessment",
                    source_id=1,
                    site="hn-q1",
                    title="Cập nhật quy chế",
                    owner="Huyện ủy",
                    due_date=today + timedelta(days=40),
                    created_by="t",
                ),
            ]
        )
        # Incidents: two real (malware at hn 2 h after the alert; phishing at hn-q1 4 h after), one
        # linked to a drill and one built only from drill alerts: both excluded.
        base = now - timedelta(days=10)
        alerts = [
            alert_to_row(make_alert(1, host_name="pc-01", site="hn", timestamp=base)),
            alert_to_row(make_alert(2, host_name="pc-q1", site="hn-q1", timestamp=base)),
            alert_to_row(make_alert(3, host_name="pc-02", site="hn", timestamp=base)),
            alert_to_row(make_alert(4, host_name="pc-02", site="hn", timestamp=base, drill=True)),
            alert_to_row(make_alert(5, host_name="pc-01", site="hn", timestamp=base)),
        ]
        s.add_all(alerts)
        s.flush()
        incidents = [
            Incident(
                title="Mã độc",
                category="malware",
                severity="high",
                created_by="t",
                created_at=base + timedelta(hours=2),
            ),
            Incident(
                title="Thư giả mạo",
                category="phishing",
                severity="medium",
                created_by="t",
                created_at=base + timedelta(hours=4),
            ),
            Incident(
                title="Diễn tập",
                category="malware",
                severity="high",
                created_by="t",
                created_at=base + timedelta(hours=1),
            ),
            Incident(
                title="Cảnh báo diễn tập",
                category="intrusion",
                severity="high",
                created_by="t",
                created_at=base + timedelta(hours=1),
            ),
        ]
        s.add_all(incidents)
        s.flush()
        s.add_all(
            [
                IncidentAlert(incident_id=incidents[0].id, alert_id=alerts[0].id),
                IncidentAlert(incident_id=incidents[1].id, alert_id=alerts[1].id),
                IncidentAlert(incident_id=incidents[2].id, alert_id=alerts[2].id),
                IncidentAlert(incident_id=incidents[3].id, alert_id=alerts[3].id),
            ]
        )
        drill = Drill(
            site="hn",
            title="Diễn tập ứng cứu mã độc",
            kind="live",
            status="completed",
            planned_on=recent,
            created_by="t",
            started_at=base - timedelta(hours=1),
            ended_at=base + timedelta(hours=5),
        )
        planned = Drill(
            site="hn-q1",
            title="Diễn tập trên bàn",
            kind="tabletop",
            status="planned",
            planned_on=today + timedelta(days=20),
            created_by="t",
        )
        s.add_all([drill, planned])
        s.flush()
        s.add(DrillIncident(drill_id=drill.id, incident_id=incidents[2].id))
    store = state.store
    assert store is not None
    fresh = now - timedelta(hours=1)
    result = store.write(
        [
            _inventory("pc-01", "hn", "windows", True, fresh),
            _inventory("pc-02", "hn", "windows", True, fresh),
            _inventory("pc-03", "hn", "windows", True, now - timedelta(hours=3)),
            _inventory("pc-03", "hn", "windows", False, fresh),  # switched off: not protected
            _inventory("srv-01", "hn", "linux", True, fresh),
            _inventory("pc-04", "hn", "windows", True, now - timedelta(days=3)),  # stale: not monitored
            _inventory("pc-q1", "hn-q1", "windows", True, fresh),
        ]
    )
    assert result.stored == 7, result
    return Seeded(today=today, recent=recent, year=report_year(recent))


# Counts for the scope "hn" (hn + hn-q1), computed by hand from the seed above.
EXPECTED: dict[str, Any] = {
    "systems_total": 5,
    "level_approved": 2,  # cong-ttdt, qlvb
    "plan_full": 1,  # cong-ttdt
    "assessed_on_time": 1,  # cong-ttdt (qlvb's compliance is 420 days old on a 12-month cycle)
    "protected_by_level": 1,
    "pcs_registered": 5,  # hn declared 4, hn-q1 undeclared -> its 1 monitored PC
    "pcs_monitored": 3,  # pc-01, pc-02, pc-03 at hn; pc-q1 at hn-q1 -> total 4 (see below)
    "pcs_monitored_total": 4,
    "pcs_protected_total": 3,  # pc-01, pc-02, pc-q1
    "servers_registered": 2,
    "servers_monitored": 1,  # srv-01
    "incidents": {"malware": 1, "phishing": 1},
    "mean_hours_to_report": 3.0,
    "drills_planned": 2,
    "drills_done": 1,
    "alerts_real": 4,
    "alerts_drill": 1,
    "actions_open": 2,
    "actions_overdue": 1,
}
