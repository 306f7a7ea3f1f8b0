"""Literal text a regular expression cannot match without, so the rule index can anchor regex rules.

``Powershell Token Obfuscation`` runs its regex on every process creation unless the index knows
that a match must contain, say, a backtick. :func:`required_literals` walks the parsed pattern and
returns lower-cased strings of which every match holds at least one (a run of literal characters,
or one per alternative of a group), or None when it cannot say.

The index compares them with lower-cased field values, so only what survives lower-casing is kept:
ASCII literals (``str.lower`` is per character for them, so a literal inside a value is still inside
its lower-cased form), and under IGNORECASE no ``i``/``s`` (which also match ``ı``, ``İ``, ``ſ``,
whose lower-case forms differ).
"""

from __future__ import annotations

import importlib
import re
from typing import Any

_sre_parse: Any = importlib.import_module("re._parser")  # Python 3.11+; ``sre_parse`` is deprecated

MIN_LITERAL = 3  # shorter runs of letters and digits are in nearly every value: no use as an anchor
_COMMON_MARKS = frozenset(" \\/.:-_,;'\"=")  # as common in values as letters
_CASE_FOLD_TRAPS = frozenset("isIS")
_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}


def required_literals(pattern: str, flags: int) -> frozenset[str] | None:
    """Lower-cased strings one of which every match of ``pattern`` contains, or None."""
    try:
        parsed = _sre_parse.parse(pattern, flags)
    except (re.error, RecursionError, OverflowError, ValueError):
        return None
    ignore_case = bool((parsed.state.flags | flags) & re.IGNORECASE)
    return _sequence(list(parsed), ignore_case)


def _sequence(items: list[tuple[Any, Any]], ignore_case: bool) -> frozenset[str] | None:
    """Best requirement of a concatenation: any one of its parts' requirements holds for it."""
    options: list[frozenset[str]] = []
    run: list[str] = []

    def close_run() -> None:
        if len(run) >= MIN_LITERAL or any(not c.isalnum() and c not in _COMMON_MARKS for c in run):
            options.append(frozenset(["".join(run).lower()]))
        run.clear()

    for op, arg in items:
        name = str(op)
        if name == "LITERAL" and _usable(arg, ignore_case):
            run.append(chr(arg))
            continue
        close_run()
        found = _item(name, arg, ignore_case)
        if found:
            options.append(found)
    close_run()
    if not options:
        return None
    return max(options, key=lambda option: (min(len(s) for s in option), -len(option)))


def _usable(code: int, ignore_case: bool) -> bool:
    char = chr(code)
    return char.isascii() and not (ignore_case and char in _CASE_FOLD_TRAPS)


def _item(name: str, arg: Any, ignore_case: bool) -> frozenset[str] | None:
    if name == "SUBPATTERN":
        _, add_flags, del_flags, body = arg
        if add_flags or del_flags:  # scoped flags (?i:...): not worth the special cases
            return None
        return _sequence(list(body), ignore_case)
    if name == "ATOMIC_GROUP":
        return _sequence(list(arg), ignore_case)
    if name in _REPEATS:
        low, _, body = arg
        return _sequence(list(body), ignore_case) if low >= 1 else None
    if name == "BRANCH":
        union: set[str] = set()
        for alternative in arg[1]:
            found = _sequence(list(alternative), ignore_case)
            if not found:
                return None
            union |= found
        return frozenset(union)
    return None
