"""HTTP endpoints: ``/api/v1/assessments`` (records, findings, schedule) and
``/api/v1/improvement-actions`` (shared with drills).

Conventions as in :mod:`soc_api.systems.routers`: site scoping, RFC 9457 problems, ETag/If-Match
on updates, one audit entry per change in the request's transaction.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from soc_api.assessments.models import Assessment
from soc_api.assessments.obligations import Obligations, load_obligations
from soc_api.assessments.schemas import (
    ActionClose,
    ActionIn,
    ActionOut,
    AssessmentIn,
    AssessmentOut,
    AssessmentPatch,
    DueOut,
    FindingIn,
    FindingOut,
)
from soc_api.assessments.services import actions as asvc
from soc_api.assessments.services import assessments as svc
from soc_api.assessments.services.schedule import schedules
from soc_api.assessments.settings import ComplianceSettings
from soc_api.deps import SessionDep, StateDep
from soc_api.state import AppState
from soc_api.systems.calendar.holidays import VN_TZ
from soc_api.systems.models import InformationSystem, Organisation
from soc_api.systems.routers import CtxDep, check_if_match, etag, rules
from soc_api.systems.services.context import RuleError
from soc_api.systems.services.registry import list_systems
from soc_common.ecs import utc_now

router = APIRouter(prefix="/api/v1")


def compliance_settings(state: AppState) -> ComplianceSettings:
    settings = getattr(state.config, "compliance", None)
    return settings if isinstance(settings, ComplianceSettings) else ComplianceSettings()


def obligations_of(state: AppState) -> Obligations:
    return load_obligations(compliance_settings(state).obligations_file)


def today_vn() -> date:
    """Dates of obligations are Vietnamese calendar days."""
    return utc_now().astimezone(VN_TZ).date()


def assessment_out(
    session: Session, row: Assessment, system: InformationSystem, obligations: Obligations
) -> AssessmentOut:
    org = session.get(Organisation, row.assessor_org_id) if row.assessor_org_id else None
    today = today_vn()
    return AssessmentOut(
        id=row.id,
        system_id=row.system_id,
        site=system.site,
        kind=row.kind,
        phase=row.phase,
        mode=row.mode,
        independent=row.independent,
        assessor_org=org.code if org else None,
        assessor_name=row.assessor_name,
        performed_on=row.performed_on,
        summary=row.summary,
        findings=[
            FindingOut(id=f.id, title=f.title, severity=f.severity, description=f.description)
            for f in svc.findings(session, row.id)
        ],
        actions=[asvc.action_out(a, today) for a in asvc.for_source(session, "assessment", row.id)],
        warnings=svc.warnings(row, system, obligations),
        created_by=row.created_by,
        created_at=row.created_at,
        version=row.version,
    )


@router.get("/assessments", response_model=list[AssessmentOut], tags=["assessments"])
def list_assessments(
    session: SessionDep,
    state: StateDep,
    ctx: CtxDep,
    system_id: Annotated[str | None, Query(max_length=64)] = None,
) -> list[AssessmentOut]:
    obligations = obligations_of(state)
    return [assessment_out(session, a, s, obligations) for a, s in svc.listing(session, ctx.principal, system_id)]


@router.post("/assessments", response_model=AssessmentOut, status_code=201, tags=["assessments"])
def create_assessment(
    body: AssessmentIn, response: Response, session: SessionDep, state: StateDep, ctx: CtxDep
) -> AssessmentOut:
    with rules():
        row, system = svc.create(session, ctx, body)
    response.headers["ETag"] = etag(row.version)
    return assessment_out(session, row, system, obligations_of(state))


@router.get("/assessments/schedule", response_model=list[DueOut], tags=["assessments"])
def schedule(
    session: SessionDep,
    state: StateDep,
    ctx: CtxDep,
    overdue: bool | None = None,
    site: Annotated[str | None, Query(max_length=64)] = None,
) -> list[DueOut]:
    """Next due date of every required assessment kind of every visible system, with overdue flags."""
    systems = [s for s in list_systems(session, ctx.principal) if site is None or s.site == site]
    settings = compliance_settings(state)
    due = schedules(session, systems, obligations_of(state), today_vn(), settings.due_soon_days)
    items = [DueOut(**vars(i)) for rows in due.values() for i in rows]
    if overdue is not None:
        items = [i for i in items if i.overdue == overdue]
    return sorted(items, key=lambda i: (i.next_due, i.system_id, i.kind))


@router.get("/assessments/{assessment_id}", response_model=AssessmentOut, tags=["assessments"])
def get_assessment(
    assessment_id: int, response: Response, session: SessionDep, state: StateDep, ctx: CtxDep
) -> AssessmentOut:
    with rules():
        row, system = svc.visible(session, ctx.principal, assessment_id)
    response.headers["ETag"] = etag(row.version)
    return assessment_out(session, row, system, obligations_of(state))


@router.patch("/assessments/{assessment_id}", response_model=AssessmentOut, tags=["assessments"])
def update_assessment(
    assessment_id: int,
    body: AssessmentPatch,
    request: Request,
    response: Response,
    session: SessionDep,
    state: StateDep,
    ctx: CtxDep,
) -> AssessmentOut:
    with rules():
        row, system = svc.visible(session, ctx.principal, assessment_id, for_update=True)
        check_if_match(request, row.version)
        svc.update(session, ctx, row, body)
    response.headers["ETag"] = etag(row.version)
    return assessment_out(session, row, system, obligations_of(state))


@router.post("/assessments/{assessment_id}/findings", response_model=FindingOut, status_code=201, tags=["assessments"])
def add_finding(assessment_id: int, body: FindingIn, session: SessionDep, ctx: CtxDep) -> FindingOut:
    with rules():
        row, _system = svc.visible(session, ctx.principal, assessment_id)
        f = svc.record_finding(session, ctx, row, body)
    return FindingOut(id=f.id, title=f.title, severity=f.severity, description=f.description)


@router.post("/assessments/{assessment_id}/actions", response_model=ActionOut, status_code=201, tags=["assessments"])
def add_remediation(assessment_id: int, body: ActionIn, session: SessionDep, ctx: CtxDep) -> ActionOut:
    """A remediation action (owner, due date), optionally for one finding of this assessment."""
    with rules():
        row, system = svc.visible(session, ctx.principal, assessment_id)
        if body.finding_id is not None and body.finding_id not in {f.id for f in svc.findings(session, row.id)}:
            raise RuleError("the finding is not part of this assessment", status=422, kind="validation-error")
        action = asvc.add(session, ctx, "assessment", row.id, system.site, body)
    return asvc.action_out(action, today_vn())


@router.get("/improvement-actions", response_model=list[ActionOut], tags=["assessments"])
def list_actions(session: SessionDep, ctx: CtxDep, open_only: bool = False, overdue: bool = False) -> list[ActionOut]:
    """Improvement actions of assessments and drills (``overdue``: open and past due)."""
    today = today_vn()
    rows = asvc.listing(session, ctx.principal, open_only=open_only, overdue_on=today if overdue else None)
    return [asvc.action_out(a, today) for a in rows]


@router.post("/improvement-actions/{action_id}/close", response_model=ActionOut, tags=["assessments"])
def close_action(
    action_id: int, body: ActionClose, request: Request, response: Response, session: SessionDep, ctx: CtxDep
) -> ActionOut:
    with rules():
        action = asvc.visible(session, ctx.principal, action_id, for_update=True)
        check_if_match(request, action.version)
        asvc.close(session, ctx, action, body)
    response.headers["ETag"] = etag(action.version)
    return asvc.action_out(action, today_vn())


__all__ = ["router"]
