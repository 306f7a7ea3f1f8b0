"""Reporting duties (what is owed by when, sent and acknowledged) and report documents (generated
as PDF and DOCX, archived by SHA-256, recorded so the exact file sent can be produced later)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.db.models import AlertRow, Incident, IncidentAlert, User
from soc_api.incidents.models import (
    IncidentHost,
    IncidentObligation,
    IncidentReport,
    IncidentTimelineEntry,
)
from soc_api.incidents.report_document import ReportInputs, build_report
from soc_api.incidents.services.context import IncidentCtx, IncidentError, record
from soc_api.incidents.services.evidence import evidence_of, read_verified
from soc_api.incidents.services.lifecycle import linked_systems
from soc_api.incidents.services.tasks import tasks_of
from soc_api.reports.render.docx import render_docx
from soc_api.reports.render.pdf import FontMissing, render_pdf
from soc_api.services.blobs import store_blob

MEDIA = {"pdf": "application/pdf", "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}


def obligations_of(session: Session, incident_id: int) -> list[IncidentObligation]:
    q = select(IncidentObligation).where(IncidentObligation.incident_id == incident_id)
    return list(
        session.scalars(
            q.order_by(IncidentObligation.due_at.is_(None), IncidentObligation.due_at, IncidentObligation.id)
        )
    )


def timeline_of(session: Session, incident_id: int) -> list[IncidentTimelineEntry]:
    q = select(IncidentTimelineEntry).where(IncidentTimelineEntry.incident_id == incident_id)
    return list(session.scalars(q.order_by(IncidentTimelineEntry.id)))


def reports_of(session: Session, incident_id: int) -> list[IncidentReport]:
    q = select(IncidentReport).where(IncidentReport.incident_id == incident_id)
    return list(session.scalars(q.order_by(IncidentReport.id)))


def report_root(ctx: IncidentCtx) -> Path:
    return ctx.data_dir / "incidents" / "reports"


def _inputs(session: Session, ctx: IncidentCtx, incident: Incident, kind: str) -> ReportInputs:
    hosts = session.scalars(select(IncidentHost.host_name).where(IncidentHost.incident_id == incident.id))
    alerts = session.scalars(
        select(AlertRow)
        .join(IncidentAlert, IncidentAlert.alert_id == AlertRow.id)
        .where(IncidentAlert.incident_id == incident.id)
    )
    assignee = session.get(User, incident.assignee_id) if incident.assignee_id else None
    return ReportInputs(
        incident=incident, kind=kind, profile=ctx.profile(incident), settings=ctx.settings,
        systems=linked_systems(session, incident), hosts=sorted(hosts), alerts=list(alerts.unique()),
        tasks=tasks_of(session, incident.id), timeline=timeline_of(session, incident.id),
        evidence=evidence_of(session, incident.id), obligations=obligations_of(session, incident.id),
        assignee=assignee.display_name or assignee.username if assignee else None, generated_at=ctx.now,
    )  # fmt: skip


def generate(session: Session, ctx: IncidentCtx, incident: Incident, kind: str, fmt: str) -> IncidentReport:
    if kind == "closure" and incident.status != "closed":
        raise IncidentError("a closure report needs a closed incident")
    document = build_report(_inputs(session, ctx, incident, kind))
    try:
        data = (
            render_pdf(document, ctx.settings.font_regular, ctx.settings.font_bold)
            if fmt == "pdf"
            else render_docx(document)
        )
    except FontMissing as exc:
        raise IncidentError(str(exc), status=503, kind="font-missing") from None
    digest = store_blob(report_root(ctx), data)
    row = IncidentReport(
        incident_id=incident.id, kind=kind, format=fmt, filename=f"{document.file_stem}.{fmt}", size=len(data),
        sha256=digest, generated_by=ctx.actor, generated_at=ctx.now,
    )  # fmt: skip
    session.add(row)
    session.flush()
    record(session, ctx, incident, "report_generate", f"Lập báo cáo {kind} ({fmt}), SHA-256 {digest}",
           after={"report_id": row.id, "kind": kind, "format": fmt, "sha256": digest, "size": len(data)})  # fmt: skip
    return row


def report_bytes(ctx: IncidentCtx, report: IncidentReport) -> bytes:
    return read_verified(report_root(ctx), report.sha256)


def mark_sent(
    session: Session, ctx: IncidentCtx, incident: Incident, duty: IncidentObligation,
    sent_at: datetime | None, reference: str | None, report_id: int | None,
) -> None:  # fmt: skip
    if duty.state != "pending":
        raise IncidentError(f"this report is already {duty.state}")
    if report_id is not None:
        report = session.get(IncidentReport, report_id)
        if report is None or report.incident_id != incident.id:
            raise IncidentError("no such report of this incident", status=422, kind="unknown-report")
    when = sent_at or ctx.now
    if when > ctx.now:
        raise IncidentError("sent_at is in the future", status=422, kind="validation-error")
    duty.state, duty.sent_at, duty.sent_by, duty.reference, duty.report_id = (
        "sent",
        when,
        ctx.actor,
        reference,
        report_id,
    )
    record(session, ctx, incident, "report_sent", f"Đã gửi: {duty.title}",
           before={"obligation": duty.obligation_id, "state": "pending"},
           after={"obligation": duty.obligation_id, "state": "sent", "sent_at": when, "reference": reference,
                  "report_id": report_id})  # fmt: skip


def mark_acknowledged(
    session: Session, ctx: IncidentCtx, incident: Incident, duty: IncidentObligation, at: datetime | None
) -> None:
    if duty.state != "sent":
        raise IncidentError("only a sent report can be acknowledged")
    when = at or ctx.now
    if duty.sent_at is not None and when < duty.sent_at:
        raise IncidentError("acknowledged before it was sent", status=422, kind="validation-error")
    duty.state, duty.acknowledged_at = "acknowledged", when
    record(session, ctx, incident, "report_acknowledged", f"Đã được xác nhận: {duty.title}",
           before={"obligation": duty.obligation_id, "state": "sent"},
           after={"obligation": duty.obligation_id, "state": "acknowledged", "acknowledged_at": when})  # fmt: skip
