"""The lean flow-event builder keeps the event ids and field values of the generic helpers."""

from __future__ import annotations

import struct

import pytest
from peers import netflow_stream

from collector.netflow.decoder import FlowDecoder
from collector.netflow.events import batch_events
from soc_common.ecs import stable_event_id


@pytest.mark.parametrize("version", [9, 10])
def test_event_ids_match_stable_event_id_and_addresses_are_text(version: int) -> None:
    decoder = FlowDecoder()
    seen = 0
    for packet in netflow_stream(version, 5, per_packet=7):
        for batch in decoder.decode(packet, "192.0.2.9").batches:
            ctx = batch.context
            for i, event in enumerate(batch_events(batch)):
                expected = stable_event_id(
                    ctx.exporter, ctx.version, ctx.domain, ctx.sequence, ctx.export_secs, batch.set_index, i
                )
                assert event["event"]["id"] == expected
                n = seen + i
                assert event["source"]["ip"] == f"10.0.{n >> 8 & 255}.{n & 255}"
                assert event["destination"] == {"ip": "192.168.1.1", "port": 443}
                assert event["network"]["tcp_flags"] == ["FIN", "SYN", "PSH", "ACK"]
                assert event["netflow"]["octet_delta_count"] == (n + 1) * 100
            seen += len(batch.records)
    assert seen == 35


def test_flag_lists_are_not_shared_between_events() -> None:
    decoder = FlowDecoder()
    events = [e for p in netflow_stream(10, 1, per_packet=2) for b in decoder.decode(p, "x").batches
              for e in batch_events(b)]  # fmt: skip
    events[0]["network"]["tcp_flags"].append("URG")
    assert events[1]["network"]["tcp_flags"] == ["FIN", "SYN", "PSH", "ACK"]


def test_a_repeated_element_keeps_its_last_value_converted() -> None:
    """Two sourceIPv4Address fields in one template: the later one wins, as text."""
    fields = ((8, 4), (8, 4), (7, 2))
    template = struct.pack("!HH", 256, len(fields)) + b"".join(struct.pack("!HH", ie, ln) for ie, ln in fields)
    record = bytes([10, 0, 0, 1]) + bytes([10, 0, 0, 2]) + struct.pack("!H", 80)
    sets = struct.pack("!HH", 2, 4 + len(template)) + template + struct.pack("!HH", 256, 4 + len(record)) + record
    packet = struct.pack("!HHIII", 10, 16 + len(sets), 1_700_000_000, 0, 1) + sets
    (batch,) = FlowDecoder().decode(packet, "192.0.2.1").batches
    (event,) = batch_events(batch)
    assert event["netflow"]["source_ipv4_address"] == "10.0.0.2"
    assert event["source"]["ip"] == "10.0.0.2"
