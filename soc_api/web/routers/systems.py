"""Information systems and level dossiers: registry list/detail/edit, the level determination
with the criteria that drove it, the dossier with its parts and document versions, the
appraisal/approval workflow (who acts next, by which working day) and the history.

The pages call the systems services and reuse the JSON API's output builders, so what a page
shows is exactly what ``/api/v1`` returns.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from soc_api.db.models import AuditEntry
from soc_api.deps import SessionDep, StateDep
from soc_api.problems import Problem
from soc_api.state import AppState
from soc_api.systems import routers as api
from soc_api.systems.models import Dossier, InformationSystem
from soc_api.systems.schemas import AppraiseIn, ApproveIn, DossierIn, ReturnIn, SystemPatch
from soc_api.systems.services import dossiers as dsvc
from soc_api.systems.services import registry as reg
from soc_api.systems.services.access import EDIT_ROLES, READ_ROLES
from soc_api.systems.services.context import Ctx, RuleError
from soc_api.web import nav
from soc_api.web.forms import FormPost, read_upload
from soc_api.web.guard import FormRejected, PagePrincipal, allow, ip
from soc_api.web.i18n import N_
from soc_api.web.render import render

router = APIRouter()
nav.register(
    nav.NavEntry("systems", N_("Information systems"), "/systems", order=30, allowed=nav.has_role(*READ_ROLES))
)
STEPS = ("submit", "return", "appraise", "approve")


def _ctx(request: Request, state: AppState, principal: Any) -> Ctx:
    allow(principal, nav.has_role(*READ_ROLES))
    return Ctx(principal, ip(request), api.settings_of(state), state.config.data_dir)


def _system(session: Session, ctx: Ctx, system_id: str, *, for_update: bool = False) -> InformationSystem:
    try:
        return reg.get_visible(session, ctx.principal, system_id[:64], for_update=for_update)
    except RuleError:
        raise FormRejected(N_("No such information system."), "/systems") from None


def _dossier(
    session: Session, ctx: Ctx, dossier_id: int, *, for_update: bool = False
) -> tuple[Dossier, InformationSystem]:
    try:
        return api._dossier(session, ctx, dossier_id, for_update=for_update)
    except Problem:
        raise FormRejected(N_("No such dossier."), "/systems") from None


def _history(session: Session, object_type: str, object_ids: list[str]) -> list[AuditEntry]:
    conds = [AuditEntry.object_id == oid for oid in object_ids]
    stmt = select(AuditEntry).where(AuditEntry.object_type == object_type, or_(*conds)).order_by(AuditEntry.seq.desc())
    return list(session.scalars(stmt.limit(200)))


@router.get("/systems")
def systems_list(request: Request, session: SessionDep, state: StateDep, principal: PagePrincipal) -> HTMLResponse:
    ctx = _ctx(request, state, principal)
    systems = [api.system_out(session, s) for s in reg.list_systems(session, ctx.principal)]
    latest: dict[str, Dossier] = {}
    for d in session.scalars(select(Dossier).order_by(Dossier.id)):
        latest[d.system_id] = d
    context = {"systems": systems, "latest": latest}
    return render(request, state, "systems.html", context, principal=principal, active="systems")


@router.get("/systems/{system_id}")
def system_detail(
    system_id: str, request: Request, session: SessionDep, state: StateDep, principal: PagePrincipal
) -> HTMLResponse:
    ctx = _ctx(request, state, principal)
    try:
        system = reg.get_visible(session, ctx.principal, system_id[:64])
    except RuleError:
        return render(request, state, "not_found.html", {}, principal=principal, status_code=404)
    try:
        det = api.determination_out(
            reg.determination_for(session, ctx, system, None),
            reg.latest_risk_assessment(session, system.id) is not None,
        )
    except RuleError:
        det = None
    dossiers = list(session.scalars(select(Dossier).where(Dossier.system_id == system.id).order_by(Dossier.id.desc())))
    context = {
        "s": api.system_out(session, system),
        "det": det,
        "dossiers": dossiers,
        "history": _history(session, "system", [system.id]),
        "can_edit": principal.role in EDIT_ROLES,
    }
    return render(request, state, "system_detail.html", context, principal=principal, active="systems")


def _optional_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value.strip() else None
    except ValueError:
        return None


@router.post("/systems/{system_id}/edit")
def system_edit(
    system_id: str,
    post: FormPost,
    name: Annotated[str, Form(max_length=300)],
    description: Annotated[str, Form(max_length=10_000)] = "",
    security_regulation_no: Annotated[str, Form(max_length=100)] = "",
    security_regulation_date: Annotated[str, Form(max_length=10)] = "",
    plan_target_date: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    ctx = _ctx(post.request, post.state, post.principal)
    back = f"/systems/{system_id}"
    system = _system(post.session, ctx, system_id, for_update=True)

    def change() -> None:
        patch = SystemPatch(
            name=name.strip() or None,
            description=description,
            security_regulation_no=security_regulation_no.strip() or None,
            security_regulation_date=_optional_date(security_regulation_date),
            plan_target_date=_optional_date(plan_target_date),
        )
        reg.update_system(post.session, ctx, system, patch)

    post.run(back, change, (RuleError,))
    return post.done(back, N_("Saved."))


@router.post("/systems/{system_id}/dossiers")
def dossier_create(
    system_id: str,
    post: FormPost,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    ctx = _ctx(post.request, post.state, post.principal)
    back = f"/systems/{system_id}"
    system = _system(post.session, ctx, system_id, for_update=True)
    try:
        dossier = dsvc.create(post.session, ctx, system, DossierIn(reason=reason.strip() or None))
        post.session.flush()
    except RuleError as exc:
        raise FormRejected(N_("The action was refused."), back, str(exc)) from None
    return post.done(f"/dossiers/{dossier.id}", N_("Dossier created."))


@router.get("/dossiers/{dossier_id}")
def dossier_detail(
    dossier_id: int, request: Request, session: SessionDep, state: StateDep, principal: PagePrincipal
) -> HTMLResponse:
    ctx = _ctx(request, state, principal)
    try:
        dossier, system = api._dossier(session, ctx, dossier_id)
        out = api.dossier_out(session, ctx, dossier, system)
    except (Problem, RuleError):
        return render(request, state, "not_found.html", {}, principal=principal, status_code=404)
    context = {
        "d": out,
        "system": system,
        "history": _history(session, "dossier", [str(dossier.id)]),
        "can_edit": principal.role in EDIT_ROLES and out.status in ("drafting", "returned"),
        "decides": principal.role == "approver",
        "today": date.today().isoformat(),
    }
    return render(request, state, "dossier.html", context, principal=principal, active="systems")


@router.post("/dossiers/{dossier_id}/documents/{part}")
async def dossier_upload(
    dossier_id: int,
    part: str,
    post: FormPost,
    file: Annotated[UploadFile, File()],
) -> Response:
    ctx = _ctx(post.request, post.state, post.principal)
    back = f"/dossiers/{dossier_id}"
    up = await read_upload(file, ctx.settings.max_document_bytes, back, "document", api.MAX_FILENAME)
    dossier, _system_row = _dossier(post.session, ctx, dossier_id, for_update=True)
    post.run(back, lambda: dsvc.upload(post.session, ctx, dossier, part[:64], up.name, up.media, up.data), (RuleError,))
    return post.done(back, N_("Document uploaded."))


@router.post("/dossiers/{dossier_id}/{step}")
def dossier_step(
    dossier_id: int,
    step: str,
    post: FormPost,
    text: Annotated[str, Form(max_length=10_000)] = "",
    decision_no: Annotated[str, Form(max_length=100)] = "",
    decision_date: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    ctx = _ctx(post.request, post.state, post.principal)
    back = f"/dossiers/{dossier_id}"
    if step not in STEPS:
        raise FormRejected(N_("Unknown action."), back)
    dossier, system = _dossier(post.session, ctx, dossier_id, for_update=True)

    def change() -> None:
        if step == "submit":
            dsvc.submit(post.session, ctx, dossier, system)
        elif step == "return":
            dsvc.return_for_completion(post.session, ctx, dossier, system, ReturnIn(reason=text))
        elif step == "appraise":
            dsvc.appraise(post.session, ctx, dossier, system, AppraiseIn(opinion=text))
        else:
            when = _optional_date(decision_date)
            if when is None:
                raise FormRejected(N_("Check the values you entered."), back)
            dsvc.approve(post.session, ctx, dossier, system, ApproveIn(decision_no=decision_no, decision_date=when))

    post.run(back, change, (RuleError,))
    return post.done(back, N_("Saved."))
