"""The streaming detection engine: compiled rules + index + correlation state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from collector.detection.compiled import CompiledRules
from collector.detection.compiler import Matcher
from collector.detection.correlation import CorrelationState, Firing
from collector.detection.specs import CorrelationSpec, RuleMeta, RuleSpec

if TYPE_CHECKING:  # alerts (pydantic) load only when an alert is built: ``soc hunt`` never does
    from collector.detection.alerts import SeverityHook
    from collector.detection.event_facts import Projection
    from collector.detection.loader import LoadReport
    from soc_common.alert import Alert

#: (rule, event) pairs remembered to drop identical repeats (an agent re-sending a batch whose
#: acknowledgement it lost): at least half this many, the most recent first seen, are remembered.
DEDUP_MEMORY = 100_000


@dataclass
class Evaluation:
    """What one event triggered: single-event rule matches and correlation firings."""

    matches: list[RuleMeta] = field(default_factory=list)
    firings: list[Firing] = field(default_factory=list)


@dataclass
class EngineStats:
    events: int = 0
    candidates: int = 0  # rule evaluations the index let through
    matches: int = 0
    duplicates: int = 0
    rule_errors: int = 0


class DetectionEngine:
    """Evaluate loaded rules over events, one pass, with state for correlations."""

    def __init__(
        self,
        rules: Sequence[RuleSpec],
        correlations: Sequence[CorrelationSpec] = (),
        *,
        report: LoadReport | None = None,
        max_groups: int = 10_000,
        severity_hook: SeverityHook | None = None,
        compiled: CompiledRules | None = None,
    ) -> None:
        self.rules = list(rules)
        self.correlations = list(correlations)
        self.report = report
        self.severity_hook = severity_hook
        self.stats = EngineStats()
        if compiled is None or len(compiled.matchers) != len(self.rules):
            compiled = CompiledRules.build([r.condition for r in self.rules], self.correlations)
        self.compiled = compiled
        self._matchers: list[Matcher] = compiled.matchers
        self._index = compiled.index
        self._selection = compiled.selection
        self._states = [CorrelationState(c, max_groups=max_groups) for c in self.correlations]
        self._feeds: dict[str, list[CorrelationState]] = {}
        for state in self._states:
            for rid in dict.fromkeys(state.spec.rule_ids):
                self._feeds.setdefault(rid, []).append(state)
        # Two generations of hashes of (rule id, event id): the newer fills to half DEDUP_MEMORY, then
        # replaces the older. An int in a set costs ~60 bytes; the ordered dict of tuples it replaces
        # held each event id string too (~250 bytes per pair, 25 MiB when full).
        self._seen: set[int] = set()
        self._seen_before: set[int] = set()

    def match(self, event: Mapping[str, Any]) -> list[int]:
        """Numbers of the rules whose condition ``event`` satisfies (no state is touched)."""
        self.stats.events += 1
        low, raw = self._selection.views(event)
        candidates = self._index.candidates(low)
        self.stats.candidates += len(candidates)
        matchers = self._matchers
        matched: list[int] = []
        for i in candidates:
            try:
                if matchers[i](low, raw):
                    matched.append(i)
            except Exception:  # a rule bug must not cost the other rules this event
                self.stats.rule_errors += 1
        return matched

    def record(self, event: Mapping[str, Any], matched: Sequence[int]) -> Evaluation:
        """Account rule matches found by :meth:`match` (in event order): feed correlations."""
        result = Evaluation()
        if not matched:
            return result
        self.stats.matches += len(matched)
        ev_id = ""
        raw: Mapping[str, Any] | None = None
        ts: float | None = None
        projection: Projection | None = None
        for i in matched:
            rule = self.rules[i]
            if rule.emit:
                result.matches.append(rule.meta)
            states = self._feeds.get(rule.meta.id)
            if states:
                if ts is None:
                    from collector.detection.event_facts import event_id_of, event_time, packed_projection

                    when = event_time(event)
                    ts = when.timestamp() if when else 0.0
                    ev_id = event_id_of(event)
                    raw = self._selection.views(event)[1]
                    projection = packed_projection(event)  # one copy shared by every window it enters
                for state in states:
                    firing = state.feed(rule.meta.id, ts, raw or {}, ev_id, event, projection=projection)
                    if firing is not None:
                        result.firings.append(firing)
        return result

    def evaluate(self, event: Mapping[str, Any]) -> Evaluation:
        """Run every candidate rule on ``event``; feed correlations; never raises on bad data."""
        return self.record(event, self.match(event))

    def _first_time(self, rule_id: str, event_id: str) -> bool:
        # A 64-bit hash: a false "seen" needs a collision among ~1e5 pairs (odds about 1 in 1e9).
        key = hash((rule_id, event_id))
        if key in self._seen or key in self._seen_before:
            self.stats.duplicates += 1
            return False
        self._seen.add(key)
        if len(self._seen) >= DEDUP_MEMORY // 2:
            self._seen_before = self._seen
            self._seen = set()
        return True

    def alerts_for(self, event: Mapping[str, Any], evaluation: Evaluation) -> list[Alert]:
        """Alerts for one evaluated event; identical (rule, event) repeats are dropped."""
        from collector.detection.alerts import build_alert, event_id_of

        alerts: list[Alert] = []
        ev_id = event_id_of(event) if evaluation.matches else ""
        for meta in evaluation.matches:
            if self._first_time(meta.id, ev_id):
                alerts.append(build_alert(meta, [event], event_ids=[ev_id], severity_hook=self.severity_hook))
        for firing in evaluation.firings:
            alerts.append(
                build_alert(
                    firing.spec.meta,
                    firing.events,
                    source="correlation",
                    group_key=firing.group_key,
                    explanation=firing.explanation,
                    event_ids=firing.event_ids,
                    severity_hook=self.severity_hook,
                )
            )
        return alerts

    def process(self, events: Sequence[Mapping[str, Any]]) -> list[Alert]:
        """The collector pipeline's entry point: a batch of events in, the alerts they raise out."""
        alerts: list[Alert] = []
        for event in events:
            evaluation = self.evaluate(event)
            if evaluation.matches or evaluation.firings:
                alerts.extend(self.alerts_for(event, evaluation))
        return alerts

    def correlation_stats(self) -> dict[str, dict[str, int]]:
        return {
            s.spec.meta.id: {
                "groups": len(s.groups),
                "evicted_groups": s.stats.evicted_groups,
                "dropped_entries": s.stats.dropped_entries,
                "missing_group_field": s.stats.missing_group_field,
                "expired_groups": s.stats.expired_groups,
            }
            for s in self._states
        }
