"""The signed-in user's stored language and time zone, read once per page request.

:func:`remember` runs where the page resolves its caller (the user row is already in the session,
so it costs no query); :func:`zone` is what every page uses to show and read local times.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from fastapi import Request
from sqlalchemy.orm import Session

from soc_api.db.models import User
from soc_api.services.preferences import zone_of
from soc_api.services.principal import Principal
from soc_api.state import AppState


@dataclass(frozen=True)
class UserPrefs:
    locale: str | None = None
    zone: ZoneInfo | None = None


NONE = UserPrefs()


def remember(request: Request, session: Session, principal: Principal) -> None:
    user = session.get(User, principal.user_id) if principal.user_id is not None else None
    request.state.prefs = UserPrefs(user.locale, zone_of(user.time_zone)) if user is not None else NONE


def of(request: Request) -> UserPrefs:
    prefs = getattr(request.state, "prefs", None)
    return prefs if isinstance(prefs, UserPrefs) else NONE


def zone(request: Request, state: AppState) -> ZoneInfo:
    """The user's zone, else the configured one (Asia/Ho_Chi_Minh by default)."""
    return of(request).zone or state.tz
