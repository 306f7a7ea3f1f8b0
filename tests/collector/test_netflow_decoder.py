"""The NetFlow/IPFIX decoder: sequence gaps, templates (refresh, expiry, withdrawal, late), options,
enterprise and variable-length fields, and fuzzing."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from peers import netflow_stream

from collector import metrics as metrics_module
from collector.metrics import CollectorMetrics
from collector.netflow.decoder import FlowDecoder
from collector.netflow.events import batch_events

EXPORTER = "192.0.2.1"


def decode_all(decoder: FlowDecoder, packets: list[bytes], now: float = 100.0) -> list[dict]:
    events = []
    for packet in packets:
        for batch in decoder.decode(packet, EXPORTER, now).batches:
            events.extend(batch_events(batch))
    return events


def test_v9_stream_decodes_every_record_with_ecs_fields() -> None:
    events = decode_all(FlowDecoder(), netflow_stream(9, 10))
    assert len(events) == 300
    first = events[0]
    assert first["source"] == {"ip": "10.0.0.0", "port": 1024, "bytes": 100, "packets": 1}
    assert first["destination"] == {"ip": "192.168.1.1", "port": 443}
    assert first["network"]["transport"] == "tcp" and first["network"]["iana_number"] == "6"
    assert sorted(first["network"]["tcp_flags"]) == ["ACK", "FIN", "PSH", "SYN"]
    assert first["event"]["start"] == "2023-11-14T22:13:20.000Z"
    assert first["event"]["duration"] == 50_000_000
    assert first["netflow"]["exporter"]["source_id"] == 7
    assert first["network"]["community_id"].startswith("1:")


def test_v9_lost_packets_are_counted() -> None:
    packets = netflow_stream(9, 40)
    sent = [p for i, p in enumerate(packets) if i not in (5, 6, 30)]
    decoder = FlowDecoder()
    decode_all(decoder, sent)
    assert decoder.stats.missing[9] == 3  # v9 counts export packets


def test_ipfix_lost_records_are_counted_and_reported_to_metrics() -> None:
    registry = CollectorMetrics()
    metrics_module.set_active(registry)
    try:
        packets = netflow_stream(10, 40, per_packet=30)
        sent = [p for i, p in enumerate(packets) if i not in (3, 17, 18)]
        decoder = FlowDecoder()
        events = decode_all(decoder, sent)
        assert len(events) == 37 * 30
        assert decoder.stats.missing[10] == 90  # IPFIX counts data records
        metrics_module.record_netflow_gap(EXPORTER, decoder.stats.missing[10])
        assert registry.netflow_gaps.labels(exporter=EXPORTER)._value.get() == 90
    finally:
        metrics_module.set_active(None)


def test_resent_packet_gives_same_event_ids_and_no_gap() -> None:
    packets = netflow_stream(10, 3)
    decoder = FlowDecoder()
    first = decode_all(decoder, packets[:2])
    again = decode_all(decoder, [packets[1]])
    assert [e["event"]["id"] for e in again] == [e["event"]["id"] for e in first[30:]]
    assert decoder.stats.missing[10] == 0
    assert decoder.sequences.streams[(EXPORTER, 10, 7)].out_of_order == 1


def test_post_count_sequence_convention_is_learned_not_reported_as_loss() -> None:
    """softflowd's IPFIX header counts the records of its own packet; that is not loss."""
    packets = netflow_stream(10, 6, per_packet=5)
    shifted = [p[:8] + struct.pack("!I", (i + 1) * 5) + p[12:] for i, p in enumerate(packets)]
    decoder = FlowDecoder()
    decode_all(decoder, shifted[:2] + shifted[3:])  # varying counts make the convention observable
    assert decoder.stats.missing[10] == 5


def test_data_before_template_is_held_then_released() -> None:
    packets = netflow_stream(10, 3, template_every=100)  # template only in packet 0
    template_packet, data_only = packets[0], packets[1:]
    decoder = FlowDecoder()
    assert decode_all(decoder, data_only) == []
    assert decoder.templates.stats.sets_held == 2
    events = decode_all(decoder, [template_packet])
    assert len(events) == 90
    assert decoder.templates.stats.sets_released == 2


def test_held_sets_expire_and_are_counted() -> None:
    decoder = FlowDecoder(hold_seconds=5)
    decode_all(decoder, netflow_stream(10, 3, template_every=100)[1:], now=100.0)
    decoder.expire_held(now=200.0)
    assert decoder.templates.stats.sets_dropped_no_template == 2


def test_template_expires_after_timeout_and_refresh_keeps_it() -> None:
    packets = netflow_stream(9, 3, template_every=1)
    decoder = FlowDecoder(template_timeout=60)
    decode_all(decoder, packets[:1], now=0.0)
    decode_all(decoder, packets[1:2], now=50.0)  # refreshed at 50
    assert decoder.templates.stats.templates_refreshed == 1
    data_only = netflow_stream(9, 2, template_every=100)[1]
    assert len(decode_all(decoder, [data_only], now=100.0)) == 30  # 50 s after refresh: still valid
    assert decode_all(decoder, [data_only], now=200.0) == []
    assert decoder.templates.stats.templates_expired == 1


def test_ipfix_template_withdrawal() -> None:
    decoder = FlowDecoder()
    decode_all(decoder, netflow_stream(10, 1))
    withdraw = struct.pack("!HH", 300, 0)
    packet = (
        struct.pack("!HHIII", 10, 16 + 4 + len(withdraw), 1, 30, 7)
        + struct.pack("!HH", 2, 4 + len(withdraw))
        + withdraw
    )
    decode_all(decoder, [packet])
    assert decoder.templates.stats.templates_withdrawn == 1
    assert decode_all(decoder, [netflow_stream(10, 2, template_every=100)[1]]) == []


