"""Organisation context: which office (site) and network zone an event is about.

Zones and sites come from CIDR lists in the configuration (longest prefix wins, see
:mod:`collector.pipeline.cidr`); sites may also be matched by host-name patterns. The information
system is :mod:`collector.pipeline.systems`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from functools import lru_cache

from collector.config import EnrichSettings
from collector.pipeline.base import Processor
from collector.pipeline.cidr import MEMO_ENTRIES, CidrMap
from collector.pipeline.fields import strings
from soc_common.ecs import Event

# (object whose ``ip`` is zoned, the ``soc`` key that gets its zone)
SIDES = (("source", "source_zone"), ("destination", "destination_zone"))


def ips_of(event: Event, top: str) -> list[str]:
    """``<top>.ip`` as a list of strings (``host``/``observer``), without a general path walk."""
    node = event.get(top)
    return strings(node.get("ip")) if type(node) is dict else []


def soc_object(event: Event) -> dict[str, object]:
    """``event["soc"]``, replaced by an empty object when it is something else (as ``place`` does)."""
    soc = event.get("soc")
    if type(soc) is not dict:
        soc = event["soc"] = {}
    return soc


def host_names(event: Event) -> list[str]:
    """``host.name``, ``host.hostname``, ``winlog.computer_name``: the non-empty ones, lower case."""
    names = []
    host = event.get("host")
    if type(host) is dict:
        for key in ("name", "hostname"):
            value = host.get(key)
            if type(value) is str and value:
                names.append(value.lower())
    winlog = event.get("winlog")
    if type(winlog) is dict:
        value = winlog.get("computer_name")
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
                for ip in ips_of(event, "host") or ips_of(event, "observer"):
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
                for ip in ips_of(event, top):
                    if (site := lookup(ip)) is not None:
                        return site
        if self._has_names:
            for name in host_names(event):
                if (site := self.by_name.match(name)) is not None:
                    return site
        return self.default

    def process(self, events: list[Event]) -> list[Event]:
        for event in events:
            soc = event.get("soc")
            if (type(soc) is not dict or soc.get("site") is None) and (site := self.site_of(event)) is not None:
                soc_object(event)["site"] = site
        return events
