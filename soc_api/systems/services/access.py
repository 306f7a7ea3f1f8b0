"""Who may do what with systems and dossiers.

Roles give the kind of action (officers draft and submit, approvers appraise and approve,
auditors read); authority membership gives the right to act for a given dossier: an approver
may appraise or approve only for the organisation the profile names for that level.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.services.principal import Principal
from soc_api.systems.models import InformationSystem, Organisation, OrganisationMember
from soc_api.systems.profiles import AuthorityKind, Profile
from soc_api.systems.services.context import RuleError

READ_ROLES = frozenset({"admin", "officer", "approver", "auditor"})
EDIT_ROLES = frozenset({"admin", "officer"})
DECIDE_ROLES = frozenset({"approver"})
NATIONAL_KINDS: frozenset[str] = frozenset({"mps", "mod", "cipher_committee", "mic"})


def require_role(principal: Principal, roles: frozenset[str], what: str) -> None:
    if principal.role not in roles:
        raise RuleError(f"{what} needs one of the roles {', '.join(sorted(roles))}", status=403, kind="forbidden")


def require_site(principal: Principal, site: str) -> None:
    if not principal.sees_site(site):
        raise RuleError("no such system", status=404, kind="not-found")


def authority_kind(profile: Profile, system: InformationSystem, level: int, step: str) -> AuthorityKind:
    """The authority the profile names for ``step`` ("appraise"/"approve") at ``level``."""
    rule = profile.authorities.by_level.get(level)
    if rule is None:
        raise RuleError(f"profile {profile.id} names no authority for level {level}")
    kind: AuthorityKind = rule.appraise if step == "appraise" else rule.approve
    sector = str((system.facts or {}).get("sector", "civil"))
    if step == "appraise" and kind in NATIONAL_KINDS and sector in profile.authorities.sector_appraiser:
        kind = profile.authorities.sector_appraiser[sector]
    independence = profile.authorities.independence
    if step == "appraise" and kind == independence.replace and system.security_unit_org_id == system.operator_org_id:
        kind = independence.with_
    return kind


def authority_org(session: Session, system: InformationSystem, kind: str) -> Organisation | None:
    org_id = {
        "dedicated_unit": system.security_unit_org_id,
        "owner": system.owner_org_id,
        "independent_council": system.council_org_id,
    }.get(kind)
    if org_id is not None:
        return session.get(Organisation, org_id)
    if kind in NATIONAL_KINDS:
        return session.scalar(select(Organisation).where(Organisation.kind == kind).order_by(Organisation.id).limit(1))
    return None


def require_authority(
    session: Session, principal: Principal, system: InformationSystem, kind: str, step: str
) -> Organisation:
    require_role(principal, DECIDE_ROLES, step)
    org = authority_org(session, system, kind)
    if org is None:
        raise RuleError(f"no organisation is registered as the {kind.replace('_', ' ')} for this system")
    member = session.get(OrganisationMember, (org.id, principal.user_id or -1))
    if member is None:
        raise RuleError(
            f"only members of {org.name} ({kind.replace('_', ' ')}) may {step} this dossier",
            status=403,
            kind="wrong-authority",
        )
    return org
