"""Packet decoder: link layer -> IPv4/IPv6 -> TCP/UDP/ICMP, straight from the capture buffer.

One function, one ``struct`` call per header, offsets instead of slices, and a plain tuple out:
this runs once per packet and dominates the meter's cost, so it avoids objects and lookups.
Anything it cannot make sense of raises :class:`Malformed` (the meter counts it); traffic that is
simply not IP (ARP, LLDP, STP) returns ``None``.
"""

from __future__ import annotations

import struct
from typing import Any

from agent.flows.pcap import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_RAW_BSD,
)

TCP = 6
UDP = 17
ICMP = 1
ICMPV6 = 58
GRE = 47

#: TCP flag bits, low to high, with their ECS names
TCP_FLAG_NAMES = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10

#: ICMP request/reply type pairs (Community ID v1): a pair maps onto one bidirectional flow
ICMP_PEER = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
ICMPV6_PEER = {
    128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135,
    130: 131, 131: 130, 144: 145, 145: 144, 146: 147, 147: 146, 139: 140, 140: 139,
}  # fmt: skip

_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
_IPV6_EXT = (0, 43, 60, 135, 139, 140)  # hop-by-hop, routing, dest opts, mobility, HIP, shim6
_NULL_V6 = (24, 28, 30)  # AF_INET6 on the BSDs and macOS

_u16 = struct.Struct("!H").unpack_from
_u16_2 = struct.Struct("!HH").unpack_from
_u32_le = struct.Struct("<I").unpack_from
_u32_be = struct.Struct("!I").unpack_from
_ipv4 = struct.Struct("!BxHHHxB2x4s4s").unpack_from
_ipv6 = struct.Struct("!4xHB1x16s16s").unpack_from
_tcp = struct.Struct("!HH8xBB").unpack_from
_frag6 = struct.Struct("!BxHI").unpack_from
#: Ethernet + option-less IPv4 + the first 14 bytes of TCP (or UDP's ports) in one call, for the
#: meter's inlined fast path: (ethertype, version/IHL, total length, fragment field, protocol, src,
#: dst, sport, dport, TCP data offset, TCP flags). Valid only when ethertype is IPv4, version/IHL is
#: 0x45, the fragment field has no offset or MF, and protocol is TCP or UDP; else use decode().
ETH_IPV4_L4 = struct.Struct("!12xHBxHxxHxB2x4s4sHH8xBB")
#: the same behind one 802.1Q tag: (TCI, inner ethertype, version/IHL, total length, fragment field,
#: protocol, src, dst, sport, dport, TCP data offset, TCP flags); the outer ethertype is known
ETH_VLAN_IPV4_L4 = struct.Struct("!14xHHBxHxxHxB2x4s4sHH8xBB")
#: Ethernet + extension-less IPv6 + the first 14 bytes of TCP (or UDP's ports): (version/class byte,
#: payload length, next header, src, dst, sport, dport, TCP data offset, TCP flags). Valid only when
#: the version is 6, the payload length is non-zero and the next header is TCP or UDP.
ETH_IPV6_L4 = struct.Struct("!14xBxxxHB1x16s16sHH8xBB")

# (proto, src, dst, sport, dport, ip_bytes, tcp_flags, vlan, payload_off, payload_end, fragment)
# fragment is None, or (ip_id, is_first) for a fragmented datagram; later fragments carry ports -1.
Decoded = tuple[int, bytes, bytes, int, int, int, int, int, int, int, "tuple[int, bool] | None"]


class Malformed(Exception):
    """A frame too short or inconsistent to decode."""


