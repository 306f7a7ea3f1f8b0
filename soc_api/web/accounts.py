"""Account changes the services do not offer yet (activate/deactivate a user, revoke an API key),
each audited in the caller's transaction like every other change."""

from __future__ import annotations

from sqlalchemy.orm import Session

from soc_api.db.models import ApiKey, User
from soc_api.services import audit


def set_active(session: Session, actor: str, user: User, active: bool, source_ip: str | None) -> None:
    before = {"is_active": user.is_active}
    user.is_active = active
    session.flush()
    audit.append(
        session, actor=actor, action="user.activate" if active else "user.deactivate", object_type="user",
        object_id=str(user.id), before=before, after={"is_active": active}, source_ip=source_ip,
    )  # fmt: skip


def revoke_key(session: Session, actor: str, key: ApiKey, source_ip: str | None) -> None:
    key.revoked = True
    session.flush()
    audit.append(
        session, actor=actor, action="apikey.revoke", object_type="api_key", object_id=str(key.id),
        after={"name": key.name, "prefix": key.prefix}, source_ip=source_ip,
    )  # fmt: skip
