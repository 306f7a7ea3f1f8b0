"""Parsing an agent batch: newline-delimited JSON, one event per line.

Each line stands alone: a line that is not a JSON object, or lacks ``event.id``, is reported with
its index and the rest of the batch is kept. Blank lines are skipped without using an index, so an
agent that ends its body with a newline gets indices that match its own list.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from soc_common.ecs import Event
from soc_common.parsers.json_codec import loads


class BodyTooLarge(Exception):
    """The decompressed body exceeds the configured limit."""


class BadEncoding(Exception):
    """The body claims gzip but is not valid gzip."""


@dataclass
class ParsedBatch:
    events: list[Event] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)  # position of each event in the agent's batch
    rejected: list[tuple[int, str]] = field(default_factory=list)


def gunzip_limited(body: bytes, limit: int) -> bytes:
    """Decompress gzip without ever holding more than ``limit`` bytes (zip bombs)."""
    decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decomp.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadEncoding(f"invalid gzip body: {exc}") from None
    if len(out) > limit or decomp.unconsumed_tail:
        raise BodyTooLarge(f"body exceeds {limit} bytes once decompressed")
    if not decomp.eof:
        raise BadEncoding("truncated gzip body")
    return out


_MISSING = object()


def _event_id(obj: dict[str, Any]) -> Any:
    """``event.id`` of a decoded line; a flat ``"event.id"`` key counts when there is no ``event``."""
    ev = obj.get("event", _MISSING)
    if ev is _MISSING:
        return obj.get("event.id")
    return ev.get("id") if isinstance(ev, Mapping) else None


def parse_ndjson(body: bytes, max_error_chars: int = 200) -> ParsedBatch:
    """Split and decode an NDJSON body; never raises on content."""
    batch = ParsedBatch()
    events, indexes, rejected = batch.events, batch.indexes, batch.rejected
    index = 0
    for raw in body.split(b"\n"):
        line = raw.strip()
        if not line:
            continue
        try:
            obj = loads(line)
        except (ValueError, RecursionError) as exc:
            rejected.append((index, f"invalid JSON: {str(exc)[:max_error_chars]}"))
        else:
            if type(obj) is not dict:
                rejected.append((index, "not a JSON object"))
            else:
                event_id = _event_id(obj)
                kind = type(event_id)
                if (kind is not str and kind is not int) or event_id == "":
                    rejected.append((index, "no event.id"))
                else:
                    events.append(obj)
                    indexes.append(index)
        index += 1
    return batch
