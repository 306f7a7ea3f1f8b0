"""The agent's network flow meter: capture files or a live interface -> flow and protocol events.

``events_from_pcap`` replays a capture deterministically (timeouts run on packet time, event ids are
stable), which is what the scenario tests and the ``soc`` tools use; ``FlowSource`` is the agent
plug-in that does the same live or from configured files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.flows.meter import FlowMeter
from agent.flows.pcap import PcapError, pump, read_packets
from agent.flows.vector import CHUNK_RECORDS, vector_bulk
from soc_common.ecs import Event

__all__ = ["FlowMeter", "PcapError", "events_from_pcap", "meter_pcap", "read_packets"]


def meter_pcap(path: str | Path, meter: FlowMeter, *, vectorised: bool = True) -> Iterator[Event]:
    """Feed every packet of ``path`` into ``meter``, yielding events as they become ready.

    Does not flush, so several files can be metered as one stream. A damaged file raises
    :class:`PcapError` after everything before the damage has been metered and yielded. With numpy
    installed (the ``flows`` extra) and ``vectorised``, classic pcap files take the numpy path
    (:mod:`agent.flows.vector`: the same flow records, fewer CPU seconds).
    """
    bulk = vector_bulk(meter) if vectorised else None
    batch = CHUNK_RECORDS if bulk is not None else 4096
    for _ in pump(path, meter.feed_at, batch=batch, bulk=bulk or meter.feed_pcap):
        if meter.pending:
            yield from meter.drain()
    if meter.pending:
        yield from meter.drain()


def events_from_pcap(
    path: str | Path,
    *,
    host: dict[str, Any] | None = None,
    active_timeout: float = 300,
    idle_timeout: float = 60,
    metadata: bool = True,
) -> Iterator[Event]:
    """Flow and protocol-metadata events of a capture file, in the order they are emitted.

    Raises :class:`PcapError` (after yielding everything before the damage, flows flushed) for an
    unreadable, truncated or corrupt file.
    """
    meter = FlowMeter(host=host, active_timeout=active_timeout, idle_timeout=idle_timeout, metadata=metadata)
    try:
        yield from meter_pcap(path, meter)
    except PcapError:
        yield from meter.flush()  # what was read before the damage still counts
        raise
    yield from meter.flush()
