"""Rate limits with ingest workers (``workers = 2``): an agent, or a client address failing to enrol, has one
budget per collector however its connections are spread over the worker processes."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from collector.config import CollectorConfig
from collector.runtime import Collector
from tests.collector.ingest_harness import make_csr, sample_events
from tests.collector.test_workers import enrolled, sample_value, wait_for

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="workers need SO_REUSEPORT (Linux)")

RATE, BURST, BATCH, SECONDS, SENDERS = 100, 100, 20, 3.0, 4


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Collector]:
    config = CollectorConfig.model_validate(
        {
            "data_dir": str(tmp_path / "data"),
            "workers": 2,
            "ingest": {"port": 0, "agent_cache_seconds": 0, "rate_limit_eps": RATE, "rate_limit_burst": BURST},
            "detection": {"enabled": False},
            "metrics": {"enabled": False},
            "retention": {"enabled": False},
        }
    )
    collector = Collector(config)
    collector.start()
    yield collector
    collector.stop()
    assert collector.pool is not None and collector.pool._shared_dir is not None
    assert not collector.pool._shared_dir.exists()  # the run's buckets go with it


def test_one_agent_over_many_connections_gets_the_configured_rate(limited: Collector, tmp_path: Path) -> None:
    agent = enrolled(limited, tmp_path, "pc-01")
    began = time.monotonic()

    def send(sender: int) -> tuple[int, list[str]]:
        """Ship batches, a new connection each, for SECONDS: events accepted and the Retry-After of each 429."""
        accepted, retry_after, n = 0, [], 0
        while time.monotonic() - began < SECONDS:
            n += 1
            resp = agent.ship(sample_events(BATCH, prefix=f"s{sender}-{n}"))
            if resp.status_code == 429:
                retry_after.append(resp.headers["Retry-After"])
            else:
                accepted += resp.json()["accepted"]
        return accepted, retry_after

    with ThreadPoolExecutor(SENDERS) as senders:
        results = list(senders.map(send, range(SENDERS)))
    elapsed = time.monotonic() - began
    accepted = sum(r[0] for r in results)
    refused = [s for r in results for s in r[1]]
    budget = BURST + RATE * elapsed  # tokens: a batch of BATCH events costs BATCH + 1
    assert accepted <= budget + BATCH + 1, (accepted, budget)  # per-worker buckets would allow twice this
    assert accepted >= 0.6 * budget * BATCH / (BATCH + 1), (accepted, budget)
    assert refused and all(s.isdigit() and int(s) >= 1 for s in refused)
    pool = limited.pool
    assert pool is not None

    def both_workers_stored() -> bool:
        """Both took some of those connections, so the one budget held across processes."""
        texts = pool.metrics_texts()
        stored = 'soc_collector_events_stored_total{source="agent"}'
        return len(texts) == 2 and all(sample_value(t.decode(), stored) > 0 for t in texts)

    wait_for(both_workers_stored, timeout=5)


def test_failed_enrolments_are_counted_once_per_collector(limited: Collector) -> None:
    url = f"https://127.0.0.1:{limited.ports()['ingest']}/v1/enroll"
    _, csr = make_csr("guess")
    body = {"token": "not-a-token", "hostname": "guess", "csr": csr}
    verify = ssl.create_default_context(cafile=str(limited.config.ca_dir / "ca.crt"))
    statuses = []
    for _ in range(34):  # a new connection each: spread over both workers
        with httpx.Client(verify=verify) as client:
            statuses.append(client.post(url, json=body).status_code)
    # 30 failures fill the address's burst; with a bucket per worker the 429s would start near 60
    assert statuses[:30] == [401] * 30 and 429 in statuses[30:], statuses
