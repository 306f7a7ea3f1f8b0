"""Parsing an agent batch: newline-delimited JSON, one event per line.

Each line stands alone: a line that is not a JSON object, or lacks ``event.id``, is reported with
its index and the rest of the batch is kept. Blank lines are skipped without using an index, so an
agent that ends its body with a newline gets indices that match its own list.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from collector.pipeline.normalize import SizedBatch
from soc_common.ecs import Event
from soc_common.parsers.json_codec import loads, loads_short_numbers, long_number_offsets


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


def parse_ndjson(body: bytes, max_error_chars: int = 200) -> ParsedBatch:
    """Split and decode an NDJSON body; never raises on content.

    Hot path (every agent event): one scan of the whole body finds the few lines holding a number
    orjson would misread, so every other line is a single decoder call; ``event.id`` is checked
    inline. Decoded JSON holds only plain dicts, so exact type tests stand in for ``isinstance``.
    """
    lines = body.split(b"\n")
    events = SizedBatch()
    events.longest = max(map(len, lines))  # see SizedBatch: no decoded string outgrows its line
    batch = ParsedBatch(events)
    indexes, rejected = batch.indexes, batch.rejected
    careful = iter(long_number_offsets(body))
    next_careful = next(careful, -1)  # offset in body of the next long digit run, -1: none left
    end = index = 0
    for raw in lines:
        end += len(raw) + 1  # offsets before this line's end were all consumed by earlier lines
        decode = loads_short_numbers
        if 0 <= next_careful < end:
            decode = loads
            while 0 <= next_careful < end:
                next_careful = next(careful, -1)
        line = raw.strip()
        if not line:
            continue
        try:
            obj = decode(line)
        except (ValueError, RecursionError) as exc:
            rejected.append((index, f"invalid JSON: {str(exc)[:max_error_chars]}"))
        else:
            if type(obj) is not dict:
                rejected.append((index, "not a JSON object"))
            else:
                ev = obj.get("event", _MISSING)
                # a flat "event.id" key counts when there is no "event" object at all
                event_id = ev.get("id") if type(ev) is dict else obj.get("event.id") if ev is _MISSING else None
                kind = type(event_id)
                if (kind is not str and kind is not int) or event_id == "":
                    rejected.append((index, "no event.id"))
                else:
                    events.append(obj)
                    indexes.append(index)
        index += 1
    return batch


def stamp_agent(events: list[Event], agent_id: str, site: str | None) -> None:
    """``soc.agent_id`` (and ``soc.site`` when enrolled with one) from the verified certificate.

    Whatever the agent wrote there is overwritten: identity comes from the TLS session, never the body.
    """
    if type(events) is SizedBatch:
        events.longest = max(events.longest, len(agent_id), len(site or ""))
    for event in events:
        soc = event.get("soc")
        if type(soc) is not dict:
            soc = event["soc"] = {}
        soc["agent_id"] = agent_id
        if site:
            soc["site"] = site
