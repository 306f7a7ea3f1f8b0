"""TLS ClientHello parser: server name (SNI), offered version and JA3 fingerprint.

Only the first segment of a handshake is looked at (a ClientHello almost always fits in one);
every length is bounds-checked and anything inconsistent gives ``None``.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

_u16 = struct.Struct("!H").unpack_from
_VERSIONS = {0x0300: "3.0", 0x0301: "1.0", 0x0302: "1.1", 0x0303: "1.2", 0x0304: "1.3"}
_EXT_SNI = 0
_EXT_GROUPS = 10
_EXT_POINT_FORMATS = 11
_EXT_SUPPORTED_VERSIONS = 43


def _is_grease(value: int) -> bool:
    """RFC 8701 GREASE values (0x?a?a) are random padding and excluded from JA3."""
    return value & 0x0F0F == 0x0A0A and (value >> 8) == (value & 0xFF)


def _u16_list(data: bytes, off: int, length: int) -> list[int]:
    return [v for (v,) in struct.iter_unpack("!H", data[off : off + (length & ~1)]) if not _is_grease(v)]


def parse_client_hello(data: bytes) -> dict[str, Any] | None:
    """Parse a TLS record holding a ClientHello into ECS ``tls`` fields, or ``None``."""
    try:
        return _parse(data)
    except (IndexError, struct.error, ValueError):
        return None


def _parse(data: bytes) -> dict[str, Any] | None:
    if len(data) < 43 or data[0] != 0x16 or data[1] != 3 or data[5] != 1:
        return None
    legacy_version = _u16(data, 9)[0]
    off = 11 + 32  # record header 5 + handshake header 4 + version 2, then the random
    off += 1 + data[off]  # session id
    n = _u16(data, off)[0]
    ciphers = _u16_list(data, off + 2, n)
    off += 2 + n
    off += 1 + data[off]  # compression methods
    extensions: list[int] = []
    groups: list[int] = []
    point_formats: list[int] = []
    server_name: str | None = None
    offered = legacy_version
    if off + 2 <= len(data):
        end = min(len(data), off + 2 + _u16(data, off)[0])
        off += 2
        while off + 4 <= end:
            etype, elen = struct.unpack_from("!HH", data, off)
            body = off + 4
            off = body + elen
            if off > end:
                break
            if not _is_grease(etype):
                extensions.append(etype)
            if etype == _EXT_SNI and elen >= 5 and data[body + 2] == 0:
                name_len = _u16(data, body + 3)[0]
                server_name = data[body + 5 : body + 5 + name_len].decode("ascii", "backslashreplace")
            elif etype == _EXT_GROUPS and elen >= 2:
                groups = _u16_list(data, body + 2, _u16(data, body)[0])
            elif etype == _EXT_POINT_FORMATS and elen >= 1:
                point_formats = list(data[body + 1 : body + 1 + data[body]])
            elif etype == _EXT_SUPPORTED_VERSIONS and elen >= 1:
                versions = _u16_list(data, body + 1, data[body])
                if versions:
                    offered = max(versions)
    ja3_text = ",".join(
        [
            str(legacy_version),
            "-".join(map(str, ciphers)),
            "-".join(map(str, extensions)),
            "-".join(map(str, groups)),
            "-".join(map(str, point_formats)),
        ]
    )
    tls: dict[str, Any] = {
        "version_protocol": "tls",
        "client": {"ja3": hashlib.md5(ja3_text.encode(), usedforsecurity=False).hexdigest()},
    }
    version = _VERSIONS.get(offered)
    if version:
        tls["version"] = version
    if server_name:
        tls["client"]["server_name"] = server_name
    return tls
