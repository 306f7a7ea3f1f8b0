"""DNS message parser: question, response code and answers as ECS ``dns.*`` fields.

Works on untrusted bytes from the wire: every length is checked, compression pointers may only
point backwards and are followed a bounded number of times, and anything inconsistent gives
``None`` instead of an exception.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

_header = struct.Struct("!HHHHHH").unpack_from
_rr = struct.Struct("!HHIH").unpack_from
_u16 = struct.Struct("!H").unpack_from

MAX_ANSWERS = 32
MAX_NAME = 255
_MAX_POINTERS = 32

QTYPES = {
    1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 10: "NULL", 12: "PTR", 13: "HINFO", 15: "MX", 16: "TXT",
    28: "AAAA", 33: "SRV", 35: "NAPTR", 41: "OPT", 43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY",
    64: "SVCB", 65: "HTTPS", 99: "SPF", 251: "IXFR", 252: "AXFR", 255: "ANY", 257: "CAA",
}  # fmt: skip
RCODES = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
    6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE",
}  # fmt: skip
_CLASSES = {1: "IN", 3: "CH", 4: "HS", 255: "ANY"}
_OPCODES = {0: "QUERY", 1: "IQUERY", 2: "STATUS", 4: "NOTIFY", 5: "UPDATE"}
_FLAG_BITS = ((0x0400, "AA"), (0x0200, "TC"), (0x0100, "RD"), (0x0080, "RA"), (0x0020, "AD"), (0x0010, "CD"))


class _Bad(Exception):
    pass


def _type_name(code: int) -> str:
    return QTYPES.get(code) or f"TYPE{code}"


def _read_name(msg: bytes, off: int) -> tuple[str, int]:
    """Decode a possibly compressed name at ``off``; return it and the offset after it."""
    labels: list[str] = []
    size = 0
    end_off = -1
    jumps = 0
    n = len(msg)
    while True:
        if off >= n:
            raise _Bad
        length = msg[off]
        if length == 0:
            off += 1
            break
        if length & 0xC0 == 0xC0:
            if off + 1 >= n or jumps >= _MAX_POINTERS:
                raise _Bad
            target = ((length & 0x3F) << 8) | msg[off + 1]
            if target >= off:
                raise _Bad  # forward or self pointer: a loop or garbage
            if end_off < 0:
                end_off = off + 2
            off = target
            jumps += 1
            continue
        if length & 0xC0:
            raise _Bad
        label = msg[off + 1 : off + 1 + length]
        if len(label) != length:
            raise _Bad
        size += length + 1
        if size > MAX_NAME:
            raise _Bad
        labels.append(label.decode("ascii", "backslashreplace"))
        off += 1 + length
    return ".".join(labels), (end_off if end_off >= 0 else off)


def _rdata(msg: bytes, rtype: int, off: int, rdlen: int) -> str:
    if rtype == 1 and rdlen == 4:
        return socket.inet_ntop(socket.AF_INET, msg[off : off + 4])
    if rtype == 28 and rdlen == 16:
        return socket.inet_ntop(socket.AF_INET6, msg[off : off + 16])
    if rtype in (2, 5, 12):
        return _read_name(msg, off)[0]
    if rtype == 15 and rdlen >= 3:
        return f"{_u16(msg, off)[0]} {_read_name(msg, off + 2)[0]}"
    if rtype == 16:
        parts = []
        pos, end = off, off + rdlen
        while pos < end:
            ln = msg[pos]
            parts.append(msg[pos + 1 : min(pos + 1 + ln, end)].decode("utf-8", "backslashreplace"))
            pos += 1 + ln
        return " ".join(parts)
    return msg[off : off + rdlen].hex()


def parse_dns(msg: bytes) -> dict[str, Any] | None:
    """Parse one DNS message into an ECS ``dns`` object, or ``None`` if it is not one."""
    try:
        return _parse(msg)
    except (_Bad, IndexError, struct.error, ValueError):
        return None


def _parse(msg: bytes) -> dict[str, Any] | None:
    if len(msg) < 12:
        return None
    ident, flags, qd, an, _ns, _ar = _header(msg, 0)
    if qd != 1 or an > 512:
        return None  # real queries carry exactly one question; other counts are garbage
    qname, off = _read_name(msg, 12)
    if off + 4 > len(msg):
        return None
    qtype, qclass = struct.unpack_from("!HH", msg, off)
    off += 4
    is_answer = bool(flags & 0x8000)
    dns: dict[str, Any] = {
        "id": ident,
        "type": "answer" if is_answer else "query",
        "op_code": _OPCODES.get((flags >> 11) & 0x0F, str((flags >> 11) & 0x0F)),
        "header_flags": [name for bit, name in _FLAG_BITS if flags & bit],
        "question": {"name": qname, "type": _type_name(qtype), "class": _CLASSES.get(qclass, str(qclass))},
    }
    if not is_answer:
        return dns
    dns["response_code"] = RCODES.get(flags & 0x0F, str(flags & 0x0F))
    answers: list[dict[str, Any]] = []
    resolved: list[str] = []
    for _ in range(min(an, MAX_ANSWERS)):
        name, off = _read_name(msg, off)
        if off + 10 > len(msg):
            break
        rtype, rclass, ttl, rdlen = _rr(msg, off)
        off += 10
        if off + rdlen > len(msg):
            break
        data = _rdata(msg, rtype, off, rdlen)
        off += rdlen
        answers.append(
            {
                "name": name,
                "type": _type_name(rtype),
                "class": _CLASSES.get(rclass, str(rclass)),
                "ttl": ttl,
                "data": data,
            }
        )
        if rtype in (1, 28):
            resolved.append(data)
    if answers:
        dns["answers"] = answers
    if resolved:
        dns["resolved_ip"] = resolved
    return dns
