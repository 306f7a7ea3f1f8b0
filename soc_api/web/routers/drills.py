"""Drill pages: the list with a month calendar, and the drill record (timeline, findings,
improvement actions with owners and due dates, signed minutes).

The pages call the drill services and reuse the JSON API's ``drill_out``, so a page shows what
``/api/v1/drills`` returns; every change is audited by the service in the request's transaction.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.assessments.routers import today_vn
from soc_api.assessments.schemas import ActionIn
from soc_api.assessments.services import actions as asvc
from soc_api.db.models import Site
from soc_api.deps import SessionDep, StateDep
from soc_api.drills import routers as api
from soc_api.drills.models import Drill
from soc_api.drills.schemas import DrillIn, DrillPatch, PlanIn, TimelineIn
from soc_api.drills.services import drills as svc
from soc_api.drills.services import marking
from soc_api.services.principal import Principal
from soc_api.state import AppState
from soc_api.systems import routers as systems_api
from soc_api.systems.services.access import EDIT_ROLES, READ_ROLES
from soc_api.systems.services.context import Ctx, RuleError
from soc_api.web import nav, userprefs
from soc_api.web.forms import FormPost, read_upload
from soc_api.web.guard import FormRejected, PagePrincipal, allow, ip
from soc_api.web.i18n import N_
from soc_api.web.render import render
from soc_common.ecs import utc_now

router = APIRouter()
nav.register(nav.NavEntry("drills", N_("Drills"), "/drills", order=35, allowed=nav.has_role(*READ_ROLES)))
nav.register(
    nav.NavEntry("drill_plans", N_("Drill plans"), "/drills/plans", order=36, allowed=nav.has_role(*READ_ROLES))
)
REFUSALS = (RuleError, ValueError)  # service refusals shown to the user
KIND_LABELS = {"tabletop": N_("Tabletop exercise"), "live": N_("Live exercise"), "national": N_("National exercise")}
STATUS_LABELS = {
    "planned": N_("Planned"),
    "running": N_("Running"),
    "completed": N_("Completed"),
    "cancelled": N_("Cancelled"),
}
PHASE_LABELS = {
    "start": N_("Start"),
    "detection": N_("Detection"),
    "notification": N_("Notification"),
    "containment": N_("Containment"),
    "eradication": N_("Eradication"),
    "recovery": N_("Recovery"),
    "end": N_("End"),
    "other": N_("Other"),
}
LABELS = {"kind_labels": KIND_LABELS, "status_labels": STATUS_LABELS, "phase_labels": PHASE_LABELS}


def _ctx(request: Request, state: AppState, principal: Principal, *, edit: bool = False) -> Ctx:
    allow(principal, nav.has_role(*(EDIT_ROLES if edit else READ_ROLES)))
    return Ctx(principal, ip(request), systems_api.settings_of(state), state.config.data_dir)


def _sites(session: Session, principal: Principal) -> list[Site]:
    return [s for s in session.scalars(select(Site).order_by(Site.code)) if principal.sees_site(s.code)]


def _drill(session: Session, principal: Principal, drill_id: int, *, for_update: bool = False) -> Drill:
    try:
        return svc.visible(session, principal, drill_id, for_update=for_update)
    except RuleError:
        raise FormRejected(N_("No such drill."), "/drills") from None


def month_of(value: str | None, today: date) -> date:
    """The first day of ``YYYY-MM`` (this month when absent or malformed)."""
    try:
        year, month = (int(x) for x in (value or "").split("-", 1))
        return date(year, month, 1)
    except ValueError:
        return today.replace(day=1)


def month_weeks(first: date, drills: list[Drill]) -> list[list[tuple[date | None, list[Drill]]]]:
    """Monday-first weeks of the month, each day with the drills planned on it."""
    by_day: dict[date, list[Drill]] = {}
    for d in drills:
        by_day.setdefault(d.planned_on, []).append(d)
    weeks = calendar.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month)
    return [[(day, by_day.get(day, [])) if day.month == first.month else (None, []) for day in week] for week in weeks]


def _shift(first: date, months: int) -> str:
    index = first.year * 12 + first.month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@router.get("/drills")
def drills_page(request: Request, session: SessionDep, state: StateDep, principal: PagePrincipal) -> HTMLResponse:
    _ctx(request, state, principal)
    today = today_vn()
    first = month_of(request.query_params.get("month"), today)
    drills = svc.listing(session, principal)
    context = {
        "drills": drills,
        "plans": svc.plans(session, principal, today.year),
        "weeks": month_weeks(first, drills),
        "month": first,
        "prev_month": _shift(first, -1),
        "next_month": _shift(first, 1),
        "today": today,
        "sites": _sites(session, principal),
        "can_edit": principal.role in EDIT_ROLES,
        **LABELS,
    }
    return render(request, state, "drills.html", context, principal=principal, active="drills")


@router.get("/drills/plans")
def plans_page(
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: PagePrincipal,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> HTMLResponse:
    """The yearly drill plans (one per site and year) with how many of their drills were carried out."""
    _ctx(request, state, principal)
    this_year = today_vn().year
    year = year or this_year
    context = {
        "plans": [api.plan_out(session, principal, p) for p in svc.plans(session, principal, year)],
        "year": year,
        "years": list(range(this_year + 1, this_year - 5, -1)),
        "sites": _sites(session, principal),
        "can_edit": principal.role in EDIT_ROLES,
        **LABELS,
    }
    return render(request, state, "drill_plans.html", context, principal=principal, active="drill_plans")


@router.post("/drills/plans")
def create_plan(
    post: FormPost,
    site: Annotated[str, Form(max_length=64)],
    year: Annotated[int, Form(ge=2000, le=2100)],
    title: Annotated[str, Form(max_length=500)],
    decision_no: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    ctx = _ctx(post.request, post.state, post.principal, edit=True)
    back = f"/drills/plans?year={year}"
    body = {"site": site, "year": year, "title": title.strip(), "decision_no": decision_no.strip() or None}
    post.run(back, lambda: svc.create_plan(post.session, ctx, PlanIn.model_validate(body)), REFUSALS)
    return post.done(back, N_("Drill plan created."))


@router.post("/drills")
def create_drill(
    post: FormPost,
    site: Annotated[str, Form(max_length=64)],
    title: Annotated[str, Form(max_length=500)],
    kind: Annotated[str, Form(max_length=16)],
    planned_on: Annotated[str, Form(max_length=10)],
    scenario: Annotated[str, Form(max_length=50_000)] = "",
    plan_id: Annotated[int | None, Form()] = None,
) -> Response:
    ctx = _ctx(post.request, post.state, post.principal, edit=True)
    created: list[Drill] = []

    def create() -> None:
        body = DrillIn.model_validate(
            {
                "site": site,
                "title": title.strip(),
                "kind": kind,
                "planned_on": planned_on,
                "scenario": scenario,
                "plan_id": plan_id,
            }
        )
        created.append(svc.create(post.session, ctx, body))

    post.run("/drills", create, REFUSALS)
    return post.done(f"/drills/{created[0].id}", N_("Drill recorded."))


@router.get("/drills/{drill_id}")
def drill_page(
    drill_id: int, request: Request, session: SessionDep, state: StateDep, principal: PagePrincipal
) -> HTMLResponse:
    _ctx(request, state, principal)
    try:
        drill = svc.visible(session, principal, drill_id)
    except RuleError:
        return render(request, state, "not_found.html", {}, principal=principal, status_code=404)
    context = {
        "d": api.drill_out(session, drill),
        "next_statuses": svc.TRANSITIONS[drill.status],
        "now_local": datetime.now(userprefs.zone(request, state)).strftime("%Y-%m-%dT%H:%M"),
        "can_edit": principal.role in EDIT_ROLES,
        **LABELS,
    }
    return render(request, state, "drill_detail.html", context, principal=principal, active="drills")


def _local_time(value: str, request: Request, state: AppState) -> datetime:
    """A ``datetime-local`` value in the user's zone (the service stores UTC)."""
    return datetime.fromisoformat(value).replace(tzinfo=userprefs.zone(request, state))


