"""One flattening of an event for rule evaluation.

Every rule tested on an event reads the same two dicts, built once: dotted field -> the value's
string form (``raw``) and its lower-cased form (``low``, for Sigma's case-insensitive default).
A list becomes a tuple of strings, so a field holding a list matches when any element does.
Numbers are stringified the way a rule writes them (``4625``, never ``4625.0``), booleans as
``true``/``false``; ``None`` means absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FieldValue = str | tuple[str, ...]


def _scalar(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _add(raw: dict[str, FieldValue], name: str, value: Any) -> None:
    if isinstance(value, Mapping):
        prefix = f"{name}." if name else ""
        for key, sub in value.items():
            if sub.__class__ is str:  # the common case, without a call
                raw[prefix + key] = sub
            else:
                _add(raw, prefix + str(key), sub)
        return
    if isinstance(value, list | tuple):
        items: list[str] = []
        for element in value:
            if isinstance(element, Mapping):
                for key, sub in element.items():
                    _append(raw, f"{name}.{key}", sub)
            else:
                text = _scalar(element)
                if text is not None:
                    items.append(text)
        if items:
            _merge(raw, name, tuple(items))
        return
    text = _scalar(value)
    if text is not None:
        raw[name] = text


def _append(raw: dict[str, FieldValue], name: str, value: Any) -> None:
    """Add a value found inside a list of objects: values of the same name accumulate."""
    tmp: dict[str, FieldValue] = {}
    _add(tmp, name, value)
    for key, got in tmp.items():
        _merge(raw, key, got if isinstance(got, tuple) else (got,))


def _merge(raw: dict[str, FieldValue], name: str, items: tuple[str, ...]) -> None:
    have = raw.get(name)
    if have is None:
        raw[name] = items
    elif isinstance(have, tuple):
        raw[name] = have + items
    else:
        raw[name] = (have, *items)


class EventView:
    """Flattened string views of one event; ``low`` is built lazily on first use."""

    __slots__ = ("_low", "event", "raw")

    def __init__(self, event: Mapping[str, Any]) -> None:
        self.event = event
        raw: dict[str, FieldValue] = {}
        _add(raw, "", event)
        self.raw = raw
        self._low: dict[str, FieldValue] | None = None

    @property
    def low(self) -> dict[str, FieldValue]:
        low = self._low
        if low is None:
            low = {k: (v.lower() if v.__class__ is str else tuple(x.lower() for x in v)) for k, v in self.raw.items()}
            self._low = low
        return low
