"""Correlation types, window boundaries, group-by, bounded state, determinism."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from detection.helpers import engine_from

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def base(name: str, value: str) -> str:
    return (
        f"title: base {name}\nname: {name}\nid: {_uuid(name)}\nstatus: test\nlevel: low\n"
        f"logsource:\n    product: test\ndetection:\n    sel:\n        kind: {value}\n    condition: sel\n"
    )


def _uuid(name: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_DNS, name))


def corr(kind: str, rules: list[str], condition: str, group_by: str = "src", timespan: str = "5m") -> str:
    refs = "".join(f"        - {r}\n" for r in rules)
    return (
        f"title: corr {kind}\nid: {_uuid('corr' + kind + condition)}\nstatus: test\nlevel: high\n"
        f"correlation:\n    type: {kind}\n    rules:\n{refs}    group-by:\n        - {group_by}\n"
        f"    timespan: {timespan}\n    condition:\n{condition}"
    )


def ev(seconds: float, kind: str = "fail", src: str = "1.1.1.1", **extra: Any) -> dict[str, Any]:
    ts = (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"@timestamp": ts, "kind": kind, "src": src, "event": {"id": f"e{seconds}-{kind}-{src}"}, **extra}


def fired(engine: Any, events: list[dict[str, Any]]) -> list[Any]:
    return [a for a in engine.process(events) if a.source == "correlation"]


def test_event_count_threshold_and_window(tmp_path: Path) -> None:
    engine = engine_from(tmp_path, base("b1", "fail"), corr("event_count", ["b1"], "        gte: 3\n"))
    # 3 events spread over 301 s: the first leaves the window before the third arrives
    assert fired(engine, [ev(0), ev(150), ev(301)]) == []
    alerts = fired(engine, [ev(302)])
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.explanation["observed"] == 3
    assert alert.explanation["group_by"] == {"src": "1.1.1.1"}
    assert alert.event_ids == ["e150-fail-1.1.1.1", "e301-fail-1.1.1.1", "e302-fail-1.1.1.1"]
    assert alert.severity == "high"


def test_event_count_exact_boundary_is_inside(tmp_path: Path) -> None:
    engine = engine_from(tmp_path, base("b2", "fail"), corr("event_count", ["b2"], "        gte: 2\n"))
    assert len(fired(engine, [ev(0), ev(300)])) == 1


def test_group_by_separates_sources(tmp_path: Path) -> None:
    engine = engine_from(tmp_path, base("b3", "fail"), corr("event_count", ["b3"], "        gte: 2\n"))
    assert fired(engine, [ev(0, src="a"), ev(1, src="b")]) == []
    alerts = fired(engine, [ev(2, src="a")])
    assert [a.explanation["group_by"] for a in alerts] == [{"src": "a"}]


def test_base_rule_without_generate_is_not_an_alert(tmp_path: Path) -> None:
    engine = engine_from(tmp_path, base("b4", "fail"), corr("event_count", ["b4"], "        gte: 5\n"))
    assert engine.process([ev(0)]) == []


def test_value_count(tmp_path: Path) -> None:
    engine = engine_from(
        tmp_path, base("b5", "flow"), corr("value_count", ["b5"], "        gte: 3\n        field: port\n")
    )
    same = [ev(i, kind="flow", port=22) for i in range(10)]
    assert fired(engine, same) == []
    alerts = fired(engine, [ev(11, kind="flow", port=23), ev(12, kind="flow", port=24)])
    assert len(alerts) == 1 and alerts[0].explanation["observed"] == 3


def test_temporal_any_order(tmp_path: Path) -> None:
    engine = engine_from(tmp_path, base("t1", "a"), base("t2", "b"), corr("temporal", ["t1", "t2"], "        gte: 2\n"))
    assert fired(engine, [ev(0, kind="b")]) == []
    assert len(fired(engine, [ev(10, kind="a")])) == 1


def test_temporal_ordered_needs_order(tmp_path: Path) -> None:
    engine = engine_from(
        tmp_path, base("o1", "a"), base("o2", "b"), corr("temporal_ordered", ["o1", "o2"], "        gte: 2\n")
    )
    assert fired(engine, [ev(0, kind="b"), ev(10, kind="a")]) == []
    assert len(fired(engine, [ev(20, kind="b")])) == 1


def test_temporal_outside_window(tmp_path: Path) -> None:
    engine = engine_from(tmp_path, base("w1", "a"), base("w2", "b"), corr("temporal", ["w1", "w2"], "        gte: 2\n"))
    assert fired(engine, [ev(0, kind="a"), ev(400, kind="b")]) == []


def test_groups_are_capped_and_evictions_counted(tmp_path: Path) -> None:
    engine = engine_from(tmp_path, base("c1", "fail"), corr("event_count", ["c1"], "        gte: 2\n"), max_groups=10)
    engine.process([ev(i, src=f"10.0.0.{i}") for i in range(25)])
    stats = next(iter(engine.correlation_stats().values()))
    assert stats["groups"] == 10
    assert stats["evicted_groups"] == 15


def test_same_answer_twice(tmp_path: Path) -> None:
    docs = (base("d1", "fail"), corr("event_count", ["d1"], "        gte: 3\n"))
    events = [ev(i * 10, src=f"s{i % 3}") for i in range(30)]
    first = [(a.id, a.event_ids) for a in fired(engine_from(tmp_path, *docs), events)]
    second = [(a.id, a.event_ids) for a in fired(engine_from(tmp_path, *docs), events)]
    assert first and first == second
