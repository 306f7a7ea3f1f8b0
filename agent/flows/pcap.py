"""Streaming reader for classic pcap and pcapng capture files.

Plain ``struct.unpack_from`` over a memory map: no per-packet objects beyond what the caller asks
for, so replaying a capture is limited by the flow meter, not by the reader. Damage is reported
as a :class:`PcapError` only after every good packet before it has been yielded, so a truncated
capture (a sensor that died mid-write) still counts for everything it did record.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Link-layer header types (https://www.tcpdump.org/linktypes.html) the decoder understands.
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
#: DLT_RAW as some platforms wrote it before LINKTYPE_RAW existed
LINKTYPE_RAW_BSD = (12, 14)

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
#: larger than any real frame (jumbo + 64 KiB GRO); a bigger record length means a corrupt file
MAX_RECORD = 0x40000

# pcapng block types
_SHB = 0x0A0D0D0A
_IDB = 1
_OPB = 2
_SPB = 3
_EPB = 6

# One record: (timestamp seconds, link type, buffer, offset of the frame, end of the frame)
Record = tuple[float, int, "bytes | mmap.mmap", int, int]
#: the per-packet callback of :func:`pump`: ``sink(ts, linktype, buf, start, end)``
Sink = Callable[[float, int, Any, int, int], object]
#: optional bulk consumer for the commonest file kind, little-endian classic pcap of Ethernet frames:
#: ``bulk(buf, off, size, unit, limit) -> (offset reached, records consumed)``; it stops early before
#: a damaged record, which the reader then reports (see :meth:`agent.flows.meter.FlowMeter.feed_pcap`)
Bulk = Callable[[Any, int, int, float, int], tuple[int, int]]
#: release mapped pages already read every this many bytes, so memory stays flat on big files
_RELEASE_EVERY = 32 * 1024 * 1024


class PcapError(Exception):
    """The file is not a capture, or is damaged at a known place (message names file and offset)."""


def _open_buffer(path: Path) -> bytes | mmap.mmap:
    """Map the file read-only; small or unmappable files (pipes, empty) are read instead."""
    with open(path, "rb") as fh:
        try:
            size = os.fstat(fh.fileno()).st_size
            if size >= 65536:
                return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            pass
        return fh.read()


def pump(path: str | Path, sink: Sink, batch: int = 4096, bulk: Bulk | None = None) -> Iterator[int]:
    """Call ``sink(ts, linktype, buf, start, end)`` for every packet; yield the count every ``batch``.

    The frame is ``buf[start:end]`` (zero-copy; ``buf`` may be a memory map, valid only during the
    call). Calling a sink per packet instead of yielding a tuple keeps the replay loop cheap; the
    periodic yield lets the caller hand on results while a big file is still being read. Raises
    :class:`PcapError` for a file that is not a capture, or, after the last good packet, for a
    truncated or corrupt one. With ``bulk``, little-endian classic pcap files of Ethernet frames
    are handed to it a batch of records at a time instead of calling ``sink`` per packet.
    """
    p = Path(path)
    try:
        buf = _open_buffer(p)
    except OSError as exc:
        raise PcapError(f"{p}: cannot read: {exc.strerror or exc}") from None
    try:
        head = bytes(buf[:4])
        if head in _PCAP_MAGICS:
            yield from _pump_pcap(p, buf, head, sink, batch, bulk)
        elif head == _PCAPNG_SHB:
            yield from _pump_pcapng(p, buf, sink, batch)
        elif len(buf) == 0:
            raise PcapError(f"{p}: empty file")
        else:
            raise PcapError(f"{p}: not a pcap or pcapng file (magic {head.hex()})")
    finally:
        del buf  # the map closes when the last record referring to it is gone


def iter_records(path: str | Path) -> Iterator[Record]:
    """Yield ``(ts, linktype, buf, start, end)`` for every packet, zero-copy (see :func:`pump`)."""
    batch: list[Record] = []

    def keep(ts: float, linktype: int, buf: Any, start: int, end: int) -> None:
        batch.append((ts, linktype, buf, start, end))

    try:
        for _ in pump(path, keep, batch=1024):
            yield from batch
            batch.clear()
    except PcapError:
        yield from batch  # everything before the damage, then the error
        raise


def read_packets(path: str | Path) -> Iterator[tuple[float, int, bytes]]:
    """Yield ``(ts, linktype, frame_bytes)`` for every packet (each frame copied out)."""
    batch: list[tuple[float, int, bytes]] = []

    def keep(ts: float, linktype: int, buf: Any, start: int, end: int) -> None:
        batch.append((ts, linktype, bytes(buf[start:end])))

    try:
        for _ in pump(path, keep, batch=1024):
            yield from batch
            batch.clear()
    except PcapError:
        yield from batch
        raise


def _release(buf: bytes | mmap.mmap, released: int, upto: int) -> int:
    """Drop already-read pages of a memory map from this process's resident set."""
    if not isinstance(buf, mmap.mmap) or upto - released < _RELEASE_EVERY:
        return released
    upto -= upto % mmap.PAGESIZE
    with contextlib.suppress(OSError, ValueError, AttributeError):
        buf.madvise(mmap.MADV_DONTNEED, released, upto - released)
    return upto


