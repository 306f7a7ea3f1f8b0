"""Rule profiles: the legal parameters as versioned data files under ``soc_api/profiles``.

The authorities are still issuing details (risk framework, monitoring rules...), so criteria,
authorities, time limits and requirement groups must change without a code release. Each item
keeps its legal source and the research confidence mark (V verified, S secondary, M memory,
I inference) so the UI can show how firm a rule is.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

PROFILES_DIR = Path(__file__).resolve().parents[1] / "profiles"
CURRENT = "current"
LEGACY = "legacy-85-2016"
Confidence = Literal["V", "S", "M", "I"]
AuthorityKind = Literal["dedicated_unit", "owner", "independent_council", "mps", "mod", "cipher_committee", "mic"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Criterion(_Strict):
    id: str
    level: int | Literal["from_fact"]
    level_fact: str | None = None
    text: str
    source: str
    confidence: Confidence
    when: dict[str, Any]


class TextItem(_Strict):
    id: str
    text: str


class RiskAssessmentRule(_Strict):
    required: bool
    source: str
    confidence: Confidence
    triggers: list[TextItem]
    content: list[TextItem]
    detailed_report_levels: list[int] = Field(default_factory=list)
    detailed_report_source: str = ""
    detailed_report_content: list[TextItem] = Field(default_factory=list)


class LevelAuthorities(_Strict):
    appraise: AuthorityKind
    approve: AuthorityKind
    note: str = ""


class IndependenceRule(_Strict):
    source: str
    confidence: Confidence
    replace: AuthorityKind
    with_: AuthorityKind = Field(alias="with")


class Authorities(_Strict):
    source: str
    confidence: Confidence
    by_level: dict[int, LevelAuthorities]
    sector_appraiser: dict[str, AuthorityKind] = Field(default_factory=dict)
    independence: IndependenceRule


class TimeLimit(_Strict):
    days: int | None
    source: str
    confidence: Confidence


class TimeLimits(_Strict):
    incomplete_reply: TimeLimit
    appraisal: dict[int, TimeLimit]
    approval: TimeLimit


class DossierPart(_Strict):
    id: str
    title: str
    levels: list[int]
    source: str
    confidence: Confidence
    before: Literal["submit", "approve"] = "submit"


class PlanPartItem(_Strict):
    id: str
    title: str


class PlanParts(_Strict):
    source: str
    confidence: Confidence
    items: list[PlanPartItem]


class RequirementGroup(_Strict):
    id: str
    kind: Literal["management", "technical"]
    title: str
    levels: list[int]
    source: str
    confidence: Confidence
    observed: Literal["agents_reporting", "endpoint_protection", "monitoring_connected", "log_retention"] | None = None


class LogRetention(_Strict):
    source: str
    confidence: Confidence
    by_level: dict[int, int]


class Profile(_Strict):
    id: str
    version: str
    title: str
    effective_from: date
    effective_until: date | None = None
    source: str
    confidence: Confidence
    criteria: list[Criterion]
    risk_assessment: RiskAssessmentRule
    authorities: Authorities
    time_limits: TimeLimits
    dossier_parts: list[DossierPart]
    plan_parts: PlanParts
    requirement_groups: list[RequirementGroup]
    log_retention_days: LogRetention
    level_facts: list[str]

    def parts_for(self, level: int) -> list[DossierPart]:
        return [p for p in self.dossier_parts if level in p.levels]

    def groups_for(self, level: int) -> list[RequirementGroup]:
        return [g for g in self.requirement_groups if level in g.levels]

    def appraisal_days(self, level: int) -> TimeLimit | None:
        return self.time_limits.appraisal.get(level)


class ProfileError(ValueError):
    pass


def available_profiles(directory: Path | None = None) -> list[str]:
    root = directory or PROFILES_DIR
    # the folder also holds the calendar and the incident-reporting profiles, which are not level profiles
    return sorted(p.stem for p in root.glob("*.yaml") if not p.stem.startswith(("calendar", "incident-")))


@lru_cache(maxsize=16)
def load_profile(profile_id: str, directory: Path | None = None) -> Profile:
    """Load and validate one profile; unknown ids and malformed files raise :class:`ProfileError`."""
    root = directory or PROFILES_DIR
    if profile_id not in available_profiles(root):
        raise ProfileError(f"unknown profile {profile_id!r}; known: {', '.join(available_profiles(root))}")
    raw = yaml.safe_load((root / f"{profile_id}.yaml").read_text(encoding="utf-8"))
    try:
        profile = Profile.model_validate(raw)
    except ValueError as exc:
        raise ProfileError(f"profile {profile_id!r} is malformed: {exc}") from None
    if profile.id != profile_id:
        raise ProfileError(f"profile file {profile_id}.yaml declares id {profile.id!r}")
    return profile
