"""IR -> Python closures over an :class:`EventView`'s ``low``/``raw`` dicts.

Each leaf becomes one closure specialised for its op (``str.endswith`` with a tuple of suffixes,
a frozenset for equals, one alternation regex for many ``contains`` needles), and AND children
run cheapest first, so most rules fail on their first dict lookup.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from collector.detection.eventview import EVENT_KEY, EventView, FieldValue, event_text
from collector.detection.ir import Node, UnsupportedRule

Fields = dict[str, FieldValue]
Matcher = Callable[[Fields, Fields], bool]
Pred = Callable[[str], bool]

_OP_COST = {
    "eq": 1, "eqc": 1, "num": 1, "null": 1, "exists": 1, "pre": 2, "prec": 2, "suf": 2, "sufc": 2,
    "has": 3, "hasc": 3, "cidr": 4, "cmp": 4, "ref": 4, "glob": 5, "globc": 5, "re": 6,
}  # fmt: skip


def cost(node: Node) -> int:
    """A rough evaluation cost, used to order AND children (cheap, selective tests first)."""
    kind = node[0]
    if kind == "m":
        base = _OP_COST.get(node[2], 5)
        return base * (20 if node[1] is None else 1)
    if kind == "not":
        return cost(node[1]) + 1
    if kind in ("and", "or"):
        return sum(cost(c) for c in node[1])
    return 0


def _any_value(field: str, use_low: bool, pred: Pred) -> Matcher:
    if use_low:

        def match_low(low: Fields, raw: Fields) -> bool:
            v = low.get(field)
            if v is None:
                return False
            if v.__class__ is str:
                return pred(v)
            return any(pred(x) for x in v)

        return match_low

    def match_raw(low: Fields, raw: Fields) -> bool:
        v = raw.get(field)
        if v is None:
            return False
        if v.__class__ is str:
            return pred(v)
        return any(pred(x) for x in v)

    return match_raw


ALL_TEXT = "\x00all"  # key under which a view's lower-cased values, joined, are cached for keywords
FULL_VIEW = "\x00full"  # key under which a selective view caches the event's full flattening


def _all_text(low: Fields, raw: Fields) -> str:
    text = low.get(ALL_TEXT)
    if text is None:
        event = raw.get(EVENT_KEY)
        if event is not None:  # a selective view: the event's own values, not just the wanted ones
            text = event_text(event)  # type: ignore[arg-type]
        else:
            parts: list[str] = []
            for v in low.values():
                if v.__class__ is str:
                    parts.append(v)
                else:
                    parts.extend(v)
            text = "\x00".join(parts)
        low[ALL_TEXT] = text
    return text  # type: ignore[return-value]


def _has(text: str, needles: tuple[str, ...]) -> bool:
    for n in needles:  # noqa: SIM110 - a plain loop: no generator per event
        if n in text:
            return True
    return False


def _full(low: Fields, raw: Fields, use_low: bool) -> Fields:
    """Every field of the event (keyword searches other than contains read them all)."""
    event = raw.get(EVENT_KEY)
    if event is None:
        return low if use_low else raw
    view = raw.get(FULL_VIEW)
    if view is None:
        view = raw[FULL_VIEW] = EventView(event)  # type: ignore[arg-type,assignment]
    return view.low if use_low else view.raw  # type: ignore[union-attr]


def _keyword(op: str, values: tuple[Any, ...], use_low: bool, pred: Pred) -> Matcher:
    """Unbound values: match if any string value of the event matches (message, original, all).

    Case-insensitive substring keywords (the common form) search all values joined once per event.
    """
    if op == "has":
        needles = tuple(values)

        def contains(low: Fields, raw: Fields) -> bool:
            return _has(_all_text(low, raw), needles)

        return contains

    def match(low: Fields, raw: Fields) -> bool:
        for key, v in _full(low, raw, use_low).items():
            if key[:1] == "\x00":
                continue
            if v.__class__ is str:
                if pred(v):
                    return True
            elif any(pred(x) for x in v):
                return True
        return False

    return match


def _to_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


class _Lazy:
    """A regex compiled on first use: thousands of rules load fast, only the ones reached pay."""

    __slots__ = ("flags", "pattern", "rx")

    def __init__(self, pattern: str, flags: int) -> None:
        self.pattern = pattern
        self.flags = flags
        self.rx: re.Pattern[str] | None = None

    def get(self) -> re.Pattern[str]:
        rx = self.rx
        if rx is None:
            rx = self.rx = re.compile(self.pattern, self.flags)
        return rx


def _pred(op: str, values: tuple[Any, ...]) -> tuple[Pred, bool]:
    """Predicate over one string and whether it reads the lower-cased view."""
    base, cased = (op[:-1], True) if op in ("eqc", "prec", "sufc", "hasc", "globc") else (op, False)
    if base == "eq":
        if len(values) == 1:
            only = values[0]
            return only.__eq__, not cased
        return frozenset(values).__contains__, not cased
    if base == "pre":
        prefixes = tuple(values)
        return (lambda s: s.startswith(prefixes)), not cased
    if base == "suf":
        suffixes = tuple(values)
        return (lambda s: s.endswith(suffixes)), not cased
    if base == "has":
        if len(values) == 1:
            needle = values[0]
            return (lambda s: needle in s), not cased
        needles = tuple(values)
        return (lambda s: any(n in s for n in needles)), not cased
    if base == "glob":
        flags = re.DOTALL if cased else re.DOTALL | re.IGNORECASE
        glob = _Lazy("(?:" + "|".join(f"(?:{v})" for v in values) + r")\Z", flags)
        return (lambda s: glob.get().match(s) is not None), False
    if op == "re":
        lazies = [_Lazy(p, f) for p, f in values]
        if len(lazies) == 1:
            one = lazies[0]
            return (lambda s: one.get().search(s) is not None), False
        return (lambda s: any(r.get().search(s) is not None for r in lazies)), False
    if op == "num":
        texts = frozenset(str(v) for v in values)
        nums = frozenset(float(v) for v in values)

        def num(s: str) -> bool:
            if s in texts:
                return True
            n = _to_number(s)
            return n is not None and n in nums

        return num, False
    if op == "cmp":
        return _cmp_pred(values), False
    if op == "cidr":
        networks = [ipaddress.ip_network(v, strict=False) for v in values]

        def in_cidr(s: str) -> bool:
            try:
                addr = ipaddress.ip_address(s.strip("[]"))
            except ValueError:
                return False
            return any(addr in n for n in networks)

        return in_cidr, False
    raise UnsupportedRule(f"modifier/op {op} is not supported in-process")


def _cmp_pred(values: tuple[Any, ...]) -> Pred:
    tests: list[Callable[[float], bool]] = []
    for operator, number in values:
        n = float(number)
        tests.append(
            {
                "lt": lambda x, n=n: x < n,
                "lte": lambda x, n=n: x <= n,
                "gt": lambda x, n=n: x > n,
                "gte": lambda x, n=n: x >= n,
                "neq": lambda x, n=n: x != n,
            }[operator]
        )

    def compare(s: str) -> bool:
        x = _to_number(s)
        return x is not None and any(t(x) for t in tests)

    return compare


def _fieldref(field: str, values: tuple[Any, ...]) -> Matcher:
    def match(low: Fields, raw: Fields) -> bool:
        v = low.get(field)
        if v is None:
            return False
        mine = (v,) if v.__class__ is str else v
        for other, starts, ends in values:
            o = low.get(other)
            if o is None:
                continue
            for a in mine:
                for b in (o,) if o.__class__ is str else o:
                    if (starts and a.startswith(b)) or (ends and a.endswith(b)):
                        return True
                    if not starts and not ends and a == b:
                        return True
        return False

    return match


def compile_leaf(node: Node) -> Matcher:
    _, field, op, values = node
    if op == "null":
        if field is None:
            raise UnsupportedRule("null keyword")
        return lambda low, raw: raw.get(field) in (None, "", ())
    if op == "exists":
        want = bool(values[0]) if values else True
        if field is None:
            raise UnsupportedRule("exists on a keyword")
        return lambda low, raw: (field in raw) is want
    if op == "ref":
        if field is None:
            raise UnsupportedRule("fieldref on a keyword")
        return _fieldref(field, values)
    pred, use_low = _pred(op, values)
    if field is None:
        return _keyword(op, values, use_low, pred)
    return _any_value(field, use_low, pred)


def compile_node(node: Node) -> Matcher:
    kind = node[0]
    if kind == "m":
        return compile_leaf(node)
    if kind == "const":
        value = bool(node[1])
        return lambda low, raw: value
    if kind == "not":
        inner = compile_node(node[1])
        return lambda low, raw: not inner(low, raw)
    children = sorted(node[1], key=cost)
    fs = [compile_node(c) for c in children]
    if len(fs) == 1:
        return fs[0]
    if kind == "and":
        if len(fs) == 2:
            a, b = fs
            return lambda low, raw: a(low, raw) and b(low, raw)
        if len(fs) == 3:
            a, b, c = fs
            return lambda low, raw: a(low, raw) and b(low, raw) and c(low, raw)
        return lambda low, raw: all(f(low, raw) for f in fs)
    if len(fs) == 2:
        a, b = fs
        return lambda low, raw: a(low, raw) or b(low, raw)
    return lambda low, raw: any(f(low, raw) for f in fs)
