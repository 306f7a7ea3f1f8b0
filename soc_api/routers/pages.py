"""Server-rendered pages (login, alert list): Vietnamese first, no JavaScript, no CDN.

Form posts carry a double-submit CSRF token (cookie + hidden field, MAC-protected), and cookies
are HttpOnly/SameSite=Strict, so a foreign site can neither read nor forge a triage action.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from soc_api.db.models import ALERT_STATUSES, SEVERITIES
from soc_api.deps import CSRF_COOKIE, SessionDep, StateDep, check_csrf, resolve_principal
from soc_api.i18n import Translator, pick_language
from soc_api.problems import Problem
from soc_api.routers.auth import attempt_login, clear_session_cookies, revoke, set_session_cookies
from soc_api.services import alerts as svc
from soc_api.services.principal import ALERTS_READ
from soc_api.state import AppState

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
router = APIRouter(include_in_schema=False)
LANG_COOKIE = "lang"


def _translator(request: Request, state: AppState) -> Translator:
    lang = pick_language(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE), state.config.language)
    return Translator(lang, state.tz)


def _render(
    request: Request, state: AppState, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    t = _translator(request, state)
    presented = request.cookies.get(CSRF_COOKIE)
    csrf = presented if presented and state.signer.csrf_valid(presented, presented) else state.signer.csrf_token()
    response = TEMPLATES.TemplateResponse(
        request, name, {"t": t, "lang": t.lang, "csrf_token": csrf, "tz": state.config.timezone, **context},
        status_code=status_code,
    )  # fmt: skip
    secure = state.config.security.cookie_secure
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, secure=secure, samesite="strict", path="/")
    if request.query_params.get("lang") == t.lang:
        response.set_cookie(LANG_COOKIE, t.lang, max_age=365 * 86400, secure=secure, samesite="lax", path="/")
    return response


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/alerts", status_code=303)


@router.get("/login")
def login_page(request: Request, state: StateDep) -> HTMLResponse:
    return _render(request, state, "login.html", {"error": None})


@router.post("/login")
def login_submit(
    request: Request,
    state: StateDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=200)],
    totp: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    if not state.signer.csrf_valid(request.cookies.get(CSRF_COOKIE), csrf_token):
        raise Problem(403, "missing or wrong CSRF token", kind="csrf")
    try:
        user = attempt_login(state, request, username, password, totp or None)
    except Problem as exc:
        key = "login_locked" if exc.kind == "login-locked" else "login_failed"
        return _render(request, state, "login.html", {"error": key, "username": username}, status_code=401)
    response = RedirectResponse("/alerts", status_code=303)
    set_session_cookies(response, state, user)
    return response


@router.post("/logout")
def logout_submit(
    request: Request, session: SessionDep, state: StateDep, csrf_token: Annotated[str, Form(max_length=200)]
) -> Response:
    principal = resolve_principal(request, session)
    response = RedirectResponse("/login", status_code=303)
    if principal is not None:
        check_csrf(request, principal, csrf_token)
        revoke(session, state, principal)
    clear_session_cookies(response, state)
    return response


@router.get("/alerts")
def alerts_page(
    request: Request,
    session: SessionDep,
    state: StateDep,
    status: Annotated[str | None, Query(max_length=16)] = None,
    severity: Annotated[str | None, Query(max_length=16)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    principal = resolve_principal(request, session)
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    if not principal.can(ALERTS_READ):
        raise Problem(403, "this needs the 'alerts:read' permission", kind="forbidden")
    flt = svc.AlertFilter(
        status=[status] if status in ALERT_STATUSES else [],
        severity=[severity] if severity in SEVERITIES else [],
    )
    try:
        page = svc.list_alerts(session, principal, flt, limit=50, cursor=cursor)
    except (ValueError, TypeError, KeyError):
        page = svc.list_alerts(session, principal, flt, limit=50)
    context = {
        "alerts": page.items,
        "next_cursor": page.next_cursor,
        "principal": principal,
        "statuses": ALERT_STATUSES,
        "severities": SEVERITIES,
        "status": status,
        "severity": severity,
    }
    return _render(request, state, "alerts.html", context)
