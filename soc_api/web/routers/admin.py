"""Administration: users (create, deactivate, role, site scope), the caller's own second factor
(TOTP enrolment with a server-drawn QR code), and API keys (shown once at creation)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy import select

from soc_api.db.models import ROLES, ApiKey, Site, User
from soc_api.deps import SessionDep, StateDep
from soc_api.services import auth as auth_service
from soc_api.services.principal import ALL_PERMISSIONS, USERS_MANAGE
from soc_api.web import nav
from soc_api.web.accounts import revoke_key, set_active
from soc_api.web.flash import redirect
from soc_api.web.guard import FormRejected, PagePrincipal, allow, form_csrf, ip
from soc_api.web.i18n import N_
from soc_api.web.qr import qr_svg
from soc_api.web.render import render
from soc_common.ecs import utc_now

router = APIRouter()
nav.register(nav.NavEntry("users", N_("Users"), "/admin/users", order=80, allowed=nav.can(USERS_MANAGE)))
nav.register(nav.NavEntry("apikeys", N_("API keys"), "/admin/api-keys", order=85, allowed=nav.can(USERS_MANAGE)))
nav.register(nav.NavEntry("account", N_("My account"), "/account", order=95))
Csrf = Annotated[str, Form(max_length=200)]


def _sites(session: SessionDep) -> list[Site]:
    return list(session.scalars(select(Site).order_by(Site.code)))


@router.get("/admin/users")
def users(request: Request, session: SessionDep, state: StateDep, principal: PagePrincipal) -> HTMLResponse:
    allow(principal, nav.can(USERS_MANAGE))
    context = {
        "users": list(session.scalars(select(User).order_by(User.username))),
        "roles": ROLES,
        "sites": _sites(session),
    }
    return render(request, state, "users.html", context, principal=principal, active="users")


@router.post("/admin/users")
def user_create(
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: PagePrincipal,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    role: Annotated[str, Form(max_length=16)],
    site_scope: Annotated[str, Form(max_length=64)] = "",
    display_name: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Csrf = "",
) -> Response:
    form_csrf(request, principal, csrf_token)
    allow(principal, nav.can(USERS_MANAGE))
    if site_scope and session.get(Site, site_scope) is None:
        raise FormRejected(N_("Check the values you entered."), "/admin/users", site_scope)
    try:
        auth_service.create_user(
            session, username=username.strip(), password=password, role=role, site_scope=site_scope or None,
            display_name=display_name.strip(), actor=principal.name,
        )  # fmt: skip
    except auth_service.AuthError as exc:
        raise FormRejected(N_("The action was refused."), "/admin/users", str(exc)) from None
    return redirect("/admin/users", ok=N_("User created."), secure=state.config.security.cookie_secure)


@router.post("/admin/users/{user_id}/active")
def user_active(
    user_id: int,
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: PagePrincipal,
    active: Annotated[str, Form(max_length=5)],
    csrf_token: Csrf = "",
) -> Response:
    form_csrf(request, principal, csrf_token)
    allow(principal, nav.can(USERS_MANAGE))
    user = session.get(User, user_id)
    if user is None:
        raise FormRejected(N_("No such user."), "/admin/users")
    if user.id == principal.user_id:
        raise FormRejected(N_("You cannot deactivate your own account."), "/admin/users")
    set_active(session, principal.name, user, active == "true", ip(request))
    return redirect("/admin/users", ok=N_("Saved."), secure=state.config.security.cookie_secure)


def _own(session: SessionDep, principal: PagePrincipal) -> User:
    user = session.get(User, principal.user_id) if principal.user_id is not None else None
    if user is None:
        raise FormRejected(N_("Only people have an account page."), "/overview")
    return user


@router.get("/account")
def account(request: Request, session: SessionDep, state: StateDep, principal: PagePrincipal) -> HTMLResponse:
    context = {"user": _own(session, principal), "enrolment": None, "recovery_codes": None}
    return render(request, state, "account.html", context, principal=principal, active="account")


@router.post("/account/totp")
def totp_start(
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: PagePrincipal,
    csrf_token: Csrf = "",
) -> Response:
    """Start (or restart) enrolment: the secret is shown once, in this response only."""
    form_csrf(request, principal, csrf_token)
    user = _own(session, principal)
    if user.totp_enabled:
        raise FormRejected(N_("Two-step sign-in is already on; an administrator must reset it."), "/account")
    enrolment = auth_service.begin_totp_enrolment(user, state.box)
    context = {
        "user": user,
        "enrolment": enrolment,
        "qr": Markup(qr_svg(enrolment.provisioning_uri)),
        "recovery_codes": None,
    }
    return render(request, state, "account.html", context, principal=principal, active="account")


@router.post("/account/totp/confirm")
def totp_confirm(
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: PagePrincipal,
    code: Annotated[str, Form(max_length=12)],
    csrf_token: Csrf = "",
) -> Response:
    form_csrf(request, principal, csrf_token)
    user = _own(session, principal)
    if user.totp_enabled or not user.totp_secret_enc:
        raise FormRejected(N_("No enrolment in progress."), "/account")
    try:
        codes = auth_service.confirm_totp(session, user, state.box, code.strip())
    except auth_service.AuthError:
        raise FormRejected(N_("Wrong code; start again."), "/account") from None
    context = {"user": user, "enrolment": None, "recovery_codes": codes}
    return render(request, state, "account.html", context, principal=principal, active="account")


@router.get("/admin/api-keys")
def api_keys(request: Request, session: SessionDep, state: StateDep, principal: PagePrincipal) -> HTMLResponse:
    allow(principal, nav.can(USERS_MANAGE))
    context = {
        "keys": list(session.scalars(select(ApiKey).order_by(ApiKey.id.desc()))),
        "scopes": sorted(ALL_PERMISSIONS),
        "sites": _sites(session),
        "new_secret": None,
    }
    return render(request, state, "api_keys.html", context, principal=principal, active="apikeys")


@router.post("/admin/api-keys")
def api_key_create(
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: PagePrincipal,
    name: Annotated[str, Form(min_length=1, max_length=100)],
    scopes: Annotated[list[str], Form(max_length=20)] = [],  # noqa: B006 - read, never mutated
    site_scope: Annotated[str, Form(max_length=64)] = "",
    days: Annotated[int, Form(ge=0, le=3650)] = 365,
    csrf_token: Csrf = "",
) -> Response:
    form_csrf(request, principal, csrf_token)
    allow(principal, nav.can(USERS_MANAGE))
    try:
        created = auth_service.create_api_key(
            session, name=name.strip(), scopes=scopes, site_scope=site_scope or None,
            expires_at=utc_now() + timedelta(days=days) if days else None, actor=principal.name,
        )  # fmt: skip
    except ValueError as exc:
        raise FormRejected(N_("The action was refused."), "/admin/api-keys", str(exc)) from None
    context = {
        "keys": list(session.scalars(select(ApiKey).order_by(ApiKey.id.desc()))),
        "scopes": sorted(ALL_PERMISSIONS),
        "sites": _sites(session),
        "new_secret": created.secret,
    }
    return render(request, state, "api_keys.html", context, principal=principal, active="apikeys")


@router.post("/admin/api-keys/{key_id}/revoke")
def api_key_revoke(
    key_id: int,
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: PagePrincipal,
    csrf_token: Csrf = "",
) -> Response:
    form_csrf(request, principal, csrf_token)
    allow(principal, nav.can(USERS_MANAGE))
    key = session.get(ApiKey, key_id)
    if key is None:
        raise FormRejected(N_("No such API key."), "/admin/api-keys")
    revoke_key(session, principal.name, key, ip(request))
    return redirect("/admin/api-keys", ok=N_("API key revoked."), secure=state.config.security.cookie_secure)
