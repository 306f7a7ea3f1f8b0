"""Per-agent token buckets, so one noisy or misbehaving agent cannot starve the others.

A batch is admitted whenever the bucket is not in debt, and its whole size is then charged (the
bucket may go negative). That way a batch larger than the burst still gets through eventually, and
the debt tells the agent exactly how long to wait (``Retry-After``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = now

    def take(self, amount: float, now: float) -> float:
        """Charge ``amount``; return 0 if admitted, else the seconds to wait before retrying."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 0:
            return -self.tokens / self.rate
        self.tokens -= amount
        return 0.0


class RateLimiter:
    """One :class:`TokenBucket` per key (agent id); thread-safe."""

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
        return 0 if wait <= 0 else max(1, math.ceil(wait))
