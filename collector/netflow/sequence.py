"""Export sequence tracking: how many export packets (v9) or flow records (v5, IPFIX) were lost.

RFC 3954/7011 say the header carries the count *before* this packet; some exporters (softflowd's
IPFIX writer among them) send the count *including* it. Each stream learns which convention its
exporter uses from the first packet where only one explains the numbers, so a known quirk never
shows up as loss while real loss always does. Numbers are 32-bit and wrap.
"""

from __future__ import annotations

from dataclasses import dataclass

_MOD = 1 << 32
_HALF = 1 << 31


@dataclass(slots=True)
class SequenceStream:
    last_seq: int | None = None
    last_count: int = 0
    post_count: bool | None = None  # exporter counts this packet's units in its own header
    missing: int = 0
    out_of_order: int = 0

    def observe(self, seq: int, count: int | None) -> int:
        """Record a packet with header sequence ``seq`` carrying ``count`` units; returns units missing.

        ``count`` None means the packet's unit count is unknown (a set we could not decode): the
        stream resynchronises on the next packet instead of guessing.
        """
        last = self.last_seq
        self.last_seq, prev_count = seq, self.last_count
        self.last_count = count if count is not None else -1
        if last is None or prev_count < 0 or count is None:
            if last is not None and count is None:
                self.last_seq = None
            return 0
        pre = (seq - (last + prev_count)) % _MOD
        post = (seq - (last + count)) % _MOD
        if self.post_count is None:
            if pre == 0 and post == 0:
                return 0
            if pre == 0 or post == 0:  # learned once, then fixed: a loss cannot flip it later
                self.post_count = post == 0
                return 0
        gap = post if self.post_count else pre
        if gap == 0:
            return 0
        if gap >= _HALF:  # behind what we expected: a duplicate, reordering or an exporter restart
            self.out_of_order += 1
            return 0
        self.missing += gap
        return gap


class SequenceTracker:
    """One stream per (exporter, version, domain)."""

    def __init__(self) -> None:
        self.streams: dict[tuple[str, int, int], SequenceStream] = {}

    def observe(self, exporter: str, version: int, domain: int, seq: int, count: int | None) -> int:
        key = (exporter, version, domain)
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = SequenceStream()
        return stream.observe(seq, count)

    def missing_by_exporter(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (exporter, _v, _d), stream in self.streams.items():
            out[exporter] = out.get(exporter, 0) + stream.missing
        return out
