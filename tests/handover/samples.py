"""One realistic record of every package type."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel

from soc_api.handover import records as r

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
PERIOD = r.Period(start=T0, end=T0 + timedelta(days=1))
IND_IP = r.Indicator(type="ipv4", value="45.77.10.20", count=3, first_seen=T0, last_seen=T0 + timedelta(hours=2))
IND_DOMAIN = r.Indicator(type="domain", value="evil-update.example", count=1, first_seen=T0, last_seen=T0)
IND_HASH = r.Indicator(type="sha256", value="a" * 64, count=2, first_seen=T0, last_seen=T0 + timedelta(minutes=5))


def incident_report() -> r.IncidentReport:
    return r.IncidentReport(
        incident_id="12",
        title="Mã độc trên máy chủ thư điện tử / Malware on the mail server",
        category="malware",
        severity="serious",
        status="open",
        serious=True,
        detected_at=T0,
        reported_at=T0 + timedelta(hours=3),
        description="Ransomware beacon to an external address",
        affected_systems=["sys-mail"],
        contact=r.Contact(name="Nguyễn Văn A", title="Trưởng phòng CNTT", phone="0900000000", email="a@example.vn"),
        measures=["isolated host", "blocked 45.77.10.20 at the firewall"],
        alerts=[
            r.AlertBrief(
                id="al-1",
                rule_id="rule-c2",
                rule_title="C2 beacon",
                severity="critical",
                timestamp=T0,
                host_name="mail-1",
                source_ip="10.0.0.5",
                destination_ip="45.77.10.20",
                techniques=["T1071"],
            )
        ],
        indicators=[IND_IP, IND_DOMAIN, IND_HASH],
    )


def all_records() -> dict[str, BaseModel]:
    return {
        "incident_report": incident_report(),
        "incident_update": r.IncidentUpdate(
            incident_id="12",
            changed_at=T0 + timedelta(days=1),
            status="closed",
            note="restored from backup",
            measures=["rebuilt"],
        ),
        "drill_record": r.DrillRecord(
            drill_id="d-2026-1",
            name="Diễn tập ứng cứu sự cố 2026",
            held_on=date(2026, 5, 20),
            scenario="ransomware on the e-office system",
            systems=["sys-vpdt"],
            participants=["VP Tỉnh ủy", "Công an tỉnh"],
            response_minutes=42.5,
            findings=["backup restore took 3 h"],
            gaps=["no offline backup of sys-vpdt"],
        ),
        "dossier_status": r.DossierStatus(
            dossier_id="3",
            system_id="sys-vpdt",
            system_name="Hệ thống văn phòng điện tử",
            status="approved",
            proposed_level=3,
            approved_level=3,
            decision_no="123-QĐ/TU",
            decision_date=date(2026, 4, 2),
            submitted_at=T0,
            approved_at=T0 + timedelta(days=30),
            updated_at=T0 + timedelta(days=30),
        ),
        "kpi_snapshot": r.KpiSnapshot(
            period=PERIOD,
            alerts_total=120,
            alerts_by_severity={"high": 20, "low": 100},
            incidents_opened=3,
            incidents_closed=2,
            serious_incidents=1,
            mean_time_to_acknowledge_s=310.5,
            mean_time_to_close_s=7200.0,
            false_positive_rate=0.25,
        ),
        "alert_summary": r.AlertSummary(
            period=PERIOD,
            total=120,
            by_severity={"high": 20, "low": 100},
            by_rule=[r.Count(key="rule-c2", label="C2 beacon", count=20)],
            by_technique=[r.Count(key="T1071", count=20)],
            top_hosts=[r.Count(key="mail-1", count=20)],
            indicators=[IND_IP, IND_DOMAIN, IND_HASH],
        ),
    }
