"""``/api/v1/users`` and ``/api/v1/api-keys``: account administration (admins only).

Creating users, changing role/scope/contact, disabling, unlocking, resetting passwords and second
factors, and issuing/revoking API keys are all audited in the request's transaction. Secrets
(passwords, key secrets, TOTP seeds) never appear in responses except a new key's secret, once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select

from soc_api.db.models import ROLES, ApiKey, Site, User
from soc_api.deps import SessionDep, client_ip, require
from soc_api.incidents import pagination
from soc_api.problems import Problem
from soc_api.services import audit
from soc_api.services import auth as auth_service
from soc_api.services.principal import USERS_MANAGE, Principal
from soc_common.ecs import utc_now

router = APIRouter(prefix="/api/v1", tags=["users"])
Admin = Annotated[Principal, Depends(require(USERS_MANAGE))]
PROBLEMS: dict[int | str, dict[str, object]] = {
    401: {"description": "Not authenticated"},
    403: {"description": "Needs users:manage"},
    404: {"description": "No such user or key"},
    409: {"description": "Conflict (duplicate name, own account)"},
    422: {"description": "Invalid input"},
}
Role = Annotated[str, Field(pattern="^(" + "|".join(ROLES) + ")$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserIn(_In):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    password: str = Field(min_length=auth_service.MIN_PASSWORD_LENGTH, max_length=auth_service.MAX_PASSWORD_LENGTH)
    role: Role
    site_scope: str | None = Field(default=None, max_length=64)
    display_name: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")


class UserPatch(_In):
    role: Role | None = None
    site_scope: str | None = Field(default=None, max_length=64)
    all_sites: bool = False  # set site_scope to "every site" (None)
    display_name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    is_active: bool | None = None


class PasswordIn(_In):
    password: str = Field(min_length=auth_service.MIN_PASSWORD_LENGTH, max_length=auth_service.MAX_PASSWORD_LENGTH)


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    email: str | None
    role: str
    site_scope: str | None
    totp_enabled: bool
    is_active: bool
    locked: bool
    created_at: datetime
    last_login_at: datetime | None
    locale: str | None = None  # interface language chosen by the user (None: the browser's)
    time_zone: str | None = None  # zone the interface shows times in (None: the configured one)

    @classmethod
    def of(cls, u: User) -> UserOut:
        locked = u.locked_until is not None and u.locked_until > utc_now()
        return cls(
            id=u.id, username=u.username, display_name=u.display_name, email=u.email, role=u.role,
            site_scope=u.site_scope, totp_enabled=u.totp_enabled, is_active=u.is_active, locked=locked,
            created_at=u.created_at, last_login_at=u.last_login_at, locale=u.locale, time_zone=u.time_zone,
        )  # fmt: skip


class UserList(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class ApiKeyIn(_In):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1, max_length=20)
    site_scope: str | None = Field(default=None, max_length=64)
    expires_at: AwareDatetime | None = None


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    site_scope: str | None
    expires_at: datetime | None
    revoked: bool
    created_by: str
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def of(cls, k: ApiKey) -> ApiKeyOut:
        return cls(
            id=k.id, name=k.name, prefix=k.prefix, scopes=list(k.scopes or []), site_scope=k.site_scope,
            expires_at=k.expires_at, revoked=k.revoked, created_by=k.created_by, created_at=k.created_at,
            last_used_at=k.last_used_at,
        )  # fmt: skip


class NewApiKeyOut(ApiKeyOut):
    secret: str  # shown once


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]
    next_cursor: str | None


def _user(session: SessionDep, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise Problem(404, "no such user", kind="not-found")
    return user


def _check_site(session: SessionDep, site: str | None) -> None:
    if site is not None and session.get(Site, site) is None:
        raise Problem(422, f"unknown site {site!r}", kind="validation-error")


def _audit(request: Request, session: SessionDep, principal: Principal, action: str, obj: str, oid: int,
           before: dict[str, object] | None, after: dict[str, object] | None) -> None:  # fmt: skip
    audit.append(session, actor=principal.name, action=action, object_type=obj, object_id=str(oid),
                 before=before, after=after, source_ip=client_ip(request))  # fmt: skip


def _public(u: User) -> dict[str, object]:
    return {"role": u.role, "site_scope": u.site_scope, "display_name": u.display_name, "email": u.email,
            "is_active": u.is_active}  # fmt: skip


@router.get("/users", response_model=UserList, summary="List accounts", responses=PROBLEMS)
def list_users(
    session: SessionDep, principal: Admin, limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> UserList:  # fmt: skip
    try:
        rows, nxt = pagination.page(session, select(User), [User.id], lambda u: [u.id], tag="users", decoders=[int],
                                    limit=limit, cursor=cursor, descending=False)  # fmt: skip
    except pagination.CursorError as exc:
        raise Problem(400, str(exc), kind="bad-cursor") from None
    return UserList(items=[UserOut.of(u) for u in rows], next_cursor=nxt)


@router.post("/users", response_model=UserOut, status_code=201, summary="Create an account", responses=PROBLEMS)
def create_user(body: UserIn, request: Request, session: SessionDep, principal: Admin) -> UserOut:
    _check_site(session, body.site_scope)
    try:
        user = auth_service.create_user(
            session, username=body.username, password=body.password, role=body.role, site_scope=body.site_scope,
            display_name=body.display_name, email=body.email, actor=principal.name,
        )  # fmt: skip
    except auth_service.AuthError as exc:
        raise Problem(409, str(exc), kind="conflict") from None
    return UserOut.of(user)


@router.get("/users/{user_id}", response_model=UserOut, summary="One account", responses=PROBLEMS)
def get_user(user_id: int, session: SessionDep, principal: Admin) -> UserOut:
    return UserOut.of(_user(session, user_id))


@router.patch("/users/{user_id}", response_model=UserOut, summary="Change role, scope, contact or state",
              responses=PROBLEMS)  # fmt: skip
def patch_user(user_id: int, body: UserPatch, request: Request, session: SessionDep, principal: Admin) -> UserOut:
    user = _user(session, user_id)
    if user.id == principal.user_id and (body.role not in (None, user.role) or body.is_active is False):
        raise Problem(409, "administrators cannot demote or disable their own account", kind="own-account")
    before = _public(user)
    if body.role is not None:
        user.role = body.role
    if body.all_sites:
        user.site_scope = None
    elif body.site_scope is not None:
        _check_site(session, body.site_scope)
        user.site_scope = body.site_scope
    if body.display_name is not None:
        user.display_name = body.display_name
    if body.email is not None:
        user.email = body.email
    if body.is_active is not None:
        user.is_active = body.is_active
    session.flush()
    _audit(request, session, principal, "user.update", "user", user.id, before, _public(user))
    return UserOut.of(user)


@router.post("/users/{user_id}/reset-mfa", response_model=UserOut, summary="Remove the second factor (re-enrol)",
             responses=PROBLEMS)  # fmt: skip
def reset_mfa(user_id: int, request: Request, session: SessionDep, principal: Admin) -> UserOut:
    user = _user(session, user_id)
    was = user.totp_enabled
    user.totp_secret_enc, user.totp_enabled, user.recovery_codes = None, False, []
    _audit(
        request, session, principal, "user.mfa_reset", "user", user.id, {"totp_enabled": was}, {"totp_enabled": False}
    )
    return UserOut.of(user)


@router.post("/users/{user_id}/unlock", response_model=UserOut, summary="Lift a lock-out", responses=PROBLEMS)
def unlock(user_id: int, request: Request, session: SessionDep, principal: Admin) -> UserOut:
    user = _user(session, user_id)
    user.locked_until, user.failed_attempts = None, 0
    _audit(request, session, principal, "user.unlock", "user", user.id, None, {"locked": False})
    return UserOut.of(user)


@router.post("/users/{user_id}/password", status_code=204, summary="Set a new password", responses=PROBLEMS)
def set_password(user_id: int, body: PasswordIn, request: Request, session: SessionDep, principal: Admin) -> Response:
    user = _user(session, user_id)
    user.password_hash = auth_service.hash_password(body.password)
    _audit(request, session, principal, "user.password_reset", "user", user.id, None, None)
    return Response(status_code=204)


@router.get("/api-keys", response_model=ApiKeyList, tags=["api-keys"], summary="List API keys", responses=PROBLEMS)
def list_keys(
    session: SessionDep, principal: Admin, limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> ApiKeyList:  # fmt: skip
    try:
        rows, nxt = pagination.page(session, select(ApiKey), [ApiKey.id], lambda k: [k.id], tag="api-keys",
                                    decoders=[int], limit=limit, cursor=cursor, descending=False)  # fmt: skip
    except pagination.CursorError as exc:
        raise Problem(400, str(exc), kind="bad-cursor") from None
    return ApiKeyList(items=[ApiKeyOut.of(k) for k in rows], next_cursor=nxt)


@router.post("/api-keys", response_model=NewApiKeyOut, status_code=201, tags=["api-keys"],
             summary="Issue an API key (the secret is shown once)", responses=PROBLEMS)  # fmt: skip
def create_key(body: ApiKeyIn, session: SessionDep, principal: Admin) -> NewApiKeyOut:
    _check_site(session, body.site_scope)
    if body.expires_at is not None and body.expires_at <= utc_now():
        raise Problem(422, "expires_at is in the past", kind="validation-error")
    try:
        new = auth_service.create_api_key(session, name=body.name, scopes=body.scopes, site_scope=body.site_scope,
                                          expires_at=body.expires_at, actor=principal.name)  # fmt: skip
    except ValueError as exc:
        raise Problem(422, str(exc)[:300], kind="validation-error") from None
    return NewApiKeyOut(**ApiKeyOut.of(new.key).model_dump(), secret=new.secret)


@router.post("/api-keys/{key_id}/revoke", response_model=ApiKeyOut, tags=["api-keys"], summary="Revoke an API key",
             responses=PROBLEMS)  # fmt: skip
def revoke_key(key_id: int, request: Request, session: SessionDep, principal: Admin) -> ApiKeyOut:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise Problem(404, "no such API key", kind="not-found")
    if not key.revoked:
        key.revoked = True
        _audit(request, session, principal, "apikey.revoke", "api_key", key.id, {"revoked": False}, {"revoked": True})
    return ApiKeyOut.of(key)
