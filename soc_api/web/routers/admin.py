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
from soc_api.services.preferences import PreferenceError, set_preferences, zone_names
from soc_api.services.principal import ALL_PERMISSIONS, USERS_MANAGE
from soc_api.web import nav, userprefs
from soc_api.web.accounts import revoke_key, set_active
from soc_api.web.flash import redirect
from soc_api.web.forms import FormPost
from soc_api.web.guard import FormRejected, PagePrincipal, allow, ip, safe_next
from soc_api.web.i18n import N_
from soc_api.web.qr import qr_svg
from soc_api.web.render import remember_language, render
from soc_common.ecs import utc_now

router = APIRouter()
nav.register(nav.NavEntry("users", N_("Users"), "/admin/users", order=80, allowed=nav.can(USERS_MANAGE)))
nav.register(nav.NavEntry("apikeys", N_("API keys"), "/admin/api-keys", order=85, allowed=nav.can(USERS_MANAGE)))
nav.register(nav.NavEntry("account", N_("My account"), "/account", order=95))


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
    post: FormPost,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    role: Annotated[str, Form(max_length=16)],
    site_scope: Annotated[str, Form(max_length=64)] = "",
    display_name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    post.allow(nav.can(USERS_MANAGE))
    if site_scope and post.session.get(Site, site_scope) is None:
        raise FormRejected(N_("Check the values you entered."), "/admin/users", site_scope)
    try:
        auth_service.create_user(
            post.session, username=username.strip(), password=password, role=role, site_scope=site_scope or None,
            display_name=display_name.strip(), actor=post.principal.name,
        )  # fmt: skip
    except auth_service.AuthError as exc:
        raise FormRejected(N_("The action was refused."), "/admin/users", str(exc)) from None
    return post.done("/admin/users", N_("User created."))


@router.post("/admin/users/{user_id}/active")
def user_active(
    user_id: int,
    post: FormPost,
    active: Annotated[str, Form(max_length=5)],
) -> Response:
    post.allow(nav.can(USERS_MANAGE))
    user = post.session.get(User, user_id)
    if user is None:
        raise FormRejected(N_("No such user."), "/admin/users")
    if user.id == post.principal.user_id:
        raise FormRejected(N_("You cannot deactivate your own account."), "/admin/users")
    set_active(post.session, post.principal.name, user, active == "true", ip(post.request))
    return post.done("/admin/users", N_("Saved."))


def _own(session: SessionDep, principal: PagePrincipal) -> User:
    user = session.get(User, principal.user_id) if principal.user_id is not None else None
    if user is None:
        raise FormRejected(N_("Only people have an account page."), "/overview")
    return user


def _account(user: User, **extra: object) -> dict[str, object]:
    return {"user": user, "enrolment": None, "recovery_codes": None, "zones": zone_names(), **extra}


@router.get("/account")
def account(request: Request, session: SessionDep, state: StateDep, principal: PagePrincipal) -> HTMLResponse:
    context = _account(_own(session, principal))
    return render(request, state, "account.html", context, principal=principal, active="account")


def _save_preferences(
    request: Request, session: SessionDep, principal: PagePrincipal, locale: str | None, time_zone: str | None
) -> None:
    user = _own(session, principal)
    try:
        set_preferences(session, user, locale=locale, time_zone=time_zone, actor=principal.name, source_ip=ip(request))
    except PreferenceError as exc:
        raise FormRejected(N_("Check the values you entered."), "/account", str(exc)) from None
    userprefs.remember(request, session, principal)


@router.post("/account/preferences")
def preferences(
    post: FormPost,
    locale: Annotated[str, Form(max_length=8)] = "",
    time_zone: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """The user's language and time zone ("" = follow the browser / the configured zone)."""
    _save_preferences(post.request, post.session, post.principal, locale, time_zone.strip())
    response = redirect("/account", ok=N_("Preferences saved."), secure=post.state.config.security.cookie_secure)
    remember_language(response, locale, post.state)
    return response


@router.post("/account/language")
def switch_language(
    post: FormPost,
    lang: Annotated[str, Form(max_length=8)],
    back: Annotated[str, Form(max_length=2000)] = "/alerts",
) -> Response:
    """The header's language switch: stored on the account, so every browser follows it."""
    user = _own(post.session, post.principal)
    _save_preferences(post.request, post.session, post.principal, lang, user.time_zone)
    response = redirect(safe_next(back), secure=post.state.config.security.cookie_secure)
    remember_language(response, lang, post.state)
    return response


@router.post("/account/totp")
def totp_start(
    post: FormPost,
) -> Response:
    """Start (or restart) enrolment: the secret is shown once, in this response only."""
    user = _own(post.session, post.principal)
    if user.totp_enabled:
        raise FormRejected(N_("Two-step sign-in is already on; an administrator must reset it."), "/account")
    enrolment = auth_service.begin_totp_enrolment(user, post.state.box)
    context = _account(user, enrolment=enrolment, qr=Markup(qr_svg(enrolment.provisioning_uri)))
    return render(post.request, post.state, "account.html", context, principal=post.principal, active="account")


@router.post("/account/totp/confirm")
def totp_confirm(
    post: FormPost,
    code: Annotated[str, Form(max_length=12)],
) -> Response:
    user = _own(post.session, post.principal)
    if user.totp_enabled or not user.totp_secret_enc:
        raise FormRejected(N_("No enrolment in progress."), "/account")
    try:
        codes = auth_service.confirm_totp(post.session, user, post.state.box, code.strip())
    except auth_service.AuthError:
        raise FormRejected(N_("Wrong code; start again."), "/account") from None
    context = _account(user, recovery_codes=codes)
    return render(post.request, post.state, "account.html", context, principal=post.principal, active="account")


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
    post: FormPost,
    name: Annotated[str, Form(min_length=1, max_length=100)],
    scopes: Annotated[list[str], Form(max_length=20)] = [],  # noqa: B006 - read, never mutated
    site_scope: Annotated[str, Form(max_length=64)] = "",
    days: Annotated[int, Form(ge=0, le=3650)] = 365,
) -> Response:
    post.allow(nav.can(USERS_MANAGE))
    try:
        created = auth_service.create_api_key(
            post.session, name=name.strip(), scopes=scopes, site_scope=site_scope or None,
            expires_at=utc_now() + timedelta(days=days) if days else None, actor=post.principal.name,
        )  # fmt: skip
    except ValueError as exc:
        raise FormRejected(N_("The action was refused."), "/admin/api-keys", str(exc)) from None
    context = {
        "keys": list(post.session.scalars(select(ApiKey).order_by(ApiKey.id.desc()))),
        "scopes": sorted(ALL_PERMISSIONS),
        "sites": _sites(post.session),
        "new_secret": created.secret,
    }
    return render(post.request, post.state, "api_keys.html", context, principal=post.principal, active="apikeys")


@router.post("/admin/api-keys/{key_id}/revoke")
def api_key_revoke(
    key_id: int,
    post: FormPost,
) -> Response:
    post.allow(nav.can(USERS_MANAGE))
    key = post.session.get(ApiKey, key_id)
    if key is None:
        raise FormRejected(N_("No such API key."), "/admin/api-keys")
    revoke_key(post.session, post.principal.name, key, ip(post.request))
    return post.done("/admin/api-keys", N_("API key revoked."))
