"""Level determination over a table of registry cases, under the current and the legacy profile."""

from __future__ import annotations

from typing import Any

import pytest

from soc_api.systems.levels import ConditionError, LevelFacts, determine, evaluate, level_facts_changed
from soc_api.systems.profiles import CURRENT, LEGACY, ProfileError, available_profiles, load_profile

# (case id, facts, expected level under current, the criteria that must drive it)
CURRENT_CASES: list[tuple[str, dict[str, Any], int | None, set[str]]] = [
    ("internal public only", {}, 1, {"l1-internal-public"}),
    ("internal private", {"information_types": ["public", "private"]}, 2, {"l2-internal-private"}),
    ("internal personal", {"information_types": ["personal"]}, 2, {"l2-internal-private"}),
    ("online service, unconditional", {"system_type": "public_service"}, 2, {"l2-online-service-unconditional"}),
    (
        "online service, 99,999 basic subjects",
        {"system_type": "public_service", "information_types": ["personal"], "personal_data_basic_subjects": 99_999},
        2,
        {"l2-online-service-unconditional", "l2-personal-data-small"},
    ),
    (
        "100,000 basic subjects",
        {"system_type": "public_service", "personal_data_basic_subjects": 100_000},
        3,
        {"l3-personal-data-large"},
    ),
    (
        "10,000 sensitive subjects",
        {"system_type": "public_service", "personal_data_sensitive_subjects": 10_000},
        3,
        {"l3-personal-data-large"},
    ),
    (
        "9,999 sensitive subjects stays level 2",
        {"system_type": "public_service", "personal_data_sensitive_subjects": 9_999},
        2,
        {"l2-online-service-unconditional", "l2-personal-data-small"},
    ),
    (
        "infrastructure, one agency",
        {"system_type": "infrastructure", "infrastructure_scope": "one_agency"},
        2,
        {"l2-infrastructure-one-agency"},
    ),
    (
        "infrastructure, one province",
        {"system_type": "infrastructure", "infrastructure_scope": "province"},
        3,
        {"l3-shared-infrastructure"},
    ),
    ("state secret", {"information_types": ["state_secret"]}, 3, {"l3-state-secret"}),
    (
        "defence, harm to national security",
        {"defence_security": True, "national_security_impact": "harm"},
        3,
        {"l3-state-secret"},
    ),
    (
        "conditional business",
        {"system_type": "public_service", "conditional_business_service": True},
        3,
        {"l3-conditional-business"},
    ),
    (
        "administrative procedures (new criterion)",
        {"handles_admin_procedures": True, "information_types": ["private"]},
        3,
        {"l3-administrative-procedures"},
    ),
    ("ICS grade III", {"system_type": "ics", "ics_work_grade": "III"}, 3, {"l3-ics-grade-2-4"}),
    (
        "state secret, serious harm",
        {"information_types": ["state_secret"], "national_security_impact": "serious"},
        4,
        {"l4-serious-national-security"},
    ),
    ("national e-gov 24/7", {"national_egov": True, "requires_24x7": True}, 4, {"l4-national-egov-24x7"}),
    ("national e-gov not 24/7 is not level 4", {"national_egov": True}, 1, {"l1-internal-public"}),
    ("ICS grade I", {"system_type": "ics", "ics_work_grade": "I"}, 4, {"l4-ics-grade-1"}),
    (
        "state secret, especially serious",
        {"information_types": ["state_secret"], "national_security_impact": "especially_serious"},
        5,
        {"l5-especially-serious"},
    ),
    ("central national data", {"central_national_data": True}, 5, {"l5-central-national-data"}),
    ("international infrastructure", {"international_infrastructure": True}, 5, {"l5-international-infrastructure"}),
    ("ICS special grade", {"system_type": "ics", "ics_work_grade": "special"}, 5, {"l5-ics-special"}),
    ("Prime Minister's decision", {"pm_decided_level": 4}, 4, {"any-pm-decision"}),
    (
        "risk assessment above the criteria",
        {"information_types": ["private"], "risk_assessed_level": 3},
        3,
        {"any-risk-assessment"},
    ),
    ("other type, no criterion", {"system_type": "other"}, None, set()),
    (
        "highest wins: admin procedures + 24/7 e-gov + private",
        {
            "information_types": ["private"],
            "handles_admin_procedures": True,
            "national_egov": True,
            "requires_24x7": True,
        },
        4,
        {"l4-national-egov-24x7"},
    ),
]


@pytest.mark.parametrize(("case", "facts", "level", "drivers"), CURRENT_CASES, ids=[c[0] for c in CURRENT_CASES])
def test_current_profile(case: str, facts: dict[str, Any], level: int | None, drivers: set[str]) -> None:
    result = determine(load_profile(CURRENT), LevelFacts.model_validate(facts))
    assert result.level == level, case
    assert {d.criterion_id for d in result.drivers} == drivers
    for driver in result.drivers:
        assert driver.source.startswith("NĐ 331/2026")
        assert driver.confidence in {"V", "S", "M", "I"}
        assert driver.text


