"""Receivers vouch for the longest string in their batches, so Normalize can skip its size check.

The vouching must never be wrong: a batch that claims a bound below a real string would let an
over-long field past truncation. These tests check the claim against the parsers' real output and
that the batcher keeps each batch's bound to the chunks it actually holds.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from peers import netflow_stream, wait_for

from collector.config import SyslogSettings
from collector.netflow.decoder import FlowDecoder
from collector.netflow.events import batch_events
from collector.pipeline.normalize import Normalize, SizedBatch
from collector.syslog.batcher import RetryingBatcher
from collector.syslog.message import MessageParser
from collector.syslog.server import SyslogReceiver, _strings_bound

PARSER = MessageParser("UTC")


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in [key, *_strings(value)]]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return []


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=400), st.text(max_size=300).map(str.encode)))
def test_no_parsed_syslog_string_is_longer_than_the_bound(raw: bytes) -> None:
    for line in (raw, b"<134>CEF:0|" + raw, b"<189>devname=a type=traffic " + raw, b"<13>1 " + raw):
        event = PARSER.parse(line, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 65535)
        assert max(map(len, _strings(event))) <= _strings_bound(len(line))


def test_no_flow_string_is_longer_than_the_bound() -> None:
    for version in (9, 10):
        decoder = FlowDecoder()
        for packet in netflow_stream(version, 20):
            for batch in decoder.decode(packet, "192.0.2.1").batches:
                for event in batch_events(batch):
                    assert max(map(len, _strings(event))) <= 3 * len(packet) + 256


def test_each_batch_carries_the_bound_of_the_chunks_it_holds() -> None:
    batches: list[SizedBatch] = []
    ready = threading.Event()

    def handle(events: list[dict[str, Any]]) -> None:
        batches.append(events)  # type: ignore[arg-type]
        if len(batches) == 3:
            ready.set()

    batcher = RetryingBatcher(handle, name="t", batch_size=4, flush_interval=0.05, max_queued=100)
    batcher.add([{"n": i} for i in range(3)], longest=10)
    batcher.add([{"n": i} for i in range(2)], longest=500)
    batcher.add([{"n": i} for i in range(4)])  # no bound known
    batcher.add([{"n": 9}], longest=7)
    batcher.start()
    assert ready.wait(5)
    batcher.stop()
    assert [len(b) for b in batches] == [4, 4, 2]
    assert all(type(b) is SizedBatch for b in batches)
    # 3 of the first chunk + 1 of the second; 1 of the second + 3 unbounded; 1 unbounded + the last
    assert batches[0].longest == 500
    assert batches[1].longest > 10**9 and batches[2].longest > 10**9


def test_a_chunk_after_the_unbounded_ones_is_vouched_again() -> None:
    batches: list[SizedBatch] = []
    done = threading.Event()

    def handle(events: list[dict[str, Any]]) -> None:
        batches.append(events)  # type: ignore[arg-type]
        done.set()

    batcher = RetryingBatcher(handle, name="t", batch_size=2, flush_interval=0.05, max_queued=100)
    batcher.add([{"n": 1}, {"n": 2}])
    batcher.start()
    assert done.wait(5)
    done.clear()
    batcher.add([{"n": 3}], longest=40)
    assert done.wait(5)
    batcher.stop()
    assert batches[-1].longest == 40


def test_an_over_long_field_is_still_cut_through_the_receiver(tmp_path: Path) -> None:
    """A message longer than the field limit makes the batch's bound exceed it: Normalize checks and cuts."""
    normalize = Normalize(max_field_chars=256)
    seen: list[list[dict[str, Any]]] = []

    def store(events: list[dict[str, Any]]) -> None:
        seen.append(normalize.process(events))

    settings_ = SyslogSettings(enabled=True, udp_port=None, tcp_port=0, tls_port=None, flush_interval=0.05)
    rx = SyslogReceiver(settings_, store, state_dir=tmp_path / "state")
    ports = rx.start()
    try:
        with socket.create_connection(("127.0.0.1", ports["tcp"])) as conn:
            conn.sendall(b"<13>1 - host app - - - short\n<13>1 - host app - - - " + b"x" * 2000 + b"\n")
        wait_for(lambda: sum(len(b) for b in seen) == 2)
    finally:
        rx.stop()
    events = [e for b in seen for e in b]
    long_one = next(e for e in events if "x" * 100 in e["event"]["original"])
    assert "truncated" in long_one["tags"] and len(long_one["event"]["original"]) <= 256
