"""Suppressions: the list (active and expired, with reason, expiry, author and hits), creating one
with a reason and an expiry, and lifting one.

Creating and lifting go through the JSON API's handlers (``/api/v1/suppressions``), so validation
(at most 366 days, field names) and the audit entry are exactly the API's. A site-scoped user may
only silence alerts of their own sites: the form requires a ``site`` condition inside the scope,
and suppressions of other sites are neither shown nor liftable.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from soc_api.db.models import Suppression
from soc_api.deps import SessionDep, StateDep
from soc_api.problems import Problem
from soc_api.routers import suppressions as api
from soc_api.services.principal import ALERTS_READ, AUDIT_READ, SUPPRESSIONS_MANAGE, Principal
from soc_api.services.suppression import ALERT_FIELDS
from soc_api.web import nav, userprefs
from soc_api.web.forms import FormPost
from soc_api.web.guard import FormRejected, PagePrincipal, allow
from soc_api.web.i18n import N_
from soc_api.web.render import render
from soc_common.ecs import utc_now

router = APIRouter()
nav.register(
    nav.NavEntry(
        "suppressions", N_("Suppressions"), "/admin/suppressions", order=60,
        allowed=lambda p: p.can(SUPPRESSIONS_MANAGE) or p.can(AUDIT_READ),
    )
)  # fmt: skip
BACK = "/admin/suppressions"
SHOWN = 500  # newest first; older ones stay reachable through the API's paging
MAX_CONDITIONS = 20


def _sites_of(row: Suppression) -> set[str] | None:
    """The sites a suppression is limited to (None: every site)."""
    value = (row.conditions or {}).get("site")
    if value is None:
        return None
    return {str(v) for v in value} if isinstance(value, list) else {str(value)}


def visible(principal: Principal, row: Suppression) -> bool:
    """Scoped users see the suppressions of their sites and the global ones (which touch their alerts)."""
    sites = _sites_of(row)
    return principal.sites is None or sites is None or sites <= principal.sites


def liftable(principal: Principal, row: Suppression) -> bool:
    sites = _sites_of(row)
    return principal.can(SUPPRESSIONS_MANAGE) and (
        principal.sites is None or (sites is not None and sites <= principal.sites)
    )


def parse_conditions(text: str) -> dict[str, Any]:
    """``field = value`` lines; a field given twice accepts any of its values."""
    out: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        field, sep, value = line.partition("=")
        field, value = field.strip(), value.strip()
        if not sep or not field or not value:
            raise ValueError(f"not 'field = value': {line.strip()[:60]!r}")
        if field in out:
            out[field] = [*out[field], value] if isinstance(out[field], list) else [out[field], value]
        else:
            out[field] = value
    if len(out) > MAX_CONDITIONS:
        raise ValueError(f"at most {MAX_CONDITIONS} conditions")
    return out


def _scoped(principal: Principal, conditions: dict[str, Any]) -> None:
    if principal.sites is None:
        return
    sites = conditions.get("site")
    wanted = set(sites) if isinstance(sites, list) else {sites} if sites else set()
    if not wanted or not wanted <= principal.sites:
        raise FormRejected(N_("Limit the suppression to your sites with a site condition."), BACK)


@router.get("/admin/suppressions")
def suppressions(request: Request, session: SessionDep, state: StateDep, principal: PagePrincipal) -> HTMLResponse:
    allow(principal, nav.can(ALERTS_READ))
    now = utc_now()
    rows = [r for r in session.scalars(select(Suppression).order_by(Suppression.id.desc()).limit(SHOWN))
            if visible(principal, r)]  # fmt: skip
    context = {
        "active": [r for r in rows if r.expires_at is None or r.expires_at > now],
        "expired": [r for r in rows if r.expires_at is not None and r.expires_at <= now],
        "liftable": lambda r: liftable(principal, r),
        "can_manage": principal.can(SUPPRESSIONS_MANAGE),
        "fields": sorted(ALERT_FIELDS),
        "today": datetime.now(userprefs.zone(request, state)).date().isoformat(),
        "sites": sorted(principal.sites) if principal.sites is not None else None,
    }
    return render(request, state, "suppressions.html", context, principal=principal, active="suppressions")


@router.post("/admin/suppressions")
def create(
    post: FormPost,
    reason: Annotated[str, Form(max_length=2000)] = "",
    expires: Annotated[str, Form(max_length=10)] = "",
    rule_id: Annotated[str, Form(max_length=128)] = "",
    conditions: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    """A new suppression until the end of the expiry day in the user's zone."""
    post.allow(nav.can(SUPPRESSIONS_MANAGE))
    try:
        parsed = parse_conditions(conditions)
    except ValueError as exc:
        raise FormRejected(N_("Check the values you entered."), BACK, str(exc)) from None
    _scoped(post.principal, parsed)
    try:
        tz = userprefs.zone(post.request, post.state)
        until = datetime.combine(date.fromisoformat(expires), time(23, 59, 59), tzinfo=tz)
        body = api.SuppressionIn(rule_id=rule_id.strip() or None, conditions=parsed, reason=reason.strip(),
                                 expires_at=until)  # fmt: skip
    except (ValueError, ValidationError):
        raise FormRejected(N_("Give a reason (at least 5 characters) and a valid expiry date."), BACK) from None
    try:
        api.create_suppression(body, post.request, Response(), post.session, post.principal)
    except Problem as exc:
        raise FormRejected(N_("The action was refused."), BACK, exc.detail) from None
    return post.done(BACK, N_("Suppression created."))


@router.post("/admin/suppressions/{suppression_id}/lift")
def lift(suppression_id: int, post: FormPost) -> Response:
    """Remove a suppression: matching alerts reach the queue again (the audit trail keeps it)."""
    post.allow(nav.can(SUPPRESSIONS_MANAGE))
    row = post.session.get(Suppression, suppression_id)
    if row is None or not liftable(post.principal, row):
        raise FormRejected(N_("No such suppression."), BACK)
    api.delete_suppression(suppression_id, post.request, post.session, post.principal)
    return post.done(BACK, N_("Suppression lifted."))
