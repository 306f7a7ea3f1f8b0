"""Security-plan tracking: the profile's requirement groups for the system's level as a checklist,
plus what our own data shows for the controls it can observe (agents reporting, endpoint
protection on, log retention long enough, monitoring connected)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.store.base import EventStore, Query, Term
from soc_api.services import audit
from soc_api.systems.models import InformationSystem, PlanItem, SystemHost
from soc_api.systems.profiles import Profile
from soc_api.systems.schemas import ObservedControl, PlanItemPatch
from soc_api.systems.services.access import EDIT_ROLES, require_role
from soc_api.systems.services.context import Ctx, RuleError
from soc_api.systems.services.registry import hosts_of
from soc_common.ecs import get, utc_now

log = logging.getLogger(__name__)
INVENTORY_DATASET = "soc.inventory"


def plan_level(system: InformationSystem) -> int | None:
    return system.approved_level or system.proposed_level


def plan_profile(ctx: Ctx, system: InformationSystem) -> Profile:
    return ctx.profile(system.approved_profile or system.profile)


def ensure_items(session: Session, ctx: Ctx, system: InformationSystem) -> list[PlanItem]:
    """The checklist rows for the system's level (rows for groups no longer required are kept)."""
    level = plan_level(system)
    existing = {i.group_id: i for i in session.scalars(select(PlanItem).where(PlanItem.system_id == system.id))}
    if level is not None:
        for group in plan_profile(ctx, system).groups_for(level):
            if group.id not in existing:
                item = PlanItem(
                    system_id=system.id,
                    group_id=group.id,
                    kind=group.kind,
                    title=group.title,
                    source=group.source,
                    evidence=[],
                    note="",
                )
                session.add(item)
                existing[group.id] = item
        session.flush()
    return sorted(existing.values(), key=lambda i: (i.kind, i.group_id))


def rollup_state(items: Iterable[PlanItem]) -> str:
    states = [i.state for i in items]
    if not states or all(s == "not_started" for s in states):
        return "not_started"
    return "full" if all(s == "full" for s in states) else "partial"


def update_item(
    session: Session, ctx: Ctx, system: InformationSystem, item: PlanItem, patch: PlanItemPatch
) -> PlanItem:
    require_role(ctx.principal, EDIT_ROLES, "updating the security plan")
    before = {
        "state": item.state,
        "target_date": item.target_date.isoformat() if item.target_date else None,
        "evidence": list(item.evidence or []),
        "note": item.note,
    }
    values = patch.model_dump(exclude_unset=True)
    for key, value in values.items():
        setattr(item, key, value)
    session.flush()
    system.plan_state = rollup_state(session.scalars(select(PlanItem).where(PlanItem.system_id == system.id)))
    session.flush()
    after = {
        "state": item.state,
        "target_date": item.target_date.isoformat() if item.target_date else None,
        "evidence": list(item.evidence or []),
        "note": item.note,
    }
    audit.append(
        session,
        actor=ctx.actor,
        action="plan.update",
        object_type="plan_item",
        object_id=f"{system.id}/{item.group_id}",
        before=before,
        after=after,
        source_ip=ctx.source_ip,
    )
    return item


def get_item(session: Session, system: InformationSystem, group_id: str) -> PlanItem:
    query = select(PlanItem).where(PlanItem.system_id == system.id, PlanItem.group_id == group_id[:64])
    item = session.scalar(query)
    if item is None:
        raise RuleError("no such plan item", status=404, kind="not-found")
    return item


# -- observed controls --------------------------------------------------------------------------
@dataclass
class Observations:
    """Inputs for the observed controls, gathered once per plan view."""

    store: EventStore | None
    retention_days: int | None
    agent_last_seen: dict[str, datetime]  # agent id -> last seen (collector registry)
    now: datetime


def registry_last_seen(ctx: Ctx) -> dict[str, datetime]:
    path = ctx.settings.collector_registry
    if path is None or not path.exists():
        return {}
    from collector.ingest.registry import Registry

    try:
        registry = Registry(path)
        try:
            return {a.id: a.last_seen for a in registry.list_agents() if a.last_seen and a.revoked_at is None}
        finally:
            registry.close()
    except Exception:
        log.warning("collector registry %s unreadable", path, exc_info=True)
        return {}


