"""What needs a reminder today: statutory dossier steps, assessments and drills coming due,
improvement actions due or overdue, and the annual-report dates.

Each source yields :class:`Reminder` items with a stable ``dedup_key`` (object + offset), so a
reminder is delivered once per threshold however often the job runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.assessments.models import ImprovementAction
from soc_api.assessments.obligations import Obligations
from soc_api.assessments.services.schedule import schedules
from soc_api.drills.models import Drill, DrillPlan
from soc_api.reminders.settings import RemindersSettings
from soc_api.reports.formatting import vn_date
from soc_api.reports.services.annual import KIND_LABELS
from soc_api.systems.calendar.holidays import WorkingCalendar
from soc_api.systems.models import Dossier, InformationSystem
from soc_api.systems.services.context import Ctx
from soc_api.systems.services.dossiers import next_step

EDITORS = frozenset({"admin", "officer"})
DECIDERS = frozenset({"admin", "officer", "approver"})


@dataclass(frozen=True)
class Reminder:
    kind: str
    site: str | None  # None: every site (province-wide dates)
    dedup_key: str
    title: str
    body: str
    due_date: date
    object_type: str
    object_id: str
    roles: frozenset[str] = EDITORS


def threshold(calendar: WorkingCalendar, today: date, due: date, offsets: list[int]) -> str | None:
    """The tightest offset crossed ("d3", "d0"), "overdue" after the date, None when not yet near."""
    remaining = calendar.working_days_between(today, due)
    if remaining < 0:
        return "overdue"
    crossed = [o for o in offsets if remaining <= o]
    return f"d{min(crossed)}" if crossed else None


def _when(mark: str, due: date) -> str:
    return f"đã quá hạn ngày {vn_date(due)}" if mark == "overdue" else f"hạn ngày {vn_date(due)}"


def dossier_steps(
    session: Session, ctx: Ctx, cal: WorkingCalendar, today: date, offsets: list[int]
) -> Iterator[Reminder]:
    q = select(Dossier, InformationSystem).join(InformationSystem, InformationSystem.id == Dossier.system_id)
    for dossier, system in session.execute(q.where(Dossier.status.in_(("submitted", "appraised")))):
        step = next_step(session, ctx, dossier, system)
        if step.due_date is None:
            continue
        mark = threshold(cal, today, step.due_date, offsets)
        if mark is None:
            continue
        verb = "Thẩm định" if step.action == "appraise" else "Phê duyệt"
        yield Reminder(
            kind="dossier",
            site=system.site,
            dedup_key=f"dossier:{dossier.id}:{dossier.status}:{mark}",
            title=f"{verb} hồ sơ cấp độ {system.name}: {_when(mark, step.due_date)}",
            body=f"Thời hạn theo {step.time_limit_source}; cơ quan: {step.organisation or step.authority}.",
            due_date=step.due_date,
            object_type="dossier",
            object_id=str(dossier.id),
            roles=DECIDERS,
        )


def assessments_due(
    session: Session, obligations: Obligations, cal: WorkingCalendar, today: date, offsets: list[int]
) -> Iterator[Reminder]:
    systems = {s.id: s for s in session.scalars(select(InformationSystem))}
    for system_id, items in schedules(session, list(systems.values()), obligations, today, 0).items():
        system = systems[system_id]
        for item in items:
            mark = threshold(cal, today, item.next_due, offsets)
            if mark is None:
                continue
            yield Reminder(
                kind="assessment",
                site=system.site,
                dedup_key=f"assessment:{system.id}:{item.kind}:{item.next_due.isoformat()}:{mark}",
                title=f"{KIND_LABELS[item.kind]} {system.name} (cấp độ {item.level}): {_when(mark, item.next_due)}",
                body=f"Chu kỳ {item.interval_months} tháng theo {item.source}.",
                due_date=item.next_due,
                object_type="system",
                object_id=system.id,
            )


def drills_due(session: Session, cal: WorkingCalendar, today: date, offsets: list[int]) -> Iterator[Reminder]:
    for drill in session.scalars(select(Drill).where(Drill.status == "planned")):
        mark = threshold(cal, today, drill.planned_on, offsets)
        if mark is None:
            continue
        yield Reminder(
            kind="drill",
            site=drill.site,
            dedup_key=f"drill:{drill.id}:{drill.planned_on.isoformat()}:{mark}",
            title=f"Diễn tập \u201c{drill.title}\u201d: {_when(mark, drill.planned_on)}",
            body=drill.scenario[:500],
            due_date=drill.planned_on,
            object_type="drill",
            object_id=str(drill.id),
        )


def drill_plans_missing(session: Session, obligations: Obligations, today: date) -> Iterator[Reminder]:
    """Sites with systems whose level requires a yearly drill but no drill plan for this year."""
    planned = set(session.scalars(select(DrillPlan.site).where(DrillPlan.year == today.year)))
    needing: dict[str, str] = {}
    for system in session.scalars(select(InformationSystem)):
        level = system.approved_level or system.proposed_level
        rule = obligations.for_profile(system.approved_profile or system.profile).drills
        if rule.months(level) is not None and system.site not in planned:
            needing.setdefault(system.site, rule.source)
    for site, source in sorted(needing.items()):
        yield Reminder(
            kind="drill_plan",
            site=site,
            dedup_key=f"drill_plan:{site}:{today.year}",
            title=f"Chưa có kế hoạch diễn tập năm {today.year}",
            body=f"Hệ thống cấp độ của đơn vị cần diễn tập hằng năm ({source}).",
            due_date=date(today.year, 12, 31),
            object_type="site",
            object_id=site,
        )


def actions_due(session: Session, cal: WorkingCalendar, today: date, offsets: list[int]) -> Iterator[Reminder]:
    for action in session.scalars(select(ImprovementAction).where(ImprovementAction.closed_on.is_(None))):
        mark = threshold(cal, today, action.due_date, offsets)
        if mark is None:
            continue
        yield Reminder(
            kind="action",
            site=action.site,
            dedup_key=f"action:{action.id}:{action.due_date.isoformat()}:{mark}",
            title=f"Hành động khắc phục \u201c{action.title}\u201d ({action.owner}): {_when(mark, action.due_date)}",
            body=f"Nguồn: {action.source_type} {action.source_id}.",
            due_date=action.due_date,
            object_type="improvement_action",
            object_id=str(action.id),
        )


def annual_report_dates(
    obligations: Obligations, cal: WorkingCalendar, today: date, offsets: list[int]
) -> Iterator[Reminder]:
    rule = obligations.reports.annual
    dates = (
        ("cutoff", rule.period(today.year)[1], "Chốt số liệu báo cáo năm"),
        ("internal", rule.internal_due_date(today.year), "Báo cáo năm gửi chủ quản"),
        ("authority", rule.authority_due_date(today.year), "Báo cáo năm gửi Bộ Công an"),
    )
    for key, due, label in dates:
        mark = threshold(cal, today, due, offsets)
        if mark is None or mark == "overdue":
            continue
        yield Reminder(
            kind="annual_report",
            site=None,
            dedup_key=f"annual_report:{today.year}:{key}:{mark}",
            title=f"{label}: hạn ngày {vn_date(due)}",
            body=f"Theo {rule.source}.",
            due_date=due,
            object_type="report",
            object_id=f"annual-{today.year}",
        )


def collect_all(
    session: Session, ctx: Ctx, obligations: Obligations, settings: RemindersSettings, cal: WorkingCalendar, today: date
) -> list[Reminder]:
    return [
        *dossier_steps(session, ctx, cal, today, settings.dossier_offsets),
        *assessments_due(session, obligations, cal, today, settings.assessment_offsets),
        *drills_due(session, cal, today, settings.drill_offsets),
        *drill_plans_missing(session, obligations, today),
        *actions_due(session, cal, today, settings.action_offsets),
        *annual_report_dates(obligations, cal, today, settings.report_offsets),
    ]
