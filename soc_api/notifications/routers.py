"""``/api/v1/notifications/outbox``: what was sent, what is retrying, what gave up (admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import select

from soc_api.deps import SessionDep, client_ip, require
from soc_api.incidents import pagination
from soc_api.notifications.models import OutboxMessage
from soc_api.problems import Problem
from soc_api.services import audit
from soc_api.services.principal import NOTIFICATIONS_MANAGE, Principal
from soc_common.ecs import utc_now

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])
Admin = Annotated[Principal, Depends(require(NOTIFICATIONS_MANAGE))]
PROBLEMS: dict[int | str, dict[str, object]] = {
    401: {"description": "Not authenticated"},
    403: {"description": "Needs notifications:manage"},
    404: {"description": "No such message"},
    409: {"description": "Only a dead message can be retried"},
}


class OutboxOut(BaseModel):
    id: int
    channel: str
    target: str
    kind: str
    subject: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None

    @classmethod
    def of(cls, m: OutboxMessage) -> OutboxOut:
        return cls(
            id=m.id, channel=m.channel, target=m.target, kind=m.kind, subject=m.subject, state=m.state,
            attempts=m.attempts, next_attempt_at=m.next_attempt_at, last_error=m.last_error, created_at=m.created_at,
            sent_at=m.sent_at,
        )  # fmt: skip


class OutboxList(BaseModel):
    items: list[OutboxOut]
    next_cursor: str | None


@router.get("/outbox", response_model=OutboxList, summary="Outbox messages, newest first", responses=PROBLEMS)
def list_outbox(
    session: SessionDep, principal: Admin, state: Literal["pending", "sent", "dead"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100, cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> OutboxList:  # fmt: skip
    stmt = select(OutboxMessage)
    if state is not None:
        stmt = stmt.where(OutboxMessage.state == state)
    try:
        rows, nxt = pagination.page(session, stmt, [OutboxMessage.id], lambda m: [m.id], tag="outbox",
                                    decoders=[int], limit=limit, cursor=cursor)  # fmt: skip
    except pagination.CursorError as exc:
        raise Problem(400, str(exc), kind="bad-cursor") from None
    return OutboxList(items=[OutboxOut.of(m) for m in rows], next_cursor=nxt)


@router.post("/outbox/{message_id}/retry", response_model=OutboxOut, summary="Retry a dead message now",
             responses=PROBLEMS)  # fmt: skip
def retry(message_id: int, request: Request, session: SessionDep, principal: Admin) -> OutboxOut:
    row = session.get(OutboxMessage, message_id)
    if row is None:
        raise Problem(404, "no such message", kind="not-found")
    if row.state != "dead":
        raise Problem(409, f"message is {row.state}", kind="not-dead")
    row.state, row.attempts, row.next_attempt_at = "pending", 0, utc_now()
    audit.append(session, actor=principal.name, action="notification.retry", object_type="notification",
                 object_id=str(row.id), after={"state": "pending"}, source_ip=client_ip(request))  # fmt: skip
    return OutboxOut.of(row)
