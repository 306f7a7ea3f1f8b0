"""Everything the engine runs, built from rule conditions once and cacheable as plain data.

Building means generating and compiling Python source for thousands of rules and computing the
anchor index (about a second); :meth:`CompiledRules.state` is marshal-able, so a cached rule set
is back in tens of milliseconds.
"""

from __future__ import annotations

import marshal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collector.detection.codegen import generate, instantiate
from collector.detection.compiler import Matcher
from collector.detection.eventview import FieldSelection
from collector.detection.index import RuleIndex
from collector.detection.ir import Node, walk_leaves
from collector.detection.specs import CorrelationSpec


def referenced_fields(conditions: Sequence[Node], correlations: Sequence[CorrelationSpec]) -> set[str]:
    """Every field name a condition or correlation reads (keyword searches read the event itself)."""
    fields: set[str] = set()
    for cond in conditions:
        for _, field, op, values in walk_leaves(cond):
            if field is not None:
                fields.add(field)
            if op == "ref":
                fields.update(other for other, _, _ in values)
    for corr in correlations:
        fields.update(corr.group_by)
        if corr.value_field:
            fields.add(corr.value_field)
        for mapping in corr.aliases.values():
            fields.update(mapping.values())
    return fields


@dataclass
class CompiledRules:
    """Matchers (one per rule, in rule order), the candidate index and the fields to flatten."""

    matchers: list[Matcher]
    index: RuleIndex
    selection: FieldSelection
    _state: tuple[Any, ...]

    @classmethod
    def build(cls, conditions: Sequence[Node], correlations: Sequence[CorrelationSpec] = ()) -> CompiledRules:
        generated = generate(conditions)
        index = RuleIndex(conditions)
        fields = sorted(referenced_fields(conditions, correlations))
        state = (marshal.dumps(generated.codes), generated.leaves, index.state(), fields)
        return cls(
            matchers=instantiate(generated.codes, generated.leaves),
            index=index,
            selection=FieldSelection(set(fields)),
            _state=state,
        )

    @classmethod
    def from_state(cls, state: tuple[Any, ...]) -> CompiledRules:
        codes, leaves, index_state, fields = state
        return cls(
            matchers=instantiate(marshal.loads(codes), leaves),
            index=RuleIndex.from_state(index_state),
            selection=FieldSelection(set(fields)),
            _state=state,
        )

    def state(self) -> tuple[Any, ...]:
        return self._state
