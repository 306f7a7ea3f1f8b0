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


EVENT_KEY = "\x00event"  # a selective view's raw dict keeps the whole event here, for keyword rules


def _lower(raw: dict[str, FieldValue]) -> dict[str, FieldValue]:
    return {k: (v.lower() if v.__class__ is str else tuple(x.lower() for x in v)) for k, v in raw.items()}


class FieldSelection:
    """Flatten only the fields some rule reads (plus the event itself for keyword searches).

    An EVTX event has ~60 leaves but a rule set reads a few hundred names, of which an event holds
    a handful; walking only the branches that lead to a wanted name skips most of the work of a
    full :class:`EventView`, with the same values for the names it keeps.
    """

    def __init__(self, fields: set[str] | frozenset[str]) -> None:
        self.fields = frozenset(fields)
        prefixes: set[str] = set()
        for name in self.fields:
            parts = name.split(".")
            prefixes.update(".".join(parts[:i]) for i in range(1, len(parts)))
        self.prefixes = frozenset(prefixes)
        # Per walked prefix: key -> (dotted name, wanted?, leads to a wanted name?). A key that is
        # no name's next step costs one dict miss, without building its dotted name.
        names = self.fields | self.prefixes
        self._steps: dict[str, dict[str, tuple[str, bool, bool]]] = {}
        for prefix in ("", *(p + "." for p in self.prefixes)):
            self._steps[prefix] = {
                n[len(prefix) :]: (n, n in self.fields, n in self.prefixes) for n in names if n.startswith(prefix)
            }

    def views(self, event: Mapping[str, Any]) -> tuple[dict[str, FieldValue], dict[str, FieldValue]]:
        """``(low, raw)`` holding the wanted fields present in ``event``."""
        raw: dict[str, FieldValue] = {}
        self._walk(raw, "", event)
        low = _lower(raw)
        raw[EVENT_KEY] = event  # type: ignore[assignment]
        return low, raw

    def _walk(self, raw: dict[str, FieldValue], prefix: str, mapping: Mapping[str, Any]) -> None:
        steps = self._steps[prefix]
        for key, sub in mapping.items():
            step = steps.get(key) if key.__class__ is str else steps.get(str(key))
            if step is None:
                continue
            name, wanted, leads = step
            cls = sub.__class__
            if cls is str:
                if wanted:
                    raw[name] = sub
            elif cls is dict or isinstance(sub, Mapping):
                if leads:
                    self._walk(raw, name + ".", sub)
            elif isinstance(sub, list | tuple):
                full: dict[str, FieldValue] = {}
                _add(full, name, sub)
                for got, value in full.items():
                    if got in self.fields:
                        raw[got] = value
            elif wanted:
                text = _scalar(sub)
                if text is not None:
                    raw[name] = text


def _texts(value: Any, out: list[str]) -> None:
    cls = value.__class__
    if cls is str:
        out.append(value)
    elif cls is dict or isinstance(value, Mapping):
        for sub in value.values():  # strings inline: most leaves are, and a call costs more
            if sub.__class__ is str:
                out.append(sub)
            else:
                _texts(sub, out)
    elif cls is list or isinstance(value, list | tuple):
        for sub in value:
            _texts(sub, out)
    else:
        text = _scalar(value)
        if text is not None:
            out.append(text)


def event_text(event: Mapping[str, Any]) -> str:
    """Every value of ``event`` as one lower-cased string, values separated by NUL (keyword search).

    A Windows record's ``event.original`` is its XML, holding the same values as its fields, so it
    is left out: keywords then search the record's values (as Zircolite and Hayabusa do) in half
    the text. Any other event's ``event.original`` (a log line...) is searched like every field.
    """
    parts: list[str] = []
    inner = event.get("event")
    if "winlog" in event and inner.__class__ is dict and "original" in inner:
        for key, value in event.items():
            if key == "event":
                _texts({k: v for k, v in inner.items() if k != "original"}, parts)
            else:
                _texts(value, parts)
    else:
        _texts(event, parts)
    return "\x00".join(parts).lower()
