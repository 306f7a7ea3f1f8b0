"""Incident rule profiles and playbooks, loaded from data files.

A profile (``soc_api/profiles/incident-*.yaml``) says which incidents are serious and which
reports are owed by when; the law is still being detailed, so thresholds and deadlines change
without a code release. Conditions use the same small language as the level profiles
(:func:`soc_api.systems.levels.evaluate`).
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from soc_api.systems.levels import ConditionError, evaluate

PROFILES_DIR = Path(__file__).resolve().parents[1] / "profiles"
PLAYBOOKS_DIR = Path(__file__).resolve().parent / "playbooks"
PROFILE_PREFIX = "incident-"

CATEGORIES: dict[str, str] = {
    "malware": "Mã độc",
    "intrusion": "Xâm nhập hệ thống",
    "denial_of_service": "Từ chối dịch vụ",
    "data_leak": "Lộ, mất dữ liệu",
    "phishing": "Thư điện tử lừa đảo",
    "defacement": "Thay đổi giao diện trang thông tin",
    "unauthorised_access": "Truy cập trái phép",
    "policy_violation": "Vi phạm quy chế an toàn thông tin",
    "other": "Khác",
}
STATUSES = ("detected", "analysing", "contained", "eradicated", "recovered", "closed")
STATUS_TITLES: dict[str, str] = {
    "detected": "Phát hiện",
    "analysing": "Phân tích",
    "contained": "Đã ngăn chặn",
    "eradicated": "Đã loại bỏ nguyên nhân",
    "recovered": "Đã khôi phục",
    "closed": "Đã kết thúc",
}
SEVERITY_TITLES = {"normal": "Thông thường", "serious": "Nghiêm trọng"}

# Facts an incident carries (set by analysts) with their defaults; the derived facts
# ``max_system_level`` and ``state_secret_system`` come from the linked systems, ``serious`` from
# the criteria.
FACT_DEFAULTS: dict[str, Any] = {
    "national_security_harm": False,
    "serious_disruption": False,
    "service_outage_hours": 0.0,
    "personal_data_breach": False,
    "personal_data_subjects": 0,
    "state_secret_leak": False,
    "critical_data_integrity_lost": False,
    "loss_of_control": False,
    "likely_spread": False,
    "beyond_capacity": False,
    "national_critical_system": False,
    "declared_serious": False,
}
DERIVED_FACTS = ("max_system_level", "state_secret_system", "serious")
Confidence = Literal["V", "S", "M", "I"]


class RuleFileError(ValueError):
    """A profile or playbook file is missing or malformed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SeriousCriterion(_Strict):
    id: str
    text: str
    source: str
    confidence: Confidence
    when: dict[str, Any]


class Within(_Strict):
    hours: float | None = None
    days: int | None = None  # calendar days
    working_days: int | None = None  # on the Vietnamese working-day calendar

    @model_validator(mode="after")
    def _one_unit(self) -> Within:
        if sum(v is not None for v in (self.hours, self.days, self.working_days)) != 1:
            raise ValueError("within: give exactly one of hours, days, working_days")
        return self


class ObligationRule(_Strict):
    id: str
    title: str
    recipient: str
    source: str
    confidence: Confidence
    report_kind: Literal["initial", "update", "closure"]
    applies: dict[str, Any]
    anchor: Literal["detected", "recovered", "closed"]
    within: Within | None = None
    immediate: bool = False


class IncidentProfile(_Strict):
    id: str
    version: str
    title: str
    effective_from: date
    source: str
    serious_criteria: list[SeriousCriterion]
    obligations: list[ObligationRule]


class PlaybookStep(_Strict):
    id: str
    title: str
    phase: Literal["analysing", "contained", "eradicated", "recovered", "closed"]
    owner_role: str


class Playbook(_Strict):
    id: str
    title: str
    categories: list[str]
    steps: list[PlaybookStep] = Field(min_length=1)


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RuleFileError(f"{path}: {exc}") from None


def _all_facts() -> dict[str, Any]:
    return {**FACT_DEFAULTS, "max_system_level": None, "state_secret_system": False, "serious": False}


def _check_conditions(profile: IncidentProfile) -> None:
    """Evaluate every condition once on default facts, so a typo fails at load, not mid-incident."""
    facts = _all_facts()
    try:
        for c in profile.serious_criteria:
            evaluate(c.when, facts)
        for o in profile.obligations:
            evaluate(o.applies, facts)
    except ConditionError as exc:
        raise RuleFileError(f"profile {profile.id}: {exc}") from None


@lru_cache(maxsize=16)
def load_profiles(directory: Path | None = None) -> dict[str, IncidentProfile]:
    folder = directory or PROFILES_DIR
    out: dict[str, IncidentProfile] = {}
    for path in sorted(folder.glob(f"{PROFILE_PREFIX}*.yaml")):
        try:
            profile = IncidentProfile.model_validate(_load_yaml(path))
        except ValidationError as exc:
            raise RuleFileError(f"{path}: {exc}") from None
        _check_conditions(profile)
        out[profile.id] = profile
    if not out:
        raise RuleFileError(f"no {PROFILE_PREFIX}*.yaml profile in {folder}")
    return out


def profile_for(profiles: dict[str, IncidentProfile], detected_at: datetime, forced: str | None) -> IncidentProfile:
    """The forced profile, else the newest one already in force on the detection date."""
    if forced is not None:
        if forced not in profiles:
            raise RuleFileError(f"unknown incident profile {forced!r}; known: {', '.join(sorted(profiles))}")
        return profiles[forced]
    day = detected_at.date()
    in_force = [p for p in profiles.values() if p.effective_from <= day]
    pool = in_force or list(profiles.values())
    return max(pool, key=lambda p: p.effective_from) if in_force else min(pool, key=lambda p: p.effective_from)


@lru_cache(maxsize=16)
def load_playbooks(directory: Path | None = None) -> dict[str, Playbook]:
    """Playbooks by category (each file names the categories it serves)."""
    folder = directory or PLAYBOOKS_DIR
    by_category: dict[str, Playbook] = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            book = Playbook.model_validate(_load_yaml(path))
        except ValidationError as exc:
            raise RuleFileError(f"{path}: {exc}") from None
        for category in book.categories:
            if category not in CATEGORIES:
                raise RuleFileError(f"{path}: unknown category {category!r}")
            by_category[category] = book
    return by_category
