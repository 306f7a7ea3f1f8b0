"""Incident pages: the board by response phase, the incident record (timeline, tasks, evidence,
reporting obligations, reports, transitions) and escalation of alerts into a new incident.

The pages call the incident services in the request's transaction and reuse the JSON API's output
builders, so a page shows exactly what ``/api/v1/incidents`` returns and every change is audited
the same way. Downloads link to the API (the session cookie authenticates GETs there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.db.models import Incident
from soc_api.deps import SessionDep, StateDep
from soc_api.incidents import routers as api
from soc_api.incidents.models import IncidentObligation, IncidentTask
from soc_api.incidents.rules import CATEGORIES, RuleFileError
from soc_api.incidents.services import evidence as evidence_svc
from soc_api.incidents.services import lifecycle as svc
from soc_api.incidents.services import reporting
from soc_api.incidents.services import tasks as task_svc
from soc_api.incidents.services.context import IncidentCtx, IncidentError
from soc_api.services.principal import INCIDENTS_MANAGE, INCIDENTS_READ, INCIDENTS_REPORT, Principal
from soc_api.state import AppState
from soc_api.web import nav
from soc_api.web.forms import FormPost, PostContext, read_upload
from soc_api.web.guard import FormRejected, PagePrincipal, allow, safe_next
from soc_api.web.i18n import N_
from soc_api.web.render import render

router = APIRouter()
nav.register(nav.NavEntry("incidents", N_("Incidents"), "/incidents", order=25, allowed=nav.can(INCIDENTS_READ)))
ObligationStep = Callable[[Session, IncidentCtx, Incident, IncidentObligation], None]
REFUSALS = (IncidentError, RuleFileError)  # service refusals shown to the user
BOARD_LIMIT = 200  # per column; older closed incidents stay reachable through the API
STATUSES = ("detected", "analysing", "contained", "eradicated", "recovered", "closed")
STATUS_LABELS = {
    "detected": N_("Detected"),
    "analysing": N_("Analysing"),
    "contained": N_("Contained"),
    "eradicated": N_("Eradicated"),
    "recovered": N_("Recovered"),
    "closed": N_("Closed"),
}
SEVERITY_LABELS = {"normal": N_("Normal"), "serious": N_("Serious")}
CATEGORY_LABELS = {
    "malware": N_("Malware"),
    "intrusion": N_("System intrusion"),
    "denial_of_service": N_("Denial of service"),
    "data_leak": N_("Data leak or loss"),
    "phishing": N_("Phishing e-mail"),
    "defacement": N_("Website defacement"),
    "unauthorised_access": N_("Unauthorised access"),
    "policy_violation": N_("Security policy violation"),
    "other": N_("Other"),
}
LABELS = {"status_labels": STATUS_LABELS, "severity_labels": SEVERITY_LABELS, "category_labels": CATEGORY_LABELS}
TASK_LABELS = {"todo": N_("To do"), "done": N_("Done"), "skipped": N_("Skipped")}
OBLIGATION_LABELS = {"pending": N_("Pending"), "sent": N_("Sent"), "acknowledged": N_("Acknowledged")}
REPORT_KINDS = {"initial": N_("Initial report"), "update": N_("Update report"), "closure": N_("Closure report")}
REPORT_FORMATS = ("pdf", "docx")


def _ctx(request: Request, state: AppState, principal: Principal, permission: str = INCIDENTS_READ) -> IncidentCtx:
    allow(principal, nav.can(permission))
    return api.ctx_of(request, state, principal)


def _incident(session: Session, ctx: IncidentCtx, incident_id: int, *, for_update: bool = False) -> Incident:
    try:
        return svc.get_visible(session, ctx, incident_id, for_update=for_update)
    except IncidentError:
        raise FormRejected(N_("No such incident."), "/incidents") from None


@router.get("/incidents")
def board(request: Request, session: SessionDep, state: StateDep, principal: PagePrincipal) -> HTMLResponse:
    _ctx(request, state, principal)
    columns: dict[str, list[api.IncidentOut]] = {}
    for status in STATUSES:
        stmt = select(Incident).where(Incident.status == status)
        if principal.sites is not None:
            stmt = stmt.where(Incident.site.in_(sorted(principal.sites)))
        rows = list(session.scalars(stmt.order_by(Incident.detected_at.desc(), Incident.id.desc()).limit(BOARD_LIMIT)))
        names = api._usernames(session, {i.assignee_id for i in rows})
        columns[status] = [api.incident_out(i, names) for i in rows]
    context = {"columns": columns, **LABELS}
    return render(request, state, "incidents.html", context, principal=principal, active="incidents")


@router.get("/incidents/{incident_id}")
def incident_page(
    incident_id: int, request: Request, session: SessionDep, state: StateDep, principal: PagePrincipal
) -> HTMLResponse:
    ctx = _ctx(request, state, principal)
    try:
        incident = svc.get_visible(session, ctx, incident_id)
    except IncidentError:
        return render(request, state, "not_found.html", {}, principal=principal, status_code=404)
    context = {
        "i": api.detail(session, incident),
        "timeline": reporting.timeline_of(session, incident.id),
        "next_statuses": [s for s in STATUSES if svc._allowed(incident.status, s)],
        **LABELS,
        "task_labels": TASK_LABELS,
        "obligation_labels": OBLIGATION_LABELS,
        "report_kinds": REPORT_KINDS,
        "report_formats": REPORT_FORMATS,
        "can_manage": principal.can(INCIDENTS_MANAGE),
        "can_report": principal.can(INCIDENTS_REPORT),
    }
    return render(request, state, "incident_detail.html", context, principal=principal, active="incidents")


@router.post("/incidents/escalate")
def escalate(
    post: FormPost,
    ids: Annotated[list[str], Form(max_length=500)] = [],  # noqa: B006 - FastAPI reads, never mutates
    title: Annotated[str, Form(max_length=500)] = "",
    category: Annotated[str, Form(max_length=32)] = "other",
    back: Annotated[str, Form(max_length=2000)] = "/alerts",
) -> Response:
    """Open an incident from the selected alerts (title from the first alert unless given)."""
    ctx = _ctx(post.request, post.state, post.principal, INCIDENTS_MANAGE)
    back = safe_next(back if back.startswith("/alerts") else "/alerts")
    wanted = [i[:64] for i in dict.fromkeys(ids) if i]
    if not wanted:
        raise FormRejected(N_("Select alerts to escalate."), back)
    if len(wanted) > ctx.settings.max_alerts_per_incident:
        raise FormRejected(N_("Too many alerts selected."), back)
    if category not in CATEGORIES:
        raise FormRejected(N_("Check the values you entered."), back)
    created: list[Incident] = []

    def create() -> None:
        alerts = svc.visible_alerts(post.session, ctx, wanted)
        if len({a.site for a in alerts}) > 1:
            raise IncidentError("the alerts belong to different sites", status=422, kind="other-site")
        draft = svc.IncidentDraft(title=title.strip() or alerts[0].rule_title[:500], category=category)
        created.append(svc.create(post.session, ctx, draft, alerts))

    post.run(back, create, REFUSALS)
    return post.done(f"/incidents/{created[0].id}", N_("Incident opened."))


@router.post("/incidents/{incident_id}/transition")
def transition(
    incident_id: int,
    post: FormPost,
    status: Annotated[str, Form(max_length=32)],
    note: Annotated[str, Form(max_length=4000)] = "",
    lessons_learned: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    """Move to another phase; closing records the lessons learned first (the service requires them)."""
    ctx = _ctx(post.request, post.state, post.principal, INCIDENTS_MANAGE)
    back = f"/incidents/{incident_id}"
    incident = _incident(post.session, ctx, incident_id, for_update=True)

    def change() -> None:
        if lessons_learned.strip():
            svc.update(post.session, ctx, incident, svc.IncidentPatch(lessons_learned=lessons_learned.strip()))
        svc.transition(post.session, ctx, incident, status, note.strip() or None)

    post.run(back, change, REFUSALS)
    return post.done(back, N_("Saved."))


@router.post("/incidents/{incident_id}/notes")
def add_note(
    incident_id: int,
    post: FormPost,
    text: Annotated[str, Form(min_length=1, max_length=4000)],
) -> Response:
    ctx = _ctx(post.request, post.state, post.principal, INCIDENTS_MANAGE)
    back = f"/incidents/{incident_id}"
    incident = _incident(post.session, ctx, incident_id)
    post.run(back, lambda: svc.add_note(post.session, ctx, incident, text.strip()), REFUSALS)
    return post.done(back, N_("Saved."))


@router.post("/incidents/{incident_id}/tasks/{task_id}")
def task_status(
    incident_id: int,
    task_id: int,
    post: FormPost,
    status: Annotated[str, Form(max_length=16)],
) -> Response:
    ctx = _ctx(post.request, post.state, post.principal, INCIDENTS_MANAGE)
    back = f"/incidents/{incident_id}"
    incident = _incident(post.session, ctx, incident_id)
    task = post.session.get(IncidentTask, task_id, with_for_update=True)
    if task is None or task.incident_id != incident.id:
        raise FormRejected(N_("No such task."), back)
    change = lambda: task_svc.update_task(post.session, ctx, incident, task, status=status, note=None, assignee=None)  # noqa: E731
    post.run(back, change, REFUSALS)
    return post.done(back, N_("Saved."))


@router.post("/incidents/{incident_id}/evidence")
async def upload_evidence(
    incident_id: int,
    post: FormPost,
    file: Annotated[UploadFile, File()],
    description: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    ctx = _ctx(post.request, post.state, post.principal, INCIDENTS_MANAGE)
    back = f"/incidents/{incident_id}"
    up = await read_upload(file, ctx.settings.max_evidence_bytes, back, "evidence", api.MAX_FILENAME)
    incident = _incident(post.session, ctx, incident_id)
    media = up.media or "application/octet-stream"
    change = lambda: evidence_svc.add_evidence(post.session, ctx, incident, up.name, media, description, up.data)  # noqa: E731
    post.run(back, change, REFUSALS)
    return post.done(back, N_("Evidence uploaded."))


@router.post("/incidents/{incident_id}/reports")
def generate_report(
    incident_id: int,
    post: FormPost,
    kind: Annotated[str, Form(max_length=16)] = "initial",
    format: Annotated[str, Form(max_length=8)] = "pdf",
) -> Response:
    ctx = _ctx(post.request, post.state, post.principal, INCIDENTS_REPORT)
    back = f"/incidents/{incident_id}"
    if kind not in REPORT_KINDS or format not in REPORT_FORMATS:
        raise FormRejected(N_("Check the values you entered."), back)
    incident = _incident(post.session, ctx, incident_id)
    post.run(back, lambda: reporting.generate(post.session, ctx, incident, kind, format), REFUSALS)
    return post.done(back, N_("Report generated."))


def _obligation_change(
    post: PostContext, incident_id: int, obligation_id: int, change: ObligationStep, ok: str
) -> Response:
    """Record a step of a reporting obligation (sent, acknowledged) through the reporting service."""
    ctx = _ctx(post.request, post.state, post.principal, INCIDENTS_REPORT)
    back = f"/incidents/{incident_id}"
    incident = _incident(post.session, ctx, incident_id)
    duty = post.session.get(IncidentObligation, obligation_id, with_for_update=True)
    if duty is None or duty.incident_id != incident.id:
        raise FormRejected(N_("No such reporting obligation."), back)
    post.run(back, lambda: change(post.session, ctx, incident, duty), REFUSALS)
    return post.done(back, ok)


@router.post("/incidents/{incident_id}/obligations/{obligation_id}/sent")
def obligation_sent(
    incident_id: int, obligation_id: int, post: FormPost, reference: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    ref = reference.strip() or None
    sent = lambda s, ctx, inc, duty: reporting.mark_sent(s, ctx, inc, duty, None, ref, None)  # noqa: E731
    return _obligation_change(post, incident_id, obligation_id, sent, N_("Saved."))


@router.post("/incidents/{incident_id}/obligations/{obligation_id}/acknowledged")
def obligation_acknowledged(incident_id: int, obligation_id: int, post: FormPost) -> Response:
    """The recipient confirmed the report (now, as the user records it)."""
    acknowledged = lambda s, ctx, inc, duty: reporting.mark_acknowledged(s, ctx, inc, duty, None)  # noqa: E731
    return _obligation_change(post, incident_id, obligation_id, acknowledged, N_("Acknowledgement recorded."))
