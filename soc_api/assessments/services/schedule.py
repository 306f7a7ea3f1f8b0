"""When each assessment kind is next due for a system, from its level and the obligations file.

Next due = last assessment of that kind (pre-go-live or periodic) + the level's interval. A system
never assessed counts from its level approval date (or registration), so an approved system is
not overdue on the day it is approved but is once a full interval passes with no assessment.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.assessments.models import Assessment
from soc_api.assessments.obligations import Obligations, add_months
from soc_api.systems.calendar.holidays import VN_TZ
from soc_api.systems.models import InformationSystem

SCHEDULED_PHASES = ("pre_go_live", "periodic")


@dataclass(frozen=True)
class DueItem:
    system_id: str
    site: str
    kind: str
    level: int
    interval_months: int
    last_performed: date | None
    next_due: date
    overdue: bool
    due_soon: bool
    pre_go_live_required: bool
    pre_go_live_done: bool
    independent_required: bool
    source: str


def obligation_level(system: InformationSystem) -> int | None:
    """The level the obligations follow: the approved one, else the proposed one."""
    return system.approved_level or system.proposed_level


def _baseline(system: InformationSystem) -> date:
    if system.approval_decision_date is not None:
        return system.approval_decision_date
    return system.created_at.astimezone(VN_TZ).date()


def schedule_for(
    system: InformationSystem,
    done: Iterable[Assessment],
    obligations: Obligations,
    today: date,
    due_soon_days: int,
) -> list[DueItem]:
    level = obligation_level(system)
    if level is None:
        return []
    by_kind: dict[str, list[Assessment]] = defaultdict(list)
    for row in done:
        by_kind[row.kind].append(row)
    items: list[DueItem] = []
    rules = obligations.for_profile(system.approved_profile or system.profile).assessments
    for kind, rule in sorted(rules.items()):
        months = rule.months(level)
        if months is None:
            continue
        rows = by_kind.get(kind, [])
        scheduled = [r.performed_on for r in rows if r.phase in SCHEDULED_PHASES]
        last = max(scheduled) if scheduled else None
        due = add_months(last if last is not None else _baseline(system), months)
        items.append(
            DueItem(
                system_id=system.id,
                site=system.site,
                kind=kind,
                level=level,
                interval_months=months,
                last_performed=last,
                next_due=due,
                overdue=today > due,
                due_soon=today <= due <= today + timedelta(days=due_soon_days),
                pre_go_live_required=level in rule.pre_go_live_levels,
                pre_go_live_done=any(r.phase == "pre_go_live" for r in rows),
                independent_required=level in rule.independent_levels,
                source=rule.source,
            )
        )
    return items


def schedules(
    session: Session,
    systems: list[InformationSystem],
    obligations: Obligations,
    today: date,
    due_soon_days: int,
) -> dict[str, list[DueItem]]:
    """Schedules of many systems with one query for their assessments."""
    ids = [s.id for s in systems]
    done: dict[str, list[Assessment]] = defaultdict(list)
    if ids:
        for row in session.scalars(select(Assessment).where(Assessment.system_id.in_(ids))):
            done[row.system_id].append(row)
    return {s.id: schedule_for(s, done.get(s.id, []), obligations, today, due_soon_days) for s in systems}


def assessed_on_time(items: list[DueItem]) -> bool:
    """Assessed at least once and no required kind overdue (a system with no obligations is not)."""
    return bool(items) and any(i.last_performed for i in items) and not any(i.overdue for i in items)
