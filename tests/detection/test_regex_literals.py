"""Literals required by a regex: every match holds one (lower-cased), whatever the input."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from collector.detection.regex_literals import required_literals

PIECES = ["ab", "Ci", "`", "s", "x+", "(de|fg)", "(?:hk)?", "[a-c]", ".", "\\d", "(ij|k)", "ž", "\\\\", "^", "$"]


@pytest.mark.parametrize(
    ("pattern", "flags", "expected"),
    [
        (r"\w+`(\w+|-|.)`[\w+|\s]", 0, {"`"}),
        ("(?i)invoke-(expression|webrequest)", 0, {"nvoke-"}),  # no "i": it also matches dotless ı
        ("Invoke-Expression", 0, {"invoke-expression"}),
        ("abc|defg", 0, {"abc", "defg"}),
        ("x[a-z]+yyyz", 0, {"yyyz"}),
        ("(ab){2,}cde", 0, {"cde"}),
        ("(?i:foo)bar", 0, {"bar"}),
        ("a.*", 0, None),  # nothing long enough
        ("(abc)?", 0, None),  # optional
        ("abc|d", 0, None),  # one alternative has none
        ("[", 0, None),  # invalid
        ("ÉTÉ", 0, None),  # non-ASCII
    ],
)
def test_required_literals(pattern: str, flags: int, expected: set[str] | None) -> None:
    got = required_literals(pattern, flags)
    assert (set(got) if got is not None else None) == expected


@settings(max_examples=400, deadline=None)
@given(
    parts=st.lists(st.sampled_from(PIECES), min_size=1, max_size=6),
    flags=st.sampled_from([0, re.IGNORECASE]),
    text=st.text(alphabet="abCcdefghijkKsSxž`\\ıİſ0", max_size=24),
)
@example(parts=["ab", "Ci"], flags=re.IGNORECASE, text="ABcı")  # i matches dotless ı, which stays ı
@example(parts=["ab", "Ci"], flags=re.IGNORECASE, text="abcİ")  # İ lower-cases to two characters
@example(parts=["ab", "s"], flags=re.IGNORECASE, text="abſ")  # s matches long s
def test_every_match_holds_a_required_literal(parts: list[str], flags: int, text: str) -> None:
    pattern = "".join(parts)
    literals = required_literals(pattern, flags)
    if literals is None:
        return
    found = re.search(pattern, text, flags)
    if found is not None:
        assert any(lit in text.lower() for lit in literals), (pattern, text, literals)
