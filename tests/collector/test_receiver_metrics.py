"""UDP loss is visible: receiver drop counters (kernel buffer overflow, full queue) reach /metrics and /health."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from peers import wait_for

from collector.config import SyslogSettings
from collector.metrics import CollectorMetrics, receiver_drops
from collector.syslog import server as syslog_server
from collector.syslog.server import SyslogReceiver
from soc_common.ecs import Event


class BlockedStore:
    """A pipeline handle that hangs until released: the receiver's queue fills, then the kernel buffer."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.events: list[Event] = []

    def __call__(self, events: list[Event]) -> None:
        self.release.wait(30)
        self.events.extend(events)


def _sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if m and ",".join(sorted(m.group(1).split(","))) == wanted:
            return float(m.group(2))
    raise AssertionError(f"{name}{{{wanted}}} not exported")


def test_receiver_drops_sums_each_reason() -> None:
    stats = {"udp_kernel_drops": 3, "dropped_queue_full": 5, "missing_v9_packets": 2, "missing_ipfix_records": 4}
    assert receiver_drops(stats) == {"kernel": 3, "queue_full": 5, "sequence_gap": 6}
    assert receiver_drops({"received": 10, "ports": {}, "flag": True}) == {}


def test_udp_kernel_and_queue_drops_are_exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(syslog_server, "UDP_BUFFER_BYTES", 4096)  # tiny kernel buffer: overflows at once
    monkeypatch.setattr(syslog_server, "UDP_QUEUE_WAIT", 0.05)
    settings = SyslogSettings(enabled=True, udp_port=0, tcp_port=None, tls_port=None, batch_size=10)
    store = BlockedStore()
    rx = SyslogReceiver(settings, store, max_queued_events=20)
    metrics = CollectorMetrics()
    metrics.watch_receivers(lambda: {"syslog": rx})
    rx.start()
    sent = 3000
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(sent):
                s.sendto(b"<13>1 - h app - - - message %05d " % i + b"x" * 300, ("127.0.0.1", rx.ports["udp"]))
            assert wait_for(lambda: rx.stats()["dropped_queue_full"] > 0)
            # The kernel reports drops (SO_RXQ_OVFL) with the next datagram it delivers: one more, sent
            # once the buffer has drained, carries the total, so the tally below can be exact.
            time.sleep(0.3)
            s.sendto(b"<13>1 - h app - - - probe", ("127.0.0.1", rx.ports["udp"]))
            sent += 1
        assert wait_for(lambda: rx.stats()["received"] + rx.stats()["udp_kernel_drops"] == sent)
        stats = rx.stats()
        text = metrics.render().decode()
        assert stats["udp_kernel_drops"] > 0, stats
        kernel = _sample(text, "soc_collector_receiver_dropped_total", receiver="syslog", reason="kernel")
        queue = _sample(text, "soc_collector_receiver_dropped_total", receiver="syslog", reason="queue_full")
        assert kernel >= stats["udp_kernel_drops"] > 0
        assert queue >= stats["dropped_queue_full"] > 0
        received = _sample(text, "soc_collector_receiver_records_total", receiver="syslog", kind="received")
        # every datagram is accounted for: read by us or dropped by the kernel
        assert received + kernel == pytest.approx(sent, abs=0)
    finally:
        store.release.set()
        rx.stop()
    assert len(store.events) + rx.stats()["dropped_queue_full"] == rx.stats()["received"]


def test_a_failing_receiver_does_not_break_the_scrape() -> None:
    class Broken:
        def stats(self) -> dict[str, Any]:
            raise RuntimeError("stopping")

    metrics = CollectorMetrics()
    metrics.watch_receivers(lambda: {"netflow": Broken()})
    text = metrics.render().decode()
    assert "soc_collector_receiver_dropped" in text and 'receiver="netflow"' not in text