@router.post("/drills/{drill_id}/timeline")
def add_timeline(
    drill_id: int,
    post: FormPost,
    at: Annotated[str, Form(max_length=32)],
    phase: Annotated[str, Form(max_length=16)],
    note: Annotated[str, Form(max_length=10_000)] = "",
    team: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ctx = _ctx(post.request, post.state, post.principal, edit=True)
    back = f"/drills/{drill_id}"
    drill = _drill(post.session, post.principal, drill_id)

    def add() -> None:
        when = _local_time(at, post.request, post.state)
        body = TimelineIn.model_validate({"at": when, "phase": phase, "note": note, "team": team})
        svc.add_timeline(post.session, ctx, drill, body)

    post.run(back, add, REFUSALS)
    return post.done(back, N_("Saved."))


@router.post("/drills/{drill_id}/record")
def record(
    drill_id: int,
    post: FormPost,
    status: Annotated[str, Form(max_length=16)] = "",
    started_at: Annotated[str, Form(max_length=32)] = "",
    ended_at: Annotated[str, Form(max_length=32)] = "",
    coordination_findings: Annotated[str, Form(max_length=50_000)] = "",
    open_gaps: Annotated[str, Form(max_length=50_000)] = "",
    evaluation: Annotated[str, Form(max_length=50_000)] = "",
) -> Response:
    """Status, run window, findings, open gaps (one a line) and evaluation; a live drill's window
    then marks its participants' alerts as drill alerts, as the API does."""
    ctx = _ctx(post.request, post.state, post.principal, edit=True)
    back = f"/drills/{drill_id}"
    drill = _drill(post.session, post.principal, drill_id, for_update=True)

    def change() -> None:
        values: dict[str, Any] = {
            "coordination_findings": coordination_findings,
            "open_gaps": [g.strip() for g in open_gaps.splitlines() if g.strip()],
            "evaluation": evaluation,
        }
        if status:
            values["status"] = status
        if started_at:
            values["started_at"] = _local_time(started_at, post.request, post.state)
        if ended_at:
            values["ended_at"] = _local_time(ended_at, post.request, post.state)
        svc.update(post.session, ctx, drill, DrillPatch.model_validate(values))
        marking.mark_alerts(post.session, drill, utc_now(), ctx.actor, ctx.source_ip)

    post.run(back, change, REFUSALS)
    return post.done(back, N_("Saved."))


@router.post("/drills/{drill_id}/actions")
def add_action(
    drill_id: int,
    post: FormPost,
    title: Annotated[str, Form(max_length=500)],
    owner: Annotated[str, Form(max_length=200)],
    due_date: Annotated[str, Form(max_length=10)],
) -> Response:
    ctx = _ctx(post.request, post.state, post.principal, edit=True)
    back = f"/drills/{drill_id}"
    drill = _drill(post.session, post.principal, drill_id)

    def add() -> None:
        body = ActionIn.model_validate({"title": title.strip(), "owner": owner.strip(), "due_date": due_date})
        asvc.add(post.session, ctx, "drill", drill.id, drill.site, body)

    post.run(back, add, REFUSALS)
    return post.done(back, N_("Improvement action added."))


@router.post("/drills/{drill_id}/minutes")
async def upload_minutes(
    drill_id: int,
    post: FormPost,
    file: Annotated[UploadFile, File()],
) -> Response:
    ctx = _ctx(post.request, post.state, post.principal, edit=True)
    back = f"/drills/{drill_id}"
    up = await read_upload(file, ctx.settings.max_document_bytes, back, "minutes", api.MAX_FILENAME)
    drill = _drill(post.session, post.principal, drill_id, for_update=True)
    post.run(back, lambda: svc.upload_minutes(post.session, ctx, drill, up.name, up.media, up.data), REFUSALS)
    return post.done(back, N_("Minutes uploaded."))
