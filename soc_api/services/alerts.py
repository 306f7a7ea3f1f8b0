"""Alert triage: filtered keyset-paginated listing, detail, and state changes with audit.

Listing uses keyset pagination (the cursor encodes the sort key of the last row), so page 5,000 of
a million alerts costs the same index range scan as page 1, and rows inserted meanwhile never
shift or repeat a page.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, exists, false, or_, select, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import UnaryExpression

from soc_api.db.models import AlertComment, AlertRow, AlertTechnique, User
from soc_api.services import audit
from soc_api.services.principal import Principal, expand_site_scope
from soc_common.ecs import iso, parse_ts, utc_now

SortKey = Literal["-timestamp", "timestamp", "-severity", "severity", "-last_seen"]
TRANSITIONS: dict[str, frozenset[str]] = {
    "acknowledge": frozenset({"new"}),
    "start": frozenset({"new", "acknowledged"}),
    "close": frozenset({"new", "acknowledged", "in_progress"}),
    "reopen": frozenset({"closed"}),
}


class TriageError(Exception):
    """A state change that is not allowed (the API answers 409)."""


@dataclass
class AlertFilter:
    status: list[str] = field(default_factory=list)
    severity: list[str] = field(default_factory=list)
    rule_id: list[str] = field(default_factory=list)
    technique: list[str] = field(default_factory=list)
    host: list[str] = field(default_factory=list)
    user: list[str] = field(default_factory=list)
    site: list[str] = field(default_factory=list)
    zone: list[str] = field(default_factory=list)
    system_id: list[str] = field(default_factory=list)
    assignee: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    include_drill: bool = True


def scope_clause(principal: Principal) -> ColumnElement[bool] | None:
    if principal.sites is None:
        return None
    if not principal.sites:
        return false()
    return AlertRow.site.in_(sorted(principal.sites))


def _conditions(f: AlertFilter, principal: Principal, *, technique: bool = True) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    scope = scope_clause(principal)
    if scope is not None:
        conds.append(scope)
    for column, values in (
        (AlertRow.status, f.status),
        (AlertRow.severity, f.severity),
        (AlertRow.rule_id, f.rule_id),
        (AlertRow.host_name, f.host),
        (AlertRow.user_name, f.user),
        (AlertRow.site, f.site),
        (AlertRow.zone, f.zone),
        (AlertRow.system_id, f.system_id),
    ):
        if values:
            conds.append(column.in_(values))
    if technique and f.technique:
        conds.append(exists().where(AlertTechnique.alert_id == AlertRow.id, AlertTechnique.technique.in_(f.technique)))
    if f.assignee:
        conds.append(AlertRow.assignee.has(User.username == f.assignee))
    if f.start is not None:
        conds.append(AlertRow.timestamp >= f.start)
    if f.end is not None:
        conds.append(AlertRow.timestamp < f.end)
    if not f.include_drill:
        conds.append(AlertRow.drill.is_(False))
    return conds


def _sort_columns(sort: SortKey, *, by_technique: bool = False) -> tuple[list[Any], bool]:
    """Columns of the keyset and whether it runs descending (all columns share the direction).

    ``by_technique``: the time order is read from ``alert_techniques`` (same values, its index).
    """
    descending = sort.startswith("-")
    name = sort.lstrip("-")
    if name == "severity":
        return [AlertRow.severity_rank, AlertRow.timestamp, AlertRow.id], descending
    if name == "last_seen":
        return [AlertRow.last_seen, AlertRow.id], descending
    if by_technique:
        return [AlertTechnique.timestamp, AlertTechnique.alert_id], descending
    return [AlertRow.timestamp, AlertRow.id], descending


def _key_of(row: AlertRow, sort: SortKey) -> list[Any]:
    name = sort.lstrip("-")
    if name == "severity":
        return [row.severity_rank, iso_us(row.timestamp), row.id]
    if name == "last_seen":
        return [iso_us(row.last_seen), row.id]
    return [iso_us(row.timestamp), row.id]


def iso_us(ts: datetime) -> str:
    return ts.isoformat()


def encode_cursor(sort: SortKey, key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"s": sort, "k": key}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: SortKey) -> list[Any]:
    """Raises ValueError on anything that is not a cursor we issued for this sort."""
    raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    if not isinstance(raw, dict) or raw.get("s") != sort or not isinstance(raw.get("k"), list):
        raise ValueError("cursor does not belong to this sort order")
    key = raw["k"]
    severity = sort.lstrip("-") == "severity"
    if len(key) != (3 if severity else 2):
        raise ValueError("cursor has the wrong shape")
    out: list[Any] = [int(key.pop(0))] if severity else []
    return [*out, parse_ts(str(key[0])), str(key[1])]


@dataclass
class AlertPage:
    items: list[AlertRow]
    next_cursor: str | None


def list_alerts(
    session: Session,
    principal: Principal,
    f: AlertFilter,
    *,
    sort: SortKey = "-timestamp",
    limit: int = 50,
    cursor: str | None = None,
) -> AlertPage:
    # One technique, time order: drive the query from the (technique, timestamp) index.
    by_technique = len(f.technique) == 1 and sort.lstrip("-") == "timestamp"
    cols, descending = _sort_columns(sort, by_technique=by_technique)
    conds = _conditions(f, principal, technique=not by_technique)
    stmt = select(AlertRow)
    if by_technique:
        stmt = stmt.join(AlertTechnique, AlertTechnique.alert_id == AlertRow.id)
        conds.append(AlertTechnique.technique == f.technique[0])
    if cursor:
        key = decode_cursor(cursor, sort)
        conds.append(tuple_(*cols) < tuple_(*key) if descending else tuple_(*cols) > tuple_(*key))
    order: list[UnaryExpression[Any]] = [c.desc() if descending else c.asc() for c in cols]
    stmt = stmt.where(*conds).order_by(*order).limit(limit + 1)
    rows = list(session.scalars(stmt).unique())
    next_cursor = encode_cursor(sort, _key_of(rows[limit - 1], sort)) if len(rows) > limit else None
    return AlertPage(rows[:limit], next_cursor)


def get_visible(session: Session, principal: Principal, alert_id: str, *, for_update: bool = False) -> AlertRow | None:
    """The alert if it exists and the caller's site scope covers it (else None: no existence leak)."""
    stmt = select(AlertRow).where(AlertRow.id == alert_id)
    if for_update:
        stmt = stmt.with_for_update(of=AlertRow)
    row = session.scalars(stmt).unique().one_or_none()
    if row is None or not principal.sees_site(row.site):
        return None
    return row


