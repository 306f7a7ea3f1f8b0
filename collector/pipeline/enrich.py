"""Organisation context: which office (site), network zone and information system an event is about.

Zones and sites come from CIDR lists in the configuration (longest prefix wins, see
:mod:`collector.pipeline.cidr`); sites may also be matched by host-name patterns. The information
system is resolved through :class:`SystemResolver`, the plug-in point for the SOC database asset
registry; until that exists, :class:`StaticSystemResolver` reads the configuration and a CSV file.
"""

from __future__ import annotations

import csv
import fnmatch
import ipaddress
import logging
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from collector.config import EnrichSettings
from collector.pipeline.base import Processor
from collector.pipeline.cidr import CidrMap
from collector.pipeline.fields import dig, path, place, strings
from soc_common.ecs import Event

log = logging.getLogger(__name__)

HOST_NAME_FIELDS = tuple(path(p) for p in ("host.name", "host.hostname", "winlog.computer_name"))
HOST_IP, OBSERVER_IP = path("host.ip"), path("observer.ip")
SIDES = tuple((path(f"{side}.ip"), path(f"soc.{side}_zone")) for side in ("source", "destination"))
SOC_ZONE, SOC_SITE, SOC_SYSTEM = path("soc.zone"), path("soc.site"), path("soc.system_id")


def _host_names(event: Event) -> list[str]:
    names = []
    for parts in HOST_NAME_FIELDS:
        value = dig(event, parts)
        if type(value) is str and value:
            names.append(value.lower())
    return names


class HostPatterns:
    """Glob patterns (``hn-*``) over host names compiled into one regex per value."""

    def __init__(self, entries: Iterable[tuple[str, str]]) -> None:
        self._rules = [(re.compile(fnmatch.translate(p.lower())), value) for p, value in entries]
        self.match = lru_cache(maxsize=16384)(self._match)

    def __bool__(self) -> bool:
        return bool(self._rules)

    def _match(self, name: str) -> str | None:
        for pattern, value in self._rules:
            if pattern.match(name):
                return value
        return None


class EnrichZone(Processor):
    """``soc.zone`` from ``host.ip``/``observer.ip``; ``soc.source_zone``/``soc.destination_zone``."""

    name = "enrich_zone"

    def __init__(self, settings: EnrichSettings) -> None:
        self.zones: CidrMap[str] = CidrMap((c, z.name) for z in settings.zones for c in z.cidrs)

    def process(self, events: list[Event]) -> list[Event]:
        if not self.zones:
            return events
        lookup = self.zones.lookup
        for event in events:
            soc = event.get("soc")
            if type(soc) is not dict or soc.get("zone") is None:
                for ip in strings(dig(event, HOST_IP)) or strings(dig(event, OBSERVER_IP)):
                    if (zone := lookup(ip)) is not None:
                        place(event, SOC_ZONE, zone)
                        break
            for parts, target in SIDES:
                ip = dig(event, parts)
                if type(ip) is str and (zone := lookup(ip)) is not None:
                    place(event, target, zone)
        return events


class EnrichSite(Processor):
    """``soc.site``: kept if the receiver set it (an agent's enrolled site), else CIDR, name, default."""

    name = "enrich_site"

    def __init__(self, settings: EnrichSettings) -> None:
        self.by_cidr: CidrMap[str] = CidrMap((c, s.code) for s in settings.sites for c in s.cidrs)
        self.by_name = HostPatterns((p, s.code) for s in settings.sites for p in s.hosts)
        self.default = settings.default_site

    def site_of(self, event: Event) -> str | None:
        if self.by_cidr:
            for parts in (HOST_IP, OBSERVER_IP):
                for ip in strings(dig(event, parts)):
                    if (site := self.by_cidr.lookup(ip)) is not None:
                        return site
        if self.by_name:
            for name in _host_names(event):
                if (site := self.by_name.match(name)) is not None:
                    return site
        return self.default

    def process(self, events: list[Event]) -> list[Event]:
        for event in events:
            soc = event.get("soc")
            if (type(soc) is not dict or soc.get("site") is None) and (site := self.site_of(event)) is not None:
                place(event, SOC_SITE, site)
        return events


class SystemResolver(Protocol):
    """Maps an asset to its registered information system id (or None)."""

    def resolve(self, host_names: list[str], ips: list[str]) -> str | None: ...


class StaticSystemResolver:
    """Systems from ``[[enrich.systems]]`` and ``enrich.systems_file`` (CSV ``system_id,host|ip|cidr``)."""

    def __init__(self, settings: EnrichSettings) -> None:
        names: dict[str, str] = {}
        cidrs: list[tuple[str, str]] = []
        patterns: list[tuple[str, str]] = []
        rows: list[tuple[str, str]] = [(s.id, h) for s in settings.systems for h in s.hosts]
        rows += [(s.id, c) for s in settings.systems for c in s.cidrs]
        if settings.systems_file is not None:
            rows += self._read_csv(settings.systems_file)
        for system_id, asset in rows:
            asset = asset.strip().lower()
            if not asset:
                continue
            if _looks_like_network(asset):
                cidrs.append((asset, system_id))
            elif any(c in asset for c in "*?["):
                patterns.append((asset, system_id))
            else:
                names.setdefault(asset, system_id)
        self.names = names
        self.cidrs: CidrMap[str] = CidrMap(cidrs)
        self.patterns = HostPatterns(patterns)

    @property
    def empty(self) -> bool:
        return not (self.names or self.cidrs or self.patterns)

    @staticmethod
    def _read_csv(path: Path) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.reader(fh):
                if len(row) >= 2 and row[0].strip() and not row[0].startswith("#") and row[0] != "system_id":
                    out.append((row[0].strip(), row[1]))
        return out

    def resolve(self, host_names: list[str], ips: list[str]) -> str | None:
        for name in host_names:
            if (hit := self.names.get(name)) is not None:
                return hit
        for ip in ips:
            if (hit := self.cidrs.lookup(ip)) is not None:
                return hit
        for name in host_names:
            if (hit := self.patterns.match(name)) is not None:
                return hit
        return None


def _looks_like_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


class EnrichSystem(Processor):
    """``soc.system_id`` via a :class:`SystemResolver` (swap in the SOC database registry later)."""

    name = "enrich_system"

    def __init__(self, resolver: SystemResolver) -> None:
        self.resolver = resolver

    def process(self, events: list[Event]) -> list[Event]:
        if getattr(self.resolver, "empty", False):
            return events
        for event in events:
            soc = event.get("soc")
            if type(soc) is dict and soc.get("system_id") is not None:
                continue
            system = self.resolver.resolve(_host_names(event), strings(dig(event, HOST_IP)))
            if system is not None:
                place(event, SOC_SYSTEM, system)
        return events
