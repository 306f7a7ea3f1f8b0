"""Audit-log bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from soc_api.db.models import AuditEntry


class AuditOut(BaseModel):
    seq: int
    ts: datetime
    actor: str
    source_ip: str | None
    action: str
    object_type: str
    object_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, e: AuditEntry) -> AuditOut:
        return cls(
            seq=e.seq,
            ts=e.ts,
            actor=e.actor,
            source_ip=e.source_ip,
            action=e.action,
            object_type=e.object_type,
            object_id=e.object_id,
            before=e.before,
            after=e.after,
            prev_hash=e.prev_hash,
            hash=e.hash,
        )


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_after: int | None


class VerifyOut(BaseModel):
    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str
