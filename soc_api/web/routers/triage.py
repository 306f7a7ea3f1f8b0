"""Triage queue and alert detail: URL filters, sorting, cursor paging, bulk and one-key actions.

Every action goes through :mod:`soc_api.services.alerts` in the request's transaction, so it is
audited exactly like the JSON API; a refused transition comes back as a flash message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from soc_api.db.models import ALERT_STATUSES, CLOSE_REASONS, SEVERITIES, AlertRow, AuditEntry
from soc_api.deps import SessionDep, StateDep
from soc_api.problems import Problem
from soc_api.routers import suppressions as suppression_api
from soc_api.services import alerts as svc
from soc_api.services.principal import (
    ALERTS_COMMENT,
    ALERTS_READ,
    ALERTS_TRIAGE,
    INCIDENTS_MANAGE,
    SUPPRESSIONS_MANAGE,
    Principal,
)
from soc_api.state import AppState
from soc_api.web import nav, userprefs
from soc_api.web.filters import SORTS, TriageQuery
from soc_api.web.flash import redirect
from soc_api.web.forms import FormPost
from soc_api.web.guard import FormRejected, PagePrincipal, allow, ip, safe_next
from soc_api.web.i18n import N_
from soc_api.web.render import render

log = logging.getLogger(__name__)
router = APIRouter()
nav.register(nav.NavEntry("alerts", N_("Alerts"), "/alerts", order=20, allowed=nav.can(ALERTS_READ)))
PAGE_SIZE = 50
RAW_SHOWN = 50  # a scan alert can carry thousands of events; the rest are one hunt query away
ACTIONS = ("acknowledge", "assign_me", "close", "reopen")
# "Suppress similar": the alert attributes a suppression may match on, offered when the alert has them.
SIMILAR_FIELDS = ("host_name", "user_name", "source_ip", "destination_ip", "site", "zone", "system_id")
SUPPRESS_DAYS = 30


def similar_conditions(row: AlertRow) -> dict[str, str]:
    """The alert's own values of :data:`SIMILAR_FIELDS` (a suppression built from them matches its siblings)."""
    values = {name: getattr(row, name) for name in SIMILAR_FIELDS}
    return {name: str(value)[:255] for name, value in values.items() if value not in (None, "")}


@router.get("/alerts")
def queue(request: Request, session: SessionDep, state: StateDep, principal: PagePrincipal) -> HTMLResponse:
    allow(principal, nav.can(ALERTS_READ))
    q = TriageQuery.parse(request.query_params)
    flt = q.to_filter(userprefs.zone(request, state))
    try:
        page = svc.list_alerts(session, principal, flt, sort=q.sort_key, limit=PAGE_SIZE, cursor=q.cursor)
    except (ValueError, TypeError, KeyError):  # a stale or foreign cursor: start from the top
        q.cursor = None
        page = svc.list_alerts(session, principal, flt, sort=q.sort_key, limit=PAGE_SIZE)
    here = request.url.path + ("?" + request.url.query if request.url.query else "")
    context = {
        "alerts": page.items,
        "next_url": f"/alerts?{q.query_string(cursor=page.next_cursor)}" if page.next_cursor else None,
        "first_url": f"/alerts?{q.query_string()}" if q.cursor else None,
        "q": q,
        "statuses": ALERT_STATUSES,
        "severities": SEVERITIES,
        "sorts": SORTS,
        "reasons": CLOSE_REASONS,
        "can_triage": principal.can(ALERTS_TRIAGE),
        "can_escalate": principal.can(INCIDENTS_MANAGE),
        "here": here,
    }
    return render(request, state, "alerts.html", context, principal=principal, active="alerts")


def _history(session: Session, alert_id: str) -> list[AuditEntry]:
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.object_type == "alert", AuditEntry.object_id == alert_id)
        .order_by(AuditEntry.seq)
    )
    return list(session.scalars(stmt))


def _raw_events(state: AppState, row: AlertRow) -> list[dict[str, Any]] | None:
    if state.store is None or not row.event_ids:
        return None
    try:
        return state.store.get(list(row.event_ids))
    except Exception:  # the page still works without the store
        log.warning("event store unavailable for alert %s", row.id, exc_info=True)
        return None


def _visible(session: Session, principal: Principal, alert_id: str, *, for_update: bool = False) -> AlertRow:
    row = svc.get_visible(session, principal, alert_id[:64], for_update=for_update) if len(alert_id) <= 64 else None
    if row is None:
        raise FormRejected(N_("No such alert."), "/alerts")
    return row


@router.get("/alerts/{alert_id}")
def detail(
    alert_id: str, request: Request, session: SessionDep, state: StateDep, principal: PagePrincipal
) -> HTMLResponse:
    allow(principal, nav.can(ALERTS_READ))
    row = svc.get_visible(session, principal, alert_id[:64])
    if row is None:
        return render(request, state, "not_found.html", {}, principal=principal, status_code=404)
    tz = userprefs.zone(request, state)
    context = {
        "a": row,
        "raw_events": (raw := _raw_events(state, row)) and raw[:RAW_SHOWN],
        "raw_total": len(raw or ()),
        "store_configured": state.store is not None,
        "related": svc.related(session, principal, row),
        "comments": svc.comments(session, row.id),
        "history": _history(session, row.id),
        "reasons": CLOSE_REASONS,
        "can_triage": principal.can(ALERTS_TRIAGE),
        "can_comment": principal.can(ALERTS_COMMENT),
        "can_suppress": principal.can(SUPPRESSIONS_MANAGE),
        "can_escalate": principal.can(INCIDENTS_MANAGE),
        "similar": similar_conditions(row),
        "suppress_until": (datetime.now(tz).date() + timedelta(days=SUPPRESS_DAYS)).isoformat(),
    }
    return render(request, state, "alert_detail.html", context, principal=principal, active="alerts")


