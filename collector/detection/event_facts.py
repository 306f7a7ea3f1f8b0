"""Facts read off an event for alerts, hunt output and correlations: host, user, id, time.

Kept apart from :mod:`alerts` (which builds pydantic ``Alert`` records) so ``soc hunt`` and the
matching engine never import the alert model: loading pydantic's model machinery costs a
detection worker about a tenth of a second.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import chain
from typing import Any, TypeAlias

from soc_common.ecs import get, parse_ts, put, stable_event_id

# Fields copied into Alert.events (bounded): enough to triage without opening the event store.
KEY_FIELDS = (
    "@timestamp", "event.id", "event.code", "event.action", "event.dataset", "event.outcome",
    "host.name", "host.hostname", "winlog.computer_name", "winlog.channel",
    "user.name", "user.effective.name", "source.ip", "source.port", "destination.ip", "destination.port",
    "process.name", "process.executable", "process.command_line", "process.parent.executable",
    "winlog.event_data.Image", "winlog.event_data.CommandLine", "winlog.event_data.ParentImage",
    "winlog.event_data.TargetUserName", "winlog.event_data.ServiceName", "winlog.event_data.ImagePath",
    "url.original", "dns.question.name", "message",
    "soc.site", "soc.zone", "soc.system_id",
)  # fmt: skip


def first_value(event: Mapping[str, Any], *paths: str) -> str | None:
    """The first of ``paths`` holding a real value (not empty, not ``-``), as text."""
    for path in paths:
        value = get(event, path)
        if value not in (None, "", "-"):
            if isinstance(value, list):
                value = value[0] if value else None
                if value is None:
                    continue
            return str(value)
    return None


def host_of(event: Mapping[str, Any]) -> str | None:
    return first_value(event, "host.name", "host.hostname", "winlog.computer_name")


def user_of(event: Mapping[str, Any]) -> str | None:
    return first_value(event, "user.name", "winlog.event_data.TargetUserName", "winlog.event_data.SubjectUserName")


def event_id_of(event: Mapping[str, Any]) -> str:
    """The event's id, or a stable one from its content when it has none (so alert ids stay stable)."""
    value = get(event, "event.id")
    if value:
        return str(value)
    return stable_event_id("content", json.dumps(event, sort_keys=True, default=str))


def event_time(event: Mapping[str, Any]) -> datetime | None:
    value = get(event, "@timestamp")
    if value is None:
        return None
    try:
        return parse_ts(value)
    except (ValueError, TypeError, OverflowError, OSError):
        return None


class PathTrie:
    """Dotted paths as a tree, so one walk of an event reads them all.

    Same answers as ``soc_common.ecs.get`` per path (a flat key holding the rest of a dotted name
    counts too), without splitting 31 paths and re-walking shared prefixes for every alert.
    """

    def __init__(self, paths: Sequence[str]) -> None:
        self.leaf: str | None = None  # the path that ends at this node
        self.children: dict[str, PathTrie] = {}
        self.rests: list[tuple[str, str]] = []  # (dotted rest from this node on, path) below here
        for path in paths:
            self._add(path.split("."), 0, path)

    def _add(self, parts: list[str], depth: int, path: str) -> None:
        child = self.children.get(parts[depth])
        if child is None:
            child = self.children[parts[depth]] = PathTrie(())
        child.rests.append((".".join(parts[depth:]), path))
        if depth + 1 == len(parts):
            child.leaf = path
        else:
            child._add(parts, depth + 1, path)

    def collect(self, node: Mapping[str, Any], out: dict[str, Any]) -> None:
        for part, child in self.children.items():
            if part in node:
                value = node[part]
                if child.leaf is not None and value is not None:
                    out[child.leaf] = value
                if child.children and isinstance(value, Mapping):
                    child.collect(value, out)
            else:
                for rest, path in child.rests:
                    value = node.get(rest)
                    if value is not None:
                        out[path] = value


# What an alert reads off its events: the key fields and the fall-backs of host_of/user_of.
_PROJECTION = PathTrie((*KEY_FIELDS, "winlog.event_data.SubjectUserName"))


def alert_projection(event: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an event that an alert built from it can use, flat (dotted path -> value).

    Correlation windows keep this instead of whole documents: a window holds every matching event
    of its timespan (minutes of flows or logons), and whole documents cost a few KB each. Flat, the
    keys are the shared path constants, so an entry costs one small dict; :func:`expand_projection`
    makes the document again when a correlation fires.
    """
    found: dict[str, Any] = {}
    _PROJECTION.collect(event, found)
    return found


#: An alert projection packed as one flat tuple ``(path, value, path, value, ...)``: what correlation
#: windows hold per recent event. A tuple costs half of the dict it packs (no hash table), and the
#: paths are the shared constants of :data:`KEY_FIELDS`.
Projection: TypeAlias = tuple[Any, ...]


def packed_projection(event: Mapping[str, Any]) -> Projection:
    """:func:`alert_projection` packed into a :data:`Projection`."""
    found: dict[str, Any] = {}
    _PROJECTION.collect(event, found)
    return tuple(chain.from_iterable(found.items()))


def expand_projection(flat: Mapping[str, Any] | Projection) -> dict[str, Any]:
    """The nested document of an :func:`alert_projection` or a :func:`packed_projection`."""
    out: dict[str, Any] = {}
    pairs = flat.items() if isinstance(flat, Mapping) else zip(flat[::2], flat[1::2], strict=True)
    for path, value in pairs:
        put(out, path, value)
    return out
