"""Endpoint coverage per site: computers and servers known, monitored by an agent, protected.

"Monitored" = an agent reported within the stale window, seen either in the collector registry
(``last_seen``: through the collector's admin API when ``[agents]`` is configured, so the API and the
collector can run on different machines; else by reading the registry file on a single machine) or
as ``soc.inventory`` snapshots in the event store. "Protected" = every snapshot
in the window says centrally managed protection is enabled (switched off at any time in the window
counts as not protected). A host linked to an information system is a server; otherwise the OS
type decides (Windows and macOS are computers).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from collector.store.base import Aggregation, EventStore, Filter, Query, Term
from soc_api.agents.settings import AgentsSettings

log = logging.getLogger(__name__)
INVENTORY = "soc.inventory"
MAX_HOSTS = 100_000


@dataclass(frozen=True)
class AgentSeen:
    hostname: str
    site: str | None
    os: str | None
    last_seen: datetime


@dataclass
class SiteEndpoints:
    monitored: set[str] = field(default_factory=set)
    pcs: set[str] = field(default_factory=set)  # monitored hosts that are computers
    servers: set[str] = field(default_factory=set)
    protected: set[str] = field(default_factory=set)
    store_ok: bool = True


def registry_agents(path: Path | None) -> list[AgentSeen]:
    """Enrolled, unrevoked agents from the collector registry (empty when unset or unreadable)."""
    if path is None or not path.exists():
        return []
    from collector.ingest.registry import Registry

    try:
        registry = Registry(path)
        try:
            return [
                AgentSeen(a.hostname.lower(), a.site, a.os, a.last_seen)
                for a in registry.list_agents()
                if a.last_seen is not None and a.revoked_at is None
            ]
        finally:
            registry.close()
    except Exception:
        log.warning("collector registry %s unreadable", path, exc_info=True)
        return []


def collector_agents(settings: AgentsSettings) -> list[AgentSeen]:
    """Enrolled, unrevoked agents from the collector's admin API (empty when it cannot be reached)."""
    from soc_api.agents.client import CollectorAdminClient, CollectorRefused, CollectorUnavailable

    try:
        rows = CollectorAdminClient(settings).agents()
    except (CollectorUnavailable, CollectorRefused):
        log.warning("collector admin API %s unreachable: coverage without registry data", settings.collector_url)
        return []
    out: list[AgentSeen] = []
    for row in rows:
        seen = row.get("last_seen")
        if not seen or row.get("revoked_at"):
            continue
        host = str(row.get("hostname") or "").lower()
        out.append(AgentSeen(host, row.get("site"), row.get("os"), datetime.fromisoformat(seen)))
    return out


def _hosts(store: EventStore, site: str, start: datetime, *extra: Filter) -> set[str]:
    query = Query((Term("event.dataset", INVENTORY), Term("soc.site", site), *extra), start=start)
    buckets = store.aggregate(query, Aggregation(kind="terms", field="host.name", size=MAX_HOSTS))
    return {str(b.key).lower() for b in buckets if b.key}


def site_endpoints(
    site: str,
    store: EventStore | None,
    agents: list[AgentSeen],
    server_hosts: set[str],
    pc_os_types: list[str],
    now: datetime,
    stale_hours: float,
) -> SiteEndpoints:
    start = now - timedelta(hours=stale_hours)
    out = SiteEndpoints()
    pc_by_os: set[str] = set()
    for agent in agents:
        if agent.site == site and agent.last_seen >= start:
            out.monitored.add(agent.hostname)
            if any(t in (agent.os or "").lower() for t in pc_os_types):
                pc_by_os.add(agent.hostname)
    if store is not None:
        try:
            out.monitored |= _hosts(store, site, start)
            pc_by_os |= _hosts(store, site, start, Term("host.os.type", pc_os_types))
            on = _hosts(store, site, start, Term("soc.inventory.protection.enabled", True))
            off = _hosts(store, site, start, Term("soc.inventory.protection.enabled", False))
            out.protected = on - off
        except Exception:
            log.warning("event store unavailable for endpoint KPIs", exc_info=True)
            out.store_ok = False
    else:
        out.store_ok = False
    out.servers = {h for h in out.monitored if h in server_hosts or h not in pc_by_os}
    out.pcs = out.monitored - out.servers
    return out
