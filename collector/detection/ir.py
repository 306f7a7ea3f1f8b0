"""A small, picklable intermediate form of a processed rule's detection condition.

pySigma objects are slow to build (YAML + parsing + pipeline: seconds for thousands of rules) and
heavy to keep; this form is plain tuples, so the loader can cache it on disk and the compiler can
turn it into closures in milliseconds. It is also what the index reads to find literal anchors.

Node shapes::

    ("and", (node, ...))   ("or", (node, ...))   ("not", node)   ("const", bool)
    ("m", field | None, op, values)      # field None = keyword search over all values

Leaf ``op`` and ``values`` (a tuple; the leaf matches if ANY value matches):

    eq / pre / suf / has      case-insensitive equals / startswith / endswith / contains (values lowered)
    eqc / prec / sufc / hasc  the same, case-sensitive (``cased`` modifier)
    glob, globc               wildcard pattern other than the above, as an anchored regex source
    re                        (pattern, python re flags)
    cidr                      network strings
    num                       numbers (equal as numbers, or as their string form)
    cmp                       (operator, number), operator in lt/lte/gt/gte/neq
    null                      () field missing, None or empty
    exists                    (bool,)
    ref                       (other_field, startswith, endswith)  ``fieldref``
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sigma.types import SigmaString, SigmaType

Node = tuple[Any, ...]

# pySigma is imported inside the translating functions only: the engine runs cached IR without it.
_RE_FLAGS = {"IGNORECASE": int(re.IGNORECASE), "MULTILINE": int(re.MULTILINE), "DOTALL": int(re.DOTALL)}
_CMP = {"LT": "lt", "LTE": "lte", "GT": "gt", "GTE": "gte", "NEQ": "neq"}


class UnsupportedRule(Exception):
    """The rule cannot be evaluated in-process; the message is the reason shown to the operator."""


def leaf(field: str | None, op: str, *values: Any) -> Node:
    return ("m", field, op, tuple(values))


def string_leaf(field: str | None, value: SigmaString) -> Node:
    """Classify a Sigma string (wildcards, escapes already parsed by pySigma) into the cheapest op."""
    from sigma.types import Placeholder, SigmaCasedString, SpecialChars

    cased = isinstance(value, SigmaCasedString)
    suffix = "c" if cased else ""
    parts = list(value.s)
    for part in parts:
        if isinstance(part, Placeholder):
            raise UnsupportedRule(f"unresolved placeholder %{part.name}% (configure detection placeholders)")
    multi = SpecialChars.WILDCARD_MULTI
    plain = [p for p in parts if isinstance(p, str)]
    specials = [p for p in parts if not isinstance(p, str)]
    text = "".join(plain)
    norm = text if cased else text.lower()
    if not specials:
        # An unbound keyword is a substring search (as Chainsaw and Hayabusa treat keywords).
        return leaf(field, ("has" if field is None else "eq") + suffix, norm)
    if all(p is multi for p in specials):
        if parts == [multi]:
            return leaf(field, "exists", True)
        if len(parts) == 3 and parts[0] is multi and parts[2] is multi and isinstance(parts[1], str):
            return leaf(field, "has" + suffix, norm)
        if len(parts) == 2 and parts[1] is multi and isinstance(parts[0], str):
            return leaf(field, "pre" + suffix, norm)
        if len(parts) == 2 and parts[0] is multi and isinstance(parts[1], str):
            return leaf(field, "suf" + suffix, norm)
    pattern = "".join(re.escape(p) if isinstance(p, str) else (".*" if p is multi else ".") for p in parts)
    return leaf(field, "glob" + suffix, pattern)


def value_node(field: str | None, value: SigmaType) -> Node:
    """One Sigma value on a field (or keyword when ``field`` is None) -> IR leaf or subtree."""
    from sigma.types import (
        SigmaBool,
        SigmaCIDRExpression,
        SigmaCompareExpression,
        SigmaExists,
        SigmaExpansion,
        SigmaFieldReference,
        SigmaNull,
        SigmaNumber,
        SigmaRegularExpression,
        SigmaString,
    )

    if isinstance(value, SigmaExpansion):
        return ("or", tuple(value_node(field, v) for v in value.values))
    if isinstance(value, SigmaString):
        return string_leaf(field, value)
    if isinstance(value, SigmaBool):
        return leaf(field, "eq", "true" if value.boolean else "false")
    if isinstance(value, SigmaNumber):
        return leaf(field, "num", value.number)
    if isinstance(value, SigmaNull):
        return leaf(field, "null")
    if isinstance(value, SigmaExists):
        return leaf(field, "exists", value.exists)
    if isinstance(value, SigmaRegularExpression):
        flags = 0
        for flag in value.flags:
            flags |= _RE_FLAGS[flag.name]
        return leaf(field, "re", (str(value.regexp), flags))
    if isinstance(value, SigmaCIDRExpression):
        return leaf(field, "cidr", value.cidr)
    if isinstance(value, SigmaCompareExpression):
        return leaf(field, "cmp", (_CMP[value.op.name], value.number.number))
    if isinstance(value, SigmaFieldReference):
        return leaf(field, "ref", (value.field, value.starts_with, value.ends_with))
    raise UnsupportedRule(f"value type {type(value).__name__} is not supported in-process")


def condition_node(cond: Any) -> Node:
    """pySigma's post-processed condition tree -> IR."""
    from sigma.conditions import (
        ConditionAND,
        ConditionFieldEqualsValueExpression,
        ConditionNOT,
        ConditionOR,
        ConditionValueExpression,
    )

    if isinstance(cond, ConditionAND):
        return ("and", tuple(condition_node(a) for a in cond.args))
    if isinstance(cond, ConditionOR):
        return ("or", tuple(condition_node(a) for a in cond.args))
    if isinstance(cond, ConditionNOT):
        return ("not", condition_node(cond.args[0]))
    if isinstance(cond, ConditionFieldEqualsValueExpression):
        if cond.field is None:
            return value_node(None, cond.value)
        return value_node(cond.field, cond.value)
    if isinstance(cond, ConditionValueExpression):
        return value_node(None, cond.value)
    if cond is None:
        raise UnsupportedRule("empty condition")
    raise UnsupportedRule(f"condition element {type(cond).__name__} is not supported")


