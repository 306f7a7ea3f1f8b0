"""Is an incident serious, and why: the profile's criteria evaluated on the incident's facts plus
what the linked information systems say (their level, whether they hold state secrets)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from soc_api.incidents.rules import FACT_DEFAULTS, IncidentProfile
from soc_api.systems.levels import evaluate
from soc_api.systems.models import InformationSystem


def system_level(system: InformationSystem) -> int | None:
    """The approved level, else the proposed one (a dossier in progress still counts)."""
    return system.approved_level if system.approved_level is not None else system.proposed_level


def facts_for(declared: dict[str, Any], systems: Iterable[InformationSystem]) -> dict[str, Any]:
    """Declared facts over the defaults, plus the facts derived from the affected systems."""
    facts = {**FACT_DEFAULTS, **{k: v for k, v in declared.items() if k in FACT_DEFAULTS}}
    levels = [lvl for s in systems if (lvl := system_level(s)) is not None]
    facts["max_system_level"] = max(levels) if levels else None
    facts["state_secret_system"] = any(s.state_secret for s in systems)
    facts["serious"] = False
    return facts


def classify(profile: IncidentProfile, facts: dict[str, Any]) -> tuple[str, list[dict[str, str]]]:
    """``("serious", reasons)`` when any criterion holds, else ``("normal", [])``.

    Each reason names the criterion, its text, legal source and confidence, so the decision can be
    explained to the reporting officer and to an inspector.
    """
    reasons = [
        {"id": c.id, "text": c.text, "source": c.source, "confidence": c.confidence}
        for c in profile.serious_criteria
        if evaluate(c.when, facts)
    ]
    return ("serious" if reasons else "normal"), reasons
