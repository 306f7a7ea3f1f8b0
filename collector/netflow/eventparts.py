"""Small pieces of a flow event, shared by the compiled per-template builders and the generic one.

Each is a table or a cheap function built so that a flow record costs a lookup instead of a
formatting call: the timestamp text per millisecond, protocol names, TCP flag lists, the community
id from the record's packed addresses.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Any

from agent.flows.community_id import community_id
from agent.flows.events import TRANSPORTS, iso_ts, tcp_flag_names

PORTED = (6, 17, 132)  # protocols whose ports are flow fields (and go into the community id)
NTP_EPOCH_OFFSET = 2_208_988_800
WRAP = 1 << 32
DAY_MS = 86_400_000

#: tcp_control_bits & 0xFF -> flag names (``tcp_flag_names`` masks the same way)
FLAGS: tuple[tuple[str, ...], ...] = tuple(tuple(tcp_flag_names(bits)) for bits in range(256))
#: protocol number -> (``network.iana_number``, ``network.transport``) for one-byte protocol fields
PROTOCOL_TEXT: tuple[tuple[str, str], ...] = tuple((str(p), TRANSPORTS.get(p, str(p))) for p in range(256))

_FRACTION = tuple(f".{ms:03d}Z" for ms in range(1000))
#: epoch second -> "YYYY-MM-DDTHH:MM:SS" (only for seconds ms_text's fast path covers)
SECOND_TEXT: dict[int, str] = {}
FRACTION = _FRACTION
# ms / 1000 as a float is exact to well under a microsecond below 2^32 s, so iso_ts's rounding
# gives exactly ms % 1000 there; outside this range iso_ts itself is asked.
_FAST_MS_LIMIT = (1 << 32) * 1000


def ms_text(ms: int) -> str:
    """``iso_ts(ms / 1000)`` for integer epoch milliseconds, from a per-second cache and a table."""
    if 0 <= ms < _FAST_MS_LIMIT:
        second, frac = divmod(ms, 1000)
        text = SECOND_TEXT.get(second)
        if text is None:
            if len(SECOND_TEXT) >= 4096:
                SECOND_TEXT.clear()
            text = SECOND_TEXT[second] = iso_ts(second)[:-5]  # "...T12:00:00" without ".000Z"
        return text + _FRACTION[frac]
    return iso_ts(ms / 1000)


#: packed address -> text; exporters report the same hosts over and over, and a dict hit costs a
#: fraction of inet_ntoa/inet_ntop. The builders fill them; ``trim_caches`` bounds them per batch.
IP4_TEXT: dict[bytes, str] = {}
IP6_TEXT: dict[bytes, str] = {}
MAX_ADDRESSES = 4096
#: ordered packed tuple -> community id. NetFlow records are one-way, so a conversation's reply
#: record (and every active-timeout re-export) hashes to the same tuple: a hit skips the SHA-1.
COMMUNITY_IDS: dict[bytes, str] = {}


def trim_caches() -> None:
    """Empty a cache that has grown past its bound (called once per data set)."""
    if len(IP4_TEXT) > MAX_ADDRESSES:
        IP4_TEXT.clear()
    if len(IP6_TEXT) > MAX_ADDRESSES:
        IP6_TEXT.clear()
    if len(COMMUNITY_IDS) > MAX_ADDRESSES:
        COMMUNITY_IDS.clear()


def transport_text(proto: int) -> tuple[str, str]:
    """(``iana_number``, ``transport``) for any protocol value a wide field can carry."""
    return PROTOCOL_TEXT[proto] if proto < 256 else (str(proto), TRANSPORTS.get(proto, str(proto)))


def flag_names(flags: int) -> list[str]:
    return list(FLAGS[flags & 0xFF])


#: the Community ID v1 hash input (seed 0) of an ordered TCP/UDP/SCTP tuple; the compiled builders
#: hash it inline, as ``agent.flows.community_id`` does for the ordered tuple
PACK_V4 = struct.Struct("!H4s4sBBHH").pack
PACK_V6 = struct.Struct("!H16s16sBBHH").pack


def community_id_text(sip: str, dip: str, proto: int, sport: Any, dport: Any, icmp_code: Any) -> str | None:
    """Community id from address text, for any protocol; None when the addresses do not parse.

    ``icmp_code`` is the record's type<<8|code element when it has one; v5 and softflowd carry it
    in the destination port instead.
    """
    family = socket.AF_INET6 if ":" in sip else socket.AF_INET
    if proto in (1, 58):
        code = icmp_code
        if not isinstance(code, int) or not 0 <= code < 65536:
            code = dport if isinstance(dport, int) else 0
        sport, dport = code >> 8, code & 0xFF
    with contextlib.suppress(OSError, ValueError, struct.error):  # a mangled record keeps its flow
        return community_id(
            socket.inet_pton(family, sip),
            socket.inet_pton(family, dip),
            proto,
            sport if isinstance(sport, int) else 0,
            dport if isinstance(dport, int) else 0,
        )
    return None
