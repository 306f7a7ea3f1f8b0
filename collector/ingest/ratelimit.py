"""Per-agent token buckets, so one noisy or misbehaving agent cannot starve the others.

A batch is admitted whenever the bucket is not in debt, and its whole size is then charged (the
bucket may go negative). That way a batch larger than the burst still gets through eventually, and
the debt tells the agent exactly how long to wait (``Retry-After``).

With ingest workers an agent's connections land on different processes, so per-process buckets
would let it send ``workers`` times its rate: there every worker uses :class:`SharedRateLimiter`,
whose buckets live in a file all workers of the collector map. :func:`open_limiter` picks the kind.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol


class Limiter(Protocol):
    def admit(self, key: str, amount: int) -> int:
        """0 when admitted, else whole seconds to wait (at least 1) for ``Retry-After``."""
        ...


def take(tokens: float, elapsed: float, amount: float, rate: float, burst: float) -> tuple[float, float]:
    """Refill a bucket for ``elapsed`` seconds and charge ``amount`` unless it is in debt.

    Returns the tokens left and the seconds to wait (0 when admitted). A negative ``elapsed`` (two
    readers of the clock racing for the lock) counts as none, so a bucket never loses tokens to it.
    """
    tokens = min(burst, tokens + max(0.0, elapsed) * rate)
    if tokens < 0:
        return tokens, -tokens / rate
    return tokens - amount, 0.0


def retry_after(wait: float) -> int:
    return 0 if wait <= 0 else max(1, math.ceil(wait))


class TokenBucket:
    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = now

    def take(self, amount: float, now: float) -> float:
        """Charge ``amount``; return 0 if admitted, else the seconds to wait before retrying."""
        self.tokens, wait = take(self.tokens, now - self.updated, amount, self.rate, self.burst)
        self.updated = now
        return wait


class RateLimiter:
    """One :class:`TokenBucket` per key (agent id) in this process's memory; thread-safe."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def admit(self, key: str, amount: int) -> int:
        """0 when admitted, else whole seconds to wait (at least 1) for ``Retry-After``."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
            wait = bucket.take(amount, now)
        return retry_after(wait)


SLOT = struct.Struct("=Qdd")  # key hash (0: empty), tokens, last update (time.monotonic seconds)
SLOTS = 4096  # 96 KiB; agents mostly sit at a full bucket, so even more agents than slots cost little
WINDOW = 32  # slots probed from a key's home slot


def key_hash(key: str) -> int:
    """A 64-bit hash that is the same in every process (``hash()`` is salted per process); never 0."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") or 1


class SharedRateLimiter:
    """Token buckets in a memory-mapped file, shared by every process that opens the same ``path``.

    The file is a fixed table of :data:`SLOT` records, open addressing on :func:`key_hash` with a
    probe window of ``window`` slots. Slots are never emptied, so a lookup may stop at the first
    empty one. When a new key finds its window full, it takes the slot whose bucket is (or will
    soonest be) full again: a key without a slot starts with a full bucket, so forgetting a full
    one changes nothing, and only when every bucket in the window is still refilling is the
    smallest remaining debt forgiven. Erring towards admitting keeps an innocent agent from being
    refused because of a crowded table.

    One ``flock`` on the file serialises processes (the kernel drops it if a holder dies) and a
    ``threading.Lock`` the threads of one process, which share the file descriptor's lock. Bucket
    times are ``time.monotonic()``, one clock for all processes on a Linux host, so the file must
    be local to the host. Nothing in it is worth keeping: each collector run starts a new one.
    """

    def __init__(
        self,
        path: Path,
        rate: float,
        burst: float,
        *,
        slots: int = SLOTS,
        window: int = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.rate = rate
        self.burst = burst
        self.slots = slots
        self.window = min(window, slots)
        self._clock = clock
        self._lock = threading.Lock()
        self._fd = _open_table(path, slots * SLOT.size)
        try:
            self._map = mmap.mmap(self._fd, slots * SLOT.size)
        except BaseException:
            os.close(self._fd)
            raise

    def admit(self, key: str, amount: int) -> int:
        """0 when admitted, else whole seconds to wait (at least 1) for ``Retry-After``."""
        h = key_hash(key)
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                now = self._clock()  # under the lock: no process writes a later time before we read ours
                offset = self._find(h, now)
                found, tokens, updated = SLOT.unpack_from(self._map, offset)
                if found != h:
                    if amount == 0:
                        return 0  # a new key's full bucket admits and stays full: nothing to record
                    tokens, updated = self.burst, now
                tokens, wait = take(tokens, now - updated, amount, self.rate, self.burst)
                SLOT.pack_into(self._map, offset, h, tokens, now)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        return retry_after(wait)

    def _find(self, h: int, now: float) -> int:
        """The offset of ``h``'s slot, else of the first empty slot in its window, else of the one to evict."""
        home = h % self.slots
        victim, victim_full_at = 0, math.inf
        for step in range(self.window):
            offset = (home + step) % self.slots * SLOT.size
            key, tokens, updated = SLOT.unpack_from(self._map, offset)
            if key == h or key == 0:
                return offset
            full_at = max(updated + (self.burst - tokens) / self.rate, now)  # ties: the first full one
            if full_at < victim_full_at:
                victim, victim_full_at = offset, full_at
        return victim

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


def _open_table(path: Path, size: int) -> int:
    """The table's file descriptor; the first opener sizes an empty file (zeros: every slot empty)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            found = os.fstat(fd).st_size
            if found == 0:
                os.ftruncate(fd, size)
            elif found != size:
                raise ValueError(f"{path} holds {found} bytes, not a table of {size}")
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_limiter(name: str, rate: float, burst: float, shared_dir: Path | None = None) -> Limiter:
    """The limiter called ``name``: in this process's memory, or in ``shared_dir`` with the other workers.

    An ingest worker gets the folder its supervisor made empty for the run, so a restarted worker
    finds the other workers' buckets and a restarted collector starts clean.
    """
    if shared_dir is None:
        return RateLimiter(rate, burst)
    return SharedRateLimiter(shared_dir / f"{name}.buckets", rate, burst)
