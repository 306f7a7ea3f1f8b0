"""Which registered information system an event is about: ``soc.system_id``.

Assets are linked to systems in two places: the collector's configuration (``[[enrich.systems]]``
and ``enrich.systems_file``, a CSV) and the SOC database's registry, where officers link hosts and
agents to systems in the web pages. The registry reaches the collector as a snapshot file that the
collector's main process copies from the database every ``enrich.registry_refresh`` seconds
(:mod:`collector.registry_sync`); every pipeline (in every ingest worker) re-reads the file when it
changes, so a host linked in the pages is attributed within a refresh without a restart, and a
restart while the database is unreachable still attributes with the last copy.

An event is matched by, in order: the enrolled agent that sent it (``soc.agent_id``: unambiguous),
its host names, its host addresses (an IP or a network of the system), then host-name patterns.
The configuration's links and the registry's make one table, the configuration's first: the first
link of an asset wins.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import logging
import math
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from collector.config import EnrichSettings
from collector.pipeline.base import Processor
from collector.pipeline.cidr import CidrMap
from collector.pipeline.enrich import HostPatterns, host_names, ips_of, soc_object
from soc_common.ecs import Event

log = logging.getLogger(__name__)

#: (system id, kind, value): kind "agent", "host" (a name or a glob pattern) or "address" (IP or CIDR)
Link = tuple[str, str, str]
KINDS = frozenset({"agent", "host", "address"})
SNAPSHOT_FORMAT = 1


class SystemResolver(Protocol):
    """Gives the table of asset links to attribute a batch with (it may change between batches)."""

    def current(self) -> SystemTable: ...


class SystemTable:
    """Lookups over a list of links; the first link of an asset wins."""

    def __init__(self, links: Iterable[Link]) -> None:
        self.agents: dict[str, str] = {}
        self.names: dict[str, str] = {}
        networks: list[tuple[str, str]] = []
        patterns: list[tuple[str, str]] = []
        self.size = 0
        for system_id, kind, value in links:
            value = value.strip()
            if not system_id or not value:
                continue
            self.size += 1
            if kind == "agent":
                self.agents.setdefault(value, system_id)
            elif kind == "address":
                networks.append((value, system_id))
            elif any(c in value for c in "*?["):
                patterns.append((value.lower(), system_id))
            else:
                self.names.setdefault(value.lower(), system_id)
        self.networks: CidrMap[str] = CidrMap(networks)
        self.patterns = HostPatterns(patterns)

    @property
    def empty(self) -> bool:
        return self.size == 0

    def current(self) -> SystemTable:
        """A table is its own resolver: the links never change."""
        return self

    def by_agent(self, agent_id: str) -> str | None:
        return self.agents.get(agent_id)

    def resolve(self, host_names: list[str], ips: list[str]) -> str | None:
        for name in host_names:
            if (hit := self.names.get(name)) is not None:
                return hit
        for ip in ips:
            if (hit := self.networks.lookup(ip)) is not None:
                return hit
        for name in host_names:
            if (hit := self.patterns.match(name)) is not None:
                return hit
        return None


def configured_links(settings: EnrichSettings) -> Iterator[Link]:
    """``[[enrich.systems]]`` then the rows of ``enrich.systems_file`` (``system_id,asset``)."""
    rows = [(s.id, asset) for s in settings.systems for asset in (*s.hosts, *s.cidrs)]
    if settings.systems_file is not None:
        with settings.systems_file.open(encoding="utf-8", newline="") as fh:
            for row in csv.reader(fh):
                if len(row) >= 2 and row[0].strip() and not row[0].startswith("#") and row[0] != "system_id":
                    rows.append((row[0].strip(), row[1]))
    for system_id, asset in rows:
        asset = asset.strip()
        yield system_id, "address" if _looks_like_network(asset) else "host", asset


def _looks_like_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


class StaticSystemResolver(SystemTable):
    """The configuration's links only."""

    def __init__(self, settings: EnrichSettings) -> None:
        super().__init__(configured_links(settings))


# -- the registry's snapshot file ------------------------------------------------------------------


def snapshot_bytes(links: list[Link]) -> bytes:
    """The snapshot file's content: one link per line, so a diff of two copies reads well."""
    rows = ",\n".join(json.dumps(list(link), ensure_ascii=False) for link in links)
    return f'{{"format": {SNAPSHOT_FORMAT}, "links": [\n{rows}\n]}}\n'.encode()


def read_snapshot(path: Path) -> list[Link]:
    """The links of a snapshot file; ``ValueError`` when it is damaged or of another format."""
    data = json.loads(path.read_bytes())
    if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT or not isinstance(data.get("links"), list):
        raise ValueError("not a systems snapshot of format 1")
    links: list[Link] = []
    for item in data["links"]:
        if not (isinstance(item, list) and len(item) == 3 and all(isinstance(v, str) for v in item)):
            raise ValueError(f"bad link {item!r:.80}")
        if item[1] in KINDS:
            links.append((item[0], item[1], item[2]))
    return links


class RegistryResolver:
    """The configuration's links, then the registry's snapshot, as one table rebuilt when the file changes.

    The file is looked at (one ``stat``) at most every ``check_every`` seconds, once per batch. A
    damaged or missing file keeps the table last built, counted in ``failures``.
    """

    def __init__(self, settings: EnrichSettings, snapshot: Path, check_every: float = 2.0) -> None:
        self.configured = list(configured_links(settings))  # read once: the configuration does not change
        self.table = SystemTable(self.configured)
        self.snapshot = snapshot
        self.check_every = check_every
        self.reloads = 0
        self.failures = 0
        self._stamp: tuple[int, int, int] | None = None
        self._checked = -math.inf

    def current(self) -> SystemTable:
        now = time.monotonic()
        if now - self._checked >= self.check_every:
            self._checked = now
            self._reload_if_changed()
        return self.table

    def _reload_if_changed(self) -> None:
        try:
            st = os.stat(self.snapshot)
        except OSError:
            return  # not written yet (no database, or before the first copy): keep what we have
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            links = read_snapshot(self.snapshot)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            self.failures += 1
            log.warning("%s unreadable, keeping the previous systems: %s", self.snapshot, exc)
            return
        self.table = SystemTable([*self.configured, *links])
        self.reloads += 1


class EnrichSystem(Processor):
    """``soc.system_id`` through a :class:`SystemResolver`, unless the event already has one."""

    name = "enrich_system"

    def __init__(self, resolver: SystemResolver) -> None:
        self.resolver = resolver

    def process(self, events: list[Event]) -> list[Event]:
        table = self.resolver.current()
        if table.empty:
            return events
        by_agent, resolve = table.by_agent, table.resolve
        for event in events:
            soc = event.get("soc")
            system = None
            if type(soc) is dict:
                if soc.get("system_id") is not None:
                    continue
                agent = soc.get("agent_id")
                if type(agent) is str:
                    system = by_agent(agent)
            if system is None:
                system = resolve(host_names(event), ips_of(event, "host"))
            if system is not None:
                soc_object(event)["system_id"] = system
        return events


def system_resolver(settings: EnrichSettings, snapshot: Path | None) -> SystemResolver:
    """The configuration's links, plus the registry's snapshot when the collector keeps one."""
    return StaticSystemResolver(settings) if snapshot is None else RegistryResolver(settings, snapshot)
