"""The NetFlow UDP receiver end to end: loss reporting, store outages, hostile datagrams."""

from __future__ import annotations

import socket
import threading
from typing import Any

from peers import netflow_stream, wait_for

from collector import metrics as metrics_module
from collector.config import NetflowSettings
from collector.metrics import CollectorMetrics
from collector.netflow.server import NetflowReceiver
from collector.store.base import StoreError


class FlakyStore:
    """``handle`` that raises StoreError until ``healthy`` is set, then keeps every event."""

    def __init__(self) -> None:
        self.healthy = threading.Event()
        self.events: list[dict[str, Any]] = []
        self.failures = 0

    def __call__(self, events: list[dict[str, Any]]) -> None:
        if not self.healthy.is_set():
            self.failures += 1
            raise StoreError("store down")
        self.events.extend(events)


def _send(port: int, packets: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for packet in packets:
            s.sendto(packet, ("127.0.0.1", port))


def test_gaps_reach_stats_and_metrics_and_store_outage_loses_nothing() -> None:
    registry = CollectorMetrics()
    metrics_module.set_active(registry)
    store = FlakyStore()
    receiver = NetflowReceiver(NetflowSettings(enabled=True, port=0, batch_size=100, flush_interval=0.05), store)
    receiver.batcher.retry_initial = receiver.batcher.retry_max = 0.05
    port = receiver.start()
    try:
        packets = netflow_stream(10, 50)
        sent = [p for i, p in enumerate(packets) if i not in (10, 11, 25)]
        _send(port, sent)
        assert wait_for(lambda: receiver.stats()["records"] == len(sent) * 30)
        assert wait_for(lambda: store.failures >= 3)
        assert store.events == []
        assert receiver.stats()["queued"] == len(sent) * 30
        store.healthy.set()
        assert wait_for(lambda: len(store.events) == len(sent) * 30)
        stats = receiver.stats()
        assert stats["missing_ipfix_records"] == 90
        assert stats["handle_errors"] >= 3 and stats["queued"] == 0
        assert registry.netflow_gaps.labels(exporter="127.0.0.1")._value.get() == 90
        assert len({e["event"]["id"] for e in store.events}) == len(store.events)
    finally:
        receiver.stop()
        metrics_module.set_active(None)


def test_hostile_datagrams_are_counted_and_good_ones_around_them_kept() -> None:
    store = FlakyStore()
    store.healthy.set()
    receiver = NetflowReceiver(NetflowSettings(enabled=True, port=0, flush_interval=0.05), store)
    port = receiver.start()
    try:
        good = netflow_stream(9, 4)
        junk = [b"", b"\x00", b"\x00\x09\xff", b"\x00\x0a" + b"\xff" * 40, b"\x00\x05" + b"\x01" * 30, b"\x00\x07hello"]
        _send(port, [good[0], *junk, good[1], good[2], *junk, good[3]])
        assert wait_for(lambda: len(store.events) == 120)
        stats = receiver.stats()
        assert stats["malformed_packets"] + stats["unsupported_version"] >= 8
        assert stats["unsupported_version"] >= 2
        assert stats["worker_errors"] == 0
    finally:
        receiver.stop()


def test_every_datagram_is_stored_or_counted_when_the_pipeline_stalls(monkeypatch: Any) -> None:
    """A stalled pipeline fills the packet queue; what does not fit is counted, the rest is kept."""
    from collector.netflow import server

    monkeypatch.setattr(server, "MAX_QUEUED_PACKETS", 5)
    store = FlakyStore()
    settings = NetflowSettings(enabled=True, port=0, batch_size=30, flush_interval=0.05)
    receiver = NetflowReceiver(settings, store, max_queued_events=30)
    receiver.batcher.retry_initial = receiver.batcher.retry_max = 0.05
    port = receiver.start()
    try:
        packets = netflow_stream(10, 40)
        _send(port, packets)
        assert wait_for(lambda: receiver.stats()["packets_received"] + receiver.stats()["kernel_drops"] == 40)
        store.healthy.set()
        stats: dict[str, Any] = {}

        def settled() -> bool:
            stats.update(receiver.stats())
            return stats["packets_queued"] == 0 and stats["queued"] == 0 and len(store.events) == stats["events"]

        assert wait_for(settled)
        assert stats["packets_dropped_queue_full"] > 0
        accounted = len(store.events) // 30 + stats["packets_dropped_queue_full"] + stats["kernel_drops"]
        assert accounted == 40
        # the exporter's sequence numbers tell the same story: every dropped record is a gap
        # (except drops at the very end of the stream, which no later packet can reveal)
        assert stats["missing_ipfix_records"] <= stats["packets_dropped_queue_full"] * 30
    finally:
        receiver.stop()
