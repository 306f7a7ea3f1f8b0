"""Shipper pieces that need no collector: back-off, the token bucket, URL checks."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from agent.config import ShippingSettings, SpoolSettings
from agent.shipper import CollectorClient, Shipper, TokenBucket
from agent.spool import Spool


def test_backoff_is_full_jitter_capped_and_honours_retry_after(tmp_path: Path) -> None:
    settings = ShippingSettings(backoff_initial=1.0, backoff_max=8.0)
    shipper = Shipper(Spool(tmp_path, SpoolSettings()), settings, "https://127.0.0.1:1", lambda: None)
    delays = [shipper._backoff(None) for _ in range(200)]
    assert all(0 <= d <= 8.0 for d in delays)
    assert max(delays[5:]) > 4  # the ceiling grew to the cap
    assert len({round(d, 3) for d in delays}) > 100  # jittered, not in lock-step
    assert shipper._backoff(5.0) >= 5.0
    assert shipper._backoff(1000.0) == 8.0  # an absurd Retry-After is capped


def test_token_bucket_limits_rate() -> None:
    bucket = TokenBucket(200)
    stop = threading.Event()
    start = time.monotonic()
    for _ in range(6):
        bucket.take(100, stop)  # 600 events at 200/s: the first 200 are the burst
    assert time.monotonic() - start >= 1.8
    unlimited = TokenBucket(0)
    t0 = time.monotonic()
    unlimited.take(10**9, stop)
    assert time.monotonic() - t0 < 0.1


def test_only_https_urls() -> None:
    with pytest.raises(ValueError):
        CollectorClient("http://collector:8443", lambda: None, 5)
