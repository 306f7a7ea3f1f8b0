"""Community ID v1 flow hashing (https://github.com/corelight/community-id-spec).

The same flow gets the same id in Zeek, Suricata, Wireshark, Elastic and here, so an analyst can
pivot from one of our flow events to a central monitoring centre's records of the same traffic.
"""

from __future__ import annotations

import binascii
import hashlib
import struct

from agent.flows.decode import ICMP, ICMP_PEER, ICMPV6, ICMPV6_PEER

_PORTED = (6, 17, 132)  # TCP, UDP, SCTP carry ports in the hash
_PORTS = struct.Struct("!HH").pack
_sha1 = hashlib.sha1
_b64 = binascii.b2a_base64


def community_id(src: bytes, dst: bytes, proto: int, sport: int, dport: int, seed: int = 0) -> str:
    """The ``1:<base64 sha1>`` id of a flow; addresses are packed 4- or 16-byte values.

    For ICMP/ICMPv6 pass the type as ``sport`` and the code as ``dport``; the request/reply
    pairing of the spec is applied here.
    """
    one_way = False
    if proto in (ICMP, ICMPV6):
        peer = (ICMP_PEER if proto == ICMP else ICMPV6_PEER).get(sport)
        if peer is None:
            one_way = True
        else:
            dport = peer
    elif proto not in _PORTED:
        sport = dport = -1
    if not one_way and (src, sport) > (dst, dport):
        src, dst, sport, dport = dst, src, dport, sport
    data = seed.to_bytes(2, "big") + src + dst + bytes((proto, 0))
    if sport >= 0:
        data += _PORTS(sport, dport)
    return "1:" + _b64(_sha1(data).digest(), newline=False).decode("ascii")