def _apply(session: Session, actor: svc.Actor, row: AlertRow, action: str, reason: str, note: str) -> None:
    changes: dict[str, Callable[[], None]] = {
        "acknowledge": lambda: svc.acknowledge(session, actor, row),
        "assign_me": lambda: svc.assign(session, actor, row, actor.principal.name),
        "reopen": lambda: svc.reopen(session, actor, row),
        "close": lambda: svc.close(session, actor, row, reason, note.strip() or None),
    }
    if action == "close" and reason not in CLOSE_REASONS:
        raise svc.TriageError("close needs a reason")
    changes[action]()


@router.post("/alerts/{alert_id}/action")
def act(
    alert_id: str,
    post: FormPost,
    action: Annotated[str, Form(max_length=32)],
    reason: Annotated[str, Form(max_length=32)] = "",
    note: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    post.allow(nav.can(ALERTS_TRIAGE))
    back = f"/alerts/{alert_id}"
    if action not in ACTIONS:
        raise FormRejected(N_("Unknown action."), back)
    row = _visible(post.session, post.principal, alert_id, for_update=True)
    try:
        _apply(post.session, svc.Actor(post.principal, ip(post.request)), row, action, reason, note)
        post.session.flush()
    except svc.TriageError as exc:
        raise FormRejected(N_("The action was refused."), back, str(exc)) from None
    except StaleDataError:
        raise FormRejected(N_("The alert was changed by someone else; reload and retry."), back) from None
    return post.done(back, N_("Saved."))


@router.post("/alerts/{alert_id}/comment")
def comment(
    alert_id: str,
    post: FormPost,
    body: Annotated[str, Form(min_length=1, max_length=4000)],
) -> Response:
    post.allow(nav.can(ALERTS_COMMENT))
    row = _visible(post.session, post.principal, alert_id)
    svc.add_comment(post.session, svc.Actor(post.principal, ip(post.request)), row, body)
    return post.done(f"/alerts/{row.id}", N_("Comment added."))


@router.post("/alerts/bulk")
def bulk(
    post: FormPost,
    action: Annotated[str, Form(max_length=32)],
    ids: Annotated[list[str], Form(max_length=500)] = [],  # noqa: B006 - FastAPI reads, never mutates
    reason: Annotated[str, Form(max_length=32)] = "",
    note: Annotated[str, Form(max_length=4000)] = "",
    back: Annotated[str, Form(max_length=2000)] = "/alerts",
) -> Response:
    post.allow(nav.can(ALERTS_TRIAGE))
    back = safe_next(back if back.startswith("/alerts") else "/alerts")
    if action not in ACTIONS or not ids:
        raise FormRejected(N_("Select alerts and an action."), back)
    if len(ids) > post.state.config.alerts.bulk_max:
        raise FormRejected(N_("Too many alerts selected."), back)
    actor = svc.Actor(post.principal, ip(post.request))
    done, failed = 0, 0
    for alert_id in dict.fromkeys(ids):
        too_long = len(alert_id) > 64
        row = None if too_long else svc.get_visible(post.session, post.principal, alert_id, for_update=True)
        if row is None:
            failed += 1
            continue
        try:
            with post.session.begin_nested():
                _apply(post.session, actor, row, action, reason, note)
            done += 1
        except svc.TriageError:
            post.session.refresh(row)
            failed += 1
    secure = post.state.config.security.cookie_secure
    if failed:
        return redirect(
            back, error=N_("Some alerts could not be changed."), detail=f"{done} ✓ / {failed} ✗", secure=secure
        )
    return redirect(back, ok=N_("Saved."), secure=secure)


@router.post("/alerts/{alert_id}/suppress")
def suppress_similar(
    alert_id: str,
    post: FormPost,
    reason: Annotated[str, Form(max_length=2000)] = "",
    expires: Annotated[str, Form(max_length=10)] = "",
    fields: Annotated[list[str], Form(max_length=len(SIMILAR_FIELDS))] = [],  # noqa: B006 - read-only
) -> Response:
    """Silence this alert's rule for the chosen attributes until the end of the expiry day (local time)."""
    post.allow(nav.can(SUPPRESSIONS_MANAGE))
    back = f"/alerts/{alert_id}"
    row = _visible(post.session, post.principal, alert_id)
    own = similar_conditions(row)
    try:
        tz = userprefs.zone(post.request, post.state)
        until = datetime.combine(date.fromisoformat(expires), time(23, 59, 59), tzinfo=tz)
        body = suppression_api.SuppressionIn(
            rule_id=row.rule_id, conditions={f: own[f] for f in fields if f in own}, reason=reason.strip(),
            expires_at=until,
        )  # fmt: skip
    except (ValueError, ValidationError):
        raise FormRejected(N_("Give a reason (at least 5 characters) and a valid expiry date."), back) from None
    try:
        suppression_api.create_suppression(body, post.request, Response(), post.session, post.principal)
    except Problem as exc:
        raise FormRejected(N_("The action was refused."), back, exc.detail) from None
    return post.done(back, N_("Similar alerts are suppressed."))
