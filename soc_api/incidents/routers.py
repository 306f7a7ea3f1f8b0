"""``/api/v1/incidents``: incidents from first alert to report.

Every change commits with its audit entry and timeline entry in the request's transaction.
Updates honour ``If-Match`` (ETag = row version): a stale tag gets 412, a concurrent change 409.
Out-of-scope incidents answer 404 so their existence does not leak. Errors are RFC 9457 problems.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from soc_api.db.models import Incident, IncidentAlert, User
from soc_api.deps import SessionDep, StateDep, client_ip, require
from soc_api.incidents import pagination
from soc_api.incidents.deadlines import is_overdue
from soc_api.incidents.models import (
    IncidentEvidence,
    IncidentHost,
    IncidentObligation,
    IncidentReport,
    IncidentSystem,
    IncidentTask,
    IncidentTimelineEntry,
)
from soc_api.incidents.rules import CATEGORIES, RuleFileError
from soc_api.incidents.schemas import (
    AcknowledgedIn,
    AssignIn,
    Category,
    CategoryOut,
    EscalateIn,
    EvidenceOut,
    IncidentDetail,
    IncidentIn,
    IncidentList,
    IncidentOut,
    IncidentPatchIn,
    LinkAlertsIn,
    NoteIn,
    ObligationOut,
    ProfileOut,
    Reason,
    ReportIn,
    ReportOut,
    SentIn,
    Status,
    TaskIn,
    TaskOut,
    TaskPatchIn,
    TimelineList,
    TimelineOut,
    TransitionIn,
)
from soc_api.incidents.services import evidence as evidence_svc
from soc_api.incidents.services import lifecycle as svc
from soc_api.incidents.services import reporting
from soc_api.incidents.services import tasks as task_svc
from soc_api.incidents.services.context import IncidentCtx, IncidentError
from soc_api.incidents.settings import IncidentsSettings
from soc_api.problems import Problem
from soc_api.services.principal import INCIDENTS_MANAGE, INCIDENTS_READ, INCIDENTS_REPORT, Principal
from soc_api.state import AppState
from soc_common.ecs import utc_now

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])
Reader = Annotated[Principal, Depends(require(INCIDENTS_READ))]
Manager = Annotated[Principal, Depends(require(INCIDENTS_MANAGE))]
Reporter = Annotated[Principal, Depends(require(INCIDENTS_REPORT))]
PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/problem+json": {}}}
    for code, text in (
        (401, "Not authenticated"), (403, "Missing permission"), (404, "No such incident (or out of scope)"),
        (409, "Refused transition or concurrent change"), (412, "Stale If-Match"), (422, "Invalid input"),
    )
}  # fmt: skip
MAX_FILENAME = 255


def settings_of(state: AppState) -> IncidentsSettings:
    value = getattr(state.config, "incidents", None)
    return value if isinstance(value, IncidentsSettings) else IncidentsSettings()


def ctx_of(request: Request, state: AppState, principal: Principal) -> IncidentCtx:
    return IncidentCtx(principal, client_ip(request), settings_of(state), state.config.data_dir, utc_now())


@contextmanager
def rules() -> Iterator[None]:
    """Service refusals and concurrent updates as problem details."""
    try:
        yield
    except IncidentError as exc:
        raise Problem(exc.status, str(exc), kind=exc.kind) from None
    except RuleFileError as exc:
        raise Problem(500, str(exc)[:300], kind="rule-file") from None
    except StaleDataError:
        raise Problem(409, "changed concurrently; reload and retry", kind="conflict") from None


def etag(version: int) -> str:
    return f'"v{version}"'


def check_if_match(request: Request, version: int) -> None:
    value = request.headers.get("if-match")
    if value is not None and value.strip()[:100] not in ("*", etag(version)):
        raise Problem(412, "changed since you read it; reload and retry", kind="stale", etag=etag(version))


def _usernames(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    return {u.id: u.username for u in session.scalars(select(User).where(User.id.in_(wanted)))}


def incident_out(incident: Incident, names: dict[int, str]) -> IncidentOut:
    return IncidentOut(
        id=incident.id, title=incident.title, category=incident.category, severity=incident.severity,
        status=incident.status, site=incident.site, detected_at=incident.detected_at,
        created_at=incident.created_at, created_by=incident.created_by, closed_at=incident.closed_at,
        assignee=names.get(incident.assignee_id) if incident.assignee_id else None, profile=incident.profile,
        version=incident.version,
    )  # fmt: skip


def obligation_out(o: IncidentObligation, now: datetime) -> ObligationOut:
    left = int((o.due_at - now).total_seconds()) if o.due_at is not None and o.state == "pending" else None
    return ObligationOut(
        id=o.id, obligation_id=o.obligation_id, title=o.title, recipient=o.recipient, source=o.source,
        report_kind=o.report_kind, immediate=o.immediate, due_at=o.due_at, state=o.state,
        overdue=is_overdue(o.due_at, o.state, now), seconds_left=left, sent_at=o.sent_at, sent_by=o.sent_by,
        reference=o.reference, acknowledged_at=o.acknowledged_at, report_id=o.report_id, version=o.version,
    )  # fmt: skip


def task_out(t: IncidentTask, names: dict[int, str]) -> TaskOut:
    return TaskOut(
        id=t.id, position=t.position, playbook=t.playbook, step_id=t.step_id, phase=t.phase, title=t.title,
        owner_role=t.owner_role, assignee=names.get(t.assignee_id) if t.assignee_id else None, status=t.status,
        note=t.note, done_by=t.done_by, done_at=t.done_at, version=t.version,
    )  # fmt: skip


def evidence_out(e: IncidentEvidence) -> EvidenceOut:
    return EvidenceOut(
        id=e.id, filename=e.filename, content_type=e.content_type, size=e.size, sha256=e.sha256,
        description=e.description, uploaded_by=e.uploaded_by, uploaded_at=e.uploaded_at,
    )  # fmt: skip


def report_out(r: IncidentReport) -> ReportOut:
    return ReportOut(
        id=r.id, kind=r.kind, format=r.format, filename=r.filename, size=r.size, sha256=r.sha256,
        generated_by=r.generated_by, generated_at=r.generated_at,
    )  # fmt: skip


def detail(session: Session, incident: Incident, response: Response | None = None) -> IncidentDetail:
    session.flush()
    tasks = task_svc.tasks_of(session, incident.id)
    names = _usernames(session, {incident.assignee_id, *(t.assignee_id for t in tasks)})
    now = utc_now()
    systems = session.scalars(select(IncidentSystem.system_id).where(IncidentSystem.incident_id == incident.id))
    hosts = session.scalars(select(IncidentHost.host_name).where(IncidentHost.incident_id == incident.id))
    alerts = session.scalars(select(IncidentAlert.alert_id).where(IncidentAlert.incident_id == incident.id))
    if response is not None:
        response.headers["ETag"] = etag(incident.version)
    return IncidentDetail(
        **incident_out(incident, names).model_dump(),
        description=incident.description,
        facts=dict(incident.facts or {}),
        serious_reasons=[Reason(**r) for r in incident.serious_reasons or []],
        lessons_learned=incident.lessons_learned,
        state_times=dict(incident.state_times or {}),
        systems=sorted(systems),
        hosts=sorted(hosts),
        alert_ids=sorted(alerts),
        tasks=[task_out(t, names) for t in tasks],
        obligations=[obligation_out(o, now) for o in reporting.obligations_of(session, incident.id)],
        evidence=[evidence_out(e) for e in evidence_svc.evidence_of(session, incident.id)],
        reports=[report_out(r) for r in reporting.reports_of(session, incident.id)],
    )


Values = Annotated[list[str], Query(max_length=20)]


@router.get("", response_model=IncidentList, summary="List incidents (newest detection first)", responses=PROBLEMS)
def list_incidents(
    session: SessionDep,
    state: StateDep,
    principal: Reader,
    status: Annotated[list[Status], Query(max_length=6)] = [],  # noqa: B006 - read-only default
    severity: Annotated[list[str], Query(max_length=2)] = [],  # noqa: B006
    category: Annotated[list[Category], Query(max_length=9)] = [],  # noqa: B006
    site: Values = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> IncidentList:
    stmt = select(Incident)
    if principal.sites is not None:
        stmt = stmt.where(Incident.site.in_(sorted(principal.sites)))
    if status:
        stmt = stmt.where(Incident.status.in_(status))
    if severity:
        stmt = stmt.where(Incident.severity.in_([s[:16] for s in severity]))
    if category:
        stmt = stmt.where(Incident.category.in_(category))
    if site:
        stmt = stmt.where(Incident.site.in_([s[:64] for s in site]))
    try:
        rows, next_cursor = pagination.page(
            session, stmt, [Incident.detected_at, Incident.id], lambda i: [i.detected_at, i.id], tag="incidents",
            decoders=[pagination.as_time, int], limit=min(limit, settings_of(state).page_size_max), cursor=cursor,
        )  # fmt: skip
    except pagination.CursorError as exc:
        raise Problem(400, str(exc), kind="bad-cursor") from None
    names = _usernames(session, {i.assignee_id for i in rows})
    return IncidentList(items=[incident_out(i, names) for i in rows], next_cursor=next_cursor)


@router.get("/categories", response_model=list[CategoryOut], summary="Incident categories and their playbooks")
def categories(request: Request, state: StateDep, principal: Reader) -> list[CategoryOut]:
    books = ctx_of(request, state, principal).playbooks()
    return [CategoryOut(id=c, title=t, playbook=books[c].id if c in books else None) for c, t in CATEGORIES.items()]


@router.get("/profiles", response_model=list[ProfileOut], summary="Reporting rule profiles (criteria, deadlines)")
def profiles(request: Request, state: StateDep, principal: Reader) -> list[ProfileOut]:
    out = []
    for p in ctx_of(request, state, principal).profiles().values():
        out.append(
            ProfileOut(
                id=p.id, title=p.title, version=p.version, effective_from=p.effective_from.isoformat(),
                serious_criteria=[Reason(id=c.id, text=c.text, source=c.source, confidence=c.confidence)
                                  for c in p.serious_criteria],
                obligations=[o.model_dump(mode="json", exclude={"applies"}) for o in p.obligations],
            )
        )  # fmt: skip
    return out


def _create(
    request: Request, response: Response, session: Session, state: AppState, principal: Principal,
    draft: svc.IncidentDraft, alert_ids: list[str],
) -> IncidentDetail:  # fmt: skip
    ctx = ctx_of(request, state, principal)
    if len(alert_ids) > ctx.settings.max_alerts_per_incident:
        raise Problem(413, f"at most {ctx.settings.max_alerts_per_incident} alerts per incident", kind="too-many")
    with rules():
        alerts = svc.visible_alerts(session, ctx, alert_ids)
        sites = {a.site for a in alerts}
        if len(sites) > 1:
            raise IncidentError("the alerts belong to different sites", status=422, kind="other-site")
        incident = svc.create(session, ctx, draft, alerts)
    response.status_code = 201
    return detail(session, incident, response)


@router.post("", response_model=IncidentDetail, status_code=201, summary="Open an incident by hand", responses=PROBLEMS)
def create_incident(
    body: IncidentIn, request: Request, response: Response, session: SessionDep, state: StateDep, principal: Manager
) -> IncidentDetail:
    draft = svc.IncidentDraft(
        title=body.title, category=body.category, site=body.site, description=body.description,
        detected_at=body.detected_at, profile=body.profile, facts=body.facts.given(),
        system_ids=[s[:64] for s in body.system_ids], hosts=[h[:255] for h in body.hosts], assignee=body.assignee,
    )  # fmt: skip
    return _create(request, response, session, state, principal, draft, body.alert_ids)


@router.post(
    "/escalate", response_model=IncidentDetail, status_code=201, summary="Escalate alerts into a new incident",
    responses=PROBLEMS,
)  # fmt: skip
def escalate(
    body: EscalateIn, request: Request, response: Response, session: SessionDep, state: StateDep, principal: Manager
) -> IncidentDetail:
    first = None
    with rules():
        first = svc.visible_alerts(session, ctx_of(request, state, principal), body.alert_ids[:1])[0]
    draft = svc.IncidentDraft(
        title=body.title or first.rule_title[:500], category=body.category, description=body.description,
        facts=body.facts.given(), assignee=body.assignee,
    )  # fmt: skip
    return _create(request, response, session, state, principal, draft, body.alert_ids)


def _incident(session: Session, ctx: IncidentCtx, incident_id: int, *, for_update: bool = False) -> Incident:
    with rules():
        return svc.get_visible(session, ctx, incident_id, for_update=for_update)


@router.get("/{incident_id}", response_model=IncidentDetail, summary="Incident detail", responses=PROBLEMS)
def get_incident(
    incident_id: int, request: Request, response: Response, session: SessionDep, state: StateDep, principal: Reader
) -> IncidentDetail:
    return detail(session, _incident(session, ctx_of(request, state, principal), incident_id), response)


def _change(
    request: Request, response: Response, session: Session, state: AppState, principal: Principal,
    incident_id: int, action: Any,
) -> IncidentDetail:  # fmt: skip
    ctx = ctx_of(request, state, principal)
    incident = _incident(session, ctx, incident_id, for_update=True)
    check_if_match(request, incident.version)
    with rules():
        action(ctx, incident)
        session.flush()
    return detail(session, incident, response)


@router.patch("/{incident_id}", response_model=IncidentDetail, summary="Edit, reclassify, link systems/hosts",
              responses=PROBLEMS)  # fmt: skip
def patch_incident(
    incident_id: int, body: IncidentPatchIn, request: Request, response: Response, session: SessionDep,
    state: StateDep, principal: Manager,
) -> IncidentDetail:  # fmt: skip
    patch = svc.IncidentPatch(
        title=body.title, description=body.description, category=body.category,
        facts=body.facts.given() if body.facts is not None else None,
        add_system_ids=[s[:64] for s in body.add_system_ids], add_hosts=[h[:255] for h in body.add_hosts],
        lessons_learned=body.lessons_learned,
    )  # fmt: skip
    return _change(request, response, session, state, principal, incident_id,
                   lambda ctx, i: svc.update(session, ctx, i, patch))  # fmt: skip


@router.post("/{incident_id}/transition", response_model=IncidentDetail, summary="Move to another response phase",
             responses=PROBLEMS)  # fmt: skip
def transition(
    incident_id: int, body: TransitionIn, request: Request, response: Response, session: SessionDep,
    state: StateDep, principal: Manager,
) -> IncidentDetail:  # fmt: skip
    return _change(request, response, session, state, principal, incident_id,
                   lambda ctx, i: svc.transition(session, ctx, i, body.status, body.note))  # fmt: skip


@router.post("/{incident_id}/assign", response_model=IncidentDetail, summary="Assign the incident", responses=PROBLEMS)
def assign(
    incident_id: int, body: AssignIn, request: Request, response: Response, session: SessionDep, state: StateDep,
    principal: Manager,
) -> IncidentDetail:  # fmt: skip
    return _change(request, response, session, state, principal, incident_id,
                   lambda ctx, i: svc.assign(session, ctx, i, body.assignee))  # fmt: skip


@router.post("/{incident_id}/alerts", response_model=IncidentDetail, summary="Link more alerts", responses=PROBLEMS)
def link_alerts(
    incident_id: int, body: LinkAlertsIn, request: Request, response: Response, session: SessionDep,
    state: StateDep, principal: Manager,
) -> IncidentDetail:  # fmt: skip
    def link(ctx: IncidentCtx, incident: Incident) -> None:
        svc.add_alerts(session, ctx, incident, svc.visible_alerts(session, ctx, body.alert_ids))

    return _change(request, response, session, state, principal, incident_id, link)


@router.post("/{incident_id}/notes", response_model=TimelineOut, status_code=201, summary="Add a timeline note",
             responses=PROBLEMS)  # fmt: skip
def add_note(
    incident_id: int, body: NoteIn, request: Request, session: SessionDep, state: StateDep, principal: Manager
) -> TimelineOut:
    ctx = ctx_of(request, state, principal)
    incident = _incident(session, ctx, incident_id)
    with rules():
        entry = svc.record(session, ctx, incident, "note", body.text, after={"note": body.text}, kind="note")
        session.flush()
    return TimelineOut(id=entry.id, ts=entry.ts, actor=entry.actor, kind=entry.kind, action=entry.action,
                       text=entry.text)  # fmt: skip


@router.get("/{incident_id}/timeline", response_model=TimelineList, summary="Timeline, oldest first",
            responses=PROBLEMS)  # fmt: skip
def timeline(
    incident_id: int, request: Request, session: SessionDep, state: StateDep, principal: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100, cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> TimelineList:  # fmt: skip
    incident = _incident(session, ctx_of(request, state, principal), incident_id)
    stmt = select(IncidentTimelineEntry).where(IncidentTimelineEntry.incident_id == incident.id)
    try:
        rows, nxt = pagination.page(
            session, stmt, [IncidentTimelineEntry.id], lambda e: [e.id], tag=f"timeline:{incident.id}",
            decoders=[int], limit=limit, cursor=cursor, descending=False,
        )  # fmt: skip
    except pagination.CursorError as exc:
        raise Problem(400, str(exc), kind="bad-cursor") from None
    items = [TimelineOut(id=e.id, ts=e.ts, actor=e.actor, kind=e.kind, action=e.action, text=e.text) for e in rows]
    return TimelineList(items=items, next_cursor=nxt)


@router.post("/{incident_id}/tasks", response_model=TaskOut, status_code=201, summary="Add a task",
             responses=PROBLEMS)  # fmt: skip
def add_task(
    incident_id: int, body: TaskIn, request: Request, session: SessionDep, state: StateDep, principal: Manager
) -> TaskOut:
    ctx = ctx_of(request, state, principal)
    incident = _incident(session, ctx, incident_id, for_update=True)
    with rules():
        task = task_svc.add_task(session, ctx, incident, body.title, body.phase, body.owner_role)
        session.flush()
    return task_out(task, {})


@router.patch("/{incident_id}/tasks/{task_id}", response_model=TaskOut, summary="Update a task (If-Match: its ETag)",
              responses=PROBLEMS)  # fmt: skip
def patch_task(
    incident_id: int, task_id: int, body: TaskPatchIn, request: Request, response: Response, session: SessionDep,
    state: StateDep, principal: Manager,
) -> TaskOut:  # fmt: skip
    ctx = ctx_of(request, state, principal)
    incident = _incident(session, ctx, incident_id)
    task = session.get(IncidentTask, task_id, with_for_update=True)
    if task is None or task.incident_id != incident.id:
        raise Problem(404, "no such task", kind="not-found")
    check_if_match(request, task.version)
    with rules():
        task_svc.update_task(session, ctx, incident, task, status=body.status, note=body.note,
                             assignee=body.assignee, unassign=body.unassign)  # fmt: skip
        session.flush()
    response.headers["ETag"] = etag(task.version)
    return task_out(task, _usernames(session, {task.assignee_id}))


async def evidence_body(request: Request, state: StateDep) -> bytes:
    """The request body, read up to the evidence size limit."""
    limit = settings_of(state).max_evidence_bytes
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"evidence above {limit} bytes", kind="too-large")
        chunks.append(chunk)
    return b"".join(chunks)


@router.put(
    "/{incident_id}/documents/evidence", response_model=EvidenceOut, status_code=201,
    summary="Upload an evidence file (the body is the file, Content-Type its type)", responses=PROBLEMS,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
)  # fmt: skip
def upload_evidence(
    incident_id: int, request: Request, session: SessionDep, state: StateDep, principal: Manager,
    data: Annotated[bytes, Depends(evidence_body)],
    filename: Annotated[str, Query(min_length=1, max_length=MAX_FILENAME)],
    description: Annotated[str, Query(max_length=2000)] = "",
) -> EvidenceOut:  # fmt: skip
    ctx = ctx_of(request, state, principal)
    incident = _incident(session, ctx, incident_id)
    with rules():
        row = evidence_svc.add_evidence(session, ctx, incident, filename, request.headers.get("content-type", ""),
                                        description, data)  # fmt: skip
    return evidence_out(row)


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the exact UTF-8 name (Vietnamese file names survive)."""
    fallback = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _attachment(data: bytes, media: str, filename: str, sha256: str) -> Response:
    headers = {"Content-Disposition": content_disposition(filename), "X-Content-SHA256": sha256}
    return Response(data, media_type=media, headers=headers)


