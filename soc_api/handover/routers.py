"""``/api/v1/handover``: outbox status, building a package on demand, receipts.

Needs ``app.state.handover`` = the :class:`HandoverSettings` (set by the app factory). Scopes:
``handover:read`` to look, ``handover:build`` to build or re-queue.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from soc_api.deps import SessionDep, require
from soc_api.handover import adapters, outbox
from soc_api.handover.keys import KeyRing, KeyRingError
from soc_api.handover.models import HandoverReceipt, OutboxEntry
from soc_api.handover.package import PackageError
from soc_api.handover.records import DrillRecord, Period
from soc_api.handover.settings import HandoverSettings
from soc_api.problems import Problem
from soc_api.services.principal import Principal

HANDOVER_READ = "handover:read"
HANDOVER_BUILD = "handover:build"

router = APIRouter(prefix="/api/v1/handover", tags=["handover"])
Reader = Annotated[Principal, Depends(require(HANDOVER_READ))]
Builder = Annotated[Principal, Depends(require(HANDOVER_BUILD))]


def handover_settings(request: Request) -> HandoverSettings:
    settings = getattr(request.app.state, "handover", None)
    if not isinstance(settings, HandoverSettings):
        raise Problem(503, "hand-over is not configured", kind="not-configured")
    return settings


SettingsDep = Annotated[HandoverSettings, Depends(handover_settings)]


class OutboxItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    package_id: str
    site: str
    sequence: int
    type: str
    subject: str | None
    urgent: bool
    sha256: str
    created_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    acknowledged_at: datetime | None


class OutboxPage(BaseModel):
    counts: dict[str, int]
    items: list[OutboxItem]


class BuildRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["incident_report", "alert_summary", "kpi_snapshot", "dossier_status", "drill_record"]
    incident_id: int | None = None
    report_kind: Literal["initial", "progress", "closure"] = "initial"
    dossier_id: int | None = None
    period: Period | None = None
    drill: DrillRecord | None = None


@router.get("/outbox", response_model=OutboxPage)
def list_outbox(
    session: SessionDep, _p: Reader, status: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> OutboxPage:
    counts = {s: n for s, n in session.execute(select(OutboxEntry.status, func.count()).group_by(OutboxEntry.status))}
    stmt = select(OutboxEntry).order_by(OutboxEntry.created_at.desc(), OutboxEntry.sequence.desc()).limit(limit)
    if status:
        stmt = stmt.where(OutboxEntry.status == status)
    return OutboxPage(counts=counts, items=[OutboxItem.model_validate(e) for e in session.scalars(stmt)])


def _record(session: Any, body: BuildRequest) -> tuple[Any, str | None]:
    try:
        if body.type == "incident_report" and body.incident_id is not None:
            return adapters.incident_report(session, body.incident_id, kind=body.report_kind), None
        if body.type == "dossier_status" and body.dossier_id is not None:
            return adapters.dossier_status(session, body.dossier_id), f"dossier:{body.dossier_id}"
        if body.type == "alert_summary" and body.period is not None:
            return adapters.alert_summary(session, body.period), None
        if body.type == "kpi_snapshot" and body.period is not None:
            return adapters.kpi_snapshot(session, body.period), None
        if body.type == "drill_record" and body.drill is not None:
            return body.drill, f"drill:{body.drill.drill_id}"
    except adapters.NotFound as exc:
        raise Problem(404, str(exc), kind="not-found") from None
    raise Problem(422, f"{body.type} needs its input (incident_id, dossier_id, period or drill)", kind="incomplete")


@router.post("/packages", response_model=OutboxItem, status_code=201)
def build_package(body: BuildRequest, session: SessionDep, settings: SettingsDep, principal: Builder) -> OutboxItem:
    record, subject = _record(session, body)
    if body.type == "incident_report":
        subject = f"incident:{body.incident_id}" if body.report_kind == "initial" else None
    try:
        entry = outbox.enqueue(
            session,
            site=settings.site,
            package_type=body.type,
            record=record,
            key=KeyRing(settings.key_dir).current(),
            site_name=settings.site_name,
            subject=subject,
            actor=principal.name,
        )
    except KeyRingError as exc:
        raise Problem(503, str(exc), kind="no-key") from None
    except PackageError as exc:
        raise Problem(422, str(exc), kind="invalid-package") from None
    return OutboxItem.model_validate(entry)


@router.post("/outbox/{package_id}/requeue", response_model=OutboxItem)
def requeue(package_id: str, session: SessionDep, principal: Builder) -> OutboxItem:
    entry = outbox.requeue(session, package_id, principal.name)
    if entry is None:
        raise Problem(409, "only a failed package can be re-queued", kind="conflict")
    return OutboxItem.model_validate(entry)


@router.get("/receipts/{package_id}")
def receipt(package_id: str, session: SessionDep, _p: Reader) -> dict[str, Any]:
    row = session.get(HandoverReceipt, package_id)
    if row is None:
        raise Problem(404, "no receipt for this package (yet)", kind="not-found")
    return row.receipt
