"""The replay hot path (FlowMeter.feed_pcap, fed whole batches of records by pump) must give exactly
what the general per-packet path (FlowMeter.feed_at) gives, on real captures and on the shapes it
decodes inline (IPv4, 802.1Q-tagged IPv4, IPv6, TCP/UDP, other IP protocols) and around damage."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Packet, Raw

from agent.flows import FlowMeter
from agent.flows.pcap import PcapError, pump
from tests.flows.craft import SHARED_PCAPS, T0, at, write_pcap

SHARED = sorted(SHARED_PCAPS.glob("*.pcap")) if SHARED_PCAPS.is_dir() else []


def replay(path: Path, *, bulk: bool, **kwargs: Any) -> tuple[list[Any], dict[str, int], str | None]:
    """Events, counters and the error of one replay, through the hot path or packet by packet."""
    meter = FlowMeter(**kwargs)
    events: list[Any] = []
    error = None
    try:
        for _ in pump(path, meter.feed_at, batch=64, bulk=meter.feed_pcap if bulk else None):
            events.extend(meter.drain())
    except PcapError as exc:
        error = str(exc)
    events.extend(meter.flush())
    return events, meter.stats(), error


def assert_same(path: Path, **kwargs: Any) -> list[Any]:
    fast = replay(path, bulk=True, **kwargs)
    slow = replay(path, bulk=False, **kwargs)
    assert fast == slow
    return fast[0]


@pytest.mark.skipif(not SHARED, reason="shared captures not present (../shared/data/pcaps)")
@pytest.mark.parametrize("path", SHARED, ids=lambda p: p.name)
def test_real_captures_identical_on_both_paths(path: Path) -> None:
    events = assert_same(path, active_timeout=30, idle_timeout=10, close_linger=1)
    assert events  # every shared capture has traffic


def eth() -> Packet:
    """Explicit MACs: scapy would otherwise look the destination up (ARP / neighbour discovery)."""
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


@functools.cache
def _mixed() -> tuple[Packet, ...]:
    a, b = "10.1.1.1", "10.2.2.2"
    v6a, v6b = "2001:db8::1", "2001:db8::2"
    shapes = [
        eth() / IP(src=a, dst=b) / TCP(sport=40000, dport=80, flags="S"),
        eth() / IP(src=b, dst=a) / TCP(sport=80, dport=40000, flags="SA"),
        eth() / IP(src=a, dst=b) / TCP(sport=40000, dport=80, flags="PA") / Raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        eth() / Dot1Q(vlan=7) / IP(src=a, dst=b) / TCP(sport=40001, dport=22, flags="S") / Raw(b"x" * 10),
        eth() / Dot1Q(vlan=7) / IP(src=a, dst=b) / UDP(sport=5353, dport=53) / DNS(qd=DNSQR(qname="a.vn")),
        eth() / IPv6(src=v6a, dst=v6b) / TCP(sport=40002, dport=443, flags="S") / Raw(b"y" * 20),
        eth() / IPv6(src=v6a, dst=v6b) / UDP(sport=40003, dport=53) / DNS(qd=DNSQR(qname="b.vn")),
        eth() / IPv6(src=v6a, dst=v6b) / IPv6ExtHdrHopByHop() / UDP(sport=1, dport=2) / Raw(b"z" * 30),
        eth() / IP(src=a, dst=b, proto=47) / Raw(b"\x00" * 40),  # GRE: addresses only
        eth() / Dot1Q(vlan=9) / IP(src=a, dst=b, proto=47) / Raw(b"\x00" * 40),
        eth() / IP(src=a, dst=b) / ICMP(type=8) / Raw(b"p" * 40),
        eth() / IP(src=a, dst=b, options=b"\x01\x01\x01\x00") / TCP(sport=40004, dport=25, flags="S"),
        eth() / IP(src=a, dst=b, flags="MF", frag=0, id=9) / UDP(sport=7, dport=9) / Raw(b"f" * 40),
        eth() / Dot1Q(vlan=3) / Dot1Q(vlan=4) / IP(src=a, dst=b) / UDP(sport=8, dport=9) / Raw(b"q" * 30),
        eth() / ARP(psrc=a, pdst=b, hwsrc="02:00:00:00:00:01"),
        eth() / IP(src=a, dst=b) / UDP(sport=1, dport=2),  # shorter than the inline struct
        eth() / IP(src=a, dst=b) / TCP(sport=40000, dport=80, flags="FA"),
        eth() / IP(src=b, dst=a) / TCP(sport=80, dport=40000, flags="FA"),
    ]
    packets = []
    for rep in range(3):  # time moves past the idle timeout between repetitions
        for i, pkt in enumerate(shapes):
            packets.append(at(pkt.copy(), T0 + rep * 100 + i * 0.01))
    return tuple(packets)


def mixed_packets() -> list[Packet]:
    """One of each shape the hot path decodes inline, plus ones it must hand to decode()."""
    return list(_mixed())


def test_every_inline_shape_matches_the_general_decoder(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "mixed.pcap", mixed_packets())
    events = assert_same(path, idle_timeout=30)
    datasets = {e["event"]["dataset"] for e in events}
    assert {"network_traffic.flow", "network_traffic.dns", "network_traffic.http"} <= datasets
    vlans = {e["network"].get("vlan", {}).get("id") for e in events if e["event"]["dataset"] == "network_traffic.flow"}
    assert {"7", "9"} <= vlans


def test_big_endian_and_nanosecond_files_take_the_general_path_with_the_same_result(tmp_path: Path) -> None:
    packets = mixed_packets()
    little = replay(write_pcap(tmp_path / "le.pcap", packets), bulk=True)
    big = replay(write_pcap(tmp_path / "be.pcap", packets, big_endian=True), bulk=True)
    assert big == little


@pytest.mark.parametrize("cut", [7, 30])
def test_damage_after_good_records_is_reported_after_metering_them(tmp_path: Path, cut: int) -> None:
    whole = write_pcap(tmp_path / "whole.pcap", mixed_packets()).read_bytes()
    damaged = tmp_path / "damaged.pcap"
    damaged.write_bytes(whole[:-cut])
    events, stats, error = replay(damaged, bulk=True)
    assert error is not None and "truncated" in error
    assert (events, stats, error) == replay(damaged, bulk=False)
    assert stats["packets"] == len(mixed_packets()) - 1


def test_corrupt_record_length_stops_the_hot_path_where_the_reader_reports_it(tmp_path: Path) -> None:
    data = bytearray(write_pcap(tmp_path / "ok.pcap", mixed_packets()).read_bytes())
    # the third record's captured length: header 24 + two records before it
    off = 24
    for _ in range(2):
        caplen = int.from_bytes(data[off + 8 : off + 12], "little")
        off += 16 + caplen
    data[off + 8 : off + 12] = (0x7FFFFFFF).to_bytes(4, "little")
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(bytes(data))
    events, stats, error = replay(bad, bulk=True)
    assert error is not None and "corrupt record" in error and "after 2 packets" in error
    assert stats["packets"] == 2
    assert (events, stats, error) == replay(bad, bulk=False)
