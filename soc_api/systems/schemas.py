"""Request and response bodies of the systems, dossiers and calendar endpoints."""

from __future__ import annotations

import ipaddress
from datetime import date, datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from soc_api.systems.levels import LevelFacts
from soc_api.systems.models import ORG_KINDS

PlanState = Literal["not_started", "partial", "full"]
OrgKind = Literal["agency", "dedicated_unit", "independent_council", "mps", "mod", "cipher_committee", "mic"]
assert set(ORG_KINDS) == set(get_args(OrgKind))

Slug = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrganisationIn(_In):
    code: str = Slug
    name: str = Field(min_length=1, max_length=300)
    kind: OrgKind = "agency"
    site: str | None = Field(default=None, max_length=64)
    contact: dict[str, str] = Field(default_factory=dict, max_length=20)


class OrganisationOut(BaseModel):
    id: int
    code: str
    name: str
    kind: str
    site: str | None
    contact: dict[str, Any]
    members: list[str] = Field(default_factory=list)


class MemberIn(_In):
    username: str = Field(min_length=1, max_length=64)


class Component(_In):
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(default="", max_length=100)  # server, application, network device...
    location: str = Field(default="", max_length=200)
    os: str = Field(default="", max_length=100)
    purpose: str = Field(default="", max_length=500)


def _check_cidrs(values: list[str]) -> list[str]:
    out = []
    for value in values:
        try:
            out.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError:
            raise ValueError(f"not a CIDR: {value!r}") from None
    return out


class SystemBase(_In):
    name: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=10_000)
    site: str = Field(min_length=1, max_length=64)
    owner_org: str = Field(min_length=1, max_length=64, description="chủ quản (organisation code)")
    operator_org: str = Field(min_length=1, max_length=64, description="đơn vị vận hành")
    security_unit_org: str = Field(min_length=1, max_length=64, description="đơn vị chuyên trách ANM")
    council_org: str | None = Field(default=None, max_length=64, description="hội đồng thẩm định độc lập")
    facts: LevelFacts = Field(default_factory=LevelFacts)
    admin_procedure_level: str | None = Field(default=None, max_length=64)
    network_zones: list[str] = Field(default_factory=list, max_length=50)
    cidrs: list[str] = Field(default_factory=list, max_length=500)
    components: list[Component] = Field(default_factory=list, max_length=500)
    security_regulation_no: str | None = Field(default=None, max_length=100)
    security_regulation_date: date | None = None
    plan_target_date: date | None = None

    @field_validator("cidrs")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        return _check_cidrs(values)


class SystemIn(SystemBase):
    id: str = Slug
    profile: str | None = Field(default=None, max_length=64)


