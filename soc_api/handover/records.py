"""The typed input records package builders take: one per package type.

Builders never read the database themselves; DB adapters (:mod:`soc_api.handover.adapters`) or
the caller fill these records, so a package type whose tables do not exist yet (drills) is built
from records the caller provides. Times must be timezone-aware and are stored as UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

Severity = Literal["informational", "low", "medium", "high", "critical"]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime refused: give a time zone")
    return value.astimezone(UTC)


UtcTime = Annotated[datetime, AfterValidator(_utc)]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Period(Record):
    start: UtcTime
    end: UtcTime


class Indicator(Record):
    """An observable seen in alerts: an IP, a domain, a URL or a file hash."""

    type: Literal["ipv4", "ipv6", "domain", "url", "md5", "sha1", "sha256"]
    value: str = Field(min_length=1, max_length=2048)
    count: int = Field(default=1, ge=1)
    first_seen: UtcTime
    last_seen: UtcTime


class AlertBrief(Record):
    id: str
    rule_id: str
    rule_title: str
    severity: Severity
    timestamp: UtcTime
    host_name: str | None = None
    user_name: str | None = None
    source_ip: str | None = None
    destination_ip: str | None = None
    techniques: list[str] = Field(default_factory=list)


class Contact(Record):
    name: str
    title: str = ""
    phone: str = ""
    email: str = ""


class IncidentReport(Record):
    """An incident report (initial notice, progress or closure: NĐ 331 Art 31, QĐ 05 Art 11.4)."""

    incident_id: str
    report_kind: Literal["initial", "progress", "closure"] = "initial"
    title: str
    category: str
    severity: Literal["normal", "serious"]  # the reporting class (serious incidents have their own deadlines)
    status: str
    serious: bool = False
    detected_at: UtcTime
    reported_at: UtcTime
    description: str = ""
    affected_systems: list[str] = Field(default_factory=list)
    contact: Contact | None = None
    measures: list[str] = Field(default_factory=list)
    recommendations: str = ""
    alerts: list[AlertBrief] = Field(default_factory=list)
    indicators: list[Indicator] = Field(default_factory=list)


class IncidentUpdate(Record):
    """A change in an incident already reported (status, measures, a note)."""

    incident_id: str
    changed_at: UtcTime
    status: str
    note: str = ""
    measures: list[str] = Field(default_factory=list)


class DrillRecord(Record):
    """A drill (diễn tập): no drills table yet, so the caller supplies it."""

    drill_id: str
    name: str
    held_on: date
    scenario: str
    systems: list[str] = Field(default_factory=list)
    participants: list[str] = Field(default_factory=list)
    response_minutes: float | None = Field(default=None, ge=0)
    findings: list[str] = Field(default_factory=list)
    gaps: list[str] = Field(default_factory=list)


class DossierStatus(Record):
    """Where a security-level dossier stands, and its decision once approved."""

    dossier_id: str
    system_id: str
    system_name: str
    status: str
    proposed_level: int = Field(ge=1, le=5)
    approved_level: int | None = Field(default=None, ge=1, le=5)
    decision_no: str | None = None
    decision_date: date | None = None
    submitted_at: UtcTime | None = None
    approved_at: UtcTime | None = None
    updated_at: UtcTime


class KpiSnapshot(Record):
    period: Period
    alerts_total: int = Field(ge=0)
    alerts_by_severity: dict[str, int]
    incidents_opened: int = Field(ge=0)
    incidents_closed: int = Field(ge=0)
    serious_incidents: int = Field(ge=0)
    mean_time_to_acknowledge_s: float | None = Field(default=None, ge=0)
    mean_time_to_close_s: float | None = Field(default=None, ge=0)
    false_positive_rate: float | None = Field(default=None, ge=0, le=1)


class Count(Record):
    key: str
    label: str = ""
    count: int = Field(ge=0)


class AlertSummary(Record):
    period: Period
    total: int = Field(ge=0)
    by_severity: dict[str, int]
    by_rule: list[Count] = Field(default_factory=list)
    by_technique: list[Count] = Field(default_factory=list)
    top_hosts: list[Count] = Field(default_factory=list)
    indicators: list[Indicator] = Field(default_factory=list)