def related(session: Session, principal: Principal, row: AlertRow, limit: int = 20) -> list[AlertRow]:
    """Other alerts on the same host, user or rule, newest first."""
    same: list[ColumnElement[bool]] = [AlertRow.rule_id == row.rule_id]
    if row.host_name:
        same.append(AlertRow.host_name == row.host_name)
    if row.user_name:
        same.append(AlertRow.user_name == row.user_name)
    conds: list[ColumnElement[bool]] = [AlertRow.id != row.id, or_(*same)]
    scope = scope_clause(principal)
    if scope is not None:
        conds.append(scope)
    stmt = select(AlertRow).where(*conds).order_by(AlertRow.timestamp.desc(), AlertRow.id.desc()).limit(limit)
    return list(session.scalars(stmt).unique())


def comments(session: Session, alert_id: str) -> list[AlertComment]:
    stmt = select(AlertComment).where(AlertComment.alert_id == alert_id).order_by(AlertComment.id)
    return list(session.scalars(stmt))


def triage_state(row: AlertRow) -> dict[str, Any]:
    """The mutable part of an alert, as recorded in the audit log's before/after."""
    return {
        "status": row.status,
        "assignee": row.assignee.username if row.assignee else None,
        "close_reason": row.close_reason,
        "close_note": row.close_note,
        "acknowledged_at": iso(row.acknowledged_at) if row.acknowledged_at else None,
        "closed_at": iso(row.closed_at) if row.closed_at else None,
    }


@dataclass(frozen=True)
class Actor:
    principal: Principal
    source_ip: str | None


def _audited(session: Session, actor: Actor, row: AlertRow, action: str, before: dict[str, Any]) -> None:
    session.flush()
    audit.append(
        session,
        actor=actor.principal.name,
        action=f"alert.{action}",
        object_type="alert",
        object_id=row.id,
        before=before,
        after=triage_state(row),
        source_ip=actor.source_ip,
    )


def _require(row: AlertRow, action: str) -> None:
    if row.status not in TRANSITIONS[action]:
        raise TriageError(f"cannot {action} an alert that is {row.status}")


def acknowledge(session: Session, actor: Actor, row: AlertRow) -> None:
    before = triage_state(row)
    _require(row, "acknowledge")
    row.status = "acknowledged"
    row.acknowledged_at = utc_now()
    _audited(session, actor, row, "acknowledge", before)


def assign(session: Session, actor: Actor, row: AlertRow, username: str | None) -> None:
    before = triage_state(row)
    if row.status == "closed":
        raise TriageError("cannot assign a closed alert")
    if username is None:
        row.assignee_id = None
        row.assignee = None
    else:
        user = session.scalar(select(User).where(User.username == username, User.is_active.is_(True)))
        if user is None:
            raise TriageError(f"no active user {username!r}")
        if user.role not in ("admin", "officer"):
            raise TriageError(f"user {username!r} ({user.role}) cannot work alerts")
        scope = expand_site_scope(session, user.site_scope)
        if scope is not None and row.site not in scope:
            raise TriageError(f"user {username!r} cannot see site {row.site!r}")
        row.assignee = user
        if row.status in ("new", "acknowledged"):
            if row.acknowledged_at is None:
                row.acknowledged_at = utc_now()
            row.status = "in_progress"
    _audited(session, actor, row, "assign", before)


def close(session: Session, actor: Actor, row: AlertRow, reason: str, note: str | None) -> None:
    before = triage_state(row)
    _require(row, "close")
    now = utc_now()
    row.status = "closed"
    row.close_reason = reason
    row.close_note = note
    row.closed_at = now
    if row.acknowledged_at is None:
        row.acknowledged_at = now
    _audited(session, actor, row, "close", before)


def reopen(session: Session, actor: Actor, row: AlertRow) -> None:
    before = triage_state(row)
    _require(row, "reopen")
    row.status = "in_progress" if row.assignee_id else "acknowledged"
    row.close_reason = None
    row.close_note = None
    row.closed_at = None
    _audited(session, actor, row, "reopen", before)


def add_comment(session: Session, actor: Actor, row: AlertRow, body: str) -> AlertComment:
    comment = AlertComment(alert_id=row.id, author=actor.principal.name, body=body)
    session.add(comment)
    session.flush()
    audit.append(
        session,
        actor=actor.principal.name,
        action="alert.comment",
        object_type="alert",
        object_id=row.id,
        after={"comment_id": comment.id, "body": body},
        source_ip=actor.source_ip,
    )
    return comment
