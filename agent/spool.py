"""A bounded, crash-safe on-disk spool between the sources and the shipper.

Layout under the spool folder: numbered segment files (``0000000000000001.seg``) of records
``<u32 length><u32 crc32><JSON event>``, and ``cursor.json``, the acknowledged position. Appends are
fsync'ed before ``append`` returns, so a source may persist its own position right after; the cursor
is replaced atomically, and segments behind it are deleted. After a crash, the last segment's torn
tail (a record whose length or CRC does not check) is truncated; records before it are intact, and
un-acknowledged records are sent again (the collector drops the duplicates by ``event.id``).

``max_bytes`` bounds the un-acknowledged data; on disk there may be up to one extra segment of
acknowledged records waiting to be deleted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from agent.config import SpoolSettings
from soc_common.ecs import Event, new_event, put
from soc_common.parsers.json_codec import dumps_bytes

log = logging.getLogger(__name__)

HEADER = struct.Struct("<II")
MAX_RECORD = 64 * 1024 * 1024  # a larger length field can only be garbage
_SUFFIX = ".seg"
_NOTICE_INTERVAL = 30.0  # seconds between two spool_full self-events
_ROLL_WHEN_ACKED = 64 * 1024  # start a fresh segment once an all-acknowledged one is this big

try:  # POSIX: one process per spool
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class SpoolFull(Exception):
    """The spool stayed full for the whole wait (``on_full = "block"``); nothing was written."""


class SpoolLocked(Exception):
    """Another process has this spool open."""


@dataclass(frozen=True)
class SpoolCursor:
    """A position in the spool, returned by :meth:`Spool.read_records` and given back to ``ack``."""

    segment: int
    offset: int
    events: int  # records between the start position and this cursor
    start_segment: int
    start_offset: int
    exact: bool = True  # False when a damaged record was skipped on the way


@dataclass
class _Segment:
    seq: int
    path: Path
    size: int = 0
    count: int = 0


def _encode(event: Event) -> bytes:
    # orjson when installed (the largest single cost of the agent's hot path with the stdlib encoder)
    payload = dumps_bytes(event)
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":  # pragma: no cover - directories cannot be fsync'ed on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _scan(path: Path, verify: bool) -> tuple[list[int], int]:
    """Record boundaries of a segment (start offsets) and where the valid data ends."""
    starts: list[int] = []
    offset = 0
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        while offset + HEADER.size <= size:
            fh.seek(offset)
            length, crc = HEADER.unpack(fh.read(HEADER.size))
            end = offset + HEADER.size + length
            if length > MAX_RECORD or end > size:
                break
            if verify and zlib.crc32(fh.read(length)) != crc:
                break
            starts.append(offset)
            offset = end
    return starts, offset


class Spool:
    """Thread-safe: many sources append, one shipper reads and acknowledges."""

    def __init__(
        self,
        directory: Path,
        settings: SpoolSettings,
        *,
        stamp: Callable[[Event], None] | None = None,
    ) -> None:
        self.directory = directory
        self.settings = settings
        self._stamp = stamp
        self._cond = threading.Condition(threading.Lock())
        self._segments: list[_Segment] = []
        self._active: BinaryIO | None = None
        self._ack_seq = 0
        self._ack_offset = 0
        self._head_acked_records = 0
        self._head_acked_bytes = 0
        self.dropped_events = 0
        self.cursor_write_errors = 0  # acknowledged positions the disk refused to persist
        self.corrupt_records = 0
        self.truncated_bytes = 0
        self.blocked_seconds = 0.0
        self._last_notice = 0.0
        self._dropped_since_notice = 0
        self._closed = False
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fh = self._take_lock()
        self._recover()

    # ---- opening and recovery ------------------------------------------------------------
    def _take_lock(self) -> BinaryIO | None:
        fh = (self.directory / ".lock").open("ab")
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                raise SpoolLocked(f"{self.directory}: the spool is in use by another process") from None
        return fh

    def _seg_path(self, seq: int) -> Path:
        return self.directory / f"{seq:016d}{_SUFFIX}"

    def _read_cursor(self) -> tuple[int, int]:
        try:
            data = json.loads((self.directory / "cursor.json").read_text(encoding="utf-8"))
            return int(data["segment"]), int(data["offset"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return 0, 0

    def _write_cursor(self) -> None:
        """Persist the acknowledged position; if the disk refuses, keep going from memory.

        A lost cursor write only means acknowledged events may be sent again after a crash, and
        the collector drops those as duplicates; stopping the shipper over it would lose far more.
        """
        tmp = self.directory / "cursor.json.tmp"
        try:
            with tmp.open("w", encoding="utf-8") as fh:
                json.dump({"segment": self._ack_seq, "offset": self._ack_offset}, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.directory / "cursor.json")
            _fsync_dir(self.directory)
        except OSError as exc:
            self.cursor_write_errors += 1
            log.error("spool cursor not saved (%s): acknowledged events may be re-sent after a restart", exc)

    def _recover(self) -> None:
        seqs = sorted(int(p.stem) for p in self.directory.glob(f"*{_SUFFIX}") if p.stem.isdecimal())
        ack_seq, ack_offset = self._read_cursor()
        for seq in [s for s in seqs if s < ack_seq]:  # acknowledged before a crash, not yet deleted
            self._seg_path(seq).unlink(missing_ok=True)
        seqs = [s for s in seqs if s >= ack_seq]
        if not seqs or seqs[0] != ack_seq:
            ack_offset = 0
        for i, seq in enumerate(seqs):
            last = i == len(seqs) - 1
            segment, starts = self._recover_segment(seq, last)
            if i == 0:
                # the acknowledged position, moved back to a record boundary if it is not on one
                before = [x for x in starts if x < ack_offset]
                if ack_offset < segment.size and ack_offset not in starts:
                    ack_offset = before[-1] if before else 0
                ack_offset = min(ack_offset, segment.size)
                self._head_acked_records = len([x for x in starts if x < ack_offset])
                self._head_acked_bytes = ack_offset
            self._segments.append(segment)
        if not self._segments:
            first = max(ack_seq, 1)
            self._segments.append(_Segment(first, self._seg_path(first)))
        self._ack_seq, self._ack_offset = self._segments[0].seq, ack_offset
        self._open_active()
        self._write_cursor()

    def _recover_segment(self, seq: int, last: bool) -> tuple[_Segment, list[int]]:
        """Scan one segment; the last one is CRC-checked and its torn tail truncated."""
        path = self._seg_path(seq)
        starts, valid_end = _scan(path, verify=last)
        size = path.stat().st_size
        if valid_end < size and last:
            log.warning("spool: truncating a torn tail of %d bytes in %s", size - valid_end, path.name)
            self.truncated_bytes += size - valid_end
            with path.open("r+b") as fh:
                fh.truncate(valid_end)
                os.fsync(fh.fileno())
            size = valid_end
        elif valid_end < size:
            log.error("spool: %s is damaged after byte %d; the rest will be skipped", path.name, valid_end)
        return _Segment(seq, path, size=size, count=len(starts)), starts

    def _open_active(self) -> None:
        seg = self._segments[-1]
        fresh = not seg.path.exists()
        self._active = seg.path.open("ab")
        if fresh:
            _fsync_dir(self.directory)

    # ---- accounting ------------------------------------------------------------------------
    @property
    def pending_events(self) -> int:
        with self._cond:
            return self._pending_events()

    @property
    def pending_bytes(self) -> int:
        with self._cond:
            return self._pending_bytes()

    def _pending_events(self) -> int:
        return sum(s.count for s in self._segments) - self._head_acked_records

    def _pending_bytes(self) -> int:
        return sum(s.size for s in self._segments) - self._head_acked_bytes

    def _disk_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    def _has_room(self, size: int) -> bool:
        pending = self._pending_bytes()
        return pending == 0 or pending + size <= self.settings.max_bytes

    # ---- appending ----------------------------------------------------------------------------
    def append(self, events: Sequence[Event], timeout: float | None = None) -> None:
        """Write ``events`` durably, or apply the ``on_full`` policy; see :class:`SpoolFull`."""
        if not events:
            return
        # _encode() inlined: this runs for every event the agent produces
        pack, crc = HEADER.pack, zlib.crc32
        parts: list[bytes] = []
        for event in events:
            payload = dumps_bytes(event)
            parts.append(pack(len(payload), crc(payload)))
            parts.append(payload)
        self._append_encoded(b"".join(parts), len(events), timeout)

    def append_raw(self, records: Sequence[bytes], timeout: float | None = None) -> None:
        """Append records already serialised as JSON (moving data between spools)."""
        if not records:
            return
        data = b"".join(HEADER.pack(len(r), zlib.crc32(r)) + r for r in records)
        self._append_encoded(data, len(records), timeout)

    def _append_encoded(self, data: bytes, count: int, timeout: float | None) -> None:
        with self._cond:
            if self._closed:
                raise SpoolFull("the spool is closed")
            if not self._has_room(len(data)):
                policy = self.settings.on_full
                if policy == "drop_newest":
                    self._note_drop(count, "drop_newest")
                    return
                if policy == "drop_oldest":
                    self._drop_oldest_until(len(data))
                else:
                    self._wait_for_room(len(data), count, timeout)
            self._write(data, count)

    def _write(self, data: bytes, count: int) -> None:
        assert self._active is not None
        seg = self._segments[-1]
        try:
            self._active.write(data)
            self._active.flush()
            os.fsync(self._active.fileno())
        except OSError:
            self._discard_partial_write(seg)
            raise
        seg.size += len(data)
        seg.count += count
        if seg.size >= self.settings.segment_bytes:
            try:
                self._roll()
            except OSError:  # the data above is durable: report it written; the next write retries the roll
                log.warning("spool could not start a new segment; retrying on the next write", exc_info=True)
        self._cond.notify_all()

    def _discard_partial_write(self, seg: _Segment) -> None:
        """Put the segment back to its last durable size after a failed write (ENOSPC, EIO).

        Without this the bytes stay in the file object's buffer: a later flush or close retries
        them, fails again, and the spool is left holding a closed file that refuses every append.
        """
        assert self._active is not None
        with contextlib.suppress(OSError):
            self._active.close()  # the buffered bytes are lost with it: that is the point
        with contextlib.suppress(OSError):
            os.truncate(seg.path, seg.size)  # a torn record would also be caught by its CRC
        self._open_active()

    def _roll(self) -> None:
        assert self._active is not None
        try:
            self._active.close()
        except OSError:
            log.warning("spool segment %s did not close cleanly", self._segments[-1].path, exc_info=True)
        seq = self._segments[-1].seq + 1
        self._segments.append(_Segment(seq, self._seg_path(seq)))
        try:
            self._open_active()
        except OSError:  # no room for a new file: keep appending to the old segment, never to a closed one
            self._segments.pop()
            self._open_active()
            raise

    def _wait_for_room(self, size: int, count: int, timeout: float | None) -> None:
        wait = self.settings.block_timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        started = time.monotonic()
        self._notice("block", count)
        try:
            while not self._has_room(size):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    raise SpoolFull(f"spool full ({self._pending_bytes()} of {self.settings.max_bytes} bytes waiting)")
                self._cond.wait(remaining)
        finally:
            self.blocked_seconds += time.monotonic() - started

    def _drop_oldest_until(self, size: int) -> None:
        dropped = 0
        while not self._has_room(size):
            if len(self._segments) == 1:
                self._roll()
            head = self._segments.pop(0)
            dropped += head.count - self._head_acked_records
            head.path.unlink(missing_ok=True)
            self._ack_seq, self._ack_offset = self._segments[0].seq, 0
            self._head_acked_records = self._head_acked_bytes = 0
        self._write_cursor()
        self._note_drop(dropped, "drop_oldest")

    def _note_drop(self, count: int, policy: str) -> None:
        self.dropped_events += count
        self._dropped_since_notice += count
        log.error("spool full (%s): %d events dropped, %d in total", policy, count, self.dropped_events)
        self._notice(policy, count)

    def _notice(self, policy: str, count: int) -> None:
        """Record a ``spool_full`` self-event, at most one per interval; it may exceed max_bytes slightly."""
        now = time.monotonic()
        if self._last_notice and now - self._last_notice < _NOTICE_INTERVAL:
            return
        self._last_notice = now
        event = new_event(kind="event", dataset="soc.agent", module="soc")
        put(event, "event.action", "spool_full")
        put(event, "event.outcome", "failure")
        put(event, "message", f"agent spool full ({policy}); events dropped so far: {self.dropped_events}")
        put(event, "soc.agent.spool.on_full", policy)
        put(event, "soc.agent.spool.dropped_events", self.dropped_events)
        put(event, "soc.agent.spool.dropped_since_last", self._dropped_since_notice)
        put(event, "soc.agent.spool.max_bytes", self.settings.max_bytes)
        self._dropped_since_notice = 0
        if self._stamp is not None:
            self._stamp(event)
        self._write(_encode(event), 1)

    # ---- reading and acknowledging -----------------------------------------------------------
    def wait_for_data(self, min_events: int, timeout: float) -> int:
        """Wait until ``min_events`` are pending or ``timeout`` passes; return the pending count."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                pending = self._pending_events()
                remaining = deadline - time.monotonic()
                if pending >= min_events or remaining <= 0 or self._closed:
                    return pending
                self._cond.wait(remaining)

    def read_records(self, max_events: int, max_bytes: int) -> tuple[SpoolCursor, list[bytes]]:
        """The oldest un-acknowledged records as raw JSON; the same ones again until acknowledged."""
        with self._cond:
            start_seq, start_offset = self._ack_seq, self._ack_offset
            layout = [(s.seq, s.path, s.size) for s in self._segments if s.seq >= start_seq]
        seq, offset = start_seq, start_offset
        records: list[bytes] = []
        used = 0
        exact = True

        def cursor() -> SpoolCursor:
            return SpoolCursor(seq, offset, len(records), start_seq, start_offset, exact)

        for seg_seq, path, size in layout:
            if seg_seq != seq:
                if offset < self._size_of(layout, seq):
                    break  # the previous segment was not finished
                seq, offset = seg_seq, 0
            try:
                fh = path.open("rb")
            except FileNotFoundError:  # dropped by drop_oldest meanwhile; the cursor will be stale
                break
            with fh:
                fh.seek(offset)
                while offset + HEADER.size <= size:
                    if len(records) >= max_events:
                        return cursor(), records
                    length, crc = HEADER.unpack(fh.read(HEADER.size))
                    if records and used + length > max_bytes:
                        return cursor(), records
                    payload = fh.read(length) if length <= MAX_RECORD else b""
                    if len(payload) != length or zlib.crc32(payload) != crc:
                        self._skip_damaged(path, offset)
                        exact = False
                        offset = size
                        break
                    records.append(payload)
                    used += length
                    offset += HEADER.size + length
        return cursor(), records

    @staticmethod
    def _size_of(layout: list[tuple[int, Path, int]], seq: int) -> int:
        return next(size for s, _, size in layout if s == seq)

    def _skip_damaged(self, path: Path, offset: int) -> None:
        with self._cond:
            self.corrupt_records += 1
        log.error("spool: damaged record in %s at byte %d; skipping the rest of it", path.name, offset)

    def read_batch(self, max_events: int, max_bytes: int) -> tuple[SpoolCursor, list[Event]]:
        """Like :meth:`read_records`, decoded."""
        cursor, records = self.read_records(max_events, max_bytes)
        return cursor, [json.loads(r) for r in records]

    def ack(self, cursor: SpoolCursor) -> None:
        """Mark everything before ``cursor`` delivered; delete the segments it covers."""
        with self._cond:
            if (cursor.start_segment, cursor.start_offset) != (self._ack_seq, self._ack_offset):
                return  # stale: read before an earlier ack or a drop_oldest moved the position
            removed: list[_Segment] = []
            while len(self._segments) > 1 and self._segments[0].seq < cursor.segment:
                removed.append(self._segments.pop(0))
            head = self._segments[0]
            if not cursor.exact:
                self._head_acked_records = self._recount(head, cursor.offset)
            elif removed:
                consumed = removed[0].count - self._head_acked_records + sum(s.count for s in removed[1:])
                self._head_acked_records = max(0, min(head.count, cursor.events - consumed))
            else:
                self._head_acked_records = min(head.count, self._head_acked_records + cursor.events)
            self._ack_seq, self._ack_offset = cursor.segment, cursor.offset
            self._head_acked_bytes = cursor.offset
            self._write_cursor()
            for seg in removed:
                seg.path.unlink(missing_ok=True)
            if len(self._segments) == 1 and self._pending_events() == 0 and head.size >= _ROLL_WHEN_ACKED:
                self._roll()
                done = self._segments.pop(0)
                self._ack_seq, self._ack_offset = self._segments[0].seq, 0
                self._head_acked_records = self._head_acked_bytes = 0
                self._write_cursor()
                done.path.unlink(missing_ok=True)
            self._cond.notify_all()

    def _recount(self, head: _Segment, offset: int) -> int:
        """Records of ``head`` before ``offset`` (exact; the head is re-scanned only up to ``offset``)."""
        if offset >= head.size:
            return head.count
        count = 0
        pos = 0
        with head.path.open("rb") as fh:
            while pos < offset:
                fh.seek(pos)
                length, _ = HEADER.unpack(fh.read(HEADER.size))
                pos += HEADER.size + length
                count += 1
        return count

    # ---- status and shutdown ---------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._cond:
            return {
                "path": str(self.directory),
                "disk_bytes": self._disk_bytes(),
                "pending_bytes": self._pending_bytes(),
                "pending_events": self._pending_events(),
                "segments": len(self._segments),
                "max_bytes": self.settings.max_bytes,
                "on_full": self.settings.on_full,
                "dropped_events": self.dropped_events,
                "blocked_seconds": round(self.blocked_seconds, 3),
                "corrupt_records": self.corrupt_records,
                "truncated_bytes": self.truncated_bytes,
            }

    def close(self) -> None:
        with self._cond:
            self._closed = True
            if self._active is not None:
                self._active.close()
                self._active = None
            if self._lock_fh is not None:
                self._lock_fh.close()
                self._lock_fh = None
            self._cond.notify_all()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
