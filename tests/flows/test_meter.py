"""FlowMeter known answers: directions, bytes, flags, flow ends, identity, and robustness."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from agent.flows import FlowMeter, events_from_pcap
from agent.flows.community_id import community_id
from flows.craft import T0, A, B, at, flows, handshake_session, meter_packets, tcp, write_pcap, write_pcapng


def test_tcp_session_known_answer() -> None:
    packets = handshake_session()
    meter, events = meter_packets(packets)
    (flow,) = flows(events)
    assert flow["source"] == {"ip": A, "port": 40000, "packets": 5, "bytes": 5 * 40 + 100}
    assert flow["destination"] == {"ip": B, "port": 80, "packets": 3, "bytes": 3 * 40}
    assert flow["network"]["packets"] == 8 and flow["network"]["bytes"] == 420
    assert flow["network"]["transport"] == "tcp" and flow["network"]["iana_number"] == "6"
    assert flow["network"]["type"] == "ipv4"
    assert sorted(flow["network"]["tcp_flags"]) == ["ACK", "FIN", "PSH", "SYN"]
    assert flow["event"]["start"] == "2023-11-14T22:13:20.000Z"
    assert flow["event"]["end"] == "2023-11-14T22:13:20.700Z"
    assert flow["event"]["duration"] == 700_000_000
    assert flow["@timestamp"] == flow["event"]["start"]
    assert flow["event"]["reason"] == "end_of_input"  # flushed while still lingering after FIN
    assert set(flow["related"]["ip"]) == {A, B}
    assert meter.packets == 8 and meter.bytes == 420 and meter.flows == 1


def test_first_packet_sender_is_the_source_even_for_a_mid_stream_start() -> None:
    packets = [tcp(B, A, 80, 40000, "A", T0), tcp(A, B, 40000, 80, "A", T0 + 1)]
    _, events = meter_packets(packets)
    (flow,) = flows(events)
    assert (flow["source"]["ip"], flow["source"]["port"]) == (B, 80)


def test_closed_flow_ends_after_linger_and_reason_is_closed() -> None:
    packets = [*handshake_session(), at(Ether() / IP(src="10.9.9.9", dst=B) / UDP(), T0 + 30)]
    _, events = meter_packets(packets, close_linger=2)
    tcp_flow = next(f for f in flows(events) if f["network"]["transport"] == "tcp")
    assert tcp_flow["event"]["reason"] == "closed"
    assert events.index(tcp_flow) == 0  # emitted before the flush of the UDP flow


def test_rst_ends_the_flow() -> None:
    packets = [tcp(A, B, 5555, 22, "S", T0), tcp(B, A, 22, 5555, "RA", T0 + 0.01)]
    packets.append(tcp(A, B, 5555, 22, "S", T0 + 0.5))  # same tuple again: a new connection
    _, events = meter_packets(packets)
    first, second = flows(events)
    assert first["network"]["packets"] == 2 and first["event"]["reason"] == "closed"
    assert sorted(first["network"]["tcp_flags"]) == ["ACK", "RST", "SYN"]
    assert second["network"]["packets"] == 1


def test_idle_timeout_splits_and_new_sender_becomes_source() -> None:
    packets = [
        at(Ether() / IP(src=A, dst=B) / UDP(sport=1000, dport=2000), T0),
        at(Ether() / IP(src=B, dst=A) / UDP(sport=2000, dport=1000), T0 + 61),
    ]
    _, events = meter_packets(packets, idle_timeout=60)
    first, second = flows(events)
    assert first["event"]["reason"] == "idle_timeout"
    assert first["source"]["ip"] == A and second["source"]["ip"] == B


def test_active_timeout_splits_a_long_flow_keeping_orientation() -> None:
    # one packet every 10 s for 700 s, both directions: active timeout 300 s cuts it in three
    packets = []
    for i in range(71):
        src, dst, sp, dp = (A, B, 1000, 2000) if i % 2 == 0 else (B, A, 2000, 1000)
        packets.append(at(Ether() / IP(src=src, dst=dst) / UDP(sport=sp, dport=dp) / Raw(b"x" * 10), T0 + i * 10))
    _, events = meter_packets(packets, active_timeout=300, idle_timeout=60)
    parts = flows(events)
    assert [f["event"]["reason"] for f in parts] == ["active_timeout", "active_timeout", "end_of_input"]
    assert all(f["source"]["ip"] == A for f in parts)
    assert sum(f["network"]["packets"] for f in parts) == 71
    assert sum(f["network"]["bytes"] for f in parts) == 71 * 38
    assert parts[1]["event"]["start"] > parts[0]["event"]["end"]


def test_expire_with_wall_clock_ends_quiet_flows() -> None:
    meter = FlowMeter(idle_timeout=5)
    meter.feed(T0, 1, bytes(Ether() / IP(src=A, dst=B) / UDP()))
    assert meter.expire(T0 + 1) == []
    (flow,) = meter.expire(T0 + 10)
    assert flow["event"]["reason"] == "idle_timeout" and meter.active_flows == 0


def test_vlans_separate_flows() -> None:
    base = IP(src=A, dst=B) / UDP(sport=1, dport=2)
    packets = [at(Ether() / Dot1Q(vlan=10) / base, T0), at(Ether() / Dot1Q(vlan=20) / base, T0 + 1)]
    _, events = meter_packets(packets)
    assert sorted(f["network"]["vlan"]["id"] for f in flows(events)) == ["10", "20"]


def test_ipv6_flow() -> None:
    packets = [
        at(
            Ether(dst="02:00:00:00:00:02")
            / IPv6(src="2001:db8::1", dst="2001:db8::2")
            / UDP(sport=7, dport=9)
            / Raw(b"abc"),
            T0,
        ),
        at(Ether(dst="02:00:00:00:00:02") / IPv6(src="2001:db8::2", dst="2001:db8::1") / UDP(sport=9, dport=7), T0 + 1),
    ]
    _, events = meter_packets(packets)
    (flow,) = flows(events)
    assert flow["source"]["ip"] == "2001:db8::1" and flow["network"]["type"] == "ipv6"
    assert flow["source"]["bytes"] == 40 + 8 + 3 and flow["destination"]["bytes"] == 48


def test_icmp_echo_is_one_bidirectional_flow() -> None:
    packets = [
        at(Ether() / IP(src=A, dst=B) / ICMP(type=8), T0),
        at(Ether() / IP(src=B, dst=A) / ICMP(type=0), T0 + 0.001),
    ]
    _, events = meter_packets(packets)
    (flow,) = flows(events)
    assert flow["network"]["transport"] == "icmp" and "port" not in flow["source"]
    assert flow["icmp"] == {"type": 8, "code": 0}
    assert flow["source"]["packets"] == flow["destination"]["packets"] == 1


def test_pcap_and_pcapng_give_identical_events(tmp_path: Path) -> None:
    packets = handshake_session() + handshake_session(T0 + 100, 40001)
    a = list(events_from_pcap(write_pcap(tmp_path / "a.pcap", packets), host={"id": "h1"}))
    b = list(events_from_pcap(write_pcapng(tmp_path / "b.pcapng", packets), host={"id": "h1"}))
    assert a == b and len(flows(a)) == 2


def test_event_ids_are_stable_across_replays_and_differ_per_host(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "a.pcap", handshake_session())
    first = [e["event"]["id"] for e in events_from_pcap(path, host={"id": "h1"})]
    again = [e["event"]["id"] for e in events_from_pcap(path, host={"id": "h1"})]
    other = [e["event"]["id"] for e in events_from_pcap(path, host={"id": "h2"})]
    assert first == again and not set(first) & set(other)


def test_community_id_spec_vectors() -> None:
    """Values from the Community ID spec's baseline (corelight/community-id-spec)."""
    tcp_v = community_id(bytes([128, 232, 110, 120]), bytes([66, 35, 250, 204]), 6, 34855, 80)
    assert tcp_v == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    reverse = community_id(bytes([66, 35, 250, 204]), bytes([128, 232, 110, 120]), 6, 80, 34855)
    assert reverse == tcp_v
    icmp_v = community_id(bytes([192, 168, 0, 89]), bytes([192, 168, 0, 1]), 1, 8, 0)
    assert icmp_v == "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="


