"""The engine's duplicate filter: (rule, event) pairs seen recently drop their repeat, and it stays
small (two generations of hashes, not an ordered dict of id strings)."""

from __future__ import annotations

import sys

from collector.detection.engine import DEDUP_MEMORY, DetectionEngine, Evaluation
from collector.detection.specs import RuleMeta

RULE = "r1"


def engine() -> DetectionEngine:
    return DetectionEngine([], [])


def test_a_repeat_is_dropped_until_it_is_two_generations_old() -> None:
    e = engine()
    assert e._first_time(RULE, "ev-0")
    assert not e._first_time(RULE, "ev-0")
    assert e._first_time("r2", "ev-0")  # another rule on the same event is no repeat
    for i in range(1, DEDUP_MEMORY // 2):  # ev-0 moves to the older generation
        e._first_time(RULE, f"ev-{i}")
    assert not e._first_time(RULE, "ev-0")  # still remembered
    for i in range(DEDUP_MEMORY // 2, DEDUP_MEMORY):  # a second generation fills: ev-0 is forgotten
        e._first_time(RULE, f"ev-{i}")
    assert e._first_time(RULE, "ev-0")
    assert e.stats.duplicates == 2


def test_full_memory_stays_small() -> None:
    e = engine()
    for i in range(2 * DEDUP_MEMORY):
        e._first_time(RULE, f"{i:032x}")
    held = sum(sys.getsizeof(s) + sum(sys.getsizeof(k) for k in s) for s in (e._seen, e._seen_before))
    assert len(e._seen) + len(e._seen_before) < DEDUP_MEMORY
    assert held < 9 << 20  # ~75 bytes per pair; the ordered dict of (rule, id) tuples held ~23 MiB


def test_alerts_for_drops_the_repeat() -> None:
    meta = RuleMeta(id="rule", title="Rule")
    e = engine()
    event = {"@timestamp": "2025-01-01T00:00:00Z", "event": {"id": "abc"}}
    assert len(e.alerts_for(event, Evaluation(matches=[meta]))) == 1
    assert e.alerts_for(event, Evaluation(matches=[meta])) == []
