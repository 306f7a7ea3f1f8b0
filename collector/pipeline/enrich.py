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
from collector.pipeline.cidr import MEMO_ENTRIES, CidrMap
from collector.pipeline.fields import dig, path, strings
from soc_common.ecs import Event

log = logging.getLogger(__name__)

HOST_NAME_FIELDS = tuple(path(p) for p in ("host.name", "host.hostname", "winlog.computer_name"))
# (object whose ``ip`` is zoned, the ``soc`` key that gets its zone)
SIDES = (("source", "source_zone"), ("destination", "destination_zone"))


def _ips_of(event: Event, top: str) -> list[str]:
    """``<top>.ip`` as a list of strings (``host``/``observer``), without a general path walk."""
    node = event.get(top)
    return strings(node.get("ip")) if type(node) is dict else []


def _soc(event: Event) -> dict[str, object]:
    """``event["soc"]``, replaced by an empty object when it is something else (as ``place`` does)."""
    soc = event.get("soc")
    if type(soc) is not dict:
        soc = event["soc"] = {}
    return soc


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
        self.match = lru_cache(maxsize=MEMO_ENTRIES)(self._match)

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
        for event in events:  # written out flat: this loop is a visible share of the ingest CPU
            soc = event.get("soc")
            if type(soc) is not dict:
                soc = None
            if soc is None or soc.get("zone") is None:
                for ip in _ips_of(event, "host") or _ips_of(event, "observer"):
                    if (zone := lookup(ip)) is not None:
                        if soc is None:
                            soc = event["soc"] = {}
                        soc["zone"] = zone
                        break
            for side, target in SIDES:
                node = event.get(side)
                if type(node) is dict:
                    address = node.get("ip")
                    if type(address) is str and (zone := lookup(address)) is not None:
                        if soc is None:
                            soc = event["soc"] = {}
                        soc[target] = zone
        return events


class EnrichSite(Processor):
    """``soc.site``: kept if the receiver set it (an agent's enrolled site), else CIDR, name, default."""

    name = "enrich_site"

    def __init__(self, settings: EnrichSettings) -> None:
        self.by_cidr: CidrMap[str] = CidrMap((c, s.code) for s in settings.sites for c in s.cidrs)
        self.by_name = HostPatterns((p, s.code) for s in settings.sites for p in s.hosts)
        self.default = settings.default_site
        # the rule sets never change after start: test them once, not per event (``__bool__`` is Python)
        self._cidr_lookup = self.by_cidr.lookup if self.by_cidr else None
        self._has_names = bool(self.by_name)

    def site_of(self, event: Event) -> str | None:
        if (lookup := self._cidr_lookup) is not None:
            for top in ("host", "observer"):
                for ip in _ips_of(event, top):
                    if (site := lookup(ip)) is not None:
                        return site
        if self._has_names:
            for name in _host_names(event):
                if (site := self.by_name.match(name)) is not None:
                    return site
        return self.default

    def process(self, events: list[Event]) -> list[Event]:
        for event in events:
            soc = event.get("soc")
            if (type(soc) is not dict or soc.get("site") is None) and (site := self.site_of(event)) is not None:
                _soc(event)["site"] = site
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
            system = self.resolver.resolve(_host_names(event), _ips_of(event, "host"))
            if system is not None:
                _soc(event)["system_id"] = system
        return events
