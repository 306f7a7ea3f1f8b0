"""The packet decoder: link layers, VLANs, IPv6 extension headers, fragments, and garbage."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
from scapy.layers.l2 import GRE, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether, Loopback
from scapy.packet import Raw

from agent.flows.decode import ETH_IPV4_L4, Decoded, Malformed, decode
from agent.flows.meter import FlowMeter

SRC, DST = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
SEG = TCP(sport=1234, dport=80, flags="PA") / Raw(b"hello")


def _decode(linktype: int, frame: bytes) -> Decoded:
    result = decode(linktype, frame, 0, len(frame))
    assert result is not None
    return result


@pytest.mark.parametrize(
    ("linktype", "frame"),
    [
        (1, bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / SEG)),
        (113, bytes(CookedLinux(proto=0x0800) / IP(src="10.0.0.1", dst="10.0.0.2") / SEG)),
        (276, bytes(CookedLinuxV2(proto=0x0800) / IP(src="10.0.0.1", dst="10.0.0.2") / SEG)),
        (101, bytes(IP(src="10.0.0.1", dst="10.0.0.2") / SEG)),
        (12, bytes(IP(src="10.0.0.1", dst="10.0.0.2") / SEG)),
        (228, bytes(IP(src="10.0.0.1", dst="10.0.0.2") / SEG)),
        (0, bytes(Loopback(type=2) / IP(src="10.0.0.1", dst="10.0.0.2") / SEG)),
        (0, struct.pack(">I", 2) + bytes(IP(src="10.0.0.1", dst="10.0.0.2") / SEG)),  # other byte order
        (108, struct.pack(">I", 2) + bytes(IP(src="10.0.0.1", dst="10.0.0.2") / SEG)),
    ],
)
def test_link_layers(linktype: int, frame: bytes) -> None:
    proto, src, dst, sport, dport, size, flags, vlan, poff, pend, fragment = _decode(linktype, frame)
    assert (proto, src, dst, sport, dport, size, vlan, fragment) == (6, SRC, DST, 1234, 80, 45, 0, None)
    assert flags == 0x18  # PSH|ACK
    assert frame[poff:pend] == b"hello"


def test_vlan_and_qinq() -> None:
    single = bytes(Ether() / Dot1Q(vlan=42) / IP(src="10.0.0.1", dst="10.0.0.2") / SEG)
    double = bytes(Ether() / Dot1AD(vlan=7) / Dot1Q(vlan=300) / IP(src="10.0.0.1", dst="10.0.0.2") / SEG)
    assert _decode(1, single)[7] == 42
    assert _decode(1, double)[7] == 300  # the inner (customer) tag
    assert _decode(1, double)[:5] == (6, SRC, DST, 1234, 80)


def test_ethernet_padding_is_not_payload() -> None:
    frame = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(flags="A")) + b"\x00" * 6
    _, _, _, _, _, size, _, _, poff, pend, _ = _decode(1, frame)
    assert size == 40 and poff == pend


def test_ipv6_extension_headers_are_skipped() -> None:
    pkt = (
        Ether(dst="02:00:00:00:00:02")
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting()
        / IPv6ExtHdrDestOpt()
        / UDP(sport=5353, dport=53)
        / Raw(b"abcd")
    )
    proto, src, dst, sport, dport, size, _, _, poff, pend, _ = _decode(1, bytes(pkt))
    assert len(dst) == 16
    assert (proto, sport, dport) == (17, 5353, 53)
    assert len(src) == 16 and size == len(pkt[IPv6])
    assert bytes(pkt)[poff:pend] == b"abcd"


def test_ipv4_fragments_use_first_fragments_ports() -> None:
    frags = (IP(src="10.0.0.1", dst="10.0.0.2", id=99) / UDP(sport=5000, dport=6000) / Raw(b"x" * 3000)).fragment(1000)
    decoded = [_decode(101, bytes(f)) for f in frags]
    assert decoded[0][3:5] == (5000, 6000) and decoded[0][10] == (99, True)
    assert all(d[3:5] == (-1, -1) and d[10] == (99, False) for d in decoded[1:])
    meter = FlowMeter()
    for i, f in enumerate(frags):
        meter.feed(1000.0 + i / 100, 101, bytes(f))
    flows = meter.flush()
    assert len(flows) == 1 and flows[0]["source"]["packets"] == len(frags)
    assert flows[0]["destination"]["port"] == 6000 and meter.fragments == len(frags)


def test_ipv6_fragment_header() -> None:
    frags = (
        IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(id=5) / UDP(sport=1, dport=2) / Raw(b"y" * 3000)
    )
    from scapy.layers.inet6 import fragment6

    parts = fragment6(frags, 1280)
    decoded = [_decode(229, bytes(f)) for f in parts]
    assert decoded[0][3:5] == (1, 2) and decoded[0][10] == (5, True)
    assert decoded[1][10] == (5, False) and decoded[1][3] == -1


def test_icmp_echo_request_and_reply_share_a_key() -> None:
    req = _decode(101, bytes(IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8)))
    rep = _decode(101, bytes(IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=0)))
    assert (req[3], req[4]) == (8, 0) and (rep[3], rep[4]) == (0, 8)


def test_gre_is_its_own_protocol() -> None:
    proto = _decode(101, bytes(IP(src="10.0.0.1", dst="10.0.0.2") / GRE() / IP() / UDP()))[0]
    assert proto == 47


def test_non_ip_is_none_and_short_frames_are_malformed() -> None:
    arp = bytes.fromhex("ffffffffffff020000000001080600010800060400010200000000010a0000010000000000000a000002")
    assert decode(1, arp, 0, len(arp)) is None
    ip = bytes(Ether() / IP() / TCP())
    for cut in (10, 20, 40):
        with pytest.raises(Malformed):
            decode(1, ip[:cut], 0, cut)
    with pytest.raises(Malformed, match="unsupported link type"):
        decode(9999, ip, 0, len(ip))


def test_fast_path_layout_matches_general_decoder() -> None:
    """The meter's one-struct fast path must read the same fields the general decoder does."""
    frame = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=7, dport=8, flags="SA") / Raw(b"z" * 9))
    etype, vihl, total, frag, proto, src, dst, sport, dport, doff, flags = ETH_IPV4_L4.unpack_from(frame, 0)
    general = _decode(1, frame)
    assert (etype, vihl, frag & 0x3FFF) == (0x0800, 0x45, 0)
    assert (proto, src, dst, sport, dport, total, flags) == general[:7]
    assert 34 + ((doff >> 4) << 2) == general[8]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([0, 1, 12, 101, 108, 113, 228, 229, 276]), st.binary(max_size=120))
def test_garbage_only_ever_raises_malformed(linktype: int, frame: bytes) -> None:
    with contextlib.suppress(Malformed):
        decode(linktype, frame, 0, len(frame))
