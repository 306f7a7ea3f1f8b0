"""Picklable descriptions of loaded rules: what the loader produces and caches, what the engine runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from collector.detection.ir import Node

SIGMA_LEVELS = ("informational", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class RuleMeta:
    """What an alert says about the rule that raised it."""

    id: str
    title: str
    level: str = "medium"
    status: str = ""
    tags: tuple[str, ...] = ()
    source: str = ""  # file the rule came from
    name: str = ""  # Sigma ``name``, used by correlation references
    product: str = ""  # log source product (``windows``, ``linux``, ``soc``...)

    @property
    def severity(self) -> str:
        return self.level if self.level in SIGMA_LEVELS else "medium"


@dataclass(frozen=True)
class RuleSpec:
    """A single-event Sigma rule after the pipeline: its condition in IR form."""

    meta: RuleMeta
    condition: Node
    emit: bool = True  # False when only a correlation consumes it (Sigma ``generate: false``)


@dataclass(frozen=True)
class CorrelationSpec:
    """A Sigma correlation rule over the matches of other rules."""

    meta: RuleMeta
    kind: str  # event_count | value_count | temporal | temporal_ordered
    rule_ids: tuple[str, ...]  # referenced base rules, in the order written
    timespan_seconds: float
    group_by: tuple[str, ...] = ()
    op: str = "gte"  # lt lte gt gte eq neq
    threshold: int = 1
    value_field: str | None = None  # value_count: the field whose distinct values are counted
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)  # alias -> rule id -> field


@dataclass(frozen=True)
class SkippedRule:
    """A rule that cannot be evaluated, and why (listed, never fatal)."""

    path: str
    rule_id: str
    title: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "id": self.rule_id, "title": self.title, "reason": self.reason}
