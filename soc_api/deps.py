"""FastAPI dependencies: database session, the calling principal, permission checks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from soc_api.db.models import ApiKey, RevokedToken, User
from soc_api.db.session import begin_write
from soc_api.problems import Problem
from soc_api.services import auth
from soc_api.services.principal import ROLE_PERMISSIONS, Principal, expand_site_scope
from soc_api.services.tokens import TokenError
from soc_api.state import AppState
from soc_common.ecs import utc_now

log = logging.getLogger(__name__)
SESSION_COOKIE = "soc_session"
CSRF_COOKIE = "soc_csrf"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.soc
    return state


def db_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back on error."""
    with app_state(request).sessions() as session, session.begin():
        if request.method in UNSAFE_METHODS:
            begin_write(session)
        yield session


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _unauthorised(detail: str) -> Problem:
    return Problem(401, detail, kind="unauthorised", headers={"WWW-Authenticate": 'Bearer realm="soc"'})


def _user_principal(session: Session, user: User, jti: str, via_cookie: bool) -> Principal:
    return Principal(
        name=user.username,
        kind="user",
        permissions=ROLE_PERMISSIONS[user.role],
        sites=expand_site_scope(session, user.site_scope),
        user_id=user.id,
        role=user.role,
        token_jti=jti,
        via_cookie=via_cookie,
    )


API_KEY_TOUCH_INTERVAL = timedelta(minutes=5)


_touch_lock = threading.Lock()


def _touch_api_key(state: AppState, key_id: int, last_used: datetime | None) -> None:
    """Record when a key was last used: at most every few minutes, best effort, off the request path.

    The update runs in its own thread and transaction: the request may itself hold SQLite's write
    lock, and waiting for it here would stall the request for the whole busy timeout.
    """
    now = utc_now()
    if last_used is not None and now - last_used < API_KEY_TOUCH_INTERVAL:
        return
    with _touch_lock:
        previous = state.api_key_touches.get(key_id)
        if previous is not None and now - previous < API_KEY_TOUCH_INTERVAL:
            return
        state.api_key_touches[key_id] = now

    def touch() -> None:
        try:
            with state.sessions() as session, session.begin():
                begin_write(session)
                session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
        except SQLAlchemyError:
            log.warning("could not record API key use", exc_info=True)

    threading.Thread(target=touch, name="apikey-touch", daemon=True).start()


def resolve_principal(request: Request, session: Session) -> Principal | None:
    """The caller from ``Authorization: Bearer``, ``X-API-Key`` or the session cookie, else None."""
    state = app_state(request)
    header = request.headers.get("authorization", "")
    api_key = request.headers.get("x-api-key")
    token: str | None = None
    kind: str = "access"
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
        if token.startswith(auth.API_KEY_PREFIX + "_"):
            api_key, token = token, None
    if api_key:
        key = auth.check_api_key(session, api_key)
        if key is None:
            raise _unauthorised("invalid, expired or revoked API key")
        _touch_api_key(state, key.id, key.last_used_at)
        return Principal(
            name=f"apikey:{key.name}",
            kind="apikey",
            permissions=frozenset(key.scopes or ()),
            sites=expand_site_scope(session, key.site_scope),
        )
    via_cookie = False
    if token is None:
        token = request.cookies.get(SESSION_COOKIE)
        kind = "session"
        via_cookie = True
        if not token:
            return None
    try:
        claims = state.signer.verify(token, "session" if kind == "session" else "access")
    except TokenError as exc:
        if via_cookie:
            return None
        raise _unauthorised(str(exc)) from None
    if session.scalar(select(RevokedToken.jti).where(RevokedToken.jti == claims.jti)) is not None:
        if via_cookie:
            return None
        raise _unauthorised("token revoked")
    user = session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise _unauthorised("account disabled")
    return _user_principal(session, user, claims.jti, via_cookie)


def check_csrf(request: Request, principal: Principal, submitted: str | None = None) -> None:
    """Cookie-authenticated changes need the double-submit token (headers from scripts, or form)."""
    if not principal.via_cookie or request.method not in UNSAFE_METHODS:
        return
    value = submitted or request.headers.get(CSRF_HEADER)
    if not app_state(request).signer.csrf_valid(request.cookies.get(CSRF_COOKIE), value):
        raise Problem(403, "missing or wrong CSRF token", kind="csrf")


# "function" scope: the transaction commits before the response is sent, so a 200 means stored.
SessionDep = Annotated[Session, Depends(db_session, scope="function")]


def current_principal(request: Request, session: SessionDep) -> Principal:
    principal = resolve_principal(request, session)
    if principal is None:
        raise _unauthorised("authentication required")
    check_csrf(request, principal)
    return principal


def require(permission: str) -> Callable[[Principal], Principal]:
    def _check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.can(permission):
            raise Problem(403, f"this needs the {permission!r} permission", kind="forbidden")
        return principal

    return _check


StateDep = Annotated[AppState, Depends(app_state)]