def _pump_pcap(
    path: Path, buf: bytes | mmap.mmap, magic: bytes, sink: Sink, batch: int, bulk: Bulk | None
) -> Iterator[int]:
    order, unit = _PCAP_MAGICS[magic]
    size = len(buf)
    if size < 24:
        raise PcapError(f"{path}: truncated pcap file header ({size} bytes)")
    linktype = struct.unpack_from(order + "I", buf, 20)[0] & 0x0FFFFFFF
    rec = struct.Struct(order + "IIII").unpack_from
    off = 24
    count = 0
    pause = batch
    released = 0
    if bulk is not None and order == "<" and linktype == LINKTYPE_ETHERNET:
        while True:
            off, done = bulk(buf, off, size, unit, pause - count)
            count += done
            if count < pause:
                break  # end of file, or a damaged record the loop below reports
            pause += batch
            released = _release(buf, released, off)
            yield count
    while off + 16 <= size:
        sec, frac, caplen, _wirelen = rec(buf, off)
        if caplen > MAX_RECORD:
            raise PcapError(f"{path}: corrupt record at offset {off} (length {caplen}) after {count} packets")
        start = off + 16
        off = start + caplen
        if off > size:
            raise PcapError(f"{path}: truncated at offset {start - 16} after {count} packets")
        sink(sec + frac * unit, linktype, buf, start, off)
        count += 1
        if count == pause:
            pause += batch
            released = _release(buf, released, start)
            yield count
    if off != size:
        raise PcapError(f"{path}: truncated record header at offset {off} after {count} packets")
    yield count


def _pump_pcapng(path: Path, buf: bytes | mmap.mmap, sink: Sink, batch: int) -> Iterator[int]:
    size = len(buf)
    off = 0
    count = 0
    pause = batch
    released = 0
    order = "<"
    # per interface of the current section: (linktype, seconds per tick, offset seconds)
    interfaces: list[tuple[int, float, int]] = []
    last_ts = 0.0
    while off < size:
        if off + 12 > size:
            raise PcapError(f"{path}: truncated block header at offset {off} after {count} packets")
        if bytes(buf[off : off + 4]) == _PCAPNG_SHB:
            bom = bytes(buf[off + 8 : off + 12])
            if bom == b"\x4d\x3c\x2b\x1a":
                order = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                order = ">"
            else:
                raise PcapError(f"{path}: bad byte-order magic at offset {off}")
            interfaces = []
        btype, blen = struct.unpack_from(order + "II", buf, off)
        if blen < 12 or blen % 4 or blen > MAX_RECORD + 64:
            raise PcapError(f"{path}: corrupt block length {blen} at offset {off} after {count} packets")
        end = off + blen
        if end > size:
            raise PcapError(f"{path}: truncated block at offset {off} after {count} packets")
        body = off + 8
        if btype in (_EPB, _OPB):
            if btype == _EPB:
                if_id, hi, lo, caplen, _wirelen = struct.unpack_from(order + "IIIII", buf, body)
            else:
                if_id, _drops, hi, lo, caplen, _wirelen = struct.unpack_from(order + "HHIIII", buf, body)
            data = body + 20
            if if_id >= len(interfaces) or data + caplen > end - 4:
                raise PcapError(f"{path}: corrupt packet block at offset {off} after {count} packets")
            linktype, tick, tsoff = interfaces[if_id]
            last_ts = ((hi << 32) | lo) * tick + tsoff
            sink(last_ts, linktype, buf, data, data + caplen)
            count += 1
        elif btype == _SPB:
            if not interfaces:
                raise PcapError(f"{path}: simple packet block before any interface at offset {off}")
            wirelen = struct.unpack_from(order + "I", buf, body)[0]
            caplen = min(wirelen, blen - 16)
            # no timestamp in a simple packet block: it is taken to follow the previous packet
            sink(last_ts, interfaces[0][0], buf, body + 4, body + 4 + caplen)
            count += 1
        elif btype == _IDB:
            linktype = struct.unpack_from(order + "H", buf, body)[0]
            tick, tsoff = _idb_options(buf, order, body + 8, end - 4)
            interfaces.append((linktype, tick, tsoff))
        off = end
        if count >= pause:
            pause = count + batch
            released = _release(buf, released, off)
            yield count
    yield count


def _idb_options(buf: bytes | mmap.mmap, order: str, off: int, end: int) -> tuple[float, int]:
    """Read ``if_tsresol`` (code 9) and ``if_tsoffset`` (code 14) from an interface block."""
    tick = 1e-6
    tsoff = 0
    while off + 4 <= end:
        code, length = struct.unpack_from(order + "HH", buf, off)
        if code == 0:
            break
        value = off + 4
        if code == 9 and length >= 1:
            res = buf[value]
            tick = 2.0 ** -(res & 0x7F) if res & 0x80 else 10.0**-res
        elif code == 14 and length >= 8:
            tsoff = struct.unpack_from(order + "q", buf, value)[0]
        off = value + ((length + 3) & ~3)
    return tick, tsoff
