"""Longest-prefix CIDR lookup, fast enough to run on every address of every event.

Networks are grouped by prefix length into dicts keyed by the masked integer address; a lookup
masks the address once per distinct prefix length (a handful in practice), longest first. Results
are cached per address string, because the same addresses recur constantly in traffic; the cache
is sized for an office network (its hosts plus the busiest outside peers), because every map
(zones, sites, systems, intel) keeps its own and a miss only costs one parse.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from functools import lru_cache
from typing import Generic, TypeVar

T = TypeVar("T")
MEMO_ENTRIES = 4096  # addresses remembered per map (least recently used dropped first)


class CidrMap(Generic[T]):
    def __init__(self, entries: Iterable[tuple[str, T]] = ()) -> None:
        # per IP version: [(prefix_len, mask, {network_int: value}), ...] longest prefix first
        self._tables: dict[int, list[tuple[int, int, dict[int, T]]]] = {4: [], 6: []}
        by_len: dict[tuple[int, int], dict[int, T]] = {}
        self.size = 0
        for cidr, value in entries:
            net = ipaddress.ip_network(cidr.strip(), strict=False)
            table = by_len.setdefault((net.version, net.prefixlen), {})
            table.setdefault(int(net.network_address), value)  # first definition wins
            self.size += 1
        for (version, plen), table in sorted(by_len.items(), key=lambda kv: -kv[0][1]):
            bits = 32 if version == 4 else 128
            mask = ((1 << plen) - 1) << (bits - plen) if plen else 0
            self._tables[version].append((plen, mask, table))
        self.lookup = lru_cache(maxsize=MEMO_ENTRIES)(self._lookup)

    def __bool__(self) -> bool:
        return self.size > 0

    def _lookup(self, address: str) -> T | None:
        text = address.strip()
        try:  # dotted IPv4, the common case: the C parser, a few times faster than ipaddress
            value, version = int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big"), 4
        except (OSError, ValueError):
            try:
                ip = ipaddress.ip_address(text)
            except ValueError:
                return None
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            value, version = int(ip), ip.version
        for _plen, mask, table in self._tables[version]:
            hit = table.get(value & mask)
            if hit is not None:
                return hit
        return None
