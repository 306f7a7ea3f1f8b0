"""Which rules could match this event? An index over literal anchors, so most rules are never run.

Every rule's condition implies at least one "anchor set": atoms ``(field, kind, needle)``, at
least one of which must hold for the rule to match (an OR unions its children's sets, an AND may
pick any child's set, a NOT gives none, a regex the literal text its matches must hold). Among a
rule's possible sets we pick the one whose atoms are shared by the fewest other rules, so
``Image|endswith '\\certutil.exe'`` is preferred over the log-source's ``event.code: 1`` that a
thousand rules share. At run time the event's values are looked up in per-field hash tables
(equals), last/first-characters tables (endswith/startswith) and an Aho-Corasick automaton
(contains; a 4-gram table without the C extension); every hit is exact or verified before the
rule becomes a candidate. Rules with no anchor at all are always candidates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from collector.detection.eventview import FieldValue
from collector.detection.ir import Node
from collector.detection.regex_literals import required_literals

Atom = tuple[str, str, str]  # (field, kind, lowered needle), kind in eq/pre/suf/has
AnchorSet = frozenset[Atom]

GRAM = 4
AFFIX = 6
_KIND_OF_OP = {
    "eq": "eq", "eqc": "eq", "pre": "pre", "prec": "pre",
    "suf": "suf", "sufc": "suf", "has": "has", "hasc": "has",
}  # fmt: skip
SHORT_NEEDLE_PENALTY = 25.0
_KIND_WEIGHT = {"eq": 1.0, "suf": 1.3, "pre": 1.3, "has": 2.0}


def _weight(atom: Atom) -> float:
    """Lookup cost of an atom; a short contains-needle is tested on every value of its field."""
    if atom[1] == "has" and len(atom[2]) < GRAM:
        return _KIND_WEIGHT["has"] * SHORT_NEEDLE_PENALTY
    return _KIND_WEIGHT[atom[1]]


def _leaf_atoms(node: Node) -> AnchorSet | None:
    _, field, op, values = node
    if field is None:
        return None
    if op == "num":
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return frozenset((field, "eq", str(v)) for v in values)
        return None
    if op == "re":  # a regex anchors on literal text every match of it holds
        needles: set[str] = set()
        for pattern, flags in values:
            found = required_literals(pattern, flags)
            if not found:
                return None
            needles |= found
        return frozenset((field, "has", needle) for needle in needles)
    kind = _KIND_OF_OP.get(op)
    if kind is None or any(not isinstance(v, str) or not v for v in values):
        return None
    return frozenset((field, kind, v.lower()) for v in values)


def all_atoms(node: Node) -> Iterable[Atom]:
    """Every atom a rule could anchor on (for popularity counting)."""
    kind = node[0]
    if kind == "m":
        atoms = _leaf_atoms(node)
        if atoms:
            yield from atoms
    elif kind in ("and", "or"):
        for child in node[1]:
            yield from all_atoms(child)


def choose_anchors(node: Node, popularity: Counter[Atom]) -> AnchorSet | None:
    """The cheapest anchor set implied by ``node`` (None when none exists)."""

    def score(atoms: AnchorSet) -> float:
        return sum(popularity[a] * _weight(a) for a in atoms)

    kind = node[0]
    if kind == "m":
        return _leaf_atoms(node)
    if kind == "or":
        union: set[Atom] = set()
        for child in node[1]:
            got = choose_anchors(child, popularity)
            if got is None:
                return None
            union |= got
        return frozenset(union)
    if kind == "and":
        options = [a for a in (choose_anchors(c, popularity) for c in node[1]) if a]
        return min(options, key=score) if options else None
    return None


class _AffixTable:
    """Needles keyed by their first/last ``AFFIX`` characters, looked up by the event value's."""

    def __init__(self, suffix: bool) -> None:
        self.suffix = suffix
        self.table: dict[str, list[tuple[str, int]]] = {}
        self.lengths: list[int] = []

    def add(self, needle: str, rule: int) -> None:
        key = needle[-AFFIX:] if self.suffix else needle[:AFFIX]
        self.table.setdefault(key, []).append((needle, rule))
        if len(key) not in self.lengths:
            self.lengths.append(len(key))
            self.lengths.sort()

    @classmethod
    def restore(cls, suffix: bool, table: dict[str, list[tuple[str, int]]], lengths: list[int]) -> _AffixTable:
        self = cls(suffix)
        self.table, self.lengths = table, lengths
        return self

    def hits(self, value: str, out: set[int]) -> None:
        table = self.table
        n = len(value)
        for k in self.lengths:
            if k > n:
                break
            bucket = table.get(value[-k:] if self.suffix else value[:k])
            if bucket:
                if self.suffix:
                    out.update(r for needle, r in bucket if value.endswith(needle))
                else:
                    out.update(r for needle, r in bucket if value.startswith(needle))


