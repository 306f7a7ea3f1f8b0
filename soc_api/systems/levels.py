"""Level determination: a pure function from registry facts and a profile to the minimum level.

Each criterion is a small condition tree in the profile (``all``/``any``/``not`` over
``{fact, eq|in|gte|lt|contains_any|subset_of}``). Every criterion that matches is reported with
its source, and the proposal is the highest matched level (NĐ 331 Art 8: "highest level wins").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from soc_api.systems.profiles import Criterion, Profile

SystemType = Literal["internal", "public_service", "infrastructure", "ics", "other"]
InfoType = Literal["public", "private", "personal", "state_secret"]
InfraScope = Literal["none", "one_agency", "sector", "province", "multi_province", "national"]
Impact = Literal["none", "harm", "serious", "especially_serious"]
IcsGrade = Literal["none", "IV", "III", "II", "I", "special"]
Sector = Literal["civil", "military", "cipher", "police"]


def _only_public() -> list[InfoType]:
    return ["public"]


class LevelFacts(BaseModel):
    """The registry facts the criteria read (names are the ``fact`` keys in the profiles)."""

    model_config = ConfigDict(extra="forbid")

    system_type: SystemType = "internal"
    information_types: list[InfoType] = Field(default_factory=_only_public)
    personal_data_basic_subjects: int = Field(default=0, ge=0)
    personal_data_sensitive_subjects: int = Field(default=0, ge=0)
    users_count: int = Field(default=0, ge=0)
    handles_admin_procedures: bool = False
    online_public_service_level: int = Field(default=0, ge=0, le=4)
    conditional_business_service: bool = False
    infrastructure_scope: InfraScope = "none"
    national_security_impact: Impact = "none"
    defence_security: bool = False
    national_egov: bool = False
    requires_24x7: bool = False
    ics_work_grade: IcsGrade = "none"
    central_national_data: bool = False
    international_infrastructure: bool = False
    pm_decided_level: int | None = Field(default=None, ge=1, le=5)
    risk_assessed_level: int | None = Field(default=None, ge=1, le=5)
    sector: Sector = "civil"


class ConditionError(ValueError):
    """A profile condition names an unknown fact or operator (a bug in the data file)."""


_OPERATORS = ("eq", "in", "gte", "lt", "contains_any", "subset_of")


def evaluate(condition: dict[str, Any], facts: dict[str, Any]) -> bool:
    if "all" in condition:
        return all(evaluate(c, facts) for c in condition["all"])
    if "any" in condition:
        return any(evaluate(c, facts) for c in condition["any"])
    if "not" in condition:
        return not evaluate(condition["not"], facts)
    name = condition.get("fact")
    if name not in facts:
        raise ConditionError(f"unknown fact {name!r} in condition {condition}")
    ops = [op for op in _OPERATORS if op in condition]
    if len(ops) != 1:
        raise ConditionError(f"condition needs exactly one of {_OPERATORS}: {condition}")
    op, expected, value = ops[0], condition[ops[0]], facts[name]
    if op == "eq":
        return bool(value == expected)
    if op == "in":
        return value in expected
    if value is None:
        return False
    if op == "gte":
        return bool(value >= expected)
    if op == "lt":
        return bool(value < expected)
    if op == "contains_any":
        return any(v in value for v in expected)
    return set(value) <= set(expected)  # subset_of


@dataclass(frozen=True)
class Driver:
    criterion_id: str
    level: int
    text: str
    source: str
    confidence: str


@dataclass(frozen=True)
class RiskAssessmentNeed:
    required: bool
    source: str
    triggers: list[dict[str, str]]
    content: list[dict[str, str]]
    detailed_report: bool
    detailed_report_content: list[dict[str, str]]


@dataclass(frozen=True)
class Determination:
    profile: str
    profile_version: str
    level: int | None  # None: no criterion matched, the level must come from a risk assessment
    drivers: list[Driver]  # the criteria at ``level`` (what drove it)
    matched: list[Driver]  # every matched criterion, highest first
    risk_assessment: RiskAssessmentNeed
    notes: list[str] = field(default_factory=list)


def _criterion_level(criterion: Criterion, facts: dict[str, Any]) -> int:
    if criterion.level == "from_fact":
        value = facts.get(criterion.level_fact or "")
        return int(value) if value is not None else 0
    return criterion.level


def determine(profile: Profile, facts: LevelFacts) -> Determination:
    values = facts.model_dump()
    matched: list[Driver] = []
    for criterion in profile.criteria:
        if evaluate(criterion.when, values):
            found = _criterion_level(criterion, values)
            if found >= 1:
                matched.append(Driver(criterion.id, found, criterion.text, criterion.source, criterion.confidence))
    matched.sort(key=lambda d: (-d.level, d.criterion_id))
    level = matched[0].level if matched else None
    notes: list[str] = []
    if level is None:
        notes.append("no criterion matched: record a risk assessment to set the level")
    if "state_secret" in facts.information_types:
        notes.append("state-secret system: registered for tracking only, the SOC never ingests its content")
    rule = profile.risk_assessment
    need = RiskAssessmentNeed(
        required=rule.required,
        source=rule.source,
        triggers=[t.model_dump() for t in rule.triggers],
        content=[c.model_dump() for c in rule.content],
        detailed_report=level is not None and level in rule.detailed_report_levels,
        detailed_report_content=[c.model_dump() for c in rule.detailed_report_content],
    )
    return Determination(
        profile=profile.id,
        profile_version=profile.version,
        level=level,
        drivers=[d for d in matched if d.level == level],
        matched=matched,
        risk_assessment=need,
        notes=notes,
    )


def level_facts_changed(profile: Profile, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Names of the level-relevant facts whose value differs (triggers a re-determination)."""
    return [name for name in profile.level_facts if before.get(name) != after.get(name)]
