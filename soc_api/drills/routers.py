"""HTTP endpoints: ``/api/v1/drills`` (plans, records, timeline, minutes, drill alerts, actions).

Conventions as in :mod:`soc_api.systems.routers`: site scoping, RFC 9457 problems, ETag/If-Match
on updates, one audit entry per change in the request's transaction.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from soc_api.assessments.routers import today_vn
from soc_api.assessments.schemas import ActionIn, ActionOut
from soc_api.assessments.services import actions as asvc
from soc_api.deps import SessionDep
from soc_api.drills.models import Drill, DrillPlan
from soc_api.drills.schemas import (
    DrillIn,
    DrillOut,
    DrillPatch,
    MinutesOut,
    PlanIn,
    PlanOut,
    TimelineIn,
    TimelineOut,
)
from soc_api.drills.services import drills as svc
from soc_api.drills.services import marking
from soc_api.services.principal import Principal
from soc_api.systems.routers import MAX_FILENAME, CtxDep, check_if_match, document_body, etag, rules
from soc_api.systems.services.access import EDIT_ROLES, require_role
from soc_api.systems.services.context import RuleError
from soc_common.ecs import utc_now

router = APIRouter(prefix="/api/v1/drills")


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the UTF-8 name (Vietnamese file names are the norm)."""
    fallback = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def drill_out(session: Session, drill: Drill) -> DrillOut:
    today = today_vn()
    participants = [{k: str(v) for k, v in p.items()} for p in drill.participants or []]
    minutes = (
        MinutesOut(
            filename=drill.minutes_filename or "",
            content_type=drill.minutes_content_type or "",
            size=drill.minutes_size or 0,
            sha256=drill.minutes_sha256,
        )
        if drill.minutes_sha256
        else None
    )
    return DrillOut(
        id=drill.id,
        plan_id=drill.plan_id,
        site=drill.site,
        title=drill.title,
        kind=drill.kind,
        scenario=drill.scenario,
        status=drill.status,
        planned_on=drill.planned_on,
        started_at=drill.started_at,
        ended_at=drill.ended_at,
        system_ids=list(drill.system_ids or []),
        participants=participants,
        teams=sorted({p.get("team", "") for p in participants} - {""}),
        participant_hosts=list(drill.participant_hosts or []),
        coordination_findings=drill.coordination_findings,
        open_gaps=list(drill.open_gaps or []),
        evaluation=drill.evaluation,
        minutes=minutes,
        timeline=[
            TimelineOut(id=e.id, at=e.at, phase=e.phase, note=e.note, team=e.team, created_by=e.created_by)
            for e in svc.timeline(session, drill.id)
        ],
        response_times=svc.response_times(session, drill),
        alert_ids=svc.linked_alert_ids(session, drill.id),
        incident_ids=svc.linked_incident_ids(session, drill.id),
        actions=[asvc.action_out(a, today) for a in asvc.for_source(session, "drill", drill.id)],
        version=drill.version,
    )


def plan_out(session: Session, principal: Principal, plan: DrillPlan) -> PlanOut:
    drills = [drill_out(session, d) for d in svc.listing(session, principal, plan.id)]
    return PlanOut(
        id=plan.id,
        site=plan.site,
        year=plan.year,
        title=plan.title,
        decision_no=plan.decision_no,
        drills=drills,
        planned=sum(1 for d in drills if d.status != "cancelled"),
        completed=sum(1 for d in drills if d.status == "completed"),
    )


@router.get("/plans", response_model=list[PlanOut], tags=["drills"])
def list_plans(
    session: SessionDep, ctx: CtxDep, year: Annotated[int | None, Query(ge=2000, le=2100)] = None
) -> list[PlanOut]:
    return [plan_out(session, ctx.principal, p) for p in svc.plans(session, ctx.principal, year)]


@router.post("/plans", response_model=PlanOut, status_code=201, tags=["drills"])
def create_plan(body: PlanIn, session: SessionDep, ctx: CtxDep) -> PlanOut:
    with rules():
        plan = svc.create_plan(session, ctx, body)
    return plan_out(session, ctx.principal, plan)


@router.get("", response_model=list[DrillOut], tags=["drills"])
def list_drills(session: SessionDep, ctx: CtxDep, plan_id: int | None = None) -> list[DrillOut]:
    return [drill_out(session, d) for d in svc.listing(session, ctx.principal, plan_id)]