def _latest_inventory(obs: Observations, hosts: list[SystemHost], stale: timedelta) -> dict[str, dict[str, Any]]:
    names = sorted({h.host_name for h in hosts if h.host_name})
    if obs.store is None or not names:
        return {}
    query = Query((Term("event.dataset", INVENTORY_DATASET), Term("host.name", names)), start=obs.now - stale)
    latest: dict[str, dict[str, Any]] = {}
    page = obs.store.search(query, size=min(1000, 20 * len(names)))
    for event in page.events:  # newest first
        name = str(get(event, "host.name") or "").lower()
        if name and name not in latest:
            latest[name] = event
    return latest


def observe(
    ctx: Ctx, system: InformationSystem, hosts: list[SystemHost], obs: Observations
) -> dict[str, ObservedControl]:
    stale = timedelta(hours=ctx.settings.agent_stale_hours)
    try:
        inventory = _latest_inventory(obs, hosts, stale)
        store_ok = obs.store is not None
    except Exception:
        log.warning("event store unavailable for plan observations", exc_info=True)
        inventory, store_ok = {}, False
    out: dict[str, ObservedControl] = {}
    reporting: list[str] = []
    silent: list[str] = []
    for host in hosts:
        seen = obs.agent_last_seen.get(host.agent_id or "")
        fresh = (seen is not None and obs.now - seen <= stale) or (host.host_name or "") in inventory
        (reporting if fresh else silent).append(host.host_name or host.agent_id or host.ip or "?")
    if not hosts:
        out["agents_reporting"] = ObservedControl(
            control="agents_reporting", status="unknown", detail="no hosts linked"
        )
    else:
        out["agents_reporting"] = ObservedControl(
            control="agents_reporting",
            status="ok" if not silent else "gap",
            detail=f"{len(reporting)}/{len(hosts)} hosts reported within {ctx.settings.agent_stale_hours:g} h",
            data={"reporting": reporting, "silent": silent},
        )
    protected = [n for n, e in inventory.items() if get(e, "soc.inventory.protection.enabled") is True]
    unprotected = [n for n, e in inventory.items() if get(e, "soc.inventory.protection.enabled") is not True]
    if not store_ok or not inventory:
        out["endpoint_protection"] = ObservedControl(
            control="endpoint_protection",
            status="unknown",
            detail="no recent inventory snapshots for this system's hosts",
        )
    else:
        out["endpoint_protection"] = ObservedControl(
            control="endpoint_protection",
            status="ok" if not unprotected else "gap",
            detail=f"protection on for {len(protected)}/{len(inventory)} reporting hosts",
            data={"protected": sorted(protected), "unprotected": sorted(unprotected)},
        )
    level = plan_level(system)
    need = plan_profile(ctx, system).log_retention_days.by_level.get(level or 0, 0)
    if obs.retention_days is None:
        out["log_retention"] = ObservedControl(
            control="log_retention", status="unknown", detail="no event store configured"
        )
    else:
        out["log_retention"] = ObservedControl(
            control="log_retention",
            status="ok" if obs.retention_days >= need else "gap",
            detail=f"store keeps {obs.retention_days} days; level {level} needs {need}",
            data={"retention_days": obs.retention_days, "required_days": need},
        )
    connected = ctx.settings.monitoring_connected
    out["monitoring_connected"] = ObservedControl(
        control="monitoring_connected",
        status="ok" if connected else "gap",
        detail="declared connected to the central monitoring system"
        if connected
        else "not declared connected to the MPS national/provincial cybersecurity centre (Law 116 Art 40.1.b)",
    )
    return out


def observations(ctx: Ctx, store: EventStore | None, retention_days: int | None) -> Observations:
    return Observations(
        store=store, retention_days=retention_days, agent_last_seen=registry_last_seen(ctx), now=utc_now()
    )


def hosts_for_plan(session: Session, system: InformationSystem) -> list[SystemHost]:
    return hosts_of(session, system.id)
