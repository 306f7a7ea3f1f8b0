"""Fast field access for the hot path.

:func:`soc_common.ecs.get` is general (half-flattened documents, any Mapping) and therefore slow when
called dozens of times per event. After :class:`~collector.pipeline.normalize.Normalize` every event
is a plain nested dict, so processors that run after it use these pre-split paths instead.
"""

from __future__ import annotations

from typing import Any

Path = tuple[str, ...]


def path(dotted: str) -> Path:
    return tuple(dotted.split("."))


def dig(event: dict[str, Any], parts: Path) -> Any:
    """The value at ``parts`` in nested dicts, or None."""
    node: Any = event
    for part in parts:
        if type(node) is not dict:
            return None
        node = node.get(part)
        if node is None:
            return None
    return node


def strings(value: Any) -> list[str]:
    """A field that may hold one string or a list of them, as a list of strings."""
    if type(value) is str:
        return [value]
    if type(value) is list:
        return [v for v in value if type(v) is str]
    return []


def place(event: dict[str, Any], parts: Path, value: Any) -> None:
    """Set ``value`` at ``parts``, replacing anything in the way that is not an object.

    The pre-split twin of :func:`soc_common.ecs.put`, which splits its dotted path on every call.
    """
    node = event
    for part in parts[:-1]:
        child = node.get(part)
        if type(child) is not dict:
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value
