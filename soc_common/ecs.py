"""The event model: Elastic Common Schema (ECS) documents as nested dicts.

Events travel as plain JSON-able nested dicts shaped like ECS documents (``{"event": {"id": ...}}``),
because that is what Elasticsearch stores and what Sigma field mappings address. This module gives
the small set of helpers every role needs: dotted-path access, stable ids and UTC timestamps.

Organisation fields that ECS lacks live under the custom prefix ``soc.``:
``soc.site`` (the office), ``soc.zone`` (the network zone), ``soc.system_id`` (the registered
information system), ``soc.agent_id`` (the enrolled agent that shipped the event).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

ECS_VERSION = "8.11.0"
CUSTOM_PREFIX = "soc"

Event = dict[str, Any]

_MISSING = object()


def get(event: Mapping[str, Any], path: str, default: Any = None) -> Any:
    """Return the value at a dotted path (``"source.ip"``), or ``default``.

    A flat key holding the whole dotted name (``{"source.ip": ...}``) is honoured too, because
    some senders ship half-flattened documents.
    """
    node: Any = event
    parts = path.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, Mapping):
            return default
        if part in node:
            node = node[part]
            continue
        rest = ".".join(parts[i:])
        return node.get(rest, default)
    return node


def put(event: Event, path: str, value: Any) -> None:
    """Set the value at a dotted path, creating intermediate objects."""
    node = event
    *parents, leaf = path.split(".")
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[leaf] = value


def setdefault(event: Event, path: str, value: Any) -> Any:
    """Set a dotted path only if absent; return the value now there."""
    current = get(event, path, _MISSING)
    if current is _MISSING or current is None:
        put(event, path, value)
        return value
    return current


def pop(event: Event, path: str, default: Any = None) -> Any:
    """Remove and return the value at a dotted path."""
    *parents, leaf = path.split(".")
    node: Any = event
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return default
    return node.pop(leaf, default) if isinstance(node, dict) else default


def flatten(event: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested objects to dotted keys; lists are kept as values."""
    out: dict[str, Any] = {}
    for key, value in event.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def iter_fields(event: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Yield ``(dotted_name, value)`` for every leaf."""
    yield from flatten(event).items()


def unflatten(flat: Mapping[str, Any]) -> Event:
    """Inverse of :func:`flatten`."""
    out: Event = {}
    for key, value in flat.items():
        put(out, key, value)
    return out


def new_event_id() -> str:
    """A random unique id, for events that have no natural identity."""
    return uuid.uuid4().hex


def stable_event_id(*parts: object) -> str:
    """A deterministic id from the event's natural identity.

    Sources that can re-read the same record after a crash (a file at an offset, an EVTX record
    number, a journald cursor) derive the id from that identity, so a re-read is a duplicate the
    collector drops, not a second event.
    """
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(str(part).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    """Format a datetime as ECS wants it: ISO 8601 in UTC with milliseconds and a ``Z``."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_ts(value: str | int | float | datetime) -> datetime:
    """Parse an ECS timestamp (ISO 8601 string, epoch seconds/millis, or datetime) to aware UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        seconds = value / 1000.0 if value > 1e11 else float(value)
        return datetime.fromtimestamp(seconds, UTC)
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def new_event(
    *,
    kind: str = "event",
    dataset: str,
    module: str | None = None,
    original: str | None = None,
    timestamp: datetime | None = None,
    event_id: str | None = None,
) -> Event:
    """Start an ECS event with the fields every event must carry."""
    event: Event = {
        "@timestamp": iso(timestamp or utc_now()),
        "ecs": {"version": ECS_VERSION},
        "event": {
            "id": event_id or new_event_id(),
            "kind": kind,
            "dataset": dataset,
        },
    }
    if module:
        event["event"]["module"] = module
    if original is not None:
        event["event"]["original"] = original
    return event


def add_tag(event: Event, tag: str) -> None:
    tags = event.setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)


def add_related(event: Event, kind: str, value: str | None) -> None:
    """Append to ``related.ip`` / ``related.user`` / ``related.hosts`` / ``related.hash`` once."""
    if not value:
        return
    related = event.setdefault("related", {})
    values = related.setdefault(kind, [])
    if value not in values:
        values.append(value)


def event_id(event: Mapping[str, Any]) -> str | None:
    value = get(event, "event.id")
    return str(value) if value is not None else None
