"""Improvement actions from assessment findings and drills, tracked to closure.

Closing needs a date and is audited; an action is overdue while open after its due date, which
the KPIs count and the reminders chase.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.assessments.models import ImprovementAction
from soc_api.assessments.schemas import ActionClose, ActionIn, ActionOut
from soc_api.services import audit
from soc_api.services.principal import Principal
from soc_api.systems.services.access import EDIT_ROLES, require_role
from soc_api.systems.services.context import Ctx, RuleError


def _view(action: ImprovementAction) -> dict[str, Any]:
    return {
        "title": action.title,
        "owner": action.owner,
        "due_date": action.due_date.isoformat(),
        "closed_on": action.closed_on.isoformat() if action.closed_on else None,
        "closure_note": action.closure_note,
    }


def action_out(action: ImprovementAction, today: date) -> ActionOut:
    return ActionOut(
        id=action.id,
        source_type=action.source_type,
        source_id=action.source_id,
        finding_id=action.finding_id,
        site=action.site,
        title=action.title,
        owner=action.owner,
        due_date=action.due_date,
        closed_on=action.closed_on,
        closed_by=action.closed_by,
        closure_note=action.closure_note,
        overdue=action.overdue(today),
        version=action.version,
    )


def add(session: Session, ctx: Ctx, source_type: str, source_id: int, site: str, body: ActionIn) -> ImprovementAction:
    require_role(ctx.principal, EDIT_ROLES, "recording an improvement action")
    action = ImprovementAction(
        source_type=source_type,
        source_id=source_id,
        finding_id=body.finding_id,
        site=site,
        title=body.title,
        owner=body.owner,
        due_date=body.due_date,
        created_by=ctx.actor,
        closure_note="",
    )
    session.add(action)
    session.flush()
    audit.append(
        session,
        actor=ctx.actor,
        action="improvement_action.create",
        object_type="improvement_action",
        object_id=str(action.id),
        after={"source": f"{source_type}/{source_id}", **_view(action)},
        source_ip=ctx.source_ip,
    )
    return action


def for_source(session: Session, source_type: str, source_id: int) -> list[ImprovementAction]:
    q = select(ImprovementAction).where(
        ImprovementAction.source_type == source_type, ImprovementAction.source_id == source_id
    )
    return list(session.scalars(q.order_by(ImprovementAction.id)))


def visible(session: Session, principal: Principal, action_id: int, *, for_update: bool = False) -> ImprovementAction:
    action = session.get(ImprovementAction, action_id, with_for_update=for_update)
    if action is None or not principal.sees_site(action.site):
        raise RuleError("no such improvement action", status=404, kind="not-found")
    return action


def close(session: Session, ctx: Ctx, action: ImprovementAction, body: ActionClose) -> ImprovementAction:
    require_role(ctx.principal, EDIT_ROLES, "closing an improvement action")
    if action.closed_on is not None:
        raise RuleError(f"action {action.id} was closed on {action.closed_on.isoformat()}", kind="invalid-transition")
    before = _view(action)
    action.closed_on = body.closed_on
    action.closed_by = ctx.actor
    action.closure_note = body.note
    session.flush()
    audit.append(
        session,
        actor=ctx.actor,
        action="improvement_action.close",
        object_type="improvement_action",
        object_id=str(action.id),
        before=before,
        after=_view(action),
        source_ip=ctx.source_ip,
    )
    return action


def listing(
    session: Session, principal: Principal, *, open_only: bool = False, overdue_on: date | None = None
) -> list[ImprovementAction]:
    q = select(ImprovementAction)
    if principal.sites is not None:
        q = q.where(ImprovementAction.site.in_(sorted(principal.sites)))
    if open_only or overdue_on is not None:
        q = q.where(ImprovementAction.closed_on.is_(None))
    if overdue_on is not None:
        q = q.where(ImprovementAction.due_date < overdue_on)
    return list(session.scalars(q.order_by(ImprovementAction.due_date, ImprovementAction.id)))
