"""Agents as the pages and the API show them: the collector's registry joined with each agent's
latest ``soc.inventory`` snapshot, status (online / silent), protection state, per-site summary
against the declared endpoint counts, and the audited changes (revoke, tokens, policy layers)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from collector.store.base import EventStore, Query, Term
from soc_api.agents.client import CollectorAdminClient, CollectorRefused, CollectorUnavailable
from soc_api.agents.schemas import (
    AgentDetailOut,
    AgentOut,
    AgentsList,
    Inventory,
    PolicyOut,
    Protection,
    SiteSummary,
    TokenCreated,
    TokenIn,
    TokenOut,
)
from soc_api.agents.settings import AgentsSettings
from soc_api.kpi.models import DeclaredAssets
from soc_api.services import audit
from soc_api.services.principal import Principal
from soc_common.ecs import get, parse_ts, utc_now

log = logging.getLogger(__name__)
INVENTORY = "soc.inventory"
READ_ROLES = frozenset({"admin", "officer", "auditor"})
CHANGE_ROLES = frozenset({"admin"})
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_LAYER = re.compile(r"^(default|site-[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}|agent-[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63})$")

__all__ = ["AgentsError", "AgentsService", "CollectorRefused", "CollectorUnavailable"]


class AgentsError(Exception):
    """A request refused here (role, site scope, unknown id): mapped to a problem by the routers."""

    def __init__(self, status: int, message: str, kind: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


@dataclass(frozen=True)
class Actor:
    principal: Principal
    source_ip: str | None


def _dt(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return parse_ts(value)
    except (TypeError, ValueError):
        return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if v not in (None, "")]
    return [str(value)] if value not in (None, "") else []


def _os_name(snapshot: dict[str, Any] | None) -> str | None:
    """The OS the agent last reported (name and version), newer than what it said at enrolment."""
    if not snapshot:
        return None
    parts = [str(p) for p in (get(snapshot, "host.os.name"), get(snapshot, "host.os.version")) if p]
    return " ".join(parts) or None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def inventory_from(event: dict[str, Any]) -> Inventory | None:
    """The page view of one snapshot; a malformed snapshot gives what it can, never an error."""
    at = _dt(get(event, "@timestamp"))
    if at is None:
        return None
    users = get(event, "soc.inventory.users")
    disks = get(event, "soc.inventory.disks")
    listening = get(event, "soc.inventory.listening")
    uptime = _num(get(event, "host.uptime"))
    return Inventory(
        at=at,
        os_name=get(event, "host.os.name") if isinstance(get(event, "host.os.name"), str) else None,
        os_version=get(event, "host.os.version") if isinstance(get(event, "host.os.version"), str) else None,
        os_type=get(event, "host.os.type") if isinstance(get(event, "host.os.type"), str) else None,
        architecture=get(event, "host.architecture") if isinstance(get(event, "host.architecture"), str) else None,
        ips=_strings(get(event, "host.ip")),
        macs=_strings(get(event, "host.mac")),
        uptime_seconds=int(uptime) if uptime is not None else None,
        cpu_usage=_num(get(event, "host.cpu.usage")),
        memory_usage=_num(get(event, "soc.inventory.memory.usage")),
        disks=[d for d in disks if isinstance(d, dict)] if isinstance(disks, list) else [],
        users=sorted({str(u.get("name")) for u in users if isinstance(u, dict) and u.get("name")})
        if isinstance(users, list)
        else [],
        listening_ports=len(listening) if isinstance(listening, list) else None,
    )


def protection_from(event: dict[str, Any] | None, max_age_days: float) -> Protection:
    state = get(event, "soc.inventory.protection") if event else None
    if not isinstance(state, dict):
        return Protection()
    enabled = state.get("enabled")
    age = _num(state.get("signature_age_days"))
    return Protection(
        state="on" if enabled is True else "off" if enabled is False else "unknown",
        product=state.get("product") if isinstance(state.get("product"), str) else None,
        running=state.get("running") if isinstance(state.get("running"), bool) else None,
        signature_age_days=age,
        signature_outdated=None if age is None else age > max_age_days,
    )


class AgentsService:
    def __init__(self, settings: AgentsSettings, store: EventStore | None, client: CollectorAdminClient | None = None):
        self.settings = settings
        self.store = store
        self.client = client or CollectorAdminClient(settings)
        self.inventory_ok = store is not None

    # -- access --------------------------------------------------------------------------------
    @staticmethod
    def require(principal: Principal, roles: frozenset[str], what: str) -> None:
        if principal.role not in roles:
            raise AgentsError(403, f"{what} needs one of the roles {', '.join(sorted(roles))}", "forbidden")

    @staticmethod
    def check_id(value: str, what: str) -> str:
        if not _ID.match(value):
            raise AgentsError(404, f"no such {what}", "not-found")
        return value

    # -- inventory -----------------------------------------------------------------------------
    def latest_inventory(self, agent_id: str) -> dict[str, Any] | None:
        if self.store is None:
            return None
        start = utc_now() - timedelta(days=self.settings.inventory_lookback_days)
        query = Query((Term("event.dataset", INVENTORY), Term("soc.agent_id", agent_id)), start=start)
        try:
            page = self.store.search(query, size=1)
        except Exception:
            log.warning("event store unavailable for agent inventory", exc_info=True)
            self.inventory_ok = False
            return None
        return page.events[0] if page.events else None

    def _view(self, record: dict[str, Any], snapshot: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
        seen = _dt(record.get("last_seen"))
        inv_at = _dt(get(snapshot, "@timestamp")) if snapshot else None
        if inv_at is not None and (seen is None or inv_at > seen):
            seen = inv_at
        if record.get("revoked_at"):
            status = "revoked"
        elif seen is None:
            status = "never"
        elif now - seen <= timedelta(seconds=self.settings.silent_after):
            status = "online"
        else:
            status = "silent"
        return {
            "id": str(record.get("id", "")),
            "hostname": str(record.get("hostname", "")),
            "site": record.get("site"),
            "os": _os_name(snapshot) or record.get("os"),
            "version": record.get("version"),
            "enrolled_at": _dt(record.get("enrolled_at")),
            "last_seen": seen,
            "revoked_at": _dt(record.get("revoked_at")),
            "status": status,
            "protection": protection_from(snapshot, self.settings.signature_max_age_days),
            "policy_version": record.get("policy_version"),
            "addresses": _strings(get(snapshot, "host.ip")) if snapshot else [],
        }

    # -- reads ---------------------------------------------------------------------------------
    def list_agents(self, session: Session, principal: Principal) -> AgentsList:
        self.require(principal, READ_ROLES, "viewing agents")
        now = utc_now()
        records = [r for r in self.client.agents() if principal.sees_site(r.get("site"))]
        agents = [AgentOut(**self._view(r, self.latest_inventory(str(r.get("id", ""))), now)) for r in records]
        return AgentsList(
            agents=agents, sites=self.site_summaries(session, agents, principal), inventory_available=self.inventory_ok
        )

    def site_summaries(self, session: Session, agents: Iterable[AgentOut], principal: Principal) -> list[SiteSummary]:
        by_site: dict[str | None, list[AgentOut]] = {}
        for agent in agents:
            by_site.setdefault(agent.site, []).append(agent)
        for row in session.query(DeclaredAssets).all():
            if principal.sees_site(row.site):
                by_site.setdefault(row.site, [])
        out = []
        for site in sorted(by_site, key=lambda s: (s is None, s or "")):
            members = by_site[site]
            declared = session.get(DeclaredAssets, site) if site else None
            active = [a for a in members if a.status != "revoked"]
            protected = sum(1 for a in active if a.protection.state == "on")
            total_declared = (declared.pcs + declared.servers) if declared else None
            out.append(
                SiteSummary(
                    site=site,
                    agents=len(active),
                    online=sum(1 for a in active if a.status == "online"),
                    silent=sum(1 for a in active if a.status in ("silent", "never")),
                    revoked=len(members) - len(active),
                    protected=protected,
                    protection_off=sum(1 for a in active if a.protection.state == "off"),
                    declared_pcs=declared.pcs if declared else None,
                    declared_servers=declared.servers if declared else None,
                    coverage=round(min(protected / total_declared, 1.0), 4) if total_declared else None,
                )
            )
        return out

    def _visible_agent(self, principal: Principal, agent_id: str) -> dict[str, Any]:
        self.check_id(agent_id, "agent")
        try:
            record = self.client.agent(agent_id)
        except CollectorRefused as exc:
            if exc.status == 404:
                raise AgentsError(404, "no such agent", "not-found") from None
            raise
        if not principal.sees_site(record.get("site")):
            raise AgentsError(404, "no such agent", "not-found")
        return record

    def agent_detail(self, principal: Principal, agent_id: str) -> AgentDetailOut:
        self.require(principal, READ_ROLES, "viewing agents")
        record = self._visible_agent(principal, agent_id)
        snapshot = self.latest_inventory(agent_id)
        layer = self.client.policy(f"agent-{agent_id}")
        merged = record.get("policy")
        return AgentDetailOut(
            **self._view(record, snapshot, utc_now()),
            cert_serial=record.get("cert_serial"),
            cert_fingerprint=record.get("cert_fingerprint"),
            inventory=inventory_from(snapshot) if snapshot else None,
            policy=merged if isinstance(merged, dict) else {},
            site_layer=f"site-{record['site']}" if record.get("site") else None,
            agent_layer=layer.get("policy") if layer.get("exists") else None,
        )

    def tokens(self, principal: Principal) -> list[TokenOut]:
        self.require(principal, READ_ROLES, "viewing enrolment tokens")
        return [TokenOut(**t) for t in self.client.tokens() if principal.sees_site(t.get("site"))]

    def _layer_visible(self, principal: Principal, layer: str) -> None:
        if not _LAYER.match(layer):
            raise AgentsError(404, "layer must be 'default', 'site-<code>' or 'agent-<id>'", "not-found")
        if layer.startswith("site-") and not principal.sees_site(layer[5:]):
            raise AgentsError(404, "no such layer", "not-found")
        if layer.startswith("agent-"):
            self._visible_agent(principal, layer[6:])

    def policy(self, principal: Principal, layer: str) -> PolicyOut:
        self.require(principal, READ_ROLES, "viewing policies")
        self._layer_visible(principal, layer)
        return PolicyOut(**self.client.policy(layer))

    # -- changes (admin, audited) --------------------------------------------------------------
    def revoke_agent(self, session: Session, actor: Actor, agent_id: str) -> AgentOut:
        self.require(actor.principal, CHANGE_ROLES, "revoking an agent")
        record = self._visible_agent(actor.principal, agent_id)
        done = self.client.revoke_agent(agent_id)
        audit.append(
            session, actor=actor.principal.name, action="agent.revoke", object_type="agent", object_id=agent_id,
            before={"hostname": record.get("hostname"), "site": record.get("site")},
            after={"revoked_at": done.get("revoked_at")}, source_ip=actor.source_ip,
        )  # fmt: skip
        return AgentOut(**self._view({**record, **done}, None, utc_now()))

    def create_token(self, session: Session, actor: Actor, body: TokenIn) -> TokenCreated:
        self.require(actor.principal, CHANGE_ROLES, "creating an enrolment token")
        if body.site is not None and not actor.principal.sees_site(body.site):
            raise AgentsError(403, "that site is outside your scope", "forbidden")
        created = self.client.create_token(
            site=body.site, uses=body.uses, ttl_seconds=round(body.ttl_hours * 3600), note=body.note
        )
        token = TokenCreated(**created)
        audit.append(
            session, actor=actor.principal.name, action="enrolment_token.create", object_type="enrolment_token",
            object_id=token.id, after={"site": token.site, "uses": token.uses_left, "expires_at": token.expires_at,
            "note": token.note}, source_ip=actor.source_ip,
        )  # fmt: skip
        return token

    def revoke_token(self, session: Session, actor: Actor, token_id: str) -> TokenOut:
        self.require(actor.principal, CHANGE_ROLES, "revoking an enrolment token")
        self.check_id(token_id, "token")
        known = {t.get("id"): t for t in self.client.tokens()}
        if token_id not in known or not actor.principal.sees_site(known[token_id].get("site")):
            raise AgentsError(404, "no such token", "not-found")
        done = TokenOut(**self.client.revoke_token(token_id))
        audit.append(
            session, actor=actor.principal.name, action="enrolment_token.revoke", object_type="enrolment_token",
            object_id=token_id, before={"state": known[token_id].get("state")}, after={"state": done.state},
            source_ip=actor.source_ip,
        )  # fmt: skip
        return done

    def set_policy(self, session: Session, actor: Actor, layer: str, policy: dict[str, Any] | None) -> PolicyOut:
        self.require(actor.principal, CHANGE_ROLES, "changing a policy")
        self._layer_visible(actor.principal, layer)
        before = self.client.policy(layer)
        after = PolicyOut(**self.client.set_policy(layer, policy))
        audit.append(
            session, actor=actor.principal.name, action="policy.set" if policy is not None else "policy.remove",
            object_type="agent_policy", object_id=layer,
            before={"exists": before.get("exists"), "policy": before.get("policy")},
            after={"exists": after.exists, "policy": after.policy}, source_ip=actor.source_ip,
        )  # fmt: skip
        return after
