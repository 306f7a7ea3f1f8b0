"""The information-systems registry: organisations, systems, hosts, risk assessments, CSV export.

A change to a level-relevant fact of a system whose level is approved flags the level for review
(NĐ 331 Art 25 with the Art 10.2 triggers), instead of silently keeping a level that may no
longer fit. State-secret systems are registered for tracking only: no host or agent may be linked,
so the SOC can never be pointed at their content.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from soc_api.db.models import Site, User
from soc_api.services import audit
from soc_api.services.principal import Principal
from soc_api.systems.levels import Determination, LevelFacts, determine, level_facts_changed
from soc_api.systems.models import (
    InformationSystem,
    Organisation,
    OrganisationMember,
    RiskAssessment,
    SystemHost,
)
from soc_api.systems.profiles import ProfileError
from soc_api.systems.schemas import HostIn, OrganisationIn, RiskAssessmentIn, SystemIn, SystemPatch
from soc_api.systems.services.access import EDIT_ROLES, require_role, require_site
from soc_api.systems.services.context import Ctx, RuleError

STATE_SECRET_NOTE = (
    "state-secret system: registered for tracking only; state secrets stay on separate cipher-protected "
    "networks (Law 29/2018, Decree 26/2020) and the SOC never ingests their content, so no host or agent "
    "can be linked to it"
)
CSV_HEADER = ("system_id", "asset")


# -- organisations ------------------------------------------------------------------------------
def create_organisation(session: Session, ctx: Ctx, body: OrganisationIn) -> Organisation:
    require_role(ctx.principal, frozenset({"admin"}), "registering an organisation")
    if session.scalar(select(Organisation.id).where(Organisation.code == body.code)) is not None:
        raise RuleError(f"organisation {body.code!r} already exists")
    if body.site is not None and session.get(Site, body.site) is None:
        raise RuleError(f"unknown site {body.site!r}", status=422, kind="validation-error")
    org = Organisation(**body.model_dump())
    session.add(org)
    session.flush()
    audit.append(
        session,
        actor=ctx.actor,
        action="organisation.create",
        object_type="organisation",
        object_id=org.code,
        after=body.model_dump(),
        source_ip=ctx.source_ip,
    )
    return org


def org_by_code(session: Session, code: str) -> Organisation:
    org = session.scalar(select(Organisation).where(Organisation.code == code))
    if org is None:
        raise RuleError(f"unknown organisation {code!r}", status=422, kind="validation-error")
    return org


def members(session: Session, org: Organisation) -> list[str]:
    q = select(User.username).join(OrganisationMember, OrganisationMember.user_id == User.id)
    return list(session.scalars(q.where(OrganisationMember.organisation_id == org.id).order_by(User.username)))


def add_member(session: Session, ctx: Ctx, org: Organisation, username: str) -> None:
    require_role(ctx.principal, frozenset({"admin"}), "managing authority membership")
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise RuleError(f"unknown user {username!r}", status=422, kind="validation-error")
    if session.get(OrganisationMember, (org.id, user.id)) is None:
        session.add(OrganisationMember(organisation_id=org.id, user_id=user.id))
        session.flush()
        audit.append(
            session,
            actor=ctx.actor,
            action="organisation.member_add",
            object_type="organisation",
            object_id=org.code,
            after={"username": username},
            source_ip=ctx.source_ip,
        )


# -- systems ------------------------------------------------------------------------------------
def _org_codes(session: Session, system: InformationSystem) -> dict[str, str | None]:
    ids = [system.owner_org_id, system.operator_org_id, system.security_unit_org_id, system.council_org_id]
    query = select(Organisation.id, Organisation.code).where(Organisation.id.in_([i for i in ids if i]))
    codes: dict[int | None, str] = {row[0]: row[1] for row in session.execute(query)}
    return {
        "owner_org": codes.get(system.owner_org_id),
        "operator_org": codes.get(system.operator_org_id),
        "security_unit_org": codes.get(system.security_unit_org_id),
        "council_org": codes.get(system.council_org_id) if system.council_org_id else None,
    }


def snapshot(session: Session, system: InformationSystem) -> dict[str, Any]:
    """The audited view of a system (what changed is visible in before/after)."""
    return {
        "name": system.name,
        "site": system.site,
        **_org_codes(session, system),
        "facts": dict(system.facts or {}),
        "network_zones": list(system.network_zones or []),
        "cidrs": list(system.cidrs or []),
        "components": list(system.components or []),
        "profile": system.profile,
        "proposed_level": system.proposed_level,
        "approved_level": system.approved_level,
        "security_regulation_no": system.security_regulation_no,
        "security_regulation_date": system.security_regulation_date.isoformat()
        if system.security_regulation_date
        else None,
        "level_review_required": system.level_review_required,
    }


def latest_risk_assessment(session: Session, system_id: str) -> RiskAssessment | None:
    q = select(RiskAssessment).where(RiskAssessment.system_id == system_id)
    return session.scalar(q.order_by(RiskAssessment.assessed_on.desc(), RiskAssessment.id.desc()).limit(1))


def determination_for(
    session: Session, ctx: Ctx, system: InformationSystem, profile_id: str | None = None
) -> Determination:
    facts = LevelFacts.model_validate(system.facts or {})
    assessment = latest_risk_assessment(session, system.id)
    if assessment is not None and assessment.assessed_level is not None and facts.risk_assessed_level is None:
        facts = facts.model_copy(update={"risk_assessed_level": assessment.assessed_level})
    try:
        return determine(ctx.profile(profile_id or system.profile), facts)
    except ProfileError as exc:
        raise RuleError(str(exc), status=422, kind="validation-error") from None


def _apply(session: Session, system: InformationSystem, values: dict[str, Any]) -> None:
    for key in ("owner_org", "operator_org", "security_unit_org", "council_org"):
        if key in values:
            code = values.pop(key)
            setattr(system, f"{key}_id", org_by_code(session, code).id if code else None)
    if "facts" in values:
        facts = values.pop("facts")
        system.facts = facts
        system.state_secret = "state_secret" in facts.get("information_types", [])
    for key, value in values.items():
        setattr(system, key, value)


def create_system(session: Session, ctx: Ctx, body: SystemIn) -> InformationSystem:
    require_role(ctx.principal, EDIT_ROLES, "registering a system")
    require_site(ctx.principal, body.site)
    if session.get(Site, body.site) is None:
        raise RuleError(f"unknown site {body.site!r}", status=422, kind="validation-error")
    if session.get(InformationSystem, body.id) is not None:
        raise RuleError(f"system {body.id!r} already exists")
    values = body.model_dump(mode="json", exclude={"id", "profile"})
    values["security_regulation_date"] = body.security_regulation_date
    values["plan_target_date"] = body.plan_target_date
    system = InformationSystem(id=body.id, profile=body.profile or ctx.settings.profile)
    _apply(session, system, values)
    system.proposed_level = determination_for(session, ctx, system).level
    session.add(system)
    session.flush()
    audit.append(
        session,
        actor=ctx.actor,
        action="system.create",
        object_type="system",
        object_id=system.id,
        after=snapshot(session, system),
        source_ip=ctx.source_ip,
    )
    return system


def update_system(session: Session, ctx: Ctx, system: InformationSystem, patch: SystemPatch) -> InformationSystem:
    require_role(ctx.principal, EDIT_ROLES, "changing a system")
    before = snapshot(session, system)
    values = patch.model_dump(mode="json", exclude_unset=True)
    for key in ("security_regulation_date", "plan_target_date"):
        if key in values:
            values[key] = getattr(patch, key)
    new_facts = values.get("facts")
    if (
        new_facts is not None
        and "state_secret" in new_facts.get("information_types", [])
        and hosts_of(session, system.id)
    ):
        raise RuleError(STATE_SECRET_NOTE + "; remove its hosts first", kind="state-secret")
    _apply(session, system, values)
    system.proposed_level = determination_for(session, ctx, system).level
    if new_facts is not None and system.approved_level is not None:
        changed = level_facts_changed(ctx.profile(system.profile), before["facts"], new_facts)
        if changed:
            system.level_review_required = True
            reasons = list(system.level_review_reasons or [])
            reasons += [f"{name} changed" for name in changed if f"{name} changed" not in reasons]
            system.level_review_reasons = reasons
    session.flush()
    audit.append(
        session,
        actor=ctx.actor,
        action="system.update",
        object_type="system",
        object_id=system.id,
        before=before,
        after=snapshot(session, system),
        source_ip=ctx.source_ip,
    )
    return system


def list_systems(session: Session, principal: Principal) -> list[InformationSystem]:
    q = select(InformationSystem).order_by(InformationSystem.id)
    if principal.sites is not None:
        q = q.where(InformationSystem.site.in_(sorted(principal.sites)))
    return list(session.scalars(q))


def get_visible(
    session: Session, principal: Principal, system_id: str, *, for_update: bool = False
) -> InformationSystem:
    system = session.get(InformationSystem, system_id[:64], with_for_update=for_update)
    if system is None or not principal.sees_site(system.site):
        raise RuleError("no such system", status=404, kind="not-found")
    return system


# -- hosts --------------------------------------------------------------------------------------
def hosts_of(session: Session, system_id: str) -> list[SystemHost]:
    return list(session.scalars(select(SystemHost).where(SystemHost.system_id == system_id).order_by(SystemHost.id)))


def add_host(session: Session, ctx: Ctx, system: InformationSystem, body: HostIn) -> SystemHost:
    require_role(ctx.principal, EDIT_ROLES, "linking a host")
    if system.state_secret:
        raise RuleError(STATE_SECRET_NOTE, kind="state-secret")
    if body.host_name is None and body.agent_id is None and body.ip is None:
        raise RuleError("give a host name, an agent id or an IP", status=422, kind="validation-error")
    name = body.host_name.strip().lower() if body.host_name else None
    clash = select(SystemHost).where(
        (func.lower(SystemHost.host_name) == name) if name else SystemHost.agent_id == body.agent_id
    )
    if (name or body.agent_id) and (other := session.scalar(clash)) is not None:
        raise RuleError(f"host already belongs to system {other.system_id!r}", kind="conflict")
    host = SystemHost(system_id=system.id, host_name=name, agent_id=body.agent_id, ip=body.ip, role=body.role)
    session.add(host)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise RuleError("host or agent already belongs to a system", kind="conflict") from None
    audit.append(
        session,
        actor=ctx.actor,
        action="system.host_add",
        object_type="system",
        object_id=system.id,
        after={"host_name": name, "agent_id": body.agent_id, "ip": body.ip},
        source_ip=ctx.source_ip,
    )
    return host


def remove_host(session: Session, ctx: Ctx, system: InformationSystem, host_id: int) -> None:
    require_role(ctx.principal, EDIT_ROLES, "unlinking a host")
    host = session.get(SystemHost, host_id)
    if host is None or host.system_id != system.id:
        raise RuleError("no such host in this system", status=404, kind="not-found")
    before = {"host_name": host.host_name, "agent_id": host.agent_id, "ip": host.ip}
    session.delete(host)
    session.flush()
    audit.append(
        session,
        actor=ctx.actor,
        action="system.host_remove",
        object_type="system",
        object_id=system.id,
        before=before,
        source_ip=ctx.source_ip,
    )


def export_csv(session: Session, principal: Principal) -> str:
    """``system_id,asset`` rows (host names, IPs, CIDRs) for the collector's ``enrich.systems_file``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for system in list_systems(session, principal):
        if system.state_secret:
            continue
        assets: list[str] = []
        for host in hosts_of(session, system.id):
            assets += [a for a in (host.host_name, host.ip) if a]
        assets += list(system.cidrs or [])
        for asset in dict.fromkeys(assets):
            writer.writerow((system.id, asset))
    return out.getvalue()


