"""The web interface's router: sign-in/out and every area's pages (see :mod:`soc_api.web`).

Form posts carry a double-submit CSRF token (cookie + hidden field, MAC-protected), and cookies
are HttpOnly/SameSite=Strict, so a foreign site can neither read nor forge a triage action.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from soc_api.deps import CSRF_COOKIE, SessionDep, StateDep, check_csrf, resolve_principal
from soc_api.problems import Problem
from soc_api.routers.auth import attempt_login, clear_session_cookies, revoke, set_session_cookies
from soc_api.web.guard import safe_next
from soc_api.web.i18n import N_
from soc_api.web.render import harden, render
from soc_api.web.routers import AREA_ROUTERS

router = APIRouter(include_in_schema=False)
LANDING = "/alerts"
WRONG_LOGIN = N_("Wrong username, password or authentication code.")


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse(LANDING, status_code=303)


@router.get("/login")
def login_page(
    request: Request, state: StateDep, next: Annotated[str | None, Query(max_length=500)] = None
) -> HTMLResponse:
    return render(request, state, "login.html", {"error": None, "next": safe_next(next)})


@router.post("/login")
def login_submit(
    request: Request,
    state: StateDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=200)],
    totp: Annotated[str, Form(max_length=32)] = "",
    next: Annotated[str, Form(max_length=500)] = LANDING,
) -> Response:
    if not state.signer.csrf_valid(request.cookies.get(CSRF_COOKIE), csrf_token):
        raise Problem(403, "missing or wrong CSRF token", kind="csrf")
    try:
        user = attempt_login(state, request, username, password, totp.strip() or None)
    except Problem as exc:
        key = (
            "Account temporarily locked after repeated failures."
            if exc.kind == "login-locked"
            else ("Wrong username, password or authentication code.")
        )
        context = {"error": key, "username": username, "next": safe_next(next)}
        return render(request, state, "login.html", context, status_code=401)
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookies(response, state, user)
    harden(response, scripts=False)
    return response


@router.post("/logout")
def logout_submit(
    request: Request, session: SessionDep, state: StateDep, csrf_token: Annotated[str, Form(max_length=200)]
) -> Response:
    try:
        principal = resolve_principal(request, session)
    except Problem:
        principal = None
    response = RedirectResponse("/login", status_code=303)
    if principal is not None:
        check_csrf(request, principal, csrf_token)
        revoke(session, state, principal)
    clear_session_cookies(response, state)
    return response


for _area in AREA_ROUTERS:
    router.include_router(_area)
