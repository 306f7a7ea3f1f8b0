"""Login, logout and TOTP enrolment."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from soc_api.db.models import RevokedToken, User
from soc_api.db.session import begin_write
from soc_api.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SessionDep,
    StateDep,
    client_ip,
    current_principal,
)
from soc_api.problems import Problem
from soc_api.schemas.auth import LoginIn, TokenOut
from soc_api.services import auth as auth_service
from soc_api.services.principal import Principal
from soc_api.state import AppState
from soc_common.ecs import utc_now

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

_FAILURE_DETAIL = {
    "bad_credentials": "wrong username, password or second factor",
    "locked": "account temporarily locked after repeated failures",
    "inactive": "wrong username, password or second factor",
    "totp_required": "a TOTP code is required",
}


def set_session_cookies(response: Response, state: AppState, user: User) -> None:
    token, _ = state.signer.issue(user.id, "session", state.config.security.session_lifetime)
    secure = state.config.security.cookie_secure
    max_age = int(state.config.security.session_lifetime.total_seconds())
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age, httponly=True, secure=secure, samesite="strict", path="/"
    )
    response.set_cookie(
        CSRF_COOKIE, state.signer.csrf_token(), max_age=max_age, httponly=False, secure=secure,
        samesite="strict", path="/",
    )  # fmt: skip


def clear_session_cookies(response: Response, state: AppState) -> None:
    secure = state.config.security.cookie_secure
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="strict")


def attempt_login(state: AppState, request: Request, username: str, password: str, totp: str | None) -> User:
    """Run the login in its own transaction, committed even on failure (lock-out counters, audit)."""
    sec = state.config.security
    with state.sessions() as session, session.begin():
        begin_write(session)
        result = auth_service.login(
            session,
            username=username,
            password=password,
            totp_code=totp,
            box=state.box,
            lockout_threshold=sec.lockout_threshold,
            lockout_duration=sec.lockout_duration,
            source_ip=client_ip(request),
        )
    if result.outcome != "ok" or result.user is None:
        raise Problem(401, _FAILURE_DETAIL[result.outcome], kind=f"login-{result.outcome.replace('_', '-')}")
    return result.user


@router.post("/login", response_model=TokenOut)
def login(body: LoginIn, request: Request, response: Response, state: StateDep) -> TokenOut:
    user = attempt_login(state, request, body.username, body.password, body.totp)
    token, claims = state.signer.issue(user.id, "access", state.config.security.token_lifetime)
    set_session_cookies(response, state, user)
    return TokenOut(access_token=token, expires_at=claims.expires_at, username=user.username, role=user.role)


def revoke(session: Session, state: AppState, principal: Principal) -> None:
    if principal.token_jti is None:
        return
    lifetime = max(state.config.security.session_lifetime, state.config.security.token_lifetime)
    if session.get(RevokedToken, principal.token_jti) is None:
        session.add(RevokedToken(jti=principal.token_jti, expires_at=utc_now() + lifetime))


@router.post("/logout", status_code=204)
def logout(
    session: SessionDep,
    state: StateDep,
    principal: Annotated[Principal, Depends(current_principal)],
) -> Response:
    revoke(session, state, principal)
    out = Response(status_code=204)
    clear_session_cookies(out, state)
    return out


class TotpEnrolOut(BaseModel):
    secret: str
    provisioning_uri: str


class TotpConfirmIn(BaseModel):
    code: str = Field(min_length=6, max_length=6)


@router.post("/totp/enrol", response_model=TotpEnrolOut)
def totp_enrol(
    session: SessionDep, state: StateDep, principal: Annotated[Principal, Depends(current_principal)]
) -> TotpEnrolOut:
    user = _own_user(session, principal)
    if user.totp_enabled:
        raise Problem(409, "TOTP is already enabled; an administrator must reset it", kind="totp-enabled")
    enrolment = auth_service.begin_totp_enrolment(user, state.box)
    return TotpEnrolOut(secret=enrolment.secret, provisioning_uri=enrolment.provisioning_uri)


@router.post("/totp/confirm")
def totp_confirm(
    body: TotpConfirmIn,
    session: SessionDep,
    state: StateDep,
    principal: Annotated[Principal, Depends(current_principal)],
) -> dict[str, Any]:
    user = _own_user(session, principal)
    if user.totp_enabled or not user.totp_secret_enc:
        raise Problem(409, "no TOTP enrolment in progress", kind="totp-not-pending")
    try:
        codes = auth_service.confirm_totp(session, user, state.box, body.code)
    except auth_service.AuthError as exc:
        raise Problem(400, str(exc), kind="totp-wrong-code") from None
    return {"enabled": True, "recovery_codes": codes}


def _own_user(session: Session, principal: Principal) -> User:
    if principal.user_id is None:
        raise Problem(403, "only people have a second factor", kind="forbidden")
    user = session.get(User, principal.user_id)
    if user is None:
        raise Problem(401, "account not found", kind="unauthorised")
    return user
