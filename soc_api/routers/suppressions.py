"""``/api/v1/suppressions``: silence known-benign alerts, always with a reason and an expiry.

Conditions are limited to the fields :mod:`soc_api.services.suppression` understands (alert
attributes or dotted ECS paths of the events) with at most 20 values each. There is no version
column, so the ETag is a hash of the rule's content; updates honour ``If-Match`` with it.
Every change is audited in the request's transaction.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import or_, select

from soc_api.db.models import Suppression
from soc_api.deps import SessionDep, client_ip, require
from soc_api.incidents import pagination
from soc_api.problems import Problem
from soc_api.services import audit
from soc_api.services.principal import ALERTS_READ, SUPPRESSIONS_MANAGE, Principal
from soc_common.ecs import iso, utc_now

router = APIRouter(prefix="/api/v1/suppressions", tags=["suppressions"])
Reader = Annotated[Principal, Depends(require(ALERTS_READ))]
Manager = Annotated[Principal, Depends(require(SUPPRESSIONS_MANAGE))]
MAX_LIFETIME = timedelta(days=366)
PROBLEMS: dict[int | str, dict[str, object]] = {
    401: {"description": "Not authenticated"},
    403: {"description": "Missing permission"},
    404: {"description": "No such suppression"},
    412: {"description": "Stale If-Match"},
    422: {"description": "Invalid input"},
}
ConditionValue = Annotated[str, Field(max_length=255)] | list[Annotated[str, Field(max_length=255)]]
FIELD_NAME = r"^[a-z_][a-z0-9_]*(\.[a-z0-9_@-]+)*$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_conditions(value: dict[str, Any] | None) -> dict[str, Any] | None:
    import re

    if value is None:
        return None
    for name, expected in value.items():
        if len(name) > 128 or not re.match(FIELD_NAME, name):
            raise ValueError(f"condition field {name[:40]!r} is not a field name")
        if isinstance(expected, list) and not 1 <= len(expected) <= 20:
            raise ValueError(f"condition {name}: 1 to 20 values")
    return value


class SuppressionIn(_In):
    rule_id: str | None = Field(default=None, max_length=128)
    conditions: dict[str, ConditionValue] = Field(default_factory=dict, max_length=20)
    reason: str = Field(min_length=5, max_length=2000)
    expires_at: AwareDatetime

    _conds = field_validator("conditions")(_check_conditions)


class SuppressionPatch(_In):
    reason: str | None = Field(default=None, min_length=5, max_length=2000)
    expires_at: AwareDatetime | None = None
    conditions: dict[str, ConditionValue] | None = Field(default=None, max_length=20)

    _conds = field_validator("conditions")(_check_conditions)


class SuppressionOut(BaseModel):
    id: int
    rule_id: str | None
    conditions: dict[str, Any]
    reason: str
    expires_at: datetime | None
    expired: bool
    created_by: str
    created_at: datetime
    hit_count: int
    last_hit_at: datetime | None

    @classmethod
    def of(cls, s: Suppression) -> SuppressionOut:
        expired = s.expires_at is not None and s.expires_at <= utc_now()
        return cls(
            id=s.id, rule_id=s.rule_id, conditions=dict(s.conditions or {}), reason=s.reason, expires_at=s.expires_at,
            expired=expired, created_by=s.created_by, created_at=s.created_at, hit_count=s.hit_count or 0,
            last_hit_at=s.last_hit_at,
        )  # fmt: skip


class SuppressionList(BaseModel):
    items: list[SuppressionOut]
    next_cursor: str | None


def _state(s: Suppression) -> dict[str, Any]:
    return {"rule_id": s.rule_id, "conditions": dict(s.conditions or {}), "reason": s.reason,
            "expires_at": iso(s.expires_at) if s.expires_at else None}  # fmt: skip


def etag(s: Suppression) -> str:
    digest = hashlib.sha256(json.dumps(_state(s), sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return f'"{digest[:32]}"'


def _expiry(value: datetime) -> datetime:
    now = utc_now()
    if value <= now:
        raise Problem(422, "expires_at must be in the future", kind="validation-error")
    if value - now > MAX_LIFETIME:
        raise Problem(422, "a suppression may last at most 366 days; renew it with a reason", kind="validation-error")
    return value


def _get(session: SessionDep, suppression_id: int) -> Suppression:
    row = session.get(Suppression, suppression_id)
    if row is None:
        raise Problem(404, "no such suppression", kind="not-found")
    return row


def _audit(request: Request, session: SessionDep, p: Principal, action: str, row: Suppression,
           before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:  # fmt: skip
    audit.append(session, actor=p.name, action=f"suppression.{action}", object_type="suppression",
                 object_id=str(row.id), before=before, after=after, source_ip=client_ip(request))  # fmt: skip


@router.get("", response_model=SuppressionList, summary="List suppressions (newest first)", responses=PROBLEMS)
def list_suppressions(
    session: SessionDep, principal: Reader, include_expired: bool = False,
    rule_id: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100, cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> SuppressionList:  # fmt: skip
    stmt = select(Suppression)
    if not include_expired:
        stmt = stmt.where(or_(Suppression.expires_at.is_(None), Suppression.expires_at > utc_now()))
    if rule_id:
        stmt = stmt.where(Suppression.rule_id == rule_id)
    try:
        rows, nxt = pagination.page(session, stmt, [Suppression.id], lambda s: [s.id], tag="suppressions",
                                    decoders=[int], limit=limit, cursor=cursor)  # fmt: skip
    except pagination.CursorError as exc:
        raise Problem(400, str(exc), kind="bad-cursor") from None
    return SuppressionList(items=[SuppressionOut.of(s) for s in rows], next_cursor=nxt)


@router.post("", response_model=SuppressionOut, status_code=201, summary="Create a suppression", responses=PROBLEMS)
def create_suppression(
    body: SuppressionIn, request: Request, response: Response, session: SessionDep, principal: Manager
) -> SuppressionOut:
    row = Suppression(rule_id=body.rule_id, conditions=dict(body.conditions), reason=body.reason,
                      expires_at=_expiry(body.expires_at), created_by=principal.name, hit_count=0)  # fmt: skip
    session.add(row)
    session.flush()
    _audit(request, session, principal, "create", row, None, _state(row))
    response.headers["ETag"] = etag(row)
    return SuppressionOut.of(row)


@router.get("/{suppression_id}", response_model=SuppressionOut, summary="One suppression", responses=PROBLEMS)
def get_suppression(suppression_id: int, response: Response, session: SessionDep, principal: Reader) -> SuppressionOut:
    row = _get(session, suppression_id)
    response.headers["ETag"] = etag(row)
    return SuppressionOut.of(row)


def _check_if_match(request: Request, row: Suppression) -> None:
    value = request.headers.get("if-match")
    if value is not None and value.strip()[:100] not in ("*", etag(row)):
        raise Problem(412, "changed since you read it; reload and retry", kind="stale", etag=etag(row))


@router.patch("/{suppression_id}", response_model=SuppressionOut, summary="Renew or edit (reason required to renew)",
              responses=PROBLEMS)  # fmt: skip
def patch_suppression(
    suppression_id: int, body: SuppressionPatch, request: Request, response: Response, session: SessionDep,
    principal: Manager,
) -> SuppressionOut:  # fmt: skip
    row = session.get(Suppression, suppression_id, with_for_update=True) or _get(session, suppression_id)
    _check_if_match(request, row)
    if body.expires_at is not None and body.reason is None:
        raise Problem(422, "changing the expiry needs a new reason", kind="validation-error")
    before = _state(row)
    if body.reason is not None:
        row.reason = body.reason
    if body.expires_at is not None:
        row.expires_at = _expiry(body.expires_at)
    if body.conditions is not None:
        row.conditions = dict(body.conditions)
    session.flush()
    _audit(request, session, principal, "update", row, before, _state(row))
    response.headers["ETag"] = etag(row)
    return SuppressionOut.of(row)


@router.delete("/{suppression_id}", status_code=204, summary="Delete a suppression", responses=PROBLEMS)
def delete_suppression(suppression_id: int, request: Request, session: SessionDep, principal: Manager) -> Response:
    row = _get(session, suppression_id)
    _check_if_match(request, row)
    _audit(request, session, principal, "delete", row, _state(row), None)
    session.delete(row)
    return Response(status_code=204)