@router.get("/{incident_id}/evidence/{evidence_id}/content", response_class=Response, responses=PROBLEMS,
            summary="Download evidence (re-hashed: 500 if the stored file changed)")  # fmt: skip
def download_evidence(
    incident_id: int, evidence_id: int, request: Request, session: SessionDep, state: StateDep, principal: Reader
) -> Response:
    ctx = ctx_of(request, state, principal)
    incident = _incident(session, ctx, incident_id)
    row = session.get(IncidentEvidence, evidence_id)
    if row is None or row.incident_id != incident.id:
        raise Problem(404, "no such evidence", kind="not-found")
    with rules():
        data = evidence_svc.read_verified(evidence_svc.evidence_root(ctx), row.sha256)
    return _attachment(data, row.content_type, row.filename, row.sha256)


@router.post("/{incident_id}/reports", response_model=ReportOut, status_code=201, responses=PROBLEMS,
             summary="Generate and archive a report document (PDF or DOCX, Vietnamese)")  # fmt: skip
def generate_report(
    incident_id: int, body: ReportIn, request: Request, session: SessionDep, state: StateDep, principal: Reporter
) -> ReportOut:
    ctx = ctx_of(request, state, principal)
    incident = _incident(session, ctx, incident_id)
    with rules():
        row = reporting.generate(session, ctx, incident, body.kind, body.format)
    return report_out(row)


