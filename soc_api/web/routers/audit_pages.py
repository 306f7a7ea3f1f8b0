"""The audit trail for auditors: search (actor, action, object, period), paging by sequence
number, chain verification, and export of the matching entries as CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Select, select

from soc_api.db.models import AuditEntry
from soc_api.deps import SessionDep, StateDep
from soc_api.services import audit as audit_service
from soc_api.services.principal import AUDIT_READ
from soc_api.web import nav, userprefs
from soc_api.web.guard import PagePrincipal, allow
from soc_api.web.i18n import N_
from soc_api.web.render import harden, render
from soc_common.ecs import iso

router = APIRouter()
nav.register(nav.NavEntry("audit", N_("Audit trail"), "/audit", order=70, allowed=nav.can(AUDIT_READ)))
PAGE = 100
EXPORT_MAX = 100_000
Text = Annotated[str, Query(max_length=128)]


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _query(tz: Any, actor: str, action: str, object_type: str, object_id: str, start: str, end: str) -> Select[Any]:
    stmt = select(AuditEntry)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    if action:
        stmt = stmt.where(AuditEntry.action.startswith(action, autoescape=True))
    if object_type:
        stmt = stmt.where(AuditEntry.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEntry.object_id == object_id)
    if (first := _day(start)) is not None:
        stmt = stmt.where(AuditEntry.ts >= datetime.combine(first, time.min, tzinfo=tz))
    if (last := _day(end)) is not None:
        stmt = stmt.where(AuditEntry.ts < datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz))
    return stmt


@router.get("/audit")
def audit_page(
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: PagePrincipal,
    actor: Text = "",
    action: Text = "",
    object_type: Text = "",
    object_id: Text = "",
    start: Annotated[str, Query(max_length=10)] = "",
    end: Annotated[str, Query(max_length=10)] = "",
    before: Annotated[int | None, Query(ge=1)] = None,
    verify: Annotated[bool, Query()] = False,
) -> HTMLResponse:
    allow(principal, nav.can(AUDIT_READ))
    stmt = _query(userprefs.zone(request, state), actor, action, object_type, object_id, start, end)
    if before is not None:
        stmt = stmt.where(AuditEntry.seq < before)
    rows = list(session.scalars(stmt.order_by(AuditEntry.seq.desc()).limit(PAGE + 1)))
    older = rows[PAGE - 1].seq if len(rows) > PAGE else None
    context = {
        "rows": rows[:PAGE],
        "older": older,
        "f": {
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "start": start,
            "end": end,
        },
        "verified": audit_service.verify(session) if verify else None,
    }
    return render(request, state, "audit.html", context, principal=principal, active="audit")


def _cell(value: Any) -> Any:
    """JSON for nested values; a leading formula character is quoted so a spreadsheet never runs it."""
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value
    if isinstance(text, str) and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def entry_dict(e: AuditEntry) -> dict[str, Any]:
    return {
        "seq": e.seq, "ts": iso(e.ts), "actor": e.actor, "source_ip": e.source_ip, "action": e.action,
        "object_type": e.object_type, "object_id": e.object_id, "before": e.before, "after": e.after,
        "prev_hash": e.prev_hash, "hash": e.hash,
    }  # fmt: skip


@router.get("/audit/export")
def audit_export(
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: PagePrincipal,
    format: Annotated[str, Query(pattern="^(csv|json)$")] = "csv",
    actor: Text = "",
    action: Text = "",
    object_type: Text = "",
    object_id: Text = "",
    start: Annotated[str, Query(max_length=10)] = "",
    end: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    """The matching entries oldest first, with their hashes so the export can be checked offline."""
    allow(principal, nav.can(AUDIT_READ))
    tz = userprefs.zone(request, state)
    stmt = _query(tz, actor, action, object_type, object_id, start, end).order_by(AuditEntry.seq)
    rows = [entry_dict(e) for e in session.scalars(stmt.limit(EXPORT_MAX))]
    if format == "json":
        body = json.dumps(rows, ensure_ascii=False, indent=1)
        response = Response(body, media_type="application/json; charset=utf-8")
    else:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["seq"])
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else v for k, v in row.items()}
            )
        response = Response("\ufeff" + buf.getvalue(), media_type="text/csv; charset=utf-8")  # BOM: Excel reads UTF-8
    response.headers["Content-Disposition"] = f'attachment; filename="audit.{format}"'
    harden(response)
    return response
