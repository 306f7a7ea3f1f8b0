"""Condition forms: and/or/not, 1 of / all of patterns, them, parentheses."""

from __future__ import annotations

from pathlib import Path

import pytest

from detection.helpers import engine_from, matches, rule_yaml

DETECTION = """
sel_a:
    a: 1
sel_b:
    b: 1
filter:
    c: 1
condition: {cond}
"""

CASES = [
    ("sel_a and sel_b", {"a": 1, "b": 1}, {"a": 1}),
    ("sel_a or sel_b", {"b": 1}, {"c": 1}),
    ("sel_a and not filter", {"a": 1}, {"a": 1, "c": 1}),
    ("1 of sel_*", {"b": 1}, {"c": 1}),
    ("all of sel_*", {"a": 1, "b": 1}, {"a": 1, "c": 1}),
    ("all of them", {"a": 1, "b": 1, "c": 1}, {"a": 1, "b": 1}),
    ("1 of them", {"c": 1}, {"d": 1}),
    ("(sel_a or sel_b) and not filter", {"b": 1}, {"b": 1, "c": 1}),
    ("sel_a or (sel_b and filter)", {"b": 1, "c": 1}, {"b": 1}),
    ("not 1 of sel_*", {"c": 1}, {"a": 1}),
]


@pytest.mark.parametrize(("cond", "hit", "miss"), CASES, ids=[c[0] for c in CASES])
def test_condition(tmp_path: Path, cond: str, hit: dict[str, int], miss: dict[str, int]) -> None:
    engine = engine_from(tmp_path, rule_yaml(DETECTION.format(cond=cond)))
    assert matches(engine, hit)
    assert not matches(engine, miss)


def test_selection_list_of_maps_is_or_and_map_is_and(tmp_path: Path) -> None:
    detection = "sel:\n    - a: 1\n      b: 2\n    - c: 3\ncondition: sel"
    engine = engine_from(tmp_path, rule_yaml(detection))
    assert matches(engine, {"a": 1, "b": 2})
    assert matches(engine, {"c": 3})
    assert not matches(engine, {"a": 1, "b": 3})


def test_index_keeps_results_identical_to_brute_force(tmp_path: Path) -> None:
    """Every rule evaluated on every event gives the same answer as the indexed path."""
    docs = [
        rule_yaml("sel:\n    Image|endswith: '\\\\certutil.exe'\ncondition: sel"),
        rule_yaml("sel:\n    CommandLine|contains: 'urlcache'\ncondition: sel"),
        rule_yaml("sel:\n    User|startswith: 'NT AUTH'\ncondition: sel"),
        rule_yaml("sel:\n    EventID: [1, 4688]\nfilter:\n    x: y\ncondition: sel and not filter"),
        rule_yaml("sel:\n    a|re: 'zz+'\ncondition: sel"),
        rule_yaml("sel:\n    a: 'q'\ncondition: not sel"),
    ]
    engine = engine_from(tmp_path, *docs)
    events = [
        {"Image": "C:\\W\\CertUtil.exe", "CommandLine": "certutil -URLCACHE -f", "EventID": 1},
        {"Image": "c:\\x.exe", "User": "nt authority\\system", "EventID": "4688", "x": "y"},
        {"a": "zzz"},
        {"a": "q", "CommandLine": ["a", "b urlcache"]},
        {},
    ]
    from collector.detection.eventview import EventView

    for event in events:
        view = EventView(event)
        brute = {engine.rules[i].meta.id for i, m in enumerate(engine._matchers) if m(view.low, view.raw)}
        indexed = {m.id for m in engine.evaluate(event).matches}
        assert indexed == brute, event
