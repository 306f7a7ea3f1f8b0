"""Correlation state under sustained load: groups expire with their window, and a stream where every
record has a new source address (NetFlow from a scanned or busy network) holds the engine to a
fixed size instead of filling it for minutes."""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path
from types import BuiltinFunctionType, FunctionType, ModuleType
from typing import Any

from collector.detection.correlation import (
    ALLOWED_LATENESS_SECONDS,
    SWEEP_SECONDS,
    CorrelationState,
    Firing,
)
from collector.detection.engine import DetectionEngine
from collector.detection.loader import load_engine
from collector.detection.specs import CorrelationSpec, RuleMeta

REPO = Path(__file__).resolve().parents[2]
#: Bytes per flow group (a group, its window list, one entry, its share of the projection, the
#: key): ~640-700 measured. The layout before (a deque, an entry object and a projection dict per
#: rule) held ~1,480, 28 MiB at the cap of 10,000 groups for each of the two flow rules.
GROUP_BYTES = 720
SPAN = 300.0
T0 = 1_735_689_600.0  # 2025-01-01T00:00:00Z
MIB = 1 << 20


def brute_force(threshold: int = 3) -> CorrelationState:
    spec = CorrelationSpec(
        meta=RuleMeta(id="bf", title="Brute force"),
        kind="event_count",
        rule_ids=("fail",),
        timespan_seconds=SPAN,
        group_by=("source.ip",),
        threshold=threshold,
    )
    return CorrelationState(spec)


def fail(state: CorrelationState, ts: float, source: str) -> Firing | None:
    doc = {"@timestamp": "x", "event": {"id": f"{source}@{ts}"}, "source": {"ip": source}}
    return state.feed("fail", ts, {"source.ip": source}, f"{source}@{ts}", doc)


def test_a_group_expires_after_its_window_and_the_lateness() -> None:
    state = brute_force()
    fail(state, T0, "10.0.0.1")
    life = SPAN + ALLOWED_LATENESS_SECONDS
    fail(state, T0 + life - SWEEP_SECONDS, "10.0.0.2")  # the clock moved, but 10.0.0.1 may still meet late events
    fail(state, T0 + life, "10.0.0.3")
    assert ("10.0.0.1",) in state.groups
    fail(state, T0 + life + SWEEP_SECONDS + 1, "10.0.0.4")  # past its life: swept
    assert list(state.groups) == [("10.0.0.2",), ("10.0.0.3",), ("10.0.0.4",)]
    assert state.stats.expired_groups == 1
    assert state.stats.evicted_groups == 0


def test_late_events_within_the_lateness_still_meet_their_group() -> None:
    state = brute_force(threshold=3)
    fail(state, T0, "10.0.0.1")
    fail(state, T0 + 100, "10.0.0.1")
    for i in range(20):  # other sources move the clock 200 s past the group's window
        fail(state, T0 + SPAN + 10 * i, f"10.1.0.{i}")
    firing = fail(state, T0 + 150, "10.0.0.1")  # a shipping backlog delivers it now
    assert firing is not None and firing.explanation["observed"] == 3


def test_a_clock_far_ahead_does_not_expire_the_other_sources() -> None:
    state = brute_force(threshold=2)
    now = time.time()
    fail(state, now, "10.0.0.1")
    fail(state, now + 7200, "10.0.0.66")  # one source's clock runs two hours ahead
    fail(state, now + 7200 + SWEEP_SECONDS, "10.0.0.66")
    assert fail(state, now + 60, "10.0.0.1") is not None  # the group was kept and fires


def flow(i: int, ts: float) -> dict[str, Any]:
    """A flow record after the pipeline, the fields the engine and an alert read; a new source each."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"
    return {
        "@timestamp": stamp,
        "event": {"id": f"{i:032x}", "kind": "event", "dataset": "netflow.flow", "category": ["network"],
                  "action": "netflow_flow"},
        "source": {"ip": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", "port": 1024 + i % 60000},
        "destination": {"ip": "192.168.1.1", "port": 443},
        "soc": {"site": "tinh-uy"},
    }  # fmt: skip


def state_bytes(engine: DetectionEngine) -> int:
    """Bytes held by the engine's correlation windows: every object reachable from them, once."""
    skip = (type, ModuleType, FunctionType, BuiltinFunctionType, CorrelationSpec, RuleMeta)
    seen: set[int] = set()
    todo: list[Any] = [s.groups for s in engine._states]
    total = 0
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        todo.extend(gc.get_referents(obj))
    return total


def feed_flows(engine: DetectionEngine, n: int, per_second: float) -> None:
    """Feed ``n`` flows, each from a new source, at ``per_second`` of event time."""
    (flow_rule,) = [i for i, r in enumerate(engine.rules) if r.meta.name == "soc_network_flow"]
    assert engine.match(flow(0, T0)) == [flow_rule]
    for i in range(n):  # the match is known: record() is the stateful part under test
        engine.record(flow(i, T0 + i / per_second), [flow_rule])


def flow_groups(engine: DetectionEngine) -> list[int]:
    stats = engine.correlation_stats()
    return [s["groups"] for s in stats.values() if s["groups"]]


def test_200k_new_sources_fast_stay_under_the_group_cap_bound() -> None:
    # 1,000 records/s of event time: every group is inside its window, the cap (10,000 per rule,
    # two rules group flows by source) is what bounds the state: under 14 MiB.
    engine = load_engine([REPO / "rules"])
    feed_flows(engine, 200_000, per_second=1_000.0)
    assert flow_groups(engine) == [10_000, 10_000]
    held = state_bytes(engine)
    assert held < 20_000 * GROUP_BYTES, f"{held / MIB:.1f} MiB"


def test_200k_new_sources_slow_are_bounded_by_expiry() -> None:
    # 10 records/s of event time: 20,000 s of flows; only the groups of the last window and its
    # lateness (plus one sweep) are alive, under the cap: nothing is evicted, everything expires.
    engine = load_engine([REPO / "rules"])
    feed_flows(engine, 200_000, per_second=10.0)
    alive = (SPAN + ALLOWED_LATENESS_SECONDS + SWEEP_SECONDS) * 10 + 1
    groups = flow_groups(engine)
    assert len(groups) == 2 and all(g <= alive for g in groups), groups
    expired = [s["expired_groups"] for s in engine.correlation_stats().values() if s["expired_groups"]]
    assert len(expired) == 2 and all(e >= 200_000 - alive for e in expired), expired
    assert not any(s["evicted_groups"] for s in engine.correlation_stats().values())
    held = state_bytes(engine)
    assert held < sum(groups) * GROUP_BYTES, f"{held / MIB:.1f} MiB"
