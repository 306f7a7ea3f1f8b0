"""Stateful Sigma correlations (event_count, value_count, temporal, temporal_ordered) over event time.

State is a sliding window per group-by key: entries older than the group's newest event time minus
the timespan are dropped, so the answer depends only on the events and their order, never on the
wall clock: hunting a file and streaming the same events give the same alerts. When a correlation
fires, its group's window is cleared (the next alert needs a fresh threshold).

Memory is bounded three ways, all counted:

* a group whose newest event is older than the timespan (plus :data:`ALLOWED_LATENESS_SECONDS` for
  events that arrive out of order) behind the newest event time seen can never fire again: a sweep
  driven by event time drops it (a time-bucketed queue, so each group is looked at about once);
* at most ``max_groups`` groups per rule (least recently updated evicted first);
* at most ``max_entries`` entries per group, and only the newest :data:`MAX_KEPT_EVENTS` of them keep
  the alert projection of their event; older ones keep their time, counted value and id.

A group is a few slots and one list of tuples: a NetFlow load where every record has a new source
address creates a group per record and correlation rule, so the per-group cost is what sets the
collector's size.
"""

from __future__ import annotations

import math
import operator
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from collector.detection.event_facts import Projection, expand_projection, packed_projection
from collector.detection.eventview import FieldValue
from collector.detection.specs import CorrelationSpec

_OPS: dict[str, Callable[[int, int], bool]] = {
    "lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge,
    "eq": operator.eq, "neq": operator.ne,
}  # fmt: skip
MAX_KEPT_EVENTS = 50  # contributing events kept per alert
#: A group outlives its window by this much event time, so an event arriving this late (a shipping
#: backlog, another agent's batch) still meets the group it belongs to.
ALLOWED_LATENESS_SECONDS = 300.0
#: Event times further ahead of the wall clock than this do not move the expiry clock: one source
#: with a clock running hours ahead must not expire every other source's groups.
FUTURE_TOLERANCE_SECONDS = 300.0
#: Granularity of the expiry queue (event-time seconds): groups are swept at most this late.
SWEEP_SECONDS = 15.0

# One window entry: (event time, value or rule id, event id, alert projection or None).
# The second field is the counted value (value_count) or the referenced rule id (temporal kinds).
_Entry = tuple[float, str | None, str, Projection | None]
_TS: Final = 0
_AUX: Final = 1
_ID: Final = 2
_DOC: Final = 3


class _Group:
    """One group-by key's window: entries ``items[head:]`` in arrival order."""

    __slots__ = ("head", "items", "latest", "ordered", "touched")

    def __init__(self) -> None:
        self.latest = -math.inf  # newest event time in the group
        self.touched = -math.inf  # the expiry clock when the group was last fed
        self.items: list[_Entry] = []
        self.head = 0  # entries before it have left the window (dropped lazily, in bulk)
        self.ordered = True  # entries arrived in event-time order (the window's oldest is first)

    @property
    def entries(self) -> list[_Entry]:
        """The window's entries in arrival order."""
        return self.items[self.head :] if self.head else self.items


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
    expired_groups: int = 0


def _text(value: FieldValue | None) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else ",".join(value)


