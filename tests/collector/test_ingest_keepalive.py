"""Batches on one keep-alive connection are answered without a Nagle / delayed-ACK stall.

The reply is written as headers then body; with Nagle on, the body waited for the agent's delayed
ACK of the headers, about 40 ms per batch on Linux, which capped one agent at ~25 batches a second
whatever the collector's CPU. Each request here is small, so anything near 40 ms is that stall.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from tests.collector.ingest_harness import Stack, post_events, sample_events


def test_sequential_batches_on_one_connection_do_not_stall(stack: Stack, tmp_path: Path) -> None:
    agent = stack.agent(tmp_path / "a", site="hn")
    durations = []
    with agent.client() as client:
        for n in range(25):
            started = time.perf_counter()
            resp = post_events(client, stack.url, sample_events(3, prefix=f"k{n}"))
            durations.append(time.perf_counter() - started)
            assert resp.status_code == 200 and resp.json()["accepted"] == 3
    assert statistics.median(durations[1:]) < 0.030, durations  # the stall alone is ~0.040 each
