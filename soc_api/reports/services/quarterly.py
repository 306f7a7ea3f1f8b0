"""The quarterly progress report of the plans: indicators per site against the year's targets and
what was done in the quarter (assessments, drills, improvement actions, incidents)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.assessments.models import Assessment, ImprovementAction
from soc_api.kpi.schemas import KpiReport, Ratio, SiteKpi
from soc_api.reports.document import Cell, Report, Section, Table
from soc_api.reports.formatting import vn_date, vn_percent
from soc_api.reports.services.annual import KIND_LABELS
from soc_api.systems.models import InformationSystem


def quarter_period(year: int, quarter: int) -> tuple[date, date]:
    first = date(year, 3 * quarter - 2, 1)
    nxt = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return first, nxt - timedelta(days=1)


def _pct(r: Ratio) -> str:
    target = f" (mục tiêu {vn_percent(r.target)})" if r.target is not None else ""
    return f"{r.count}/{r.of} = {vn_percent(r.share)}{target}"


def _site_row(k: SiteKpi) -> list[Cell]:
    return [
        k.name,
        k.systems_total,
        _pct(k.systems_level_approved),
        _pct(k.systems_plan_full),
        _pct(k.systems_protected_by_level),
        _pct(k.pcs_monitored),
        _pct(k.pcs_protected),
        _pct(k.drills_done),
        k.incidents.total,
    ]


def build(session: Session, sites: list[str], year: int, quarter: int, kpi: KpiReport, reporting_unit: str) -> Report:
    first, last = quarter_period(year, quarter)
    assessed = session.scalars(
        select(Assessment.kind)
        .join(InformationSystem, InformationSystem.id == Assessment.system_id)
        .where(InformationSystem.site.in_(sites), Assessment.performed_on >= first, Assessment.performed_on <= last)
    )
    by_kind = Counter(assessed)
    closed = session.scalars(
        select(ImprovementAction.id).where(
            ImprovementAction.site.in_(sites), ImprovementAction.closed_on >= first, ImprovementAction.closed_on <= last
        )
    )
    done_rows: list[list[Cell]] = [[label, by_kind.get(k, 0)] for k, label in KIND_LABELS.items()]
    done_rows += [
        ["Số cuộc diễn tập đã tổ chức (lũy kế năm)", kpi.total.drills_done.count],
        ["Số hành động khắc phục đã hoàn thành trong quý", len(list(closed))],
        ["Số hành động khắc phục quá hạn", kpi.total.actions_overdue],
        ["Số sự cố an ninh mạng (không tính diễn tập, lũy kế năm)", kpi.total.incidents.total],
    ]
    header = [
        "Đơn vị",
        "Số HTTT",
        "Đã phê duyệt cấp độ",
        "Triển khai đầy đủ phương án",
        "Bảo đảm ANM theo cấp độ",
        "Máy tính được giám sát",
        "Máy tính được bảo vệ tập trung",
        "Diễn tập đã thực hiện",
        "Sự cố",
    ]
    return Report(
        title=f"BÁO CÁO TIẾN ĐỘ CÔNG TÁC BẢO ĐẢM AN NINH MẠNG QUÝ {quarter} NĂM {year}",
        subtitle=[
            f"Đơn vị báo cáo: {reporting_unit}",
            f"Kỳ báo cáo: từ ngày {vn_date(first)} đến ngày {vn_date(last)}",
        ],
        sections=[
            Section(
                "I. Chỉ tiêu theo đơn vị",
                table=Table(
                    header=header,
                    rows=[*[_site_row(k) for k in kpi.sites], ["Tổng cộng", *_site_row(kpi.total)[1:]]],
                    widths=[1.6, 0.7, 1.4, 1.4, 1.4, 1.4, 1.4, 1.2, 0.6],
                ),
            ),
            Section(
                "II. Kết quả thực hiện trong quý",
                table=Table(header=["Nội dung", "Số lượng"], rows=done_rows, widths=[5, 1.5]),
            ),
        ],
        file_stem=f"bao-cao-quy-{quarter}-{year}",
    )