class SystemPatch(_In):
    name: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=10_000)
    owner_org: str | None = Field(default=None, max_length=64)
    operator_org: str | None = Field(default=None, max_length=64)
    security_unit_org: str | None = Field(default=None, max_length=64)
    council_org: str | None = Field(default=None, max_length=64)
    facts: LevelFacts | None = None
    admin_procedure_level: str | None = Field(default=None, max_length=64)
    network_zones: list[str] | None = Field(default=None, max_length=50)
    cidrs: list[str] | None = Field(default=None, max_length=500)
    components: list[Component] | None = Field(default=None, max_length=500)
    security_regulation_no: str | None = Field(default=None, max_length=100)
    security_regulation_date: date | None = None
    plan_target_date: date | None = None
    profile: str | None = Field(default=None, max_length=64)

    @field_validator("cidrs")
    @classmethod
    def _cidrs(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _check_cidrs(values)


class HostIn(_In):
    host_name: str | None = Field(default=None, min_length=1, max_length=255)
    agent_id: str | None = Field(default=None, min_length=1, max_length=64)
    ip: str | None = Field(default=None, max_length=64)
    role: str = Field(default="", max_length=100)

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            raise ValueError(f"not an IP address: {value!r}") from None


class HostOut(BaseModel):
    id: int
    host_name: str | None
    agent_id: str | None
    ip: str | None
    role: str


class SystemOut(BaseModel):
    id: str
    name: str
    description: str
    site: str
    owner_org: str
    operator_org: str
    security_unit_org: str
    council_org: str | None
    facts: dict[str, Any]
    state_secret: bool
    state_secret_note: str | None
    admin_procedure_level: str | None
    network_zones: list[str]
    cidrs: list[str]
    components: list[dict[str, Any]]
    profile: str
    proposed_level: int | None
    approved_level: int | None
    approved_profile: str | None
    approval_decision_no: str | None
    approval_decision_date: date | None
    security_regulation_no: str | None
    security_regulation_date: date | None
    level_review_required: bool
    level_review_reasons: list[str]
    plan_state: str
    plan_target_date: date | None
    hosts: list[HostOut]
    version: int


class DriverOut(BaseModel):
    criterion_id: str
    level: int
    text: str
    source: str
    confidence: str


class DeterminationOut(BaseModel):
    profile: str
    profile_version: str
    level: int | None
    drivers: list[DriverOut]
    matched: list[DriverOut]
    risk_assessment: dict[str, Any]
    risk_assessment_recorded: bool
    notes: list[str]


class DetermineIn(_In):
    facts: LevelFacts
    profile: str = Field(default="current", max_length=64)


class RiskAssessmentIn(_In):
    trigger: str = Field(min_length=1, max_length=64)
    assessed_on: date
    assessed_level: int | None = Field(default=None, ge=1, le=5)
    content: dict[str, str] = Field(default_factory=dict, max_length=30)


class RiskAssessmentOut(BaseModel):
    id: int
    trigger: str
    assessed_on: date
    assessed_level: int | None
    content: dict[str, str]
    created_by: str
    missing_content: list[str]


class DossierIn(_In):
    proposed_level: int | None = Field(default=None, ge=1, le=5, description="default: the determined minimum")
    profile: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=2000, description="needed above the minimum")


class ReturnIn(_In):
    reason: str = Field(min_length=1, max_length=5000)


class AppraiseIn(_In):
    opinion: str = Field(min_length=1, max_length=10_000)


class ApproveIn(_In):
    decision_no: str = Field(min_length=1, max_length=100)
    decision_date: date
    level: int | None = Field(default=None, ge=1, le=5, description="a higher level than proposed needs a reason")
    reason: str | None = Field(default=None, max_length=2000)


class DocumentOut(BaseModel):
    id: int
    part: str
    version: int
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime


class PartOut(BaseModel):
    id: str
    title: str
    source: str
    confidence: str
    needed_before: str
    documents: list[DocumentOut]


class NextStep(BaseModel):
    action: str | None
    authority: str | None  # authority kind
    organisation: str | None  # the organisation's name
    due_at: datetime | None
    due_date: date | None
    time_limit_source: str | None
    overdue: bool = False


class DossierOut(BaseModel):
    id: int
    system_id: str
    profile: str
    status: str
    minimum_level: int | None
    proposed_level: int
    approved_level: int | None
    override_reason: str | None
    decision_no: str | None
    decision_date: date | None
    returned_reason: str | None
    appraisal_opinion: str | None
    appraised_by: str | None
    approved_by: str | None
    submitted_at: datetime | None
    appraised_at: datetime | None
    approved_at: datetime | None
    determination: dict[str, Any]
    parts: list[PartOut]
    missing_parts: list[str]
    next: NextStep
    version: int


class PlanItemPatch(_In):
    state: PlanState | None = None
    target_date: date | None = None
    evidence: list[dict[str, str]] | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=5000)


class ObservedControl(BaseModel):
    control: str
    status: Literal["ok", "gap", "unknown"]
    detail: str
    data: dict[str, Any] = Field(default_factory=dict)


class PlanItemOut(BaseModel):
    id: int
    group_id: str
    kind: str
    title: str
    source: str
    state: str
    target_date: date | None
    evidence: list[dict[str, str]]
    note: str
    observed: ObservedControl | None
    version: int


class PlanOut(BaseModel):
    system_id: str
    level: int | None
    profile: str
    plan_parts: list[dict[str, str]]
    state: str
    target_date: date | None
    items: list[PlanItemOut]


class HolidayOut(BaseModel):
    date: date
    name: str


class WorkingDaysOut(BaseModel):
    start: date
    days: int | None
    end: date | None
    due_date: date | None
    working_days_between: int | None
    holidays: list[HolidayOut]