def _ipfix(sets: bytes, seq: int = 0, domain: int = 1) -> bytes:
    return struct.pack("!HHIII", 10, 16 + len(sets), 1_700_000_000, seq, domain) + sets


def _set(set_id: int, body: bytes) -> bytes:
    return struct.pack("!HH", set_id, 4 + len(body)) + body


def test_ipfix_options_template_sampling_and_init_time_kept_per_exporter() -> None:
    options_template = struct.pack("!HHH", 400, 3, 1) + struct.pack("!HHHHHH", 149, 4, 305, 4, 160, 8)
    options_data = struct.pack("!IIQ", 1, 100, 1_700_000_000_000)
    template = struct.pack("!HH", 500, 4) + struct.pack("!HHHHHHHH", 8, 4, 12, 4, 22, 4, 1, 4)
    record = socket_bytes("10.1.1.1") + socket_bytes("10.2.2.2") + struct.pack("!II", 5000, 1234)
    packet = _ipfix(_set(3, options_template) + _set(400, options_data) + _set(2, template) + _set(500, record))
    decoder = FlowDecoder()
    events = decode_all(decoder, [packet])
    dom = decoder.templates.domain(EXPORTER, 1)
    assert dom.options == {"sampling_interval": 100, "system_init_ms": 1_700_000_000_000}
    assert decoder.stats.options_records == 1
    assert len(events) == 1
    assert events[0]["netflow"]["sampling_interval"] == 100
    assert events[0]["event"]["start"] == "2023-11-14T22:13:25.000Z"  # init + 5000 ms
    assert events[0]["source"]["bytes"] == 1234


def test_enterprise_and_variable_length_fields_are_skipped_correctly() -> None:
    template = struct.pack("!HH", 600, 4) + struct.pack("!HH", 8, 4) + struct.pack("!HHI", 0x8000 | 12, 4, 9)
    template += struct.pack("!HH", 82, 0xFFFF) + struct.pack("!HH", 2, 4)
    long_name = b"x" * 300
    records = (
        socket_bytes("10.0.0.1") + b"\xde\xad\xbe\xef" + b"\x03eth" + struct.pack("!I", 7)
        + socket_bytes("10.0.0.2") + b"\x00\x00\x00\x00"
        + b"\xff" + struct.pack("!H", 300) + long_name + struct.pack("!I", 8)
    )  # fmt: skip
    events = decode_all(FlowDecoder(), [_ipfix(_set(2, template) + _set(600, records))])
    assert [(e["source"]["ip"], e["netflow"]["interface_name"], e["source"]["packets"]) for e in events] == [
        ("10.0.0.1", "eth", 7),
        ("10.0.0.2", "x" * 300, 8),
    ]


def test_v5_packet_and_flow_sequence_gap() -> None:
    def v5(seq: int, count: int) -> bytes:
        header = struct.pack("!HHIIIIBBH", 5, count, 10_000, 1_700_000_000, 0, seq, 0, 0, 0)
        rec = struct.pack("!4s4s4sHHIIIIHHxBBBHHBBxx", socket_bytes("10.0.0.1"), socket_bytes("10.0.0.2"),
                          b"\0" * 4, 1, 2, 3, 300, 9_000, 9_500, 1000, 53, 0, 17, 0, 0, 0, 24, 24)  # fmt: skip
        return header + rec * count

    decoder = FlowDecoder()
    events = decode_all(decoder, [v5(0, 10), v5(10, 10), v5(35, 5)])
    assert len(events) == 25
    assert decoder.stats.missing[5] == 15
    assert events[0]["event"]["start"] == "2023-11-14T22:13:19.000Z"  # export - (uptime - first)
    assert events[0]["destination"]["port"] == 53
    bad = v5(40, 30)[:100]  # header claims 30 records, packet holds 1
    assert len(decode_all(decoder, [bad])) == 1
    assert decoder.stats.malformed_packets == 1


def test_malformed_set_keeps_the_sets_before_it() -> None:
    good = netflow_stream(10, 1)[0]
    broken = good + struct.pack("!HH", 300, 9000)  # a set claiming more bytes than exist
    broken = broken[:2] + struct.pack("!H", len(broken)) + broken[4:]
    decoder = FlowDecoder()
    assert len(decode_all(decoder, [broken])) == 30
    assert decoder.stats.malformed_sets == 1


def socket_bytes(ip: str) -> bytes:
    import socket

    return socket.inet_aton(ip)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1500))
def test_fuzz_arbitrary_bytes_never_raise(data: bytes) -> None:
    decoder = FlowDecoder()
    for version in (5, 9, 10):
        packet = struct.pack("!H", version) + data
        for batch in decoder.decode(packet, EXPORTER).batches:
            batch_events(batch)


_VALID = netflow_stream(10, 1)[0]
_VALID_V9 = netflow_stream(9, 1)[0]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([_VALID, _VALID_V9]), st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=8))
def test_fuzz_mutated_packets_never_raise_and_count_errors(packet: bytes, flips: list[tuple[int, int]]) -> None:
    buf = bytearray(packet)
    for pos, value in flips:
        if pos < len(buf):
            buf[pos] = value
    decoder = FlowDecoder()
    result = decoder.decode(bytes(buf), EXPORTER)
    for batch in result.batches:
        batch_events(batch)
    assert bool(result.errors) == (decoder.stats.malformed_packets == 1)
    assert result.record_count <= len(buf)