def decode(linktype: int, buf: Any, off: int, end: int) -> Decoded | None:
    """Decode the frame ``buf[off:end]`` captured with ``linktype``.

    ``buf`` is anything ``struct.unpack_from`` reads (bytes, mmap, memoryview).
    """
    vlan = 0
    if linktype == LINKTYPE_ETHERNET:
        if off + 14 > end:
            raise Malformed("short ethernet header")
        etype = _u16(buf, off + 12)[0]
        off += 14
        while etype in _VLAN_TAGS:
            if off + 4 > end:
                raise Malformed("short VLAN tag")
            tci, etype = _u16_2(buf, off)
            vlan = tci & 0x0FFF
            off += 4
    elif linktype == LINKTYPE_LINUX_SLL:
        if off + 16 > end:
            raise Malformed("short SLL header")
        etype = _u16(buf, off + 14)[0]
        off += 16
    elif linktype == LINKTYPE_LINUX_SLL2:
        if off + 20 > end:
            raise Malformed("short SLL2 header")
        etype = _u16(buf, off)[0]
        off += 20
    elif linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6) or linktype in LINKTYPE_RAW_BSD:
        if off >= end:
            raise Malformed("empty raw IP frame")
        etype = _ETH_IPV4 if buf[off] >> 4 == 4 else _ETH_IPV6
    elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if off + 4 > end:
            raise Malformed("short loopback header")
        family = _u32_be(buf, off)[0] if linktype == LINKTYPE_LOOP else _u32_le(buf, off)[0]
        if family > 0xFFFF:  # written in the other byte order
            family = _u32_be(buf, off)[0]
        off += 4
        if family == 2:
            etype = _ETH_IPV4
        elif family in _NULL_V6:
            etype = _ETH_IPV6
        else:
            return None
    else:
        raise Malformed(f"unsupported link type {linktype}")

    fragment: tuple[int, bool] | None = None
    if etype == _ETH_IPV4:
        if off + 20 > end:
            raise Malformed("short IPv4 header")
        vihl, total, ip_id, frag, proto, src, dst = _ipv4(buf, off)
        hlen = (vihl & 0x0F) << 2
        if vihl >> 4 != 4 or hlen < 20:
            raise Malformed("bad IPv4 version or header length")
        ip_end = off + total
        if total == 0:  # TSO/GRO capture: length left to the NIC
            total = end - off
            ip_end = end
        elif total < hlen:
            raise Malformed("IPv4 total length below header length")
        if frag & 0x3FFF:
            fragment = (ip_id, not frag & 0x1FFF)
            if frag & 0x1FFF:
                return proto, src, dst, -1, -1, total, 0, vlan, end, end, fragment
        off += hlen
    elif etype == _ETH_IPV6:
        if off + 40 > end:
            raise Malformed("short IPv6 header")
        plen, proto, src, dst = _ipv6(buf, off)
        if buf[off] >> 4 != 6:
            raise Malformed("bad IPv6 version")
        total = plen + 40 if plen else end - off
        ip_end = off + total
        off += 40
        while proto in _IPV6_EXT or proto == 44 or proto == 51:
            if off + 8 > end:
                raise Malformed("short IPv6 extension header")
            if proto == 44:
                nxt, frag, ident = _frag6(buf, off)
                fragment = (ident, frag & 0xFFF8 == 0)
                off += 8
                proto = nxt
                if frag & 0xFFF8:
                    return proto, src, dst, -1, -1, total, 0, vlan, end, end, fragment
                continue
            nxt = buf[off]
            off += (buf[off + 1] + 2) * 4 if proto == 51 else (buf[off + 1] + 1) * 8
            proto = nxt
    else:
        return None

    if ip_end < end:
        end = ip_end  # drop Ethernet padding
    if proto == TCP:
        if off + 14 > end:
            raise Malformed("short TCP header")
        sport, dport, doff, flags = _tcp(buf, off)
        return proto, src, dst, sport, dport, total, flags, vlan, off + ((doff >> 4) << 2), end, fragment
    if proto == UDP:
        if off + 4 > end:
            raise Malformed("short UDP header")
        sport, dport = _u16_2(buf, off)
        return proto, src, dst, sport, dport, total, 0, vlan, off + 8, end, fragment
    if proto in (ICMP, ICMPV6):
        if off + 2 > end:
            raise Malformed("short ICMP header")
        itype = buf[off]
        peer = (ICMP_PEER if proto == ICMP else ICMPV6_PEER).get(itype)
        return (
            proto,
            src,
            dst,
            itype,
            buf[off + 1] if peer is None else peer,
            total,
            0,
            vlan,
            end,
            end,
            fragment,
        )
    return proto, src, dst, 0, 0, total, 0, vlan, end, end, fragment