class _GramTable:
    """Contains-needles keyed by one of their (least common) substrings of length <= GRAM.

    The pure-Python fallback of :class:`_NeedleTable`: every gram of a value is a dict lookup.
    """

    def __init__(self, needles: dict[str, list[int]]) -> None:
        gram_counts: Counter[str] = Counter()
        for needle in needles:
            gram_counts.update({needle[i : i + GRAM] for i in range(len(needle) - GRAM + 1)})
        self.table: dict[str, list[tuple[str, list[int]]]] = {}
        self.short: list[tuple[str, list[int]]] = []
        for needle, rules in needles.items():
            if len(needle) < GRAM:
                self.short.append((needle, rules))
                continue
            grams = [needle[i : i + GRAM] for i in range(len(needle) - GRAM + 1)]
            key = min(grams, key=lambda g: gram_counts[g])
            self.table.setdefault(key, []).append((needle, rules))

    def hits(self, value: str, out: set[int]) -> None:
        table = self.table
        if len(value) >= GRAM:
            grams = {value[i : i + GRAM] for i in range(len(value) - GRAM + 1)}
            keys = grams & table.keys() if len(grams) < len(table) else table.keys() & grams
            for key in keys:
                for needle, rules in table[key]:
                    if needle in value:
                        out.update(rules)
        for needle, rules in self.short:
            if needle in value:
                out.update(rules)


class _AutomatonTable:
    """Contains-needles in an Aho-Corasick automaton: one C pass per value finds every needle it
    holds (overlapping ones included), instead of a Python dict lookup per character."""

    def __init__(self, needles: dict[str, list[int]]) -> None:
        automaton = _ahocorasick.Automaton()
        for needle, rules in needles.items():
            automaton.add_word(needle, tuple(rules))
        automaton.make_automaton()
        self.automaton = automaton

    def hits(self, value: str, out: set[int]) -> None:
        for _, rules in self.automaton.iter(value):
            out.update(rules)


try:  # optional C extension (PyPI ``pyahocorasick``); without it the gram table gives the same hits
    import ahocorasick as _ahocorasick

    _NeedleTable: type[_AutomatonTable] | type[_GramTable] = _AutomatonTable
except ImportError:  # pragma: no cover - depends on the installation
    _NeedleTable = _GramTable


class RuleIndex:
    """Candidate rule numbers for an event's lower-cased flattened fields."""

    def __init__(self, conditions: Sequence[Node]) -> None:
        popularity: Counter[Atom] = Counter()
        for node in conditions:
            popularity.update(set(all_atoms(node)))
        chosen = [choose_anchors(node, popularity) for node in conditions]
        self.always: list[int] = []
        self.eq: dict[str, dict[str, list[int]]] = {}
        self.pre: dict[str, _AffixTable] = {}
        self.suf: dict[str, _AffixTable] = {}
        self.has_needles: dict[str, dict[str, list[int]]] = {}
        for rule, anchors in enumerate(chosen):
            if not anchors:
                self.always.append(rule)
                continue
            for field, kind, needle in sorted(anchors):
                if kind == "eq":
                    self.eq.setdefault(field, {}).setdefault(needle, []).append(rule)
                elif kind == "pre":
                    self.pre.setdefault(field, _AffixTable(False)).add(needle, rule)
                elif kind == "suf":
                    self.suf.setdefault(field, _AffixTable(True)).add(needle, rule)
                else:
                    self.has_needles.setdefault(field, {}).setdefault(needle, []).append(rule)
        self._finish()

    def _finish(self) -> None:
        needles = self.has_needles
        self.has: dict[str, _AutomatonTable | _GramTable] = {f: _NeedleTable(n) for f, n in needles.items()}
        self.fields = set(self.eq) | set(self.pre) | set(self.suf) | set(self.has)

    def state(self) -> tuple[Any, ...]:
        """Plain containers (marshal-able) from which :meth:`from_state` rebuilds this index."""
        return (
            self.always,
            self.eq,
            {f: (t.table, t.lengths) for f, t in self.pre.items()},
            {f: (t.table, t.lengths) for f, t in self.suf.items()},
            self.has_needles,
        )

    @classmethod
    def from_state(cls, state: tuple[Any, ...]) -> RuleIndex:
        index = cls.__new__(cls)
        always, eq, pre, suf, has_needles = state
        index.always, index.eq, index.has_needles = always, eq, has_needles
        index.pre = {f: _AffixTable.restore(False, table, lengths) for f, (table, lengths) in pre.items()}
        index.suf = {f: _AffixTable.restore(True, table, lengths) for f, (table, lengths) in suf.items()}
        index._finish()
        return index

    def candidates(self, low: dict[str, FieldValue]) -> list[int]:
        out: set[int] = set(self.always)
        fields = self.fields
        eq, pre, suf, has = self.eq, self.pre, self.suf, self.has
        for field, value in low.items():
            if field not in fields:
                continue
            values: tuple[str, ...] = (value,) if value.__class__ is str else value  # type: ignore[assignment]
            table = eq.get(field)
            if table is not None:
                for v in values:
                    hit = table.get(v)
                    if hit:
                        out.update(hit)
            affix = suf.get(field)
            if affix is not None:
                for v in values:
                    affix.hits(v, out)
            affix = pre.get(field)
            if affix is not None:
                for v in values:
                    affix.hits(v, out)
            grams = has.get(field)
            if grams is not None:
                for v in values:
                    grams.hits(v, out)
        return sorted(out)
