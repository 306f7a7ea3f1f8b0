"""Is an address inside the organisation or out on the Internet?

Python's ``ipaddress.is_global`` calls the documentation ranges (192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24) non-global, but for a sensor they are just unrouted public space, and the scenario
captures use them as Internet addresses. So "internal" here is an explicit list: RFC 1918, CGNAT,
loopback, link-local, multicast, unspecified/broadcast, IPv6 ULA/link-local/multicast. Everything
else is external. Zone enrichment, when configured, takes precedence (see ``ZonePlan``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

_INTERNAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "224.0.0.0/4",
        "0.0.0.0/8",
        "255.255.255.255/32",
        "::1/128",
        "::/128",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)


@lru_cache(maxsize=65536)
def is_internal_ip(address: str) -> bool:
    """True for private/special addresses; an unparsable value counts as internal (never alerted on)."""
    try:
        ip = ipaddress.ip_address(str(address).strip())
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in _INTERNAL)


class ZonePlan:
    """The configured zone names split into internal and external ones.

    A destination is external when its ``soc.destination_zone`` is an external zone (``internet``),
    or when it has no zone and a public address ("internet = everything public").
    """

    def __init__(self, zone_names: Iterable[str], external_zones: Iterable[str]) -> None:
        self.external = frozenset(external_zones)
        self.internal = frozenset(z for z in zone_names if z not in self.external)

    def is_external(self, ip: str, zone: str | None) -> bool:
        if zone is not None:
            return zone in self.external
        return not is_internal_ip(ip)

    def zone_of(self, ip: str, zone: str | None) -> str:
        """The zone name used in explanations: the configured one, else ``internet``/``unzoned``."""
        if zone is not None:
            return zone
        return "unzoned" if is_internal_ip(ip) else next(iter(sorted(self.external)), "internet")
