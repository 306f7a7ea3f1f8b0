"""Gaps the soak found. Open ones are strict xfails (fixing one turns it red: drop its mark); fixed ones guard.

Each names the component and what an operator loses; the report to the lead has the proposed fix.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.pipeline.normalize import Normalize
from soc_common.ecs import iso, new_event


@pytest.mark.parametrize("offset", [timedelta(hours=1), timedelta(hours=-25)])  # lateness default: 24 h
def test_normalize_flags_timestamps_far_from_ingest_time(offset: timedelta) -> None:
    event = new_event(dataset="system.auth", event_id="skewed-1")
    event["@timestamp"] = iso(datetime.now(UTC) + offset)
    Normalize().process([event])
    tags = [str(t) for t in event.get("tags") or []]
    assert any("skew" in t or "future" in t or "late" in t for t in tags), tags


def test_store_reads_from_short_lived_threads_do_not_leak_connections(tmp_path: Path) -> None:
    import threading

    import psutil

    from collector.store.sqlite import SqliteEventStore

    store = SqliteEventStore(tmp_path / "events.db")
    me = psutil.Process()
    try:
        store.health()
        before = me.num_fds()
        for _ in range(100):  # what 100 scrapes of /health do: one new thread each
            thread = threading.Thread(target=store.health)
            thread.start()
            thread.join()
        leaked = me.num_fds() - before
    finally:
        store.close()
    assert leaked < 20, f"{leaked} file descriptors left open by 100 finished threads"


def test_udp_receiver_drop_counters_are_exported(tmp_path: Path) -> None:
    import urllib.request

    from collector.config import CollectorConfig
    from collector.runtime import Collector

    config = CollectorConfig.model_validate(
        {
            "data_dir": str(tmp_path),
            "ingest": {"enabled": False},
            "detection": {"enabled": False},
            "alerts": {"database_url": ""},
            "retention": {"enabled": False},
            "metrics": {"port": 0},
            "syslog": {"enabled": True, "udp_port": 0, "tcp_port": None, "tls_port": None},
            "netflow": {"enabled": True, "port": 0},
        }
    )
    collector = Collector(config)
    collector.start()
    try:
        assert collector.metrics_server is not None
        base = f"http://127.0.0.1:{collector.metrics_server.port}"
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        with urllib.request.urlopen(f"{base}/health", timeout=5) as resp:
            health = resp.read().decode()
    finally:
        collector.stop()
    assert set(collector.receivers) == {"syslog", "netflow"}  # both receivers really ran
    assert "drop" in metrics or "drop" in health, "no drop counter for the UDP receivers"


def test_health_is_degraded_when_the_store_is_unreachable(tmp_path: Path) -> None:
    import json
    import urllib.request

    from collector.config import CollectorConfig
    from collector.runtime import Collector
    from collector.store.sqlite import SqliteEventStore

    config = CollectorConfig.model_validate(
        {
            "data_dir": str(tmp_path),
            "ingest": {"enabled": False},
            "detection": {"enabled": False},
            "alerts": {"database_url": ""},
            "retention": {"enabled": False},
            "metrics": {"port": 0},
        }
    )
    store = SqliteEventStore(tmp_path / "events.db")
    collector = Collector(config, store=store)
    collector.start()
    try:
        assert collector.metrics_server is not None
        url = f"http://127.0.0.1:{collector.metrics_server.port}/health"
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert json.loads(resp.read())["status"] == "ok"
        store.close()  # the store is gone: its health() now says reachable=False
        assert store.health()["reachable"] is False
        with urllib.request.urlopen(url, timeout=5) as resp:
            health = json.loads(resp.read())
    finally:
        collector.stop()
    assert health["status"] == "degraded", health