class CorrelationState:
    """Sliding windows for one correlation rule."""

    def __init__(
        self,
        spec: CorrelationSpec,
        *,
        max_groups: int = 10_000,
        max_entries: int = 10_000,
        lateness: float = ALLOWED_LATENESS_SECONDS,
    ) -> None:
        self.spec = spec
        self.max_groups = max_groups
        self.max_entries = max_entries
        self.groups: OrderedDict[tuple[str | None, ...], _Group] = OrderedDict()
        self.stats = CorrelationStats()
        self._compare = _OPS.get(spec.op, operator.ge)
        self._life = spec.timespan_seconds + lateness  # event time a group outlives its newest entry
        self._clock = -math.inf  # expiry clock: newest event time seen, bounded by the wall clock
        self._next_sweep = -math.inf

    def _field(self, name: str, rule_id: str) -> str:
        alias = self.spec.aliases.get(name)
        return alias.get(rule_id, name) if alias else name

    def feed(
        self,
        rule_id: str,
        ts: float,
        raw: Mapping[str, FieldValue],
        event_id: str,
        event: Mapping[str, Any],
        *,
        projection: Projection | None = None,
    ) -> Firing | None:
        """Account one match of a referenced rule; return a firing when the condition now holds.

        ``projection`` is the event's :func:`packed_projection`: a caller feeding several
        correlations from one event computes it once for all of them (and they share it).
        """
        spec = self.spec
        key_values: list[str | None] = []
        for name in spec.group_by:
            value = _text(raw.get(self._field(name, rule_id)))
            if value is None:
                self.stats.missing_group_field += 1
                return None
            key_values.append(value)
        self._advance(ts)
        key = tuple(key_values)
        group = self.groups.get(key)
        if group is None:
            group = _Group()
            group.touched = self._clock
            self.groups[key] = group
            if len(self.groups) > self.max_groups:
                _, oldest = self.groups.popitem(last=False)
                if oldest.touched < self._clock - self._life:
                    self.stats.expired_groups += 1  # due for the next sweep anyway
                else:
                    self.stats.evicted_groups += 1
        else:
            self.groups.move_to_end(key)
            group.touched = self._clock
        if ts >= group.latest:
            group.latest = ts
        else:
            group.ordered = False
        horizon = group.latest - spec.timespan_seconds
        if ts < horizon:
            return None  # arrived after its window had passed
        if spec.kind == "value_count":
            aux = _text(raw.get(self._field(spec.value_field, rule_id))) if spec.value_field else None
        elif spec.kind == "event_count":
            aux = None
        else:
            aux = rule_id
        items = group.items
        items.append((ts, aux, event_id, packed_projection(event) if projection is None else projection))
        if len(items) - group.head > MAX_KEPT_EVENTS:
            # Only the newest MAX_KEPT_EVENTS documents can end up in a firing: drop the older ones'.
            # Holding every matching document for the whole timespan grew the collector by ~300 MiB
            # under a steady stream of failed logons (10-minute windows).
            old = items[-MAX_KEPT_EVENTS - 1]
            if old[_DOC] is not None:
                items[-MAX_KEPT_EVENTS - 1] = (old[_TS], old[_AUX], old[_ID], None)
        if len(items) - group.head > self.max_entries:
            group.head += 1
            self.stats.dropped_entries += 1
        self._prune(group, horizon)
        entries = group.entries
        observed = self._observed(entries)
        if observed is None:
            return None
        group_key = "|".join([spec.meta.id, *(v or "" for v in key)])
        kept = entries[-MAX_KEPT_EVENTS:]
        times = [e[_TS] for e in entries]
        explanation: dict[str, Any] = {
            "type": spec.kind,
            "observed": observed,
            "condition": {"op": spec.op, "threshold": spec.threshold},
            "timespan_seconds": spec.timespan_seconds,
            "group_by": dict(zip(spec.group_by, key, strict=True)),
            "window_start_ts": min(times),
            "window_end_ts": max(times),
        }
        if spec.value_field:
            explanation["field"] = spec.value_field
        group.items = []
        group.head = 0
        group.ordered = True
        # out-of-order rebuilds can shift a few
        documents: list[Mapping[str, Any]] = [expand_projection(e[_DOC]) for e in kept if e[_DOC] is not None]
        return Firing(spec, group_key, documents, [e[_ID] for e in kept], explanation)

    @staticmethod
    def _prune(group: _Group, horizon: float) -> None:
        """Drop the entries that left the window (the oldest first; a rebuild for late arrivals)."""
        items, head = group.items, group.head
        end = len(items)
        while head < end and items[head][_TS] < horizon:
            head += 1
        if head == end:
            group.items = []
            group.head = 0
            group.ordered = True
            return
        group.head = head
        # Ordered entries have their oldest first: none older than the horizon is left. Otherwise
        # (out-of-order arrivals) look, and rebuild once when some are.
        if not group.ordered and any(e[_TS] < horizon for e in items[head + 1 :]):
            group.items = [e for e in items[head:] if e[_TS] >= horizon]
            group.head = 0
        elif head >= 16 and head * 4 >= end:  # release the dropped prefix (amortised: 3 moves a drop)
            del items[:head]
            group.head = 0

    # -- expiry ---------------------------------------------------------------------------------
    def _advance(self, ts: float) -> None:
        """Move the expiry clock to ``ts`` (never past the wall clock's tolerance); sweep on a new step."""
        if not ts > self._clock:  # also NaN
            return
        ceiling = time.time() + FUTURE_TOLERANCE_SECONDS
        if ts > ceiling:
            if self._clock >= ceiling:
                return
            ts = ceiling
        self._clock = ts
        if ts >= self._next_sweep:
            self._next_sweep = ts + SWEEP_SECONDS
            self.sweep()

    def sweep(self) -> int:
        """Drop the groups not fed for their life of expiry-clock time; count them.

        Every feed moves its group to the end of ``groups`` and stamps it with the (monotonic) clock,
        so the stamps rise along the dict and the expired groups are a prefix: the sweep looks at
        the groups it drops and one more.
        """
        groups, cutoff = self.groups, self._clock - self._life
        expired = 0
        for group in groups.values():
            if group.touched >= cutoff:
                break
            expired += 1
        for _ in range(expired):
            groups.popitem(last=False)
        self.stats.expired_groups += expired
        return expired

    def _observed(self, entries: list[_Entry]) -> int | None:
        """The observed count if the condition holds, else None."""
        spec = self.spec
        if spec.kind == "event_count":
            n = len(entries)
            return n if self._compare(n, spec.threshold) else None
        if spec.kind == "value_count":
            n = len({e[_AUX] for e in entries if e[_AUX] is not None})
            return n if self._compare(n, spec.threshold) else None
        wanted = spec.rule_ids
        if spec.kind == "temporal":
            seen = {e[_AUX] for e in entries}
            return len(seen) if all(r in seen for r in wanted) else None
        # temporal_ordered: the referenced rules occur as a subsequence in event-time order
        position = 0
        for entry in sorted(entries, key=lambda e: e[_TS]):
            if entry[_AUX] == wanted[position]:
                position += 1
                if position == len(wanted):
                    return position
        return None
