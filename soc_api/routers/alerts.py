"""Alert triage endpoints.

Every change runs in the request's transaction together with its audit entry. Updates honour
``If-Match`` (the ``ETag`` is the row version): a stale tag gets 412, and a concurrent change
detected by the version column gets 409, so two officers never silently overwrite each other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from soc_api.db.models import ALERT_STATUSES, SEVERITIES, AlertRow
from soc_api.deps import SessionDep, StateDep, client_ip, require
from soc_api.problems import Problem
from soc_api.schemas.alerts import (
    AlertDetail,
    AlertList,
    AlertOut,
    AssignIn,
    BulkIn,
    BulkItem,
    BulkOut,
    CloseIn,
    CommentIn,
    CommentOut,
)
from soc_api.services import alerts as svc
from soc_api.services.principal import ALERTS_COMMENT, ALERTS_READ, ALERTS_TRIAGE, Principal
from soc_api.state import AppState

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

Reader = Annotated[Principal, Depends(require(ALERTS_READ))]
Triager = Annotated[Principal, Depends(require(ALERTS_TRIAGE))]
Commenter = Annotated[Principal, Depends(require(ALERTS_COMMENT))]
Values = Annotated[list[str], Query(max_length=50)]


def etag(row: AlertRow) -> str:
    return f'"v{row.version}"'


def _check_values(name: str, values: list[str], allowed: tuple[str, ...]) -> None:
    bad = [v for v in values if v not in allowed]
    if bad:
        raise Problem(422, f"{name}: unknown value(s) {', '.join(bad)[:200]}", kind="validation-error")


@router.get("", response_model=AlertList)
def list_alerts(
    session: SessionDep,
    state: StateDep,
    principal: Reader,
    status: Values = [],  # noqa: B006 - FastAPI reads the default, never mutates it
    severity: Values = [],  # noqa: B006
    rule_id: Values = [],  # noqa: B006
    technique: Values = [],  # noqa: B006
    host: Values = [],  # noqa: B006
    user: Values = [],  # noqa: B006
    site: Values = [],  # noqa: B006
    zone: Values = [],  # noqa: B006
    system_id: Values = [],  # noqa: B006
    assignee: Annotated[str | None, Query(max_length=64)] = None,
    start: datetime | None = None,
    end: datetime | None = None,
    include_drill: bool = True,
    sort: svc.SortKey = "-timestamp",
    limit: Annotated[int, Query(ge=1, le=5000)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> AlertList:
    _check_values("status", status, ALERT_STATUSES)
    _check_values("severity", severity, SEVERITIES)
    for values in (rule_id, technique, host, user, site, zone, system_id):
        if any(len(v) > 255 for v in values):
            raise Problem(422, "filter value longer than 255 characters", kind="validation-error")
    for bound in (start, end):
        if bound is not None and bound.tzinfo is None:
            raise Problem(422, "start/end need a time zone (for example 2025-01-31T00:00:00Z)", kind="validation-error")
    limit = min(limit, state.config.alerts.page_size_max)
    flt = svc.AlertFilter(
        status=status, severity=severity, rule_id=rule_id, technique=technique, host=host, user=user,
        site=site, zone=zone, system_id=system_id, assignee=assignee, start=start, end=end,
        include_drill=include_drill,
    )  # fmt: skip
    try:
        page = svc.list_alerts(session, principal, flt, sort=sort, limit=limit, cursor=cursor)
    except (ValueError, TypeError, KeyError) as exc:
        raise Problem(400, f"bad cursor: {exc}"[:200], kind="bad-cursor") from None
    return AlertList(items=[AlertOut.of(r) for r in page.items], next_cursor=page.next_cursor)


def _raw_events(state: AppState, row: AlertRow) -> list[dict[str, Any]] | None:
    if state.store is None or not row.event_ids:
        return None
    try:
        return state.store.get(list(row.event_ids))
    except Exception:  # the detail page still works when the store is down
        log.warning("event store unavailable for alert %s", row.id, exc_info=True)
        return None


def _visible(session: Session, principal: Principal, alert_id: str, *, for_update: bool = False) -> AlertRow:
    if len(alert_id) > 64:
        raise Problem(404, "no such alert", kind="not-found")
    row = svc.get_visible(session, principal, alert_id, for_update=for_update)
    if row is None:
        raise Problem(404, "no such alert", kind="not-found")
    return row


@router.get("/{alert_id}", response_model=AlertDetail)
def get_alert(
    alert_id: str, response: Response, session: SessionDep, state: StateDep, principal: Reader
) -> AlertDetail:
    row = _visible(session, principal, alert_id)
    base = AlertOut.of(row).model_dump()
    response.headers["ETag"] = etag(row)
    return AlertDetail(
        **base,
        source=row.source,
        rule_level=row.rule_level,
        rule_tags=list(row.rule_tags or []),
        group_key=row.group_key,
        event_ids=list(row.event_ids or []),
        events=list(row.events or []),
        explanation=dict(row.explanation or {}),
        close_note=row.close_note,
        raw_events=_raw_events(state, row),
        related=[AlertOut.of(r) for r in svc.related(session, principal, row)],
        comments=[CommentOut.of(c) for c in svc.comments(session, row.id)],
    )


def _mutate(
    request: Request,
    session: Session,
    principal: Principal,
    alert_id: str,
    change: Callable[[svc.Actor, AlertRow], None],
    *,
    if_match: str | None,
) -> AlertRow:
    row = _visible(session, principal, alert_id, for_update=True)
    if if_match is not None and if_match.strip() not in ("*", etag(row)):
        raise Problem(412, "the alert changed since you read it; reload and retry", kind="stale", etag=etag(row))
    try:
        change(svc.Actor(principal, client_ip(request)), row)
        session.flush()
    except svc.TriageError as exc:
        raise Problem(409, str(exc), kind="invalid-transition") from None
    except StaleDataError:
        raise Problem(409, "the alert was changed concurrently; reload and retry", kind="conflict") from None
    return row


def _respond(row: AlertRow, response: Response) -> AlertOut:
    response.headers["ETag"] = etag(row)
    return AlertOut.of(row)


def _if_match(request: Request) -> str | None:
    value = request.headers.get("if-match")
    return value[:100] if value else None


@router.post("/{alert_id}/acknowledge", response_model=AlertOut)
def acknowledge(
    alert_id: str, request: Request, response: Response, session: SessionDep, principal: Triager
) -> AlertOut:
    row = _mutate(
        request,
        session,
        principal,
        alert_id,
        lambda a, r: svc.acknowledge(session, a, r),
        if_match=_if_match(request),
    )
    return _respond(row, response)


@router.post("/{alert_id}/assign", response_model=AlertOut)
def assign(
    alert_id: str,
    body: AssignIn,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Triager,
) -> AlertOut:
    row = _mutate(
        request, session, principal, alert_id, lambda a, r: svc.assign(session, a, r, body.assignee),
        if_match=_if_match(request),
    )  # fmt: skip
    return _respond(row, response)


@router.post("/{alert_id}/close", response_model=AlertOut)
def close(
    alert_id: str,
    body: CloseIn,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Triager,
) -> AlertOut:
    row = _mutate(
        request, session, principal, alert_id, lambda a, r: svc.close(session, a, r, body.reason, body.note),
        if_match=_if_match(request),
    )  # fmt: skip
    return _respond(row, response)


@router.post("/{alert_id}/reopen", response_model=AlertOut)
def reopen(alert_id: str, request: Request, response: Response, session: SessionDep, principal: Triager) -> AlertOut:
    row = _mutate(
        request,
        session,
        principal,
        alert_id,
        lambda a, r: svc.reopen(session, a, r),
        if_match=_if_match(request),
    )
    return _respond(row, response)


@router.post("/{alert_id}/comment", response_model=CommentOut, status_code=201)
def comment(alert_id: str, body: CommentIn, request: Request, session: SessionDep, principal: Commenter) -> CommentOut:
    row = _visible(session, principal, alert_id)
    created = svc.add_comment(session, svc.Actor(principal, client_ip(request)), row, body.body)
    return CommentOut.of(created)


@router.post("/bulk", response_model=BulkOut)
def bulk(body: BulkIn, request: Request, session: SessionDep, state: StateDep, principal: Triager) -> BulkOut:
    """Apply one action to many alerts; each alert succeeds or fails on its own (savepoints)."""
    if len(body.ids) > state.config.alerts.bulk_max:
        raise Problem(413, f"at most {state.config.alerts.bulk_max} alerts per request", kind="too-many")
    if body.action == "close" and body.reason is None:
        raise Problem(422, "close needs a reason", kind="validation-error")
    actor = svc.Actor(principal, client_ip(request))
    results: list[BulkItem] = []
    for alert_id in dict.fromkeys(body.ids):
        row = svc.get_visible(session, principal, alert_id[:64], for_update=True) if len(alert_id) <= 64 else None
        if row is None:
            results.append(BulkItem(id=alert_id[:64], ok=False, status=404, detail="no such alert"))
            continue
        try:
            with session.begin_nested():
                if body.action == "acknowledge":
                    svc.acknowledge(session, actor, row)
                elif body.action == "assign":
                    svc.assign(session, actor, row, body.assignee)
                else:
                    svc.close(session, actor, row, body.reason or "benign", body.note)
            results.append(BulkItem(id=alert_id, ok=True, status=200))
        except svc.TriageError as exc:
            session.refresh(row)
            results.append(BulkItem(id=alert_id, ok=False, status=409, detail=str(exc)))
    return BulkOut(results=results)
