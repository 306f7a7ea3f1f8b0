"""The hunting query box: ``field:value`` terms ANDed, translated to the event-store contract.

Syntax: ``host.name:pc-01 event.action:"logon failed" -event.outcome:success source.port>=1024
_exists_:user.name``. Values are exact (the store's Term); ``-`` negates; ``>=``/``<`` make a Range;
a value with a comma lists alternatives (``event.code:4624,4625``). Numbers are compared as numbers.
A malformed term is reported, never guessed at.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from collector.store.base import Exists, Filter, Not, Range, Term

FIELD = re.compile(r"^[A-Za-z_@][A-Za-z0-9_.@-]{0,127}$")
_OPS = (">=", "<=", ">", "<", ":")
MAX_TERMS = 20


class QueryError(ValueError):
    pass


def _scalar(value: str) -> Any:
    if re.fullmatch(r"-?\d{1,18}", value):
        return int(value)
    return value


@dataclass(frozen=True)
class Parsed:
    filters: tuple[Filter, ...]
    text: str


def _term(token: str) -> Filter:
    negate = token.startswith("-") and len(token) > 1
    body = token[1:] if negate else token
    for op in _OPS:
        field, sep, value = body.partition(op)
        if sep and field and ":" not in field and "<" not in field and ">" not in field:
            break
    else:
        raise QueryError(f"expected field:value, got {token!r}")
    if not FIELD.match(field):
        raise QueryError(f"not a field name: {field!r}")
    if value == "":
        raise QueryError(f"no value for {field!r}")
    flt: Filter
    if field == "_exists_":
        if not FIELD.match(value):
            raise QueryError(f"not a field name: {value!r}")
        flt = Exists(value)
    elif op == ":":
        values = [_scalar(v) for v in value.split(",") if v != ""]
        flt = Term(field, values if len(values) > 1 else values[0])
    elif op == ">=":
        flt = Range(field, gte=_scalar(value))
    elif op == "<":
        flt = Range(field, lt=_scalar(value))
    else:
        raise QueryError(f"use >= or < (half-open ranges), not {op!r}")
    return Not(flt) if negate else flt


def parse(text: str) -> Parsed:
    text = text.strip()
    if len(text) > 2000:
        raise QueryError("query longer than 2000 characters")
    try:
        tokens = shlex.split(text, posix=True)
    except ValueError as exc:
        raise QueryError(f"unbalanced quotes: {exc}") from None
    if len(tokens) > MAX_TERMS:
        raise QueryError(f"at most {MAX_TERMS} terms")
    return Parsed(tuple(_term(t) for t in tokens), text)