@router.post("", response_model=DrillOut, status_code=201, tags=["drills"])
def create_drill(body: DrillIn, response: Response, session: SessionDep, ctx: CtxDep) -> DrillOut:
    with rules():
        drill = svc.create(session, ctx, body)
    response.headers["ETag"] = etag(drill.version)
    return drill_out(session, drill)


def _drill(session: Session, ctx: CtxDep, drill_id: int, *, for_update: bool = False) -> Drill:
    with rules():
        return svc.visible(session, ctx.principal, drill_id, for_update=for_update)


@router.get("/{drill_id}", response_model=DrillOut, tags=["drills"])
def get_drill(drill_id: int, response: Response, session: SessionDep, ctx: CtxDep) -> DrillOut:
    drill = _drill(session, ctx, drill_id)
    response.headers["ETag"] = etag(drill.version)
    return drill_out(session, drill)


@router.patch("/{drill_id}", response_model=DrillOut, tags=["drills"])
def update_drill(
    drill_id: int, body: DrillPatch, request: Request, response: Response, session: SessionDep, ctx: CtxDep
) -> DrillOut:
    """Run and record the drill; a live drill's window then marks its participants' alerts as drill."""
    drill = _drill(session, ctx, drill_id, for_update=True)
    check_if_match(request, drill.version)
    with rules():
        svc.update(session, ctx, drill, body)
        marking.mark_alerts(session, drill, utc_now(), ctx.actor, ctx.source_ip)
    response.headers["ETag"] = etag(drill.version)
    return drill_out(session, drill)


@router.post("/{drill_id}/timeline", response_model=TimelineOut, status_code=201, tags=["drills"])
def add_timeline(drill_id: int, body: TimelineIn, session: SessionDep, ctx: CtxDep) -> TimelineOut:
    drill = _drill(session, ctx, drill_id)
    with rules():
        e = svc.add_timeline(session, ctx, drill, body)
    return TimelineOut(id=e.id, at=e.at, phase=e.phase, note=e.note, team=e.team, created_by=e.created_by)


@router.put(
    "/{drill_id}/minutes",
    response_model=MinutesOut,
    status_code=201,
    tags=["drills"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def upload_minutes(
    drill_id: int,
    request: Request,
    session: SessionDep,
    ctx: CtxDep,
    data: Annotated[bytes, Depends(document_body)],
    filename: Annotated[str, Query(min_length=1, max_length=MAX_FILENAME)],
) -> MinutesOut:
    """Upload the drill minutes (biên bản): body is the file, ``Content-Type`` its type."""
    drill = _drill(session, ctx, drill_id, for_update=True)
    with rules():
        svc.upload_minutes(session, ctx, drill, filename, request.headers.get("content-type", ""), data)
    return MinutesOut(
        filename=drill.minutes_filename or "",
        content_type=drill.minutes_content_type or "",
        size=drill.minutes_size or 0,
        sha256=drill.minutes_sha256 or "",
    )


@router.get("/{drill_id}/minutes", tags=["drills"], response_class=Response)
def download_minutes(drill_id: int, session: SessionDep, ctx: CtxDep) -> Response:
    drill = _drill(session, ctx, drill_id)
    with rules():
        data = svc.read_minutes(ctx, drill)
    headers = {
        "Content-Disposition": content_disposition(drill.minutes_filename or "minutes"),
        "X-Content-SHA256": drill.minutes_sha256 or "",
    }
    return Response(data, media_type=drill.minutes_content_type or "application/octet-stream", headers=headers)


@router.post("/{drill_id}/incidents/{incident_id}", response_model=DrillOut, tags=["drills"])
def link_incident(drill_id: int, incident_id: int, session: SessionDep, ctx: CtxDep) -> DrillOut:
    drill = _drill(session, ctx, drill_id)
    with rules():
        require_role(ctx.principal, EDIT_ROLES, "linking an incident to a drill")
        marking.link_incident(session, drill, incident_id, ctx.actor, ctx.source_ip)
    return drill_out(session, drill)


@router.post("/{drill_id}/actions", response_model=ActionOut, status_code=201, tags=["drills"])
def add_action(drill_id: int, body: ActionIn, session: SessionDep, ctx: CtxDep) -> ActionOut:
    """An improvement action from the drill's evaluation (owner, due date), tracked to closure."""
    drill = _drill(session, ctx, drill_id)
    with rules():
        if body.finding_id is not None:
            raise RuleError("drill actions have no assessment finding", status=422, kind="validation-error")
        action = asvc.add(session, ctx, "drill", drill.id, drill.site, body)
    return asvc.action_out(action, today_vn())


__all__ = ["router"]
