"""Which system each registered asset belongs to, as the collector reads it to fill ``soc.system_id``.

Read-only and independent of who asks: the collector attributes every event, whatever site an
officer may see. State-secret systems never have hosts (``registry.STATE_SECRET_NOTE``); their
networks are left out too, so no event is ever attributed to one.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.systems.models import InformationSystem, SystemHost

#: (system id, kind, value); kind is "agent" (an enrolled agent's id), "host" (a lower-case host
#: name) or "address" (an IP or a CIDR)
AssetLink = tuple[str, str, str]


def asset_links(session: Session) -> list[AssetLink]:
    """Every link in a stable order: hosts in the order they were linked, then each system's networks."""
    secret = set(session.scalars(select(InformationSystem.id).where(InformationSystem.state_secret.is_(True))))
    links: list[AssetLink] = []
    for host in session.scalars(select(SystemHost).order_by(SystemHost.id)):
        if host.system_id in secret:
            continue
        if host.agent_id:
            links.append((host.system_id, "agent", host.agent_id))
        if host.host_name:
            links.append((host.system_id, "host", host.host_name.lower()))
        if host.ip:
            links.append((host.system_id, "address", host.ip))
    systems = select(InformationSystem.id, InformationSystem.cidrs).order_by(InformationSystem.id)
    for system_id, cidrs in session.execute(systems.where(InformationSystem.state_secret.is_(False))):
        links.extend((system_id, "address", str(cidr)) for cidr in cidrs or [])
    return links
