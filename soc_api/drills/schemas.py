"""Request and response bodies of the drills endpoints."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from soc_api.assessments.schemas import ActionOut

DrillKind = Literal["tabletop", "live", "national"]
DrillStatus = Literal["planned", "running", "completed", "cancelled"]
Phase = Literal["start", "detection", "notification", "containment", "eradication", "recovery", "end", "other"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Participant(_In):
    name: str = Field(min_length=1, max_length=200)
    team: str = Field(default="", max_length=200)
    organisation: str = Field(default="", max_length=300)
    role: str = Field(default="", max_length=200)


def _hosts(values: list[str]) -> list[str]:
    return sorted({v.strip().lower() for v in values if v.strip()})


class PlanIn(_In):
    site: str = Field(min_length=1, max_length=64)
    year: int = Field(ge=2000, le=2100)
    title: str = Field(min_length=1, max_length=500)
    decision_no: str | None = Field(default=None, max_length=100)


class DrillIn(_In):
    site: str = Field(min_length=1, max_length=64)
    plan_id: int | None = None
    title: str = Field(min_length=1, max_length=500)
    kind: DrillKind
    scenario: str = Field(default="", max_length=50_000)
    planned_on: date
    system_ids: list[str] = Field(default_factory=list, max_length=200)
    participants: list[Participant] = Field(default_factory=list, max_length=500)
    participant_hosts: list[str] = Field(default_factory=list, max_length=5000)

    _norm_hosts = field_validator("participant_hosts")(_hosts)


class DrillPatch(_In):
    title: str | None = Field(default=None, min_length=1, max_length=500)
    scenario: str | None = Field(default=None, max_length=50_000)
    status: DrillStatus | None = None
    planned_on: date | None = None
    started_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    system_ids: list[str] | None = Field(default=None, max_length=200)
    participants: list[Participant] | None = Field(default=None, max_length=500)
    participant_hosts: list[str] | None = Field(default=None, max_length=5000)
    coordination_findings: str | None = Field(default=None, max_length=50_000)
    open_gaps: list[str] | None = Field(default=None, max_length=500)
    evaluation: str | None = Field(default=None, max_length=50_000)

    @field_validator("participant_hosts")
    @classmethod
    def _norm(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _hosts(values)


class TimelineIn(_In):
    at: AwareDatetime
    phase: Phase
    note: str = Field(default="", max_length=10_000)
    team: str = Field(default="", max_length=200)


class TimelineOut(BaseModel):
    id: int
    at: datetime
    phase: str
    note: str
    team: str
    created_by: str


class ResponseTimes(BaseModel):
    """Measured durations in minutes (None when the timeline lacks the two points)."""

    time_to_detect: float | None
    time_to_notify: float | None
    time_to_contain: float | None
    time_to_recover: float | None
    first_drill_alert_after: float | None  # live drills: first alert on a participant host after the start


class MinutesOut(BaseModel):
    filename: str
    content_type: str
    size: int
    sha256: str


class DrillOut(BaseModel):
    id: int
    plan_id: int | None
    site: str
    title: str
    kind: str
    scenario: str
    status: str
    planned_on: date
    started_at: datetime | None
    ended_at: datetime | None
    system_ids: list[str]
    participants: list[dict[str, str]]
    teams: list[str]
    participant_hosts: list[str]
    coordination_findings: str
    open_gaps: list[str]
    evaluation: str
    minutes: MinutesOut | None
    timeline: list[TimelineOut]
    response_times: ResponseTimes
    alert_ids: list[str]
    incident_ids: list[int]
    actions: list[ActionOut]
    version: int


class PlanOut(BaseModel):
    id: int
    site: str
    year: int
    title: str
    decision_no: str | None
    drills: list[DrillOut]
    planned: int
    completed: int
