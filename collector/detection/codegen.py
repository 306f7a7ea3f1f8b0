"""IR -> one generated Python function per rule, all in one code object that can be cached.

Nested closures cost a Python call per node; a generated ``return (... and ...)`` expression
evaluates the common leaves (equals / startswith / endswith / contains on a field) inline, with
one dict lookup each. Rare leaves (regex, numbers, CIDR, keywords, field references...) call the
closures of :mod:`compiler`, so both paths share one definition of every operator's semantics.

The code object is built once per rule set and cached with :mod:`marshal` (see :mod:`cache`);
loading it is an ``exec`` that only defines functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import CodeType
from typing import Any

from collector.detection.compiler import Matcher, compile_leaf, cost
from collector.detection.ir import Node

_INLINE = {"eq": True, "pre": True, "suf": True, "has": True, "eqc": False, "prec": False, "sufc": False, "hasc": False}
RULE_FUNC = "r{}"


@dataclass
class Generated:
    """One code object per rule (defining ``r<i>``) plus the leaves they call as closures."""

    codes: list[CodeType]
    leaves: list[Node]


def _string_test(op: str, values: tuple[Any, ...]) -> str:
    """An expression over ``v`` (a ``str``) for an inline op."""
    base = op if _INLINE[op] else op[:-1]
    if base == "eq":
        if len(values) == 1:
            return f"v == {values[0]!r}"
        # A set display after ``in`` is folded into a frozenset constant by the compiler.
        return "v in {" + ", ".join(repr(x) for x in sorted(set(values))) + "}"
    if base == "pre":
        return f"v.startswith({tuple(values)!r})"
    if base == "suf":
        return f"v.endswith({tuple(values)!r})"
    if len(values) == 1:
        return f"{values[0]!r} in v"
    return f"_has(v, {tuple(values)!r})"


class _Emitter:
    def __init__(self) -> None:
        self.leaves: list[Node] = []

    def leaf(self, node: Node) -> str:
        _, field, op, values = node
        if field is not None and op in _INLINE and all(isinstance(v, str) for v in values) and values:
            source = "low" if _INLINE[op] else "raw"
            test = _string_test(op, values)
            if not any(v.isascii() for v in values):  # e.g. emoji lists: an ASCII value never holds one
                test = f"not v.isascii() and {test}"
            # One lookup; the str case (nearly always) runs the test directly, a list-valued
            # field (tuple) matches when any element does.
            return (
                f"(((v := {source}.get({field!r})).__class__ is str and {test}) "
                f"or (v.__class__ is tuple and _anyof(v, {op!r}, {tuple(values)!r})))"
            )
        self.leaves.append(node)
        return f"_L[{len(self.leaves) - 1}](low, raw)"

    def node(self, node: Node) -> str:
        kind = node[0]
        if kind == "m":
            return self.leaf(node)
        if kind == "const":
            return "True" if node[1] else "False"
        if kind == "not":
            return f"(not {self.node(node[1])})"
        children = sorted(node[1], key=cost)
        joiner = " and " if kind == "and" else " or "
        return "(" + joiner.join(self.node(c) for c in children) + ")"


def generate(conditions: Sequence[Node]) -> Generated:
    """Compile every condition into ``r<i>(low, raw) -> bool``, rule by rule (a single module of
    thousands of rules would make the compiler's syntax tree for all of them at once)."""
    emitter = _Emitter()
    codes: list[CodeType] = []
    for i, cond in enumerate(conditions):
        source = f"def {RULE_FUNC.format(i)}(low, raw):\n    return bool({emitter.node(cond)})\n"
        code = compile(source, f"<sigma-rule-{i}>", "exec", dont_inherit=True, optimize=2)
        codes.append(lines_only(code))
    return Generated(codes=codes, leaves=emitter.leaves)


def lines_only(code: CodeType) -> CodeType:
    """``code`` with a location table that says "line 1, no columns" for every instruction.

    Column positions of a one-line generated expression were 40% of the cached rules (3.7 of 9 MB
    for SigmaHQ), read, hashed and unmarshalled at every start and held in memory; they serve
    only tracebacks' carets. The table stays valid (an empty one breaks traceback formatting):
    3.11+ entries of kind 13 ("no column info", line delta 0), each covering up to 8 code units.
    """
    units = len(code.co_code) // 2
    table = bytearray()
    left = units
    while left > 0:
        n = min(left, 8)
        table += bytes((0x80 | (13 << 3) | (n - 1), 0))
        left -= n
    consts = tuple(lines_only(c) if isinstance(c, CodeType) else c for c in code.co_consts)
    slim = code.replace(co_linetable=bytes(table), co_consts=consts)
    positions = list(slim.co_positions())
    if len(positions) != units or any(p[0] != code.co_firstlineno for p in positions):  # pragma: no cover
        return code.replace(co_consts=consts)  # a table format this Python does not share: keep its own
    return slim


def _has(v: str, needles: tuple[str, ...]) -> bool:
    for n in needles:  # noqa: SIM110 - a plain loop is ~2x faster than any() over a generator
        if n in v:
            return True
    return False


def _anyof(values: tuple[str, ...], op: str, needles: tuple[str, ...]) -> bool:
    """A list-valued field (rare) matches when any element does; one generic helper keeps the
    generated code (and the cache) small."""
    base = op if _INLINE[op] else op[:-1]
    for x in values:
        if base == "eq":
            hit = x in needles
        elif base == "pre":
            hit = x.startswith(needles)
        elif base == "suf":
            hit = x.endswith(needles)
        else:
            hit = _has(x, needles)
        if hit:
            return True
    return False


def instantiate(codes: Sequence[CodeType], leaves: Sequence[Node]) -> list[Matcher]:
    """Run the generated code and return the rule functions, in rule order."""
    namespace: dict[str, Any] = {
        "_L": [compile_leaf(leaf) for leaf in leaves],
        "_has": _has,
        "_anyof": _anyof,
    }
    for code in codes:
        exec(code, namespace)  # our own generated code: rule values enter it only as repr() literals
    return [namespace[RULE_FUNC.format(i)] for i in range(len(codes))]
