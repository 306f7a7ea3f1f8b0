"""A user's own interface preferences (language, time zone), stored on the account so they follow
the person to any browser. Changes are audited like every other account change."""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy.orm import Session

from soc_api.db.models import User
from soc_api.services import audit

LOCALES = ("vi", "en")


class PreferenceError(ValueError):
    """A language or time zone the interface does not know."""


@cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone this machine's tz database has (offered in the form, checked on save)."""
    return tuple(sorted(available_timezones()))


def zone_of(name: str | None) -> ZoneInfo | None:
    """The zone called ``name``, or None for an empty, unknown or malformed name."""
    if not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def set_preferences(
    session: Session, user: User, *, locale: str | None, time_zone: str | None, actor: str, source_ip: str | None
) -> bool:
    """Store the choices (None or "" = no choice, follow the browser/configuration); False if unchanged."""
    locale = locale or None
    time_zone = time_zone or None
    if locale is not None and locale not in LOCALES:
        raise PreferenceError(f"unknown language {locale[:16]!r}")
    if time_zone is not None and zone_of(time_zone) is None:
        raise PreferenceError(f"unknown time zone {time_zone[:64]!r}")
    before = {"locale": user.locale, "time_zone": user.time_zone}
    after = {"locale": locale, "time_zone": time_zone}
    if before == after:
        return False
    user.locale, user.time_zone = locale, time_zone
    session.flush()
    audit.append(
        session, actor=actor, action="user.preferences", object_type="user", object_id=str(user.id),
        before=before, after=after, source_ip=source_ip,
    )  # fmt: skip
    return True
