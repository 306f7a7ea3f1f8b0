"""Each Sigma modifier and value form: one event that must match, one that must not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from detection.helpers import engine_from, matches, rule_yaml

CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("plain equals, case-insensitive", "f: Hello", {"f": "hELLO"}, {"f": "hello!"}),
    ("contains", "f|contains: needle", {"f": "hayNEEDLEstack"}, {"f": "hay"}),
    ("startswith", "f|startswith: abc", {"f": "ABCdef"}, {"f": "xabc"}),
    ("endswith", "f|endswith: '\\cmd.exe'", {"f": "C:\\Windows\\CMD.EXE"}, {"f": "C:\\cmd.exe.bak"}),
    ("contains all", "f|contains|all: [a1, b2]", {"f": "xa1yb2"}, {"f": "xa1y"}),
    ("wildcard *", "f: 'a*c'", {"f": "abbbc"}, {"f": "abbbd"}),
    ("wildcard ?", "f: 'a?c'", {"f": "abc"}, {"f": "abbc"}),
    ("escaped wildcard", "f: 'a\\*c'", {"f": "a*c"}, {"f": "abc"}),
    ("re", "f|re: '^ab+c$'", {"f": "abbbc"}, {"f": "ABBC"}),
    ("re i flag", "f|re|i: '^ab+c$'", {"f": "ABBC"}, {"f": "ac"}),
    ("re m flag", "f|re|m: '^second$'", {"f": "first\nsecond"}, {"f": "first second"}),
    ("re s flag", "f|re|s: 'a.b'", {"f": "a\nb"}, {"f": "ab"}),
    ("cidr", "f|cidr: 10.0.0.0/8", {"f": "10.1.2.3"}, {"f": "11.0.0.1"}),
    ("cidr v6", "f|cidr: 'fe80::/10'", {"f": "fe80::1"}, {"f": "2001:db8::1"}),
    ("base64", "f|base64: 'abc'", {"f": "YWJj"}, {"f": "abc"}),
    ("base64offset contains", "f|base64offset|contains: 'ping'", {"f": "xxcGluZyyy"}, {"f": "ping"}),
    ("wide base64offset", "f|wide|base64offset|contains: 'ping'", {"f": "..cABpAG4AZwA.."}, {"f": "cGluZ"}),
    ("wide base64", "f|wide|base64: 'a'", {"f": "YQA="}, {"f": "YQ=="}),
    ("utf16be base64", "f|utf16be|base64: 'a'", {"f": "AGE="}, {"f": "YQA="}),
    ("utf16 base64 (pySigma's BOM form)", "f|utf16|base64: 'a'", {"f": "77u/YQA="}, {"f": "YQA="}),
    ("windash", "f|windash|contains: ' -enc '", {"f": "powershell /enc AAA"}, {"f": "powershell enc AAA"}),
    ("exists true", "f|exists: true", {"f": ""}, {"g": "x"}),
    ("exists false", "f|exists: false", {"g": "x"}, {"f": "x"}),
    ("cased", "f|cased: Hello", {"f": "Hello"}, {"f": "hello"}),
    ("cased contains", "f|contains|cased: Hi", {"f": "oh Hi"}, {"f": "oh hi"}),
    ("fieldref", "f|fieldref: g", {"f": "Same", "g": "same"}, {"f": "a", "g": "b"}),
    (
        "fieldref endswith",
        "f|fieldref|endswith: g",
        {"f": "c:\\x\\a.exe", "g": "a.exe"},
        {"f": "a", "g": "b"},
    ),
    ("gt", "f|gt: 10", {"f": 11}, {"f": "10"}),
    ("gte", "f|gte: 10", {"f": "10"}, {"f": 9}),
    ("lt", "f|lt: 10", {"f": 9.5}, {"f": 10}),
    ("lte", "f|lte: 10", {"f": 10}, {"f": "abc"}),
    ("number vs string", "f: 4625", {"f": "4625"}, {"f": "46250"}),
    ("number vs number", "f: 4625", {"f": 4625}, {"f": 4624}),
    ("null", "f: null", {"g": 1}, {"f": "x"}),
    ("empty string", "f: ''", {"f": ""}, {"f": "x"}),
    ("list field any element", "f: b", {"f": ["a", "B"]}, {"f": ["a", "c"]}),
    ("dotted nested field", "a.b|endswith: z", {"a": {"b": "xyz"}}, {"a": {"c": "xyz"}}),
    ("boolean", "f: true", {"f": True}, {"f": False}),
    ("list of values is OR", "f: [x, y]", {"f": "Y"}, {"f": "z"}),
]


@pytest.mark.parametrize(("name", "selection", "hit", "miss"), CASES, ids=[c[0] for c in CASES])
def test_modifier(tmp_path: Path, name: str, selection: str, hit: dict[str, Any], miss: dict[str, Any]) -> None:
    engine = engine_from(tmp_path, rule_yaml(f"sel:\n    {selection}\ncondition: sel"))
    assert engine.report is not None and not engine.report.skipped, engine.report.skipped
    assert matches(engine, hit), f"{name}: should match {hit}"
    assert not matches(engine, miss), f"{name}: should not match {miss}"


def test_keyword_searches_all_string_values(tmp_path: Path) -> None:
    engine = engine_from(tmp_path, rule_yaml("kw:\n    - 'mimikatz'\ncondition: kw", "product: linux\nservice: auth"))
    assert matches(engine, {"event": {"dataset": "system.auth"}, "message": "ran MimiKatz.exe"})
    assert matches(engine, {"event": {"dataset": "system.auth", "original": "x mimikatz y"}})
    assert not matches(engine, {"event": {"dataset": "system.auth"}, "message": "benign"})
    assert not matches(engine, {"event": {"dataset": "system.syslog"}, "message": "mimikatz"})


def test_expand_placeholder_resolved_or_skipped(tmp_path: Path) -> None:
    doc = rule_yaml("sel:\n    f|expand: '%admins%'\ncondition: sel")
    resolved = engine_from(tmp_path, doc, placeholders={"admins": ["alice", "bob"]})
    assert matches(resolved, {"f": "Bob"})
    assert not matches(resolved, {"f": "carol"})
    unresolved = engine_from(tmp_path, doc)
    assert unresolved.report is not None and len(unresolved.report.skipped) == 1
    assert "placeholder" in unresolved.report.skipped[0].reason


def test_broken_rule_is_skipped_with_reason_not_fatal(tmp_path: Path) -> None:
    good = rule_yaml("sel:\n    f: x\ncondition: sel")
    bad_regex = rule_yaml("sel:\n    f|re: '(unclosed'\ncondition: sel")
    bad_condition = rule_yaml("sel:\n    f: x\ncondition: sel and nothere")
    engine = engine_from(tmp_path, good, bad_regex, bad_condition, "not: [valid: yaml")
    assert engine.report is not None
    assert len(engine.rules) == 1
    assert len(engine.report.skipped) == 3
    assert all(s.reason for s in engine.report.skipped)
