"""Recording assessments of a system, with findings; warnings when the rules ask for more.

An assessment is stored even when it falls short (e.g. a level-5 assessment not done by an
independent body, NĐ 331 Art 31.2.c): the record of what was done matters, and the warning says
what is still owed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.assessments.models import Assessment, AssessmentFinding
from soc_api.assessments.obligations import Obligations
from soc_api.assessments.schemas import AssessmentIn, AssessmentPatch, FindingIn
from soc_api.assessments.services.schedule import obligation_level
from soc_api.services import audit
from soc_api.services.principal import Principal
from soc_api.systems.models import InformationSystem, Organisation
from soc_api.systems.services.access import EDIT_ROLES, require_role
from soc_api.systems.services.context import Ctx, RuleError
from soc_api.systems.services.registry import get_visible, org_by_code

PENTEST_KINDS = ("vulnerability_scan", "penetration_test")


def _view(row: Assessment) -> dict[str, Any]:
    return {
        "system_id": row.system_id,
        "kind": row.kind,
        "phase": row.phase,
        "mode": row.mode,
        "independent": row.independent,
        "assessor_org_id": row.assessor_org_id,
        "assessor_name": row.assessor_name,
        "performed_on": row.performed_on.isoformat(),
        "summary": row.summary,
    }


def warnings(row: Assessment, system: InformationSystem, obligations: Obligations) -> list[str]:
    out: list[str] = []
    level = obligation_level(system)
    rule = obligations.for_profile(system.approved_profile or system.profile).assessments.get(row.kind)
    if rule is not None and level in rule.independent_levels and not row.independent:
        out.append(f"level {level}: this assessment must be done by an independent or licensed body ({rule.source})")
    if row.kind in PENTEST_KINDS and row.mode is None:
        out.append("give the test mode (black, grey or white box)")
    return out


def add_finding(session: Session, row: Assessment, body: FindingIn) -> AssessmentFinding:
    finding = AssessmentFinding(
        assessment_id=row.id, title=body.title, severity=body.severity, description=body.description
    )
    session.add(finding)
    session.flush()
    return finding


def create(session: Session, ctx: Ctx, body: AssessmentIn) -> tuple[Assessment, InformationSystem]:
    require_role(ctx.principal, EDIT_ROLES, "recording an assessment")
    system = get_visible(session, ctx.principal, body.system_id)
    assessor: Organisation | None = org_by_code(session, body.assessor_org) if body.assessor_org else None
    row = Assessment(
        system_id=system.id,
        kind=body.kind,
        phase=body.phase,
        mode=body.mode,
        independent=body.independent,
        assessor_org_id=assessor.id if assessor else None,
        assessor_name=body.assessor_name or (assessor.name if assessor else ""),
        performed_on=body.performed_on,
        summary=body.summary,
        created_by=ctx.actor,
    )
    session.add(row)
    session.flush()
    for finding in body.findings:
        add_finding(session, row, finding)
    audit.append(
        session,
        actor=ctx.actor,
        action="assessment.create",
        object_type="assessment",
        object_id=str(row.id),
        after={**_view(row), "findings": [f.model_dump() for f in body.findings]},
        source_ip=ctx.source_ip,
    )
    return row, system


def update(session: Session, ctx: Ctx, row: Assessment, patch: AssessmentPatch) -> Assessment:
    require_role(ctx.principal, EDIT_ROLES, "changing an assessment")
    before = _view(row)
    for key, value in patch.model_dump(exclude_unset=True).items():
        if value is None and key in ("phase", "independent", "performed_on", "summary", "assessor_name"):
            continue
        setattr(row, key, value)
    session.flush()
    audit.append(
        session,
        actor=ctx.actor,
        action="assessment.update",
        object_type="assessment",
        object_id=str(row.id),
        before=before,
        after=_view(row),
        source_ip=ctx.source_ip,
    )
    return row


def record_finding(session: Session, ctx: Ctx, row: Assessment, body: FindingIn) -> AssessmentFinding:
    require_role(ctx.principal, EDIT_ROLES, "recording a finding")
    finding = add_finding(session, row, body)
    audit.append(
        session,
        actor=ctx.actor,
        action="assessment.finding_add",
        object_type="assessment",
        object_id=str(row.id),
        after={"finding_id": finding.id, **body.model_dump()},
        source_ip=ctx.source_ip,
    )
    return finding


def visible(
    session: Session, principal: Principal, assessment_id: int, *, for_update: bool = False
) -> tuple[Assessment, InformationSystem]:
    row = session.get(Assessment, assessment_id, with_for_update=for_update)
    system = session.get(InformationSystem, row.system_id) if row else None
    if row is None or system is None or not principal.sees_site(system.site):
        raise RuleError("no such assessment", status=404, kind="not-found")
    return row, system


def findings(session: Session, assessment_id: int) -> list[AssessmentFinding]:
    q = select(AssessmentFinding).where(AssessmentFinding.assessment_id == assessment_id)
    return list(session.scalars(q.order_by(AssessmentFinding.id)))


def listing(
    session: Session, principal: Principal, system_id: str | None = None
) -> list[tuple[Assessment, InformationSystem]]:
    q = select(Assessment, InformationSystem).join(InformationSystem, InformationSystem.id == Assessment.system_id)
    if principal.sites is not None:
        q = q.where(InformationSystem.site.in_(sorted(principal.sites)))
    if system_id is not None:
        q = q.where(Assessment.system_id == system_id)
    return [(a, s) for a, s in session.execute(q.order_by(Assessment.performed_on.desc(), Assessment.id.desc()))]
