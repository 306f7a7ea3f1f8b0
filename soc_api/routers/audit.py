"""The audit trail, readable by auditors and administrators only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from soc_api.db.models import AuditEntry
from soc_api.deps import SessionDep, require
from soc_api.schemas.audit import AuditOut, AuditPage, VerifyOut
from soc_api.services import audit as audit_service
from soc_api.services.principal import AUDIT_READ, Principal

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
Auditor = Annotated[Principal, Depends(require(AUDIT_READ))]


@router.get("", response_model=AuditPage)
def list_audit(
    session: SessionDep,
    principal: Auditor,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    object_type: Annotated[str | None, Query(max_length=32)] = None,
    object_id: Annotated[str | None, Query(max_length=128)] = None,
) -> AuditPage:
    stmt = select(AuditEntry).where(AuditEntry.seq > after)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    if object_type:
        stmt = stmt.where(AuditEntry.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEntry.object_id == object_id)
    rows = list(session.scalars(stmt.order_by(AuditEntry.seq).limit(limit + 1)))
    next_after = rows[limit - 1].seq if len(rows) > limit else None
    return AuditPage(items=[AuditOut.of(r) for r in rows[:limit]], next_after=next_after)


@router.get("/verify", response_model=VerifyOut)
def verify_audit(session: SessionDep, principal: Auditor) -> VerifyOut:
    result = audit_service.verify(session)
    return VerifyOut(ok=result.ok, checked=result.checked, first_bad_seq=result.first_bad_seq, reason=result.reason)
