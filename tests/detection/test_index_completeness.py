"""The candidate index never hides a match: on real SigmaHQ rules and real EVTX events, indexed
evaluation gives exactly the matches of running every rule on every event (brute force), with the
Aho-Corasick contains-table and with its pure-Python gram fallback alike."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.detection import index as index_module
from collector.detection.engine import DetectionEngine
from collector.detection.index import RuleIndex, _GramTable
from collector.detection.ir import walk_leaves
from collector.detection.loader import load_engine
from detection.helpers import SHARED

SIGMA = SHARED / "sigma-rules"
EVTX = SHARED / "evtx-attack-samples"
RULE_STRIDE = 3  # every third Windows rule: all kinds of rule, a third of the load time
EVENT_STRIDE = 2  # every second event of every sample file

pytestmark = pytest.mark.skipif(
    not (SIGMA.is_dir() and EVTX.is_dir()), reason="SigmaHQ rules or EVTX samples not present at ../shared/data"
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> DetectionEngine:
    files = sorted((SIGMA / "rules" / "windows").rglob("*.yml"))
    files += sorted((SIGMA / "rules-threat-hunting" / "windows").rglob("*.yml"))
    regex_rules = [f for f in files if "|re" in f.read_text(encoding="utf-8", errors="replace")]
    sample = sorted(set(files[::RULE_STRIDE]) | set(regex_rules))  # every regex rule: their anchors are derived
    return load_engine(sample, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    reader = pytest.importorskip("agent.windows.evtx_file", reason="EVTX reader not installed")
    out: list[dict[str, Any]] = []
    for path in sorted(EVTX.rglob("*.evtx")):
        out.extend(list(reader.read_evtx(path))[::EVENT_STRIDE])
    return out


def _brute_force(engine: DetectionEngine, event: dict[str, Any]) -> list[int]:
    low, raw = engine.compiled.selection.views(event)
    hits = []
    for i, matcher in enumerate(engine.compiled.matchers):
        try:
            if matcher(low, raw):
                hits.append(i)
        except Exception:  # the engine counts and skips a failing rule the same way
            continue
    return hits


def test_indexed_matches_equal_brute_force(engine: DetectionEngine, events: list[dict[str, Any]]) -> None:
    assert len(engine.rules) > 600 and len(events) > 3000
    gram_index = _index_with_gram_tables(engine)
    total = 0
    for event in events:
        expected = _brute_force(engine, event)
        assert engine.match(event) == expected, event.get("log")
        low, _ = engine.compiled.selection.views(event)
        assert set(expected) <= set(gram_index.candidates(low)), event.get("log")
        total += len(expected)
    assert total > 200  # the sample really exercises matching rules, not only misses
    # the index does its job: far fewer rules run than exist
    assert engine.stats.candidates < len(events) * len(engine.rules) / 20


def _index_with_gram_tables(engine: DetectionEngine) -> RuleIndex:
    saved = index_module._NeedleTable
    index_module._NeedleTable = _GramTable
    try:
        return RuleIndex([r.condition for r in engine.rules])
    finally:
        index_module._NeedleTable = saved


needle_text = st.text(alphabet="ab-é\\:", min_size=1, max_size=7)


@settings(max_examples=300, deadline=None)
@given(
    needles=st.lists(needle_text, min_size=1, max_size=12, unique=True), value=st.text(alphabet="ab-é\\:x", max_size=40)
)
def test_contains_tables_find_exactly_the_needles_held(needles: list[str], value: str) -> None:
    table = {needle: [i] for i, needle in enumerate(needles)}
    expected = {i for i, needle in enumerate(needles) if needle in value}
    tables: list[Any] = [_GramTable(table)]
    if index_module._NeedleTable is not _GramTable:
        tables.append(index_module._NeedleTable(table))
    for kind in tables:
        got: set[int] = set()
        kind.hits(value, got)
        assert got == expected, type(kind).__name__


def test_index_round_trips_through_its_state(engine: DetectionEngine, events: list[dict[str, Any]]) -> None:
    index = engine.compiled.index
    restored = RuleIndex.from_state(index.state())
    for event in events[::10]:
        low, _ = engine.compiled.selection.views(event)
        assert restored.candidates(low) == index.candidates(low)


def test_rule_sample_covers_contains_anchors(engine: DetectionEngine) -> None:
    """The sample exercises the contains-table, not only equals and affixes."""
    needles = engine.compiled.index.has_needles
    assert sum(len(n) for n in needles.values()) > 200


def test_regex_rules_get_anchors(engine: DetectionEngine) -> None:
    """Most regex leaves yield literal anchors (else they would run on every event of their log source)."""
    index = engine.compiled.index
    with_regex = [i for i, r in enumerate(engine.rules) if any(leaf[2] == "re" for leaf in walk_leaves(r.condition))]
    assert len(with_regex) > 20
    assert len(set(with_regex) - set(index.always)) == len(with_regex)
