"""The incident report as a neutral document (rendered to PDF and DOCX by soc_api.reports.render).

Fields follow the initial-report content of QĐ 05/2017 Art 11.4 and the incident notice of TT 20
Art 9.3.a, plus what NĐ 331 Art 31.2.d asks within 72 hours (cause, scope, remedial measures) and
what a closure report needs (root cause, response timeline, lessons). NĐ 331 has no official form
yet, so one document carries every field; the title says which report it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from soc_api.db.models import AlertRow, Incident
from soc_api.incidents.classify import system_level
from soc_api.incidents.models import IncidentEvidence, IncidentObligation, IncidentTask, IncidentTimelineEntry
from soc_api.incidents.rules import CATEGORIES, FACT_DEFAULTS, SEVERITY_TITLES, STATUS_TITLES, IncidentProfile
from soc_api.incidents.settings import IncidentsSettings
from soc_api.reports.document import Cell, Report, Section, Table
from soc_api.systems.calendar.holidays import VN_TZ
from soc_api.systems.models import InformationSystem

KIND_TITLES = {
    "initial": "BÁO CÁO BAN ĐẦU SỰ CỐ AN NINH MẠNG",
    "update": "BÁO CÁO NGUYÊN NHÂN, PHẠM VI ẢNH HƯỞNG VÀ BIỆN PHÁP KHẮC PHỤC SỰ CỐ",
    "closure": "BÁO CÁO KẾT THÚC ỨNG CỨU SỰ CỐ AN NINH MẠNG",
}
FACT_TITLES = {
    "national_security_harm": "Dấu hiệu phương hại an ninh quốc gia, trật tự, an toàn xã hội",
    "serious_disruption": "Gián đoạn nghiêm trọng hoạt động hệ thống",
    "service_outage_hours": "Thời gian gián đoạn dịch vụ (giờ)",
    "personal_data_breach": "Vi phạm dữ liệu cá nhân",
    "personal_data_subjects": "Số chủ thể dữ liệu cá nhân bị ảnh hưởng",
    "state_secret_leak": "Bí mật nhà nước có thể bị lộ",
    "critical_data_integrity_lost": "Dữ liệu quan trọng mất toàn vẹn",
    "loss_of_control": "Mất quyền kiểm soát hệ thống",
    "likely_spread": "Có khả năng lan rộng",
    "beyond_capacity": "Vượt khả năng tự khắc phục",
    "national_critical_system": "Hệ thống quan trọng quốc gia",
    "declared_serious": "Được xác định là nghiêm trọng",
}
TASK_STATUS = {"todo": "Chưa làm", "done": "Đã xong", "skipped": "Bỏ qua"}
DUTY_STATE = {"pending": "Chưa gửi", "sent": "Đã gửi", "acknowledged": "Đã được xác nhận"}


def vn_time(value: datetime | None) -> str:
    """``14:05 ngày 02/03/2026`` in Vietnam time (reports are read locally, times are stored UTC)."""
    return value.astimezone(VN_TZ).strftime("%H:%M ngày %d/%m/%Y") if value else "—"


def _fact_text(value: object) -> str:
    if isinstance(value, bool):
        return "Có" if value else "Không"
    return str(value)


@dataclass
class ReportInputs:
    incident: Incident
    kind: str
    profile: IncidentProfile
    settings: IncidentsSettings
    systems: list[InformationSystem]
    hosts: list[str]
    alerts: list[AlertRow]
    tasks: list[IncidentTask]
    timeline: list[IncidentTimelineEntry]
    evidence: list[IncidentEvidence]
    obligations: list[IncidentObligation]
    assignee: str | None
    generated_at: datetime


def _general(r: ReportInputs) -> Section:
    i = r.incident
    return Section(
        "1. Thông tin chung",
        [
            f"Đơn vị báo cáo (đơn vị vận hành): {r.settings.reporting_unit}",
            f"Cơ quan chủ quản: {r.settings.owner_name}",
            f"Đầu mối liên hệ: {r.settings.contact or '—'}; cán bộ xử lý: {r.assignee or '—'}",
            f"Thời điểm phát hiện: {vn_time(i.detected_at)}",
            f"Thời điểm lập báo cáo: {vn_time(r.generated_at)}",
            f"Máy bị ảnh hưởng: {', '.join(r.hosts) if r.hosts else '—'}",
            f"Căn cứ: {r.profile.title}",
        ],
        Table(
            ["Mã hệ thống", "Tên hệ thống thông tin bị ảnh hưởng", "Cấp độ", "Xử lý bí mật nhà nước"],
            [[s.id, s.name, system_level(s), s.state_secret] for s in r.systems] or [["—", "—", None, None]],
            [1.2, 4, 0.8, 1.4],
        ),
    )


def _description(r: ReportInputs) -> Section:
    i = r.incident
    facts = {**FACT_DEFAULTS, **(i.facts or {})}
    paragraphs = [
        f"Tên sự cố: {i.title}",
        f"Loại sự cố: {CATEGORIES.get(i.category, i.category)}",
        f"Mức độ (sơ bộ): {SEVERITY_TITLES.get(i.severity, i.severity)}",
        f"Trạng thái xử lý: {STATUS_TITLES.get(i.status, i.status)}",
        f"Mô tả, dấu hiệu: {i.description or '—'}",
        f"Số cảnh báo liên quan: {len(r.alerts)}",
    ]
    paragraphs += [f"Tiêu chí nghiêm trọng: {x['text']} ({x['source']})" for x in (i.serious_reasons or [])]
    rows: list[list[Cell]] = [[FACT_TITLES[k], _fact_text(v)] for k, v in facts.items()]
    return Section(
        "2. Mô tả sự cố, phạm vi và mức độ ảnh hưởng", paragraphs, Table(["Nội dung", "Giá trị"], rows, [5, 2])
    )


def _measures(r: ReportInputs) -> Section:
    rows: list[list[Cell]] = [
        [
            t.title,
            STATUS_TITLES.get(t.phase, t.phase),
            TASK_STATUS.get(t.status, t.status),
            t.done_by,
            vn_time(t.done_at) if t.done_at else "",
        ]
        for t in r.tasks
    ]
    return Section(
        "3. Biện pháp đã thực hiện và dự kiến",
        [],
        Table(["Công việc", "Giai đoạn", "Trạng thái", "Người thực hiện", "Thời điểm"], rows, [5, 1.5, 1.2, 1.3, 1.6]),
    )


def _timeline(r: ReportInputs) -> Section:
    rows: list[list[Cell]] = [[vn_time(e.ts), e.actor, e.text[:500]] for e in r.timeline]
    return Section("4. Diễn biến xử lý", [], Table(["Thời điểm", "Người thực hiện", "Nội dung"], rows, [1.6, 1.3, 6]))


def _evidence(r: ReportInputs) -> Section:
    rows: list[list[Cell]] = [[e.filename, e.size, e.sha256, e.description] for e in r.evidence]
    if not rows:
        return Section("5. Chứng cứ đã thu thập", ["Chưa có."])
    return Section(
        "5. Chứng cứ đã thu thập", [], Table(["Tệp", "Dung lượng (byte)", "SHA-256", "Ghi chú"], rows, [2, 1, 4.5, 2])
    )


def _duties(r: ReportInputs) -> Section:
    rows: list[list[Cell]] = [
        [o.title, o.recipient, "Ngay" if o.immediate else (vn_time(o.due_at) if o.due_at else "Chưa xác định"),
         DUTY_STATE.get(o.state, o.state), o.source]
        for o in r.obligations
    ]  # fmt: skip
    return Section(
        "6. Nghĩa vụ báo cáo",
        [],
        Table(["Nội dung", "Nơi nhận", "Thời hạn", "Trạng thái", "Căn cứ"], rows, [3, 2.5, 1.5, 1.2, 2.2]),
    )


def _closing(r: ReportInputs) -> Section:
    lessons = r.incident.lessons_learned or "—"
    return Section(
        "7. Kết quả, nguyên nhân, bài học kinh nghiệm và kiến nghị",
        [
            f"Kết quả xử lý: {STATUS_TITLES.get(r.incident.status, r.incident.status)}",
            f"Bài học kinh nghiệm: {lessons}",
        ],
    )


def build_report(r: ReportInputs) -> Report:
    i = r.incident
    return Report(
        title=KIND_TITLES[r.kind],
        subtitle=[f"Sự cố số {i.id}: {i.title}", f"{r.settings.reporting_unit} — {vn_time(r.generated_at)}"],
        sections=[_general(r), _description(r), _measures(r), _timeline(r), _evidence(r), _duties(r), _closing(r)],
        file_stem=f"su-co-{i.id}-{r.kind}",
        landscape=True,
    )
