"""Request and response bodies of the assessments and improvement-actions endpoints."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AssessmentKind = Literal["compliance", "effectiveness", "vulnerability_scan", "penetration_test"]
Phase = Literal["pre_go_live", "periodic", "ad_hoc"]
Mode = Literal["black_box", "grey_box", "white_box"]
Severity = Literal["informational", "low", "medium", "high", "critical"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FindingIn(_In):
    title: str = Field(min_length=1, max_length=500)
    severity: Severity
    description: str = Field(default="", max_length=20_000)


class ActionIn(_In):
    title: str = Field(min_length=1, max_length=500)
    owner: str = Field(min_length=1, max_length=200)
    due_date: date
    finding_id: int | None = None


class ActionClose(_In):
    closed_on: date
    note: str = Field(default="", max_length=20_000)


class AssessmentIn(_In):
    system_id: str = Field(min_length=1, max_length=64)
    kind: AssessmentKind
    phase: Phase = "periodic"
    mode: Mode | None = None
    independent: bool = False
    assessor_org: str | None = Field(default=None, max_length=64)  # organisation code
    assessor_name: str = Field(default="", max_length=300)
    performed_on: date
    summary: str = Field(default="", max_length=50_000)
    findings: list[FindingIn] = Field(default_factory=list, max_length=500)


class AssessmentPatch(_In):
    phase: Phase | None = None
    mode: Mode | None = None
    independent: bool | None = None
    assessor_name: str | None = Field(default=None, max_length=300)
    performed_on: date | None = None
    summary: str | None = Field(default=None, max_length=50_000)


class FindingOut(BaseModel):
    id: int
    title: str
    severity: str
    description: str


class ActionOut(BaseModel):
    id: int
    source_type: str
    source_id: int
    finding_id: int | None
    site: str
    title: str
    owner: str
    due_date: date
    closed_on: date | None
    closed_by: str | None
    closure_note: str
    overdue: bool
    version: int


class AssessmentOut(BaseModel):
    id: int
    system_id: str
    site: str
    kind: str
    phase: str
    mode: str | None
    independent: bool
    assessor_org: str | None
    assessor_name: str
    performed_on: date
    summary: str
    findings: list[FindingOut]
    actions: list[ActionOut]
    warnings: list[str] = Field(default_factory=list)
    created_by: str
    created_at: datetime
    version: int


class DueOut(BaseModel):
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
