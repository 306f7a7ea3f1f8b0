"""The fast path keeps the reference semantics: generated code, selective flattening, the cache,
keyword text and parallel hunting all give the answers of the straightforward implementation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from collector.detection.compiler import compile_node
from collector.detection.eventview import EventView, FieldSelection, event_text
from collector.detection.hunt import hunt_command
from collector.detection.loader import load_engine
from detection.helpers import REPO, RULES, SHARED, engine_from, rule_yaml

DOCS = [
    rule_yaml("sel:\n    Image|endswith: ['\\\\certutil.exe', '\\\\x.exe']\ncondition: sel"),
    rule_yaml("sel:\n    CommandLine|contains: ['urlcache', '-f', 'zz']\ncondition: sel"),
    rule_yaml("sel:\n    CommandLine|contains|cased: 'URLCACHE'\ncondition: sel"),
    rule_yaml("sel:\n    User|startswith: 'NT AUTH'\ncondition: sel"),
    rule_yaml("sel:\n    EventID: [1, 4688]\nfilter:\n    x: y\ncondition: sel and not filter"),
    rule_yaml("sel:\n    a|re: 'zz+'\ncondition: sel"),
    rule_yaml("sel:\n    a: 'Q'\ncondition: not sel"),
    rule_yaml("sel:\n    CommandLine|contains: ['\U0001f600', '\u00e9t\u00e9']\ncondition: sel"),
    rule_yaml("sel:\n    nested.deep.v: 3\ncondition: sel"),
    rule_yaml("keywords:\n    - 'kiwi'\ncondition: keywords", logsource="product: windows"),
    rule_yaml("keywords:\n    - 'mimi*'\ncondition: keywords", logsource="product: windows"),
]

EVENTS: list[dict[str, Any]] = [
    {"Image": "C:\\W\\CertUtil.exe", "CommandLine": "certutil -URLCACHE -f", "EventID": 1},
    {"Image": "c:\\x.exe", "User": "nt authority\\system", "EventID": "4688", "x": "y"},
    {"a": "zzz", "CommandLine": "smile \U0001f600"},
    {"a": "q", "CommandLine": ["a", "b urlcache"], "Image": ["c:\\a.exe", "d:\\X.EXE"]},
    {"nested": {"deep": {"v": 3}}, "CommandLine": "\u00c9T\u00c9 ok"},
    {"nested": [{"deep": {"v": 3}}, {"deep": {"v": 4}}]},
    {"winlog": {"channel": "Security", "event_data": {"P": "gentilKIWI"}}, "event": {"original": "<x/>"}},
    {"winlog": {"channel": "Security"}, "event": {"code": "1", "original": "<Data>mimikatz</Data>"}},
    {"winlog": {"channel": "Security", "event_data": {"P": ["x", "mimikatz"]}}},
    {},
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return engine_from(tmp_path_factory.mktemp("rules"), *DOCS)


def _reference(engine: Any, event: dict[str, Any]) -> set[str]:
    """Closure matchers over a full flattening: the engine's reference semantics."""
    view = EventView(event)
    return {r.meta.id for r in engine.rules if compile_node(r.condition)(view.low, view.raw)}


@pytest.mark.parametrize("event", EVENTS, ids=range(len(EVENTS)))
def test_generated_code_and_index_agree_with_reference(engine: Any, event: dict[str, Any]) -> None:
    got = {m.id for m in engine.evaluate(event).matches}
    assert got == _reference(engine, event)


def test_expected_hits(engine: Any) -> None:
    doc_of = {r.meta.id: int(Path(r.meta.source).stem[1:]) for r in engine.rules}  # rN.yml holds DOCS[N]

    def docs(event: dict[str, Any]) -> set[int]:
        return {doc_of[m.id] for m in engine.evaluate(event).matches}

    keyword_docs = {9, 10}
    # a Windows record's values are searched, not its XML: "mimikatz" only in the XML misses
    assert not docs(EVENTS[7]) & keyword_docs
    assert docs(EVENTS[8]) & keyword_docs == {10}  # glob keyword on a list element
    assert docs(EVENTS[6]) & keyword_docs == {9}
    assert {5, 7} <= docs(EVENTS[2])
    assert 7 in docs(EVENTS[4])  # non-ASCII needle against a lowered non-ASCII value
    assert {0, 1, 2, 4} <= docs(EVENTS[0]) and 8 in docs(EVENTS[5])