def test_max_flows_evicts_the_oldest() -> None:
    meter = FlowMeter(max_flows=100)
    for i in range(150):
        meter.feed(T0 + i / 100, 1, bytes(Ether() / IP(src=A, dst=B) / UDP(sport=1000 + i, dport=53)))
    assert meter.active_flows <= 100 and meter.evicted > 0
    assert sum(f["network"]["packets"] for f in meter.flush()) == 150


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=20), st.sampled_from([0, 1, 101, 113, 276]))
def test_garbage_frames_never_raise_and_are_counted(frames: list[bytes], linktype: int) -> None:
    meter = FlowMeter()
    for i, frame in enumerate(frames):
        meter.feed(T0 + i, linktype, frame)
    meter.flush()
    assert meter.packets == len(frames)
    assert meter.malformed + meter.non_ip <= len(frames)


def test_garbage_does_not_disturb_good_packets_around_it() -> None:
    meter = FlowMeter()
    good = handshake_session()
    for i, pkt in enumerate(good):
        meter.feed(float(pkt.time), 1, bytes(pkt))
        meter.feed(float(pkt.time), 1, b"\x00" * (i * 7))  # junk between every good frame
    (flow,) = meter.flush()
    assert flow["network"]["packets"] == 8 and meter.malformed + meter.non_ip == 8


@pytest.mark.parametrize("snap", [54, 60])
def test_snaplen_truncated_frames_count_ip_length(snap: int) -> None:
    pkt = Ether() / IP(src=A, dst=B) / UDP(sport=1, dport=2) / Raw(b"q" * 1000)
    meter = FlowMeter()
    meter.feed(T0, 1, bytes(pkt)[:snap])
    (flow,) = meter.flush()
    assert flow["source"]["bytes"] == 1028


def test_flow_events_have_the_shared_event_shape() -> None:
    from soc_common.ecs import new_event

    _, events = meter_packets(handshake_session())
    reference = new_event(dataset="network_traffic.flow", module="network_traffic", event_id="x")
    for key in ("@timestamp", "ecs"):
        assert key in events[0]
    assert events[0]["ecs"] == reference["ecs"]
    assert set(reference["event"]) <= set(events[0]["event"])
    assert events[0]["@timestamp"].endswith("Z") and len(events[0]["@timestamp"]) == len(reference["@timestamp"])
