"""The collector's own disk almost full: it stops acknowledging instead of losing, and recovers when space returns.

A real tmpfs holds the collector's data folder (event store, registry); it is shrunk to a few
hundred KiB free while an agent keeps posting. Every batch answered 200 must be in the store, the
refused ones must be answered 503 (the agent keeps them and retries), and once the space is back the
same batches are accepted. Mounting needs root; elsewhere this skips. The long soak runs the same
fault under load (bench/soak.py, fault ``collector-disk-full``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from soak_faults import SmallDisk

from soc_common.ecs import new_event
from tests.deploy.live_collector import live_collector


@pytest.fixture
def collector_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    why = SmallDisk.unavailable(tmp_path)
    if why is not None:
        pytest.skip(why)
    disk = SmallDisk(tmp_path / "collector", size_mb=64)
    disk.mount()
    yield disk
    disk.unmount()


def _batch(start: int, n: int = 400) -> tuple[bytes, list[str]]:
    events = []
    for i in range(start, start + n):
        event = new_event(dataset="test.collector_disk", event_id=f"cd-{i}")
        event["message"] = f"sqcdn{i} " + "x" * 1500
        events.append(event)
    body = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    return body, [e["event"]["id"] for e in events]


def test_full_collector_disk_refuses_with_503_and_loses_nothing_acknowledged(
    collector_disk: SmallDisk, tmp_path: Path
) -> None:
    headers = {"Content-Type": "application/x-ndjson"}
    with live_collector(tmp_path) as live:
        creds = live.enroll(tmp_path / "agent")
        acknowledged: list[str] = []
        refused: list[tuple[bytes, list[str]]] = []
        body, ids = _batch(0)
        status, _ = live.post(creds, body, headers)
        assert status == 200
        acknowledged += ids
        collector_disk.squeeze(keep_mb=1)
        for n in range(1, 12):  # ~0.6 MiB per batch: the disk runs out within a few
            body, ids = _batch(n * 1000)
            status, answer = live.post(creds, body, headers)
            assert status in (200, 503), (status, answer)
            if status == 200:
                acknowledged += ids
            else:
                refused.append((body, ids))
        assert refused, "the disk never filled: the fault was not injected"
        collector_disk.unsqueeze()
        for body, ids in refused:  # the agent's retries once space is back
            status, answer = live.post(creds, body, headers)
            assert status == 200, answer
            acknowledged += ids
        store = live.collector.store
        assert store is not None
        stored = {e["event"]["id"] for e in store.get(acknowledged)}
        assert stored == set(acknowledged), f"{len(set(acknowledged) - stored)} acknowledged events missing"