def test_keyword_text_skips_only_windows_xml() -> None:
    windows = {"winlog": {"channel": "Security"}, "event": {"code": 4624, "original": "<Event>XML</Event>"}}
    assert "xml" not in event_text(windows) and "4624" in event_text(windows)
    line = {"event": {"original": "Jan 1 sshd: Mimikatz"}, "message": "x"}
    assert "mimikatz" in event_text(line)


scalars = st.one_of(st.text(max_size=5), st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "c.d", "e"]), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(event=st.dictionaries(st.sampled_from(["a", "b", "c", "c.d"]), trees, max_size=4))
def test_selective_view_equals_full_view_on_wanted_fields(event: dict[str, Any]) -> None:
    wanted = {"a", "b.a", "b.c.d", "c.d", "c.d.e", "a.e", "c.a.b"}
    low, raw = FieldSelection(wanted).views(event)
    full = EventView(event)
    assert {k: v for k, v in raw.items() if k in wanted} == {k: v for k, v in full.raw.items() if k in wanted}
    assert low == {k: v for k, v in full.low.items() if k in wanted}


def test_cache_round_trip_and_corruption(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    for i, doc in enumerate(DOCS):
        (folder / f"r{i}.yml").write_text(doc, encoding="utf-8")
    cache = tmp_path / "cache"
    first = load_engine([folder], cache_dir=cache)
    second = load_engine([folder], cache_dir=cache)
    assert first.report is not None and second.report is not None
    assert not first.report.from_cache and second.report.from_cache
    assert [r.meta for r in first.rules] == [r.meta for r in second.rules]
    for event in EVENTS:
        assert [m.id for m in first.evaluate(event).matches] == [m.id for m in second.evaluate(event).matches]
    (cached,) = cache.iterdir()
    cached.write_bytes(b"\x00garbage")
    third = load_engine([folder], cache_dir=cache)
    assert third.report is not None and not third.report.from_cache and len(third.rules) == len(first.rules)
    (folder / "r0.yml").write_text(DOCS[0].replace("certutil", "bitsadmin"), encoding="utf-8")
    changed = load_engine([folder], cache_dir=cache)
    assert changed.report is not None and not changed.report.from_cache


def test_cached_load_does_not_import_pysigma(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from collector.detection.loader import load_engine; "
        f"e = load_engine([Path({str(RULES)!r})], cache_dir=Path({str(tmp_path)!r})); "
        "print(e.report.from_cache, any(m.startswith('sigma') for m in sys.modules))"
    )
    run = [sys.executable, "-c", code]
    subprocess.run(run, check=True, capture_output=True, cwd=REPO)
    out = subprocess.run(run, check=True, capture_output=True, text=True, cwd=REPO).stdout.split()
    assert out == ["True", "False"]


def test_parallel_hunt_output_equals_sequential(tmp_path: Path) -> None:
    samples = SHARED / "evtx-attack-samples"
    if not samples.is_dir():
        pytest.skip("EVTX samples not present at ../shared/data")
    inputs = sorted(samples.rglob("*.evtx"))[:40]  # enough small files to share batches
    app = typer.Typer()
    app.command()(hunt_command)
    outputs = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}.jsonl"
        args = ["--no-cache", "--rules", str(RULES), "-f", "jsonl", "-o", str(out), "--workers", workers]
        result = CliRunner().invoke(app, [*args, *map(str, inputs)])
        assert result.exit_code == 0, result.output
        outputs.append([json.loads(line) for line in out.read_text().splitlines()])
    assert outputs[0] == outputs[1]
    assert outputs[0], "the sample files should match some rules of rules/"
