"""First-run helpers (used by ``soc demo``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.db.models import User
from soc_api.services.auth import create_user


def ensure_admin(session: Session, username: str, password: str) -> User:
    """Return the admin ``username``, creating it (all sites) if missing. Does not change an existing one."""
    user = session.scalar(select(User).where(User.username == username))
    if user is not None:
        return user
    return create_user(session, username=username, password=password, role="admin", actor="bootstrap")