@router.get("/{incident_id}/reports/{report_id}/content", response_class=Response, responses=PROBLEMS,
            summary="Download an archived report (re-hashed on the way out)")  # fmt: skip
def download_report(
    incident_id: int, report_id: int, request: Request, session: SessionDep, state: StateDep, principal: Reader
) -> Response:
    ctx = ctx_of(request, state, principal)
    incident = _incident(session, ctx, incident_id)
    row = session.get(IncidentReport, report_id)
    if row is None or row.incident_id != incident.id:
        raise Problem(404, "no such report", kind="not-found")
    with rules():
        data = reporting.report_bytes(ctx, row)
    return _attachment(data, reporting.MEDIA[row.format], row.filename, row.sha256)


def _duty(
    request: Request, session: Session, ctx: IncidentCtx, incident_id: int, obligation_id: int
) -> tuple[Incident, IncidentObligation]:
    incident = _incident(session, ctx, incident_id)
    duty = session.get(IncidentObligation, obligation_id, with_for_update=True)
    if duty is None or duty.incident_id != incident.id:
        raise Problem(404, "no such reporting obligation", kind="not-found")
    check_if_match(request, duty.version)
    return incident, duty


@router.post("/{incident_id}/obligations/{obligation_id}/sent", response_model=ObligationOut, responses=PROBLEMS,
             summary="Record that a report was sent")  # fmt: skip
