"""HTTP endpoints: ``/api/v1/notifications`` (the caller's own reminders; mark as read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from soc_api.deps import SessionDep, current_principal
from soc_api.problems import Problem
from soc_api.reminders.models import Notification
from soc_api.reminders.schemas import NotificationOut
from soc_api.services.principal import Principal
from soc_common.ecs import utc_now

router = APIRouter(prefix="/api/v1/notifications")
PrincipalDep = Annotated[Principal, Depends(current_principal)]


def _user_id(principal: Principal) -> int:
    if principal.user_id is None:
        raise Problem(403, "notifications belong to user accounts", kind="forbidden")
    return principal.user_id


def out(n: Notification) -> NotificationOut:
    return NotificationOut(
        id=n.id,
        kind=n.kind,
        site=n.site,
        title=n.title,
        body=n.body,
        due_date=n.due_date,
        object_type=n.object_type,
        object_id=n.object_id,
        created_at=n.created_at,
        read_at=n.read_at,
        emailed=n.emailed_at is not None,
    )


@router.get("", response_model=list[NotificationOut], tags=["notifications"])
def list_notifications(
    session: SessionDep,
    principal: PrincipalDep,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[NotificationOut]:
    q = select(Notification).where(Notification.user_id == _user_id(principal))
    if unread:
        q = q.where(Notification.read_at.is_(None))
    return [out(n) for n in session.scalars(q.order_by(Notification.id.desc()).limit(limit))]


@router.post("/{notification_id}/read", response_model=NotificationOut, tags=["notifications"])
def mark_read(notification_id: int, session: SessionDep, principal: PrincipalDep) -> NotificationOut:
    n = session.get(Notification, notification_id)
    if n is None or n.user_id != _user_id(principal):
        raise Problem(404, "no such notification", kind="not-found")
    if n.read_at is None:
        n.read_at = utc_now()
        session.flush()
    return out(n)


__all__ = ["router"]