def simplify(node: Node) -> Node:
    """Flatten nested and/or, and merge OR-ed leaves on the same field and op into one leaf.

    ``Image|endswith: [a, b, c]`` becomes one leaf testing a tuple of suffixes, which Python's
    ``str.endswith`` does in one C call.
    """
    kind = node[0]
    if kind == "not":
        inner = simplify(node[1])
        if inner[0] == "not":
            return inner[1]
        return ("not", inner)
    if kind not in ("and", "or"):
        return node
    children: list[Node] = []
    for child in (simplify(c) for c in node[1]):
        if child[0] == kind:
            children.extend(child[1])
        else:
            children.append(child)
    if kind == "or":
        merged: dict[tuple[Any, str], list[Any]] = {}
        rest: list[Node] = []
        for child in children:
            if child[0] == "m" and child[2] not in ("null", "exists"):
                merged.setdefault((child[1], child[2]), []).extend(child[3])
            else:
                rest.append(child)
        children = [("m", f, op, tuple(dict.fromkeys(vals))) for (f, op), vals in merged.items()] + rest
    if len(children) == 1:
        return children[0]
    return (kind, tuple(children))


def walk_leaves(node: Node) -> list[Node]:
    if node[0] == "m":
        return [node]
    if node[0] == "not":
        return walk_leaves(node[1])
    if node[0] in ("and", "or"):
        return [x for c in node[1] for x in walk_leaves(c)]
    return []


def has_keyword(node: Node) -> bool:
    return any(leaf_[1] is None for leaf_ in walk_leaves(node))