def mark_sent(
    incident_id: int, obligation_id: int, body: SentIn, request: Request, response: Response, session: SessionDep,
    state: StateDep, principal: Reporter,
) -> ObligationOut:  # fmt: skip
    ctx = ctx_of(request, state, principal)
    incident, duty = _duty(request, session, ctx, incident_id, obligation_id)
    with rules():
        reporting.mark_sent(session, ctx, incident, duty, body.sent_at, body.reference, body.report_id)
        session.flush()
    response.headers["ETag"] = etag(duty.version)
    return obligation_out(duty, ctx.now)


@router.post("/{incident_id}/obligations/{obligation_id}/acknowledged", response_model=ObligationOut,
             responses=PROBLEMS, summary="Record that the recipient acknowledged a report")  # fmt: skip
def mark_acknowledged(
    incident_id: int, obligation_id: int, body: AcknowledgedIn, request: Request, response: Response,
    session: SessionDep, state: StateDep, principal: Reporter,
) -> ObligationOut:  # fmt: skip
    ctx = ctx_of(request, state, principal)
    incident, duty = _duty(request, session, ctx, incident_id, obligation_id)
    with rules():
        reporting.mark_acknowledged(session, ctx, incident, duty, body.acknowledged_at)
        session.flush()
    response.headers["ETag"] = etag(duty.version)
    return obligation_out(duty, ctx.now)
