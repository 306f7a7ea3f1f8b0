"""Incident request and response bodies. Input models bound every string and list."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Category = Literal[
    "malware", "intrusion", "denial_of_service", "data_leak", "phishing", "defacement",
    "unauthorised_access", "policy_violation", "other",
]  # fmt: skip
Status = Literal["detected", "analysing", "contained", "eradicated", "recovered", "closed"]
Phase = Literal["analysing", "contained", "eradicated", "recovered", "closed"]
ReportKind = Literal["initial", "update", "closure"]
ReportFormat = Literal["pdf", "docx"]
FactValue = bool | int | float
Id = Field(min_length=1, max_length=64)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Facts(_In):
    """Facts that decide seriousness and duties (all optional; unset = default)."""

    national_security_harm: bool | None = None
    serious_disruption: bool | None = None
    service_outage_hours: float | None = Field(default=None, ge=0, le=100_000)
    personal_data_breach: bool | None = None
    personal_data_subjects: int | None = Field(default=None, ge=0, le=1_000_000_000)
    state_secret_leak: bool | None = None
    critical_data_integrity_lost: bool | None = None
    loss_of_control: bool | None = None
    likely_spread: bool | None = None
    beyond_capacity: bool | None = None
    national_critical_system: bool | None = None
    declared_serious: bool | None = None

    def given(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class IncidentIn(_In):
    title: str = Field(min_length=1, max_length=500)
    category: Category
    site: str | None = Field(default=None, max_length=64)
    description: str = Field(default="", max_length=20_000)
    detected_at: AwareDatetime | None = None
    profile: str | None = Field(default=None, max_length=64)
    facts: Facts = Field(default_factory=Facts)
    system_ids: list[str] = Field(default_factory=list, max_length=50)
    hosts: list[str] = Field(default_factory=list, max_length=200)
    assignee: str | None = Field(default=None, max_length=64)
    alert_ids: list[str] = Field(default_factory=list, max_length=500)


class EscalateIn(_In):
    """Escalate alerts into a new incident (title and category default from the first alert)."""

    alert_ids: list[str] = Field(min_length=1, max_length=500)
    title: str | None = Field(default=None, min_length=1, max_length=500)
    category: Category = "other"
    description: str = Field(default="", max_length=20_000)
    facts: Facts = Field(default_factory=Facts)
    assignee: str | None = Field(default=None, max_length=64)


class LinkAlertsIn(_In):
    alert_ids: list[str] = Field(min_length=1, max_length=500)


class IncidentPatchIn(_In):
    title: str | None = Field(default=None, min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=20_000)
    category: Category | None = None
    facts: Facts | None = None
    add_system_ids: list[str] = Field(default_factory=list, max_length=50)
    add_hosts: list[str] = Field(default_factory=list, max_length=200)
    lessons_learned: str | None = Field(default=None, max_length=20_000)


class TransitionIn(_In):
    status: Status
    note: str | None = Field(default=None, max_length=4000)


class AssignIn(_In):
    assignee: str | None = Field(default=None, max_length=64)


class NoteIn(_In):
    text: str = Field(min_length=1, max_length=8000)


class TaskIn(_In):
    title: str = Field(min_length=1, max_length=500)
    phase: Phase = "analysing"
    owner_role: str = Field(default="officer", max_length=64)


class TaskPatchIn(_In):
    status: Literal["todo", "done", "skipped"] | None = None
    note: str | None = Field(default=None, max_length=4000)
    assignee: str | None = Field(default=None, max_length=64)
    unassign: bool = False


class ReportIn(_In):
    kind: ReportKind = "initial"
    format: ReportFormat = "pdf"


class SentIn(_In):
    sent_at: AwareDatetime | None = None
    reference: str | None = Field(default=None, max_length=200)  # official letter number, e-mail id
    report_id: int | None = Field(default=None, ge=1)


class AcknowledgedIn(_In):
    acknowledged_at: AwareDatetime | None = None


class Reason(BaseModel):
    id: str
    text: str
    source: str
    confidence: str


class IncidentOut(BaseModel):
    id: int
    title: str
    category: str
    severity: str
    status: str
    site: str | None
    detected_at: datetime
    created_at: datetime
    created_by: str
    closed_at: datetime | None
    assignee: str | None
    profile: str
    version: int


class TimelineOut(BaseModel):
    id: int
    ts: datetime
    actor: str
    kind: str
    action: str
    text: str


class TaskOut(BaseModel):
    id: int
    position: int
    playbook: str | None
    step_id: str | None
    phase: str
    title: str
    owner_role: str
    assignee: str | None
    status: str
    note: str | None
    done_by: str | None
    done_at: datetime | None
    version: int


class EvidenceOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    description: str
    uploaded_by: str
    uploaded_at: datetime


class ObligationOut(BaseModel):
    id: int
    obligation_id: str
    title: str
    recipient: str
    source: str
    report_kind: str
    immediate: bool
    due_at: datetime | None
    state: str
    overdue: bool
    seconds_left: int | None
    sent_at: datetime | None
    sent_by: str | None
    reference: str | None
    acknowledged_at: datetime | None
    report_id: int | None
    version: int


class ReportOut(BaseModel):
    id: int
    kind: str
    format: str
    filename: str
    size: int
    sha256: str
    generated_by: str
    generated_at: datetime


class IncidentDetail(IncidentOut):
    description: str
    facts: dict[str, FactValue]
    serious_reasons: list[Reason]
    lessons_learned: str | None
    state_times: dict[str, str]
    systems: list[str]
    hosts: list[str]
    alert_ids: list[str]
    tasks: list[TaskOut]
    obligations: list[ObligationOut]
    evidence: list[EvidenceOut]
    reports: list[ReportOut]


class IncidentList(BaseModel):
    items: list[IncidentOut]
    next_cursor: str | None


class TimelineList(BaseModel):
    items: list[TimelineOut]
    next_cursor: str | None


class CategoryOut(BaseModel):
    id: str
    title: str
    playbook: str | None


class ProfileOut(BaseModel):
    id: str
    title: str
    version: str
    effective_from: str
    serious_criteria: list[Reason]
    obligations: list[dict[str, Any]]
