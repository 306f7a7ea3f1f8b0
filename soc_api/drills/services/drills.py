"""Drill plans and drill records: scenario, participants, timeline, minutes, evaluation.

Response times are measured from the timeline (start -> detection -> notification ->
containment -> recovery), and for live drills also from the first real alert raised on a
participant's host, so the report shows what the SOC actually saw, not only what was written down.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from soc_api.db.models import AlertRow, Site
from soc_api.drills.models import Drill, DrillAlert, DrillIncident, DrillPlan, DrillTimelineEntry
from soc_api.drills.schemas import DrillIn, DrillPatch, PlanIn, ResponseTimes, TimelineIn
from soc_api.services import audit, blobs
from soc_api.services.principal import Principal
from soc_api.systems.services import documents as docs
from soc_api.systems.services.access import EDIT_ROLES, require_role, require_site
from soc_api.systems.services.context import Ctx, RuleError

TRANSITIONS = {
    "planned": ("running", "completed", "cancelled"),
    "running": ("completed", "cancelled"),
    "completed": (),
    "cancelled": ("planned",),
}


def _audit(
    session: Session, ctx: Ctx, drill_id: str, action: str, before: Any, after: Any, kind: str = "drill"
) -> None:
    audit.append(
        session,
        actor=ctx.actor,
        action=f"{kind}.{action}",
        object_type=kind,
        object_id=drill_id,
        before=before,
        after=after,
        source_ip=ctx.source_ip,
    )


def _check_site(session: Session, ctx: Ctx, site: str) -> None:
    require_site(ctx.principal, site)
    if session.get(Site, site) is None:
        raise RuleError(f"unknown site {site!r}", status=422, kind="validation-error")


def create_plan(session: Session, ctx: Ctx, body: PlanIn) -> DrillPlan:
    require_role(ctx.principal, EDIT_ROLES, "creating a drill plan")
    _check_site(session, ctx, body.site)
    if session.scalar(select(DrillPlan.id).where(DrillPlan.site == body.site, DrillPlan.year == body.year)):
        raise RuleError(f"site {body.site} already has a drill plan for {body.year}")
    plan = DrillPlan(**body.model_dump(), created_by=ctx.actor)
    session.add(plan)
    session.flush()
    _audit(session, ctx, str(plan.id), "create", None, body.model_dump(), kind="drill_plan")
    return plan


def plans(session: Session, principal: Principal, year: int | None = None) -> list[DrillPlan]:
    q = select(DrillPlan)
    if principal.sites is not None:
        q = q.where(DrillPlan.site.in_(sorted(principal.sites)))
    if year is not None:
        q = q.where(DrillPlan.year == year)
    return list(session.scalars(q.order_by(DrillPlan.year, DrillPlan.site)))


def visible_plan(session: Session, principal: Principal, plan_id: int) -> DrillPlan:
    plan = session.get(DrillPlan, plan_id)
    if plan is None or not principal.sees_site(plan.site):
        raise RuleError("no such drill plan", status=404, kind="not-found")
    return plan


def _view(drill: Drill) -> dict[str, Any]:
    return {
        "title": drill.title,
        "kind": drill.kind,
        "status": drill.status,
        "planned_on": drill.planned_on.isoformat(),
        "started_at": drill.started_at.isoformat() if drill.started_at else None,
        "ended_at": drill.ended_at.isoformat() if drill.ended_at else None,
        "system_ids": list(drill.system_ids or []),
        "participants": list(drill.participants or []),
        "participant_hosts": list(drill.participant_hosts or []),
        "coordination_findings": drill.coordination_findings,
        "open_gaps": list(drill.open_gaps or []),
        "evaluation": drill.evaluation,
    }


def create(session: Session, ctx: Ctx, body: DrillIn) -> Drill:
    require_role(ctx.principal, EDIT_ROLES, "recording a drill")
    _check_site(session, ctx, body.site)
    if body.plan_id is not None:
        plan = visible_plan(session, ctx.principal, body.plan_id)
        if plan.site != body.site:
            raise RuleError("the drill and its plan must belong to the same site", status=422, kind="validation-error")
    values = body.model_dump(mode="json")
    values["planned_on"] = body.planned_on
    drill = Drill(**values, created_by=ctx.actor, open_gaps=[])
    session.add(drill)
    session.flush()
    _audit(session, ctx, str(drill.id), "create", None, _view(drill))
    return drill


def update(session: Session, ctx: Ctx, drill: Drill, patch: DrillPatch) -> Drill:
    require_role(ctx.principal, EDIT_ROLES, "updating a drill")
    before = _view(drill)
    values = patch.model_dump(exclude_unset=True)
    status = values.pop("status", None)
    if status is not None and status != drill.status:
        if status not in TRANSITIONS[drill.status]:
            raise RuleError(f"a {drill.status} drill cannot become {status}", kind="invalid-transition")
        drill.status = status
    if "participants" in values and values["participants"] is not None:
        values["participants"] = [p.model_dump() if hasattr(p, "model_dump") else p for p in values["participants"]]
    for key, value in values.items():
        if value is not None or key in ("started_at", "ended_at"):
            setattr(drill, key, value)
    if drill.started_at and drill.ended_at and drill.ended_at < drill.started_at:
        raise RuleError("a drill cannot end before it starts", status=422, kind="validation-error")
    if drill.status == "completed" and drill.started_at is None:
        raise RuleError("record when the drill started before completing it", status=422, kind="incomplete")
    session.flush()
    _audit(session, ctx, str(drill.id), "update", before, _view(drill))
    return drill


def visible(session: Session, principal: Principal, drill_id: int, *, for_update: bool = False) -> Drill:
    drill = session.get(Drill, drill_id, with_for_update=for_update)
    if drill is None or not principal.sees_site(drill.site):
        raise RuleError("no such drill", status=404, kind="not-found")
    return drill


def listing(session: Session, principal: Principal, plan_id: int | None = None) -> list[Drill]:
    q = select(Drill)
    if principal.sites is not None:
        q = q.where(Drill.site.in_(sorted(principal.sites)))
    if plan_id is not None:
        q = q.where(Drill.plan_id == plan_id)
    return list(session.scalars(q.order_by(Drill.planned_on, Drill.id)))


def add_timeline(session: Session, ctx: Ctx, drill: Drill, body: TimelineIn) -> DrillTimelineEntry:
    require_role(ctx.principal, EDIT_ROLES, "recording the drill timeline")
    entry = DrillTimelineEntry(drill_id=drill.id, **body.model_dump(), created_by=ctx.actor)
    session.add(entry)
    session.flush()
    _audit(session, ctx, str(drill.id), "timeline_add", None, body.model_dump(mode="json"))
    return entry


def timeline(session: Session, drill_id: int) -> list[DrillTimelineEntry]:
    q = select(DrillTimelineEntry).where(DrillTimelineEntry.drill_id == drill_id)
    return list(session.scalars(q.order_by(DrillTimelineEntry.at, DrillTimelineEntry.id)))


def _minutes_between(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None:
        return None
    return round((b - a).total_seconds() / 60, 1)


def response_times(session: Session, drill: Drill) -> ResponseTimes:
    first: dict[str, datetime] = {}
    for entry in timeline(session, drill.id):
        first.setdefault(entry.phase, entry.at)
    start = first.get("start") or drill.started_at
    detected = first.get("detection")
    first_alert = session.scalar(
        select(func.min(AlertRow.timestamp))
        .join(DrillAlert, DrillAlert.alert_id == AlertRow.id)
        .where(DrillAlert.drill_id == drill.id)
    )
    return ResponseTimes(
        time_to_detect=_minutes_between(start, detected),
        time_to_notify=_minutes_between(detected, first.get("notification")),
        time_to_contain=_minutes_between(detected, first.get("containment")),
        time_to_recover=_minutes_between(start, first.get("recovery")),
        first_drill_alert_after=_minutes_between(start, first_alert),
    )


def upload_minutes(session: Session, ctx: Ctx, drill: Drill, filename: str, content_type: str, data: bytes) -> str:
    """Store the signed minutes (biên bản) content-addressed; the SHA-256 proves what was filed."""
    require_role(ctx.principal, EDIT_ROLES, "uploading drill minutes")
    media = docs.check_content(ctx, content_type, data)
    digest = blobs.store_blob(docs.storage_root(ctx), data)
    before = {"minutes_sha256": drill.minutes_sha256}
    drill.minutes_filename = docs._SAFE_NAME.sub("_", filename)[:255] or "minutes"
    drill.minutes_content_type = media
    drill.minutes_size = len(data)
    drill.minutes_sha256 = digest
    session.flush()
    _audit(session, ctx, str(drill.id), "minutes_upload", before, {"minutes_sha256": digest, "size": len(data)})
    return digest


def read_minutes(ctx: Ctx, drill: Drill) -> bytes:
    if drill.minutes_sha256 is None:
        raise RuleError("no minutes uploaded", status=404, kind="not-found")
    data = docs.blob_path(ctx, drill.minutes_sha256).read_bytes()
    if hashlib.sha256(data).hexdigest() != drill.minutes_sha256:
        raise RuleError("the stored minutes no longer match their SHA-256", status=500, kind="integrity")
    return data


def linked_alert_ids(session: Session, drill_id: int) -> list[str]:
    q = select(DrillAlert.alert_id).where(DrillAlert.drill_id == drill_id).order_by(DrillAlert.alert_id)
    return list(session.scalars(q))


def linked_incident_ids(session: Session, drill_id: int) -> list[int]:
    q = select(DrillIncident.incident_id).where(DrillIncident.drill_id == drill_id)
    return list(session.scalars(q.order_by(DrillIncident.incident_id)))
