"""Parsing an agent batch: newline-delimited JSON, one event per line.

Each line stands alone: a line that is not a JSON object, or lacks ``event.id``, is reported with
its index and the rest of the batch is kept. Blank lines are skipped without using an index, so an
agent that ends its body with a newline gets indices that match its own list.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field

from soc_common.ecs import Event, get


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


def parse_ndjson(body: bytes, max_error_chars: int = 200) -> ParsedBatch:
    """Split and decode an NDJSON body; never raises on content."""
    batch = ParsedBatch()
    index = 0
    for raw in body.split(b"\n"):
        line = raw.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as exc:
            batch.rejected.append((index, f"invalid JSON: {str(exc)[:max_error_chars]}"))
        else:
            if not isinstance(obj, dict):
                batch.rejected.append((index, "not a JSON object"))
            else:
                event_id = get(obj, "event.id")
                if not isinstance(event_id, str | int) or isinstance(event_id, bool) or event_id == "":
                    batch.rejected.append((index, "no event.id"))
                else:
                    batch.events.append(obj)
                    batch.indexes.append(index)
        index += 1
    return batch
