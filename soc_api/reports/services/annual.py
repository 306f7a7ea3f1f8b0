"""The annual report in the shape of NĐ 331/2026 form 08: one row per system, then summary counts.

Data period: 15 December of the previous year to 14 December (NĐ 331 Art 35-36). Statuses
(approval, plan deployment) are as at generation; assessments, drills, incidents and actions are
counted inside the period.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.assessments.models import Assessment, ImprovementAction
from soc_api.assessments.obligations import Obligations
from soc_api.drills.models import Drill
from soc_api.kpi.schemas import KpiReport
from soc_api.reports.document import Cell, Report, Section, Table
from soc_api.reports.formatting import vn_date, vn_number, vn_percent
from soc_api.systems.models import Dossier, InformationSystem, Organisation
from soc_api.systems.services.context import Ctx
from soc_api.systems.services.dossiers import next_step

APPROVAL_LABELS = {
    "none": "Chưa lập hồ sơ",
    "drafting": "Đang dự thảo",
    "returned": "Đang dự thảo",
    "submitted": "Đã gửi thẩm định",
    "appraised": "Đã thẩm định",
    "approved": "Đã được phê duyệt",
}
PLAN_LABELS = {
    "not_started": "Chưa triển khai",
    "partial": "Đã triển khai một số hạng mục",
    "full": "Đã triển khai đầy đủ",
}
KIND_LABELS = {
    "compliance": "Đánh giá tuân thủ",
    "effectiveness": "Đánh giá hiệu quả",
    "vulnerability_scan": "Kiểm tra phát hiện điểm yếu, lỗ hổng",
    "penetration_test": "Kiểm thử xâm nhập",
}
PRE_GO_LIVE = "Trước khi đưa vào sử dụng"
PERIODIC = "Định kỳ"


@dataclass(frozen=True)
class SystemRow:
    name: str
    owner: str
    operator: str
    level: int | None
    approval: str  # key of APPROVAL_LABELS
    decision: str
    regulation: str
    expected_approval: date | None
    plan_state: str
    plan_target: date | None
    pre_go_live: bool
    periodic: bool


@dataclass(frozen=True)
class AnnualData:
    year: int
    period: tuple[date, date]
    internal_due: date
    authority_due: date
    rows: list[SystemRow]
    assessments_by_kind: dict[str, int]
    actions_open: int
    actions_overdue: int
    drills_planned: int
    drills_done: int
    kpi: KpiReport

    def count(self, **match: object) -> int:
        return sum(1 for r in self.rows if all(getattr(r, k) == v for k, v in match.items()))


def _decision(no: str | None, day: date | None) -> str:
    return ", ".join(p for p in (no or "", vn_date(day)) if p)


def collect(
    session: Session, ctx: Ctx, obligations: Obligations, year: int, sites: list[str], kpi: KpiReport
) -> AnnualData:
    rule = obligations.reports.annual
    first, last = rule.period(year)
    systems = list(
        session.scalars(
            select(InformationSystem).where(InformationSystem.site.in_(sites)).order_by(InformationSystem.name)
        )
    )
    ids = [s.id for s in systems]
    orgs = {o.id: o.name for o in session.scalars(select(Organisation))}
    latest: dict[str, Dossier] = {}
    for row in session.scalars(select(Dossier).where(Dossier.system_id.in_(ids)).order_by(Dossier.id)):
        latest[row.system_id] = row
    done = list(session.scalars(select(Assessment).where(Assessment.system_id.in_(ids))))
    rows: list[SystemRow] = []
    for s in systems:
        dossier = latest.get(s.id)
        status = "approved" if s.approved_level is not None else (dossier.status if dossier else "none")
        expected = None
        if dossier is not None and status in ("submitted", "appraised"):
            expected = next_step(session, ctx, dossier, s).due_date
        mine = [a for a in done if a.system_id == s.id and a.performed_on <= last]
        rows.append(
            SystemRow(
                name=s.name,
                owner=orgs.get(s.owner_org_id, ""),
                operator=orgs.get(s.operator_org_id, ""),
                level=s.approved_level or s.proposed_level,
                approval=status,
                decision=_decision(s.approval_decision_no, s.approval_decision_date),
                regulation=_decision(s.security_regulation_no, s.security_regulation_date),
                expected_approval=expected,
                plan_state=s.plan_state,
                plan_target=s.plan_target_date,
                pre_go_live=any(a.phase == "pre_go_live" for a in mine),
                periodic=any(a.phase == "periodic" and a.performed_on >= first for a in mine),
            )
        )
    in_period = [a for a in done if first <= a.performed_on <= last]
    actions = list(
        session.scalars(
            select(ImprovementAction).where(ImprovementAction.site.in_(sites), ImprovementAction.closed_on.is_(None))
        )
    )
    drills = list(
        session.scalars(
            select(Drill).where(
                Drill.site.in_(sites),
                Drill.planned_on >= first,
                Drill.planned_on <= last,
                Drill.status != "cancelled",
            )
        )
    )
    return AnnualData(
        year=year,
        period=(first, last),
        internal_due=rule.internal_due_date(year),
        authority_due=rule.authority_due_date(year),
        rows=rows,
        assessments_by_kind=dict(Counter(a.kind for a in in_period)),
        actions_open=len(actions),
        actions_overdue=sum(1 for a in actions if a.overdue(last)),
        drills_planned=len(drills),
        drills_done=sum(1 for d in drills if d.status == "completed"),
        kpi=kpi,
    )


def _assessed(row: SystemRow) -> str:
    parts = [label for flag, label in ((row.pre_go_live, PRE_GO_LIVE), (row.periodic, PERIODIC)) if flag]
    return "; ".join(parts) or "Chưa"


def build(data: AnnualData, reporting_unit: str, owner_name: str, approve_all_by: date | None) -> Report:
    first, last = data.period
    table = Table(
        header=[
            "STT",
            "Tên hệ thống thông tin",
            "Chủ quản",
            "Đơn vị vận hành",
            "Cấp độ đề xuất",
            "Tình trạng phê duyệt",
            "Quyết định phê duyệt (số, ngày)",
            "Quy chế bảo đảm an ninh mạng (số, ngày)",
            "Dự kiến thời gian phê duyệt",
            "Tình hình triển khai phương án",
            "Dự kiến triển khai đầy đủ",
            "Đã kiểm tra, đánh giá",
        ],
        rows=[
            [
                i,
                r.name,
                r.owner,
                r.operator,
                r.level,
                APPROVAL_LABELS[r.approval],
                r.decision,
                r.regulation,
                r.expected_approval,
                PLAN_LABELS.get(r.plan_state, r.plan_state),
                r.plan_target,
                _assessed(r),
            ]
            for i, r in enumerate(data.rows, start=1)
        ],
        widths=[0.6, 2.4, 1.5, 1.5, 0.8, 1.3, 1.5, 1.5, 1.1, 1.5, 1.1, 1.5],
    )
    classified = sum(1 for r in data.rows if r.level is not None)
    summary = Table(
        header=["Chỉ tiêu", "Số lượng"],
        rows=[
            ["Tổng số hệ thống thông tin", len(data.rows)],
            ["Số hệ thống thông tin đã xác định cấp độ", classified],
            ["Số hồ sơ đề xuất cấp độ đang dự thảo", data.count(approval="drafting") + data.count(approval="returned")],
            ["Số hồ sơ đã gửi thẩm định", data.count(approval="submitted")],
            ["Số hồ sơ đã thẩm định", data.count(approval="appraised")],
            ["Số hệ thống đã được phê duyệt cấp độ", data.count(approval="approved")],
            ["Số hệ thống chưa lập hồ sơ", data.count(approval="none")],
            ["Số hệ thống đã triển khai đầy đủ phương án", data.count(plan_state="full")],
            ["Số hệ thống đã triển khai một số hạng mục", data.count(plan_state="partial")],
            ["Số hệ thống chưa triển khai phương án", data.count(plan_state="not_started")],
            ["Số hệ thống đã ban hành quy chế bảo đảm an ninh mạng", sum(1 for r in data.rows if r.regulation)],
            ["Số hệ thống đã kiểm tra, đánh giá trước khi đưa vào sử dụng", data.count(pre_go_live=True)],
            ["Số hệ thống được kiểm tra, đánh giá định kỳ trong kỳ", data.count(periodic=True)],
            ["Thời hạn dự kiến phê duyệt toàn bộ hồ sơ", approve_all_by],
        ],
        widths=[5, 1.5],
    )
    by_kind: list[list[Cell]] = [[label, data.assessments_by_kind.get(k, 0)] for k, label in KIND_LABELS.items()]
    activity = Table(
        header=["Nội dung", "Số lượng"],
        rows=[
            *by_kind,
            ["Số cuộc diễn tập theo kế hoạch", data.drills_planned],
            ["Số cuộc diễn tập đã tổ chức", data.drills_done],
            ["Số hành động khắc phục chưa hoàn thành", data.actions_open],
            ["Trong đó quá hạn", data.actions_overdue],
            ["Số sự cố an ninh mạng (không tính diễn tập)", data.kpi.total.incidents.total],
        ],
        widths=[5, 1.5],
    )
    total = data.kpi.total
    coverage = Table(
        header=["Chỉ tiêu", "Đạt", "Tổng", "Tỷ lệ", "Mục tiêu"],
        rows=[
            [label, r.count, r.of, vn_percent(r.share), vn_percent(r.target) if r.target is not None else ""]
            for label, r in (
                ("Hệ thống được bảo đảm an ninh mạng theo cấp độ", total.systems_protected_by_level),
                ("Máy tính được giám sát tập trung", total.pcs_monitored),
                ("Máy tính có phần mềm phòng chống mã độc quản lý tập trung", total.pcs_protected),
                ("Máy chủ được giám sát", total.servers_monitored),
            )
        ],
        widths=[5, 1, 1, 1, 1],
    )
    return Report(
        title=f"BÁO CÁO CÔNG TÁC BẢO ĐẢM AN NINH MẠNG HỆ THỐNG THÔNG TIN THEO CẤP ĐỘ NĂM {data.year}",
        subtitle=[
            "(Theo Mẫu số 08 Phụ lục Nghị định số 331/2026/NĐ-CP)",
            f"Kỳ số liệu: từ ngày {vn_date(first)} đến ngày {vn_date(last)}",
        ],
        sections=[
            Section(
                "I. Thông tin chung",
                paragraphs=[
                    f"Chủ quản hệ thống thông tin: {owner_name}",
                    f"Đơn vị báo cáo: {reporting_unit}",
                    f"Hệ thống thông tin thuộc phạm vi báo cáo: {vn_number(len(data.rows))}.",
                    f"Hạn báo cáo chủ quản: trước ngày {vn_date(data.internal_due)}; "
                    f"hạn báo cáo Bộ Công an: trước ngày {vn_date(data.authority_due)}.",
                ],
            ),
            Section("II. Danh mục hệ thống thông tin và cấp độ", table=table),
            Section("III. Số liệu tổng hợp", table=summary),
            Section("IV. Kiểm tra, đánh giá, diễn tập và sự cố", table=activity),
            Section(
                "V. Chỉ tiêu kế hoạch",
                paragraphs=[f"Số cảnh báo thực tế trong kỳ: {vn_number(total.alerts_real)}"],
                table=coverage,
            ),
        ],
        file_stem=f"bao-cao-nam-{data.year}",
    )
