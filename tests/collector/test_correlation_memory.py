"""Correlation windows keep every match's timestamp and value, but only the documents a firing can use,
and of each only the fields an alert reads."""

from __future__ import annotations

from collector.detection.correlation import MAX_KEPT_EVENTS, CorrelationState, Firing
from collector.detection.event_facts import expand_projection
from collector.detection.specs import CorrelationSpec, RuleMeta


def spray_spec(threshold: int) -> CorrelationSpec:
    return CorrelationSpec(
        meta=RuleMeta(id="spray", title="Spray"),
        kind="value_count",
        rule_ids=("fail",),
        timespan_seconds=600.0,
        group_by=("source.ip",),
        threshold=threshold,
        value_field="user.name",
    )


def feed(state: CorrelationState, n: int, users: int) -> list[Firing]:
    firings: list[Firing] = []
    for i in range(n):
        raw = {"source.ip": "10.0.0.9", "user.name": f"u{i % users}"}
        doc = {"event": {"id": f"id{i}"}, "source": {"ip": "10.0.0.9"}, "user": {"name": f"u{i % users}"},
               "winlog": {"event_data": {"Blob": "x" * 500}}}  # fmt: skip
        firing = state.feed("fail", 1000.0 + i, raw, f"id{i}", doc)
        if firing is not None:
            firings.append(firing)
    return firings


def test_only_the_newest_documents_stay_in_a_window() -> None:
    state = CorrelationState(spray_spec(threshold=50))
    assert feed(state, 500, users=3) == []  # 3 distinct users: never fires, the window keeps filling
    (group,) = state.groups.values()
    assert len(group.entries) == 500  # every match still counts
    held = [doc for _ts, _value, _id, doc in group.entries if doc is not None]
    assert len(held) == MAX_KEPT_EVENTS
    assert [expand_projection(doc)["event"]["id"] for doc in held] == [
        f"id{i}" for i in range(500 - MAX_KEPT_EVENTS, 500)
    ]
    assert [value for _ts, value, _id, _doc in group.entries[:3]] == ["u0", "u1", "u2"]  # values all kept


def test_a_firing_still_carries_the_newest_documents() -> None:
    state = CorrelationState(spray_spec(threshold=200))
    (firing,) = feed(state, 200, users=1000)
    expected = [
        {"event": {"id": f"id{i}"}, "source": {"ip": "10.0.0.9"}, "user": {"name": f"u{i % 1000}"}}
        for i in range(200 - MAX_KEPT_EVENTS, 200)
    ]
    assert firing.events == expected  # the alert's fields, without the bulk of the document
    assert firing.event_ids == [f"id{i}" for i in range(200 - MAX_KEPT_EVENTS, 200)]
