"""Stateful Sigma correlations (event_count, value_count, temporal, temporal_ordered) over event time.

State is a sliding window per group-by key: entries older than the group's newest event time minus
the timespan are dropped, so the answer depends only on the events and their order, never on the
wall clock: hunting a file and streaming the same events give the same alerts. When a correlation
fires, its group's window is cleared (the next alert needs a fresh threshold). Memory is bounded:
at most ``max_groups`` groups per rule (least recently updated evicted first) and
``max_entries`` entries per group; both evictions are counted.
"""

from __future__ import annotations

import operator
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from collector.detection.event_facts import alert_projection, expand_projection
from collector.detection.eventview import FieldValue
from collector.detection.specs import CorrelationSpec

_OPS: dict[str, Callable[[int, int], bool]] = {
    "lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge,
    "eq": operator.eq, "neq": operator.ne,
}  # fmt: skip
MAX_KEPT_EVENTS = 50  # contributing events kept per alert


@dataclass(slots=True)
class _Entry:
    ts: float
    rule_id: str
    value: str | None
    event_id: str
    event: Mapping[str, Any] | None  # None once MAX_KEPT_EVENTS newer entries follow (see feed)


@dataclass
class _Group:
    entries: deque[_Entry] = field(default_factory=deque)
    latest: float = float("-inf")


@dataclass
class Firing:
    """A correlation that fired: its spec, contributing events (bounded) and the explanation."""

    spec: CorrelationSpec
    group_key: str
    events: list[Mapping[str, Any]]
    event_ids: list[str]
    explanation: dict[str, Any]


@dataclass
class CorrelationStats:
    evicted_groups: int = 0
    dropped_entries: int = 0
    missing_group_field: int = 0


def _text(value: FieldValue | None) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else ",".join(value)


class CorrelationState:
    """Sliding windows for one correlation rule."""

    def __init__(self, spec: CorrelationSpec, *, max_groups: int = 10_000, max_entries: int = 10_000) -> None:
        self.spec = spec
        self.max_groups = max_groups
        self.max_entries = max_entries
        self.groups: OrderedDict[tuple[str | None, ...], _Group] = OrderedDict()
        self.stats = CorrelationStats()
        self._compare = _OPS.get(spec.op, operator.ge)

    def _field(self, name: str, rule_id: str) -> str:
        alias = self.spec.aliases.get(name)
        return alias.get(rule_id, name) if alias else name

    def feed(
        self, rule_id: str, ts: float, raw: Mapping[str, FieldValue], event_id: str, event: Mapping[str, Any]
    ) -> Firing | None:
        """Account one match of a referenced rule; return a firing when the condition now holds."""
        spec = self.spec
        key_values: list[str | None] = []
        for name in spec.group_by:
            value = _text(raw.get(self._field(name, rule_id)))
            if value is None:
                self.stats.missing_group_field += 1
                return None
            key_values.append(value)
        key = tuple(key_values)
        group = self.groups.get(key)
        if group is None:
            group = _Group()
            self.groups[key] = group
            if len(self.groups) > self.max_groups:
                self.groups.popitem(last=False)
                self.stats.evicted_groups += 1
        else:
            self.groups.move_to_end(key)
        if ts > group.latest:
            group.latest = ts
        horizon = group.latest - spec.timespan_seconds
        entries = group.entries
        if ts < horizon:
            return None  # arrived after its window had passed
        value = _text(raw.get(self._field(spec.value_field, rule_id))) if spec.value_field else None
        entries.append(_Entry(ts, rule_id, value, event_id, alert_projection(event)))
        if len(entries) > MAX_KEPT_EVENTS:
            # Only the newest MAX_KEPT_EVENTS documents can end up in a firing: drop the older ones'
            # (a few KB each). Holding every matching document for the whole timespan grew the
            # collector by ~300 MiB under a steady stream of failed logons (10-minute windows).
            entries[-MAX_KEPT_EVENTS - 1].event = None
        if len(entries) > self.max_entries:
            entries.popleft()
            self.stats.dropped_entries += 1
        while entries and entries[0].ts < horizon:
            entries.popleft()
        if any(e.ts < horizon for e in entries):  # out-of-order arrivals: rebuild once
            group.entries = entries = deque(e for e in entries if e.ts >= horizon)
        observed = self._observed(entries)
        if observed is None:
            return None
        group_key = "|".join([spec.meta.id, *(v or "" for v in key)])
        kept = list(entries)[-MAX_KEPT_EVENTS:]
        explanation: dict[str, Any] = {
            "type": spec.kind,
            "observed": observed,
            "condition": {"op": spec.op, "threshold": spec.threshold},
            "timespan_seconds": spec.timespan_seconds,
            "group_by": dict(zip(spec.group_by, key, strict=True)),
            "window_start_ts": min(e.ts for e in entries),
            "window_end_ts": max(e.ts for e in entries),
        }
        if spec.value_field:
            explanation["field"] = spec.value_field
        group.entries = deque()
        # out-of-order rebuilds can shift a few
        documents: list[Mapping[str, Any]] = [expand_projection(e.event) for e in kept if e.event is not None]
        return Firing(spec, group_key, documents, [e.event_id for e in kept], explanation)

    def _observed(self, entries: deque[_Entry]) -> int | None:
        """The observed count if the condition holds, else None."""
        spec = self.spec
        if spec.kind == "event_count":
            n = len(entries)
            return n if self._compare(n, spec.threshold) else None
        if spec.kind == "value_count":
            n = len({e.value for e in entries if e.value is not None})
            return n if self._compare(n, spec.threshold) else None
        wanted = spec.rule_ids
        if spec.kind == "temporal":
            seen = {e.rule_id for e in entries}
            return len(seen) if all(r in seen for r in wanted) else None
        # temporal_ordered: the referenced rules occur as a subsequence in event-time order
        position = 0
        for entry in sorted(entries, key=lambda e: e.ts):
            if entry.rule_id == wanted[position]:
                position += 1
                if position == len(wanted):
                    return position
        return None
