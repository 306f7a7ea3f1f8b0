"""Field helpers shared by the vendor parsers, shaped for the per-line hot path.

The vendor maps name ECS fields by dotted path; splitting that path on every line, or validating an
address through ``ipaddress`` objects, cost more than the rest of the line's parse, so the paths
are split once at import and the common dotted-quad is checked with one compiled match.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from soc_common.ecs import Event

#: the dotted quad ``ipaddress`` accepts: ASCII digits, no leading zeros, each octet <= 255
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
_ipv4_match = _IPV4.fullmatch

FieldPath = tuple[str, ...]


def valid_ip(value: str) -> bool:
    """Whether ``ipaddress.ip_address`` accepts ``value`` (IPv4 or IPv6, scope id allowed)."""
    if _ipv4_match(value) is not None:
        return True
    if ":" not in value:  # every IPv6 text has a colon; anything else is not an address
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def split_paths(mapping: dict[str, str]) -> dict[str, FieldPath]:
    """``{"src": "source.ip"}`` -> ``{"src": ("source", "ip")}``, done once at import."""
    return {key: tuple(path.split(".")) for key, path in mapping.items()}


def put_path(event: Event, path: FieldPath, value: Any) -> None:
    """:func:`soc_common.ecs.put` with the path already split (same result, no split per call)."""
    if len(path) == 2:  # most ECS fields: "source.ip"
        parent, leaf = path
        node = event.get(parent)
        if not isinstance(node, dict):
            node = event[parent] = {}
        node[leaf] = value
        return
    if len(path) == 1:
        event[path[0]] = value
        return
    node = event.get(path[0])
    if not isinstance(node, dict):
        node = event[path[0]] = {}
    for part in path[1:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


#: key -> (how to map its value, or None to store the text as it is; where it goes)
Mapping_ = dict[str, tuple[Callable[..., None] | None, FieldPath]]


def apply_mapping(event: Event, mapping: Mapping_, pairs: dict[str, str], *context: Any) -> None:
    """Map each non-empty ``key=value`` through ``mapping`` (one lookup per key, no test chain).

    ``context`` is passed on to the mappers (CEF's time zone for its timestamps).
    """
    for key, value in pairs.items():
        if value:
            found = mapping.get(key)
            if found is not None:
                mapper, path = found
                if mapper is None:  # plain text, the most common kind: no call per key
                    put_path(event, path, value)
                else:
                    mapper(event, path, value, *context)
