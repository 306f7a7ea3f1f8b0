"""Reporting deadlines of one incident under its rule profile.

Each obligation runs from an anchor (detection, end of recovery, closure) for a span in hours,
calendar days or Vietnamese working days; "immediate" duties are due at the anchor itself. An
obligation whose anchor has not happened yet (a closure report of an open incident) has no due
time yet but is still listed, so officers see what will be owed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from soc_api.incidents.rules import IncidentProfile, ObligationRule
from soc_api.systems.calendar.holidays import WorkingCalendar
from soc_api.systems.levels import evaluate


@dataclass(frozen=True)
class Anchors:
    detected: datetime
    recovered: datetime | None
    closed: datetime | None

    def of(self, name: str) -> datetime | None:
        if name == "detected":
            return self.detected
        if name == "recovered":  # recovery may be skipped on the way to closure
            return self.recovered or self.closed
        return self.closed


@dataclass(frozen=True)
class Duty:
    obligation_id: str
    title: str
    recipient: str
    source: str
    report_kind: str
    immediate: bool
    due_at: datetime | None


def due_time(rule: ObligationRule, anchors: Anchors, calendar: WorkingCalendar) -> datetime | None:
    start = anchors.of(rule.anchor)
    if start is None:
        return None
    if rule.immediate:
        return start
    within = rule.within
    if within is None:
        return None
    if within.hours is not None:
        return start + timedelta(hours=within.hours)
    if within.days is not None:
        return start + timedelta(days=within.days)
    assert within.working_days is not None
    return calendar.deadline(start, within.working_days)


def duties(profile: IncidentProfile, facts: dict[str, Any], anchors: Anchors, calendar: WorkingCalendar) -> list[Duty]:
    """The obligations that apply to an incident with these facts (``facts["serious"]`` set)."""
    return [
        Duty(
            obligation_id=rule.id,
            title=rule.title,
            recipient=rule.recipient,
            source=rule.source,
            report_kind=rule.report_kind,
            immediate=rule.immediate,
            due_at=due_time(rule, anchors, calendar),
        )
        for rule in profile.obligations
        if evaluate(rule.applies, facts)
    ]


def is_overdue(due_at: datetime | None, state: str, now: datetime) -> bool:
    return state == "pending" and due_at is not None and due_at < now