def test_every_current_criterion_is_exercised() -> None:
    seen = set().union(*(c[3] for c in CURRENT_CASES))
    assert seen == {c.id for c in load_profile(CURRENT).criteria}


def test_highest_wins_lists_every_matched_criterion_in_order() -> None:
    facts = LevelFacts(
        information_types=["private"], handles_admin_procedures=True, national_egov=True, requires_24x7=True
    )
    result = determine(load_profile(CURRENT), facts)
    assert [d.level for d in result.matched] == sorted((d.level for d in result.matched), reverse=True)
    assert {d.criterion_id for d in result.matched} >= {"l2-internal-private", "l3-administrative-procedures"}


LEGACY_CASES: list[tuple[str, dict[str, Any], int | None, set[str]]] = [
    (
        "admin procedures are not a criterion under Decree 85",
        {"handles_admin_procedures": True, "information_types": ["private"]},
        2,
        {"l2-internal-private"},
    ),
    ("online public service level 2", {"online_public_service_level": 2}, 2, {"l2-online-public-service-low"}),
    ("online public service level 3", {"online_public_service_level": 3}, 3, {"l3-online-public-service-high"}),
    (
        "9,999 users",
        {"system_type": "public_service", "users_count": 9_999, "conditional_business_service": False},
        2,
        {"l2-users-small"},
    ),
    ("10,000 users", {"system_type": "public_service", "users_count": 10_000}, 3, {"l3-users-large"}),
    ("risk assessment is no criterion", {"risk_assessed_level": 4}, 1, {"l1-internal-public"}),
    (
        "state secret, serious",
        {"information_types": ["state_secret"], "national_security_impact": "serious"},
        4,
        {"l4-serious-national-security"},
    ),
]


@pytest.mark.parametrize(("case", "facts", "level", "drivers"), LEGACY_CASES, ids=[c[0] for c in LEGACY_CASES])
def test_legacy_profile(case: str, facts: dict[str, Any], level: int | None, drivers: set[str]) -> None:
    result = determine(load_profile(LEGACY), LevelFacts.model_validate(facts))
    assert result.level == level, case
    assert {d.criterion_id for d in result.drivers} == drivers
    assert all("85/2016" in d.source for d in result.drivers)


def test_same_system_differs_between_profiles() -> None:
    """50,000 users of an online service: level 3 under Decree 85 (>=10,000 users), level 2 now
    (fewer than 100,000 basic data subjects)."""
    facts = LevelFacts(
        system_type="public_service",
        information_types=["personal"],
        users_count=50_000,
        personal_data_basic_subjects=50_000,
    )
    assert determine(load_profile(LEGACY), facts).level == 3
    assert determine(load_profile(CURRENT), facts).level == 2


def test_risk_assessment_requirement_comes_from_the_profile() -> None:
    current = determine(
        load_profile(CURRENT), LevelFacts(information_types=["state_secret"], national_security_impact="serious")
    )
    assert current.risk_assessment.required
    assert [c["id"] for c in current.risk_assessment.content] == list("abcdefg")
    assert {t["id"] for t in current.risk_assessment.triggers} >= {"first-determination", "serious-incident"}
    assert current.risk_assessment.detailed_report  # level 4 needs the detailed risk report
    assert any("never ingests" in n for n in current.notes)
    legacy = determine(load_profile(LEGACY), LevelFacts())
    assert not legacy.risk_assessment.required
    assert not determine(load_profile(CURRENT), LevelFacts()).risk_assessment.detailed_report


def test_level_fact_changes_are_named() -> None:
    profile = load_profile(CURRENT)
    before = LevelFacts().model_dump()
    after = LevelFacts(handles_admin_procedures=True).model_dump()
    assert level_facts_changed(profile, before, after) == ["handles_admin_procedures"]
    assert level_facts_changed(profile, before, dict(before)) == []


def test_condition_errors_and_unknown_profiles() -> None:
    with pytest.raises(ConditionError):
        evaluate({"fact": "no_such_fact", "eq": 1}, LevelFacts().model_dump())
    with pytest.raises(ConditionError):
        evaluate({"fact": "users_count", "eq": 1, "gte": 2}, LevelFacts().model_dump())
    with pytest.raises(ProfileError):
        load_profile("nope")
    assert set(available_profiles()) == {CURRENT, LEGACY}


def test_every_profile_item_carries_source_and_confidence() -> None:
    for pid in available_profiles():
        profile = load_profile(pid)
        items: list[Any] = [*profile.criteria, *profile.dossier_parts, *profile.requirement_groups]
        for item in items:
            assert item.source and item.confidence in {"V", "S", "M", "I"}, (pid, item.id)
        for lvl in range(1, 6):
            assert lvl in profile.authorities.by_level and lvl in profile.time_limits.appraisal
        # Every criterion condition evaluates on default facts (no typo in a fact name).
        for criterion in profile.criteria:
            evaluate(criterion.when, LevelFacts().model_dump())