# -- risk assessments ---------------------------------------------------------------------------
def add_risk_assessment(
    session: Session, ctx: Ctx, system: InformationSystem, body: RiskAssessmentIn
) -> RiskAssessment:
    require_role(ctx.principal, EDIT_ROLES, "recording a risk assessment")
    rule = ctx.profile(system.profile).risk_assessment
    known = {t.id for t in rule.triggers}
    if known and body.trigger not in known:
        raise RuleError(
            f"unknown trigger {body.trigger!r}; the rules list: {', '.join(sorted(known))}",
            status=422,
            kind="validation-error",
        )
    row = RiskAssessment(
        system_id=system.id,
        trigger=body.trigger,
        assessed_on=body.assessed_on,
        assessed_level=body.assessed_level,
        content=body.content,
        created_by=ctx.actor,
    )
    session.add(row)
    session.flush()
    before_level = system.proposed_level
    system.proposed_level = determination_for(session, ctx, system).level
    if system.approved_level is not None and body.assessed_level and body.assessed_level > system.approved_level:
        system.level_review_required = True  # Art 10.5: risk above the level -> propose a higher level
        system.level_review_reasons = [*(system.level_review_reasons or []), "risk assessment above approved level"]
    session.flush()
    audit.append(
        session,
        actor=ctx.actor,
        action="system.risk_assessment",
        object_type="system",
        object_id=system.id,
        after={
            **body.model_dump(mode="json"),
            "proposed_level_before": before_level,
            "proposed_level": system.proposed_level,
        },
        source_ip=ctx.source_ip,
    )
    return row


def missing_risk_content(ctx: Ctx, system: InformationSystem, row: RiskAssessment) -> list[str]:
    rule = ctx.profile(system.profile).risk_assessment
    return [c.id for c in rule.content if not (row.content or {}).get(c.id)]
