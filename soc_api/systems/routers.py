"""HTTP endpoints: ``/api/v1/systems``, ``/api/v1/organisations``, ``/api/v1/dossiers``,
``/api/v1/calendar/working-days``.

Every change commits with its audit entry in the request's transaction. Updates honour
``If-Match`` with the row version as ``ETag`` (412 on a stale tag, 409 on a concurrent change).
Rule refusals are RFC 9457 problems whose ``type`` names the rule (``wrong-authority``,
``state-secret``, ``incomplete``...).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from soc_api.deps import SessionDep, StateDep, client_ip, current_principal
from soc_api.problems import Problem
from soc_api.services.principal import Principal
from soc_api.state import AppState
from soc_api.systems.levels import determine
from soc_api.systems.models import Dossier, DossierDocument, InformationSystem, Organisation, RiskAssessment
from soc_api.systems.profiles import ProfileError, load_profile
from soc_api.systems.schemas import (
    AppraiseIn,
    ApproveIn,
    DeterminationOut,
    DetermineIn,
    DocumentOut,
    DossierIn,
    DossierOut,
    DriverOut,
    HolidayOut,
    HostIn,
    HostOut,
    MemberIn,
    NextStep,
    OrganisationIn,
    OrganisationOut,
    PartOut,
    PlanItemOut,
    PlanItemPatch,
    PlanOut,
    ReturnIn,
    RiskAssessmentIn,
    RiskAssessmentOut,
    SystemIn,
    SystemOut,
    SystemPatch,
    WorkingDaysOut,
)
from soc_api.systems.services import documents as docs
from soc_api.systems.services import dossiers as dsvc
from soc_api.systems.services import plan as psvc
from soc_api.systems.services import registry as reg
from soc_api.systems.services.access import READ_ROLES, require_role
from soc_api.systems.services.context import Ctx, RuleError
from soc_api.systems.settings import SystemsSettings

router = APIRouter(prefix="/api/v1")
PrincipalDep = Annotated[Principal, Depends(current_principal)]
MAX_FILENAME = 255
SYSTEMS_READ_SCOPE = "systems:read"  # read-only; every change still needs a user role


@contextmanager
def rules() -> Iterator[None]:
    """Turn rule refusals and concurrent updates into problem details."""
    try:
        yield
    except RuleError as exc:
        raise Problem(exc.status, str(exc), kind=exc.kind) from None
    except StaleDataError:
        raise Problem(409, "changed concurrently; reload and retry", kind="conflict") from None


def settings_of(state: AppState) -> SystemsSettings:
    settings = getattr(state.config, "systems", None)
    return settings if isinstance(settings, SystemsSettings) else SystemsSettings()


def context(request: Request, state: StateDep, principal: PrincipalDep) -> Ctx:
    if not principal.can(SYSTEMS_READ_SCOPE):  # API keys (the collector fetching hosts.csv) need the scope
        with rules():
            require_role(principal, READ_ROLES, "reading the registry")
    return Ctx(principal, client_ip(request), settings_of(state), state.config.data_dir)


CtxDep = Annotated[Ctx, Depends(context)]


async def document_body(request: Request, state: StateDep) -> bytes:
    """The request body, read with the document size limit (the app also caps any request body)."""
    limit = settings_of(state).max_document_bytes
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"document above {limit} bytes", kind="too-large")
        chunks.append(chunk)
    return b"".join(chunks)


def etag(version: int) -> str:
    return f'"v{version}"'


def check_if_match(request: Request, version: int) -> None:
    value = request.headers.get("if-match")
    if value is not None and value.strip()[:100] not in ("*", etag(version)):
        raise Problem(412, "changed since you read it; reload and retry", kind="stale", etag=etag(version))


# -- output builders ----------------------------------------------------------------------------
def system_out(session: Session, system: InformationSystem) -> SystemOut:
    codes = reg._org_codes(session, system)
    return SystemOut(
        id=system.id,
        name=system.name,
        description=system.description,
        site=system.site,
        owner_org=codes["owner_org"] or "",
        operator_org=codes["operator_org"] or "",
        security_unit_org=codes["security_unit_org"] or "",
        council_org=codes["council_org"],
        facts=dict(system.facts or {}),
        state_secret=system.state_secret,
        state_secret_note=reg.STATE_SECRET_NOTE if system.state_secret else None,
        admin_procedure_level=system.admin_procedure_level,
        network_zones=list(system.network_zones or []),
        cidrs=list(system.cidrs or []),
        components=list(system.components or []),
        profile=system.profile,
        proposed_level=system.proposed_level,
        approved_level=system.approved_level,
        approved_profile=system.approved_profile,
        approval_decision_no=system.approval_decision_no,
        approval_decision_date=system.approval_decision_date,
        security_regulation_no=system.security_regulation_no,
        security_regulation_date=system.security_regulation_date,
        level_review_required=system.level_review_required,
        level_review_reasons=list(system.level_review_reasons or []),
        plan_state=system.plan_state,
        plan_target_date=system.plan_target_date,
        hosts=[
            HostOut(id=h.id, host_name=h.host_name, agent_id=h.agent_id, ip=h.ip, role=h.role)
            for h in reg.hosts_of(session, system.id)
        ],
        version=system.version,
    )


def document_out(doc: DossierDocument) -> DocumentOut:
    return DocumentOut(
        id=doc.id,
        part=doc.part,
        version=doc.version,
        filename=doc.filename,
        content_type=doc.content_type,
        size=doc.size,
        sha256=doc.sha256,
        uploaded_by=doc.uploaded_by,
        uploaded_at=doc.uploaded_at,
    )


def dossier_out(session: Session, ctx: Ctx, dossier: Dossier, system: InformationSystem) -> DossierOut:
    profile = ctx.profile(dossier.profile)
    by_part: dict[str, list[DocumentOut]] = {}
    for doc in docs.documents(session, dossier.id):
        by_part.setdefault(doc.part, []).append(document_out(doc))
    nxt = dsvc.next_step(session, ctx, dossier, system)
    return DossierOut(
        id=dossier.id,
        system_id=dossier.system_id,
        profile=dossier.profile,
        status=dossier.status,
        minimum_level=dossier.minimum_level,
        proposed_level=dossier.proposed_level,
        approved_level=dossier.approved_level,
        override_reason=dossier.override_reason,
        decision_no=dossier.decision_no,
        decision_date=dossier.decision_date,
        returned_reason=dossier.returned_reason,
        appraisal_opinion=dossier.appraisal_opinion,
        appraised_by=dossier.appraised_by,
        approved_by=dossier.approved_by,
        submitted_at=dossier.submitted_at,
        appraised_at=dossier.appraised_at,
        approved_at=dossier.approved_at,
        determination=dict(dossier.determination or {}),
        parts=[
            PartOut(
                id=p.id,
                title=p.title,
                source=p.source,
                confidence=p.confidence,
                needed_before=p.before,
                documents=by_part.get(p.id, []),
            )
            for p in dsvc.parts(profile, dossier.proposed_level)
        ],
        missing_parts=dsvc.missing_parts(session, profile, dossier),
        next=NextStep(**asdict(nxt)),
        version=dossier.version,
    )


def determination_out(det: Any, recorded: bool) -> DeterminationOut:
    return DeterminationOut(
        profile=det.profile,
        profile_version=det.profile_version,
        level=det.level,
        drivers=[DriverOut(**asdict(d)) for d in det.drivers],
        matched=[DriverOut(**asdict(d)) for d in det.matched],
        risk_assessment=asdict(det.risk_assessment),
        risk_assessment_recorded=recorded,
        notes=det.notes,
    )


# -- organisations ------------------------------------------------------------------------------
def _org_out(session: Session, org: Organisation) -> OrganisationOut:
    return OrganisationOut(
        id=org.id,
        code=org.code,
        name=org.name,
        kind=org.kind,
        site=org.site,
        contact=dict(org.contact or {}),
        members=reg.members(session, org),
    )


@router.get("/organisations", response_model=list[OrganisationOut], tags=["systems"])
def list_organisations(session: SessionDep, ctx: CtxDep) -> list[OrganisationOut]:
    return [_org_out(session, o) for o in session.scalars(select(Organisation).order_by(Organisation.code))]


@router.post("/organisations", response_model=OrganisationOut, status_code=201, tags=["systems"])
def create_organisation(body: OrganisationIn, session: SessionDep, ctx: CtxDep) -> OrganisationOut:
    with rules():
        return _org_out(session, reg.create_organisation(session, ctx, body))


@router.post("/organisations/{code}/members", response_model=OrganisationOut, tags=["systems"])
def add_member(code: str, body: MemberIn, session: SessionDep, ctx: CtxDep) -> OrganisationOut:
    with rules():
        org = reg.org_by_code(session, code[:64])
        reg.add_member(session, ctx, org, body.username)
        return _org_out(session, org)


# -- systems ------------------------------------------------------------------------------------
@router.get("/systems", response_model=list[SystemOut], tags=["systems"])
def list_systems(session: SessionDep, ctx: CtxDep) -> list[SystemOut]:
    return [system_out(session, s) for s in reg.list_systems(session, ctx.principal)]


@router.post("/systems", response_model=SystemOut, status_code=201, tags=["systems"])
def create_system(body: SystemIn, response: Response, session: SessionDep, ctx: CtxDep) -> SystemOut:
    with rules():
        system = reg.create_system(session, ctx, body)
    response.headers["ETag"] = etag(system.version)
    return system_out(session, system)


@router.get(
    "/systems/hosts.csv",
    tags=["systems"],
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "system_id,asset rows for enrich.systems_file"}},
)
def export_hosts(session: SessionDep, ctx: CtxDep) -> Response:
    """Host -> system mapping in the CSV the collector's ``EnrichSystem`` reads (``enrich.systems_file``)."""
    return Response(reg.export_csv(session, ctx.principal), media_type="text/csv; charset=utf-8")


@router.post("/systems/determine", response_model=DeterminationOut, tags=["systems"])
def what_if(body: DetermineIn, ctx: CtxDep) -> DeterminationOut:
    """Determine the minimum level for facts that are not (yet) registered: nothing is stored."""
    try:
        profile = load_profile(body.profile, ctx.settings.profiles_dir)
    except ProfileError as exc:
        raise Problem(422, str(exc), kind="validation-error") from None
    return determination_out(determine(profile, body.facts), False)


def _system(session: Session, ctx: Ctx, system_id: str, *, for_update: bool = False) -> InformationSystem:
    with rules():
        return reg.get_visible(session, ctx.principal, system_id, for_update=for_update)


@router.get("/systems/{system_id}", response_model=SystemOut, tags=["systems"])
def get_system(system_id: str, response: Response, session: SessionDep, ctx: CtxDep) -> SystemOut:
    system = _system(session, ctx, system_id)
    response.headers["ETag"] = etag(system.version)
    return system_out(session, system)


@router.patch("/systems/{system_id}", response_model=SystemOut, tags=["systems"])
def update_system(
    system_id: str, body: SystemPatch, request: Request, response: Response, session: SessionDep, ctx: CtxDep
) -> SystemOut:
    system = _system(session, ctx, system_id, for_update=True)
    check_if_match(request, system.version)
    with rules():
        reg.update_system(session, ctx, system, body)
    response.headers["ETag"] = etag(system.version)
    return system_out(session, system)


@router.post("/systems/{system_id}/hosts", response_model=HostOut, status_code=201, tags=["systems"])
def add_host(system_id: str, body: HostIn, session: SessionDep, ctx: CtxDep) -> HostOut:
    system = _system(session, ctx, system_id)
    with rules():
        host = reg.add_host(session, ctx, system, body)
    return HostOut(id=host.id, host_name=host.host_name, agent_id=host.agent_id, ip=host.ip, role=host.role)


@router.delete("/systems/{system_id}/hosts/{host_id}", status_code=204, tags=["systems"])
def remove_host(system_id: str, host_id: int, session: SessionDep, ctx: CtxDep) -> Response:
    system = _system(session, ctx, system_id)
    with rules():
        reg.remove_host(session, ctx, system, host_id)
    return Response(status_code=204)


@router.get("/systems/{system_id}/determination", response_model=DeterminationOut, tags=["systems"])
def get_determination(
    system_id: str, session: SessionDep, ctx: CtxDep, profile: Annotated[str | None, Query(max_length=64)] = None
) -> DeterminationOut:
    """The minimum level under ``profile`` (default: the system's), the criteria that drove it, and
    the risk assessment the rules require."""
    system = _system(session, ctx, system_id)
    with rules():
        det = reg.determination_for(session, ctx, system, profile)
    return determination_out(det, reg.latest_risk_assessment(session, system.id) is not None)


def _risk_out(ctx: Ctx, system: InformationSystem, row: RiskAssessment) -> RiskAssessmentOut:
    return RiskAssessmentOut(
        id=row.id,
        trigger=row.trigger,
        assessed_on=row.assessed_on,
        assessed_level=row.assessed_level,
        content=dict(row.content or {}),
        created_by=row.created_by,
        missing_content=reg.missing_risk_content(ctx, system, row),
    )


@router.post(
    "/systems/{system_id}/risk-assessments", response_model=RiskAssessmentOut, status_code=201, tags=["systems"]
)
def add_risk_assessment(system_id: str, body: RiskAssessmentIn, session: SessionDep, ctx: CtxDep) -> RiskAssessmentOut:
    system = _system(session, ctx, system_id, for_update=True)
    with rules():
        row = reg.add_risk_assessment(session, ctx, system, body)
    return _risk_out(ctx, system, row)


@router.get("/systems/{system_id}/risk-assessments", response_model=list[RiskAssessmentOut], tags=["systems"])
def list_risk_assessments(system_id: str, session: SessionDep, ctx: CtxDep) -> list[RiskAssessmentOut]:
    system = _system(session, ctx, system_id)
    rows = session.scalars(
        select(RiskAssessment).where(RiskAssessment.system_id == system.id).order_by(RiskAssessment.id)
    )
    return [_risk_out(ctx, system, r) for r in rows]


# -- security plan ------------------------------------------------------------------------------
def _plan_out(session: Session, ctx: Ctx, state: AppState, system: InformationSystem) -> PlanOut:
    items = psvc.ensure_items(session, ctx, system)
    retention = state.config.store.retention_days if state.config.store is not None else None
    observed = psvc.observe(
        ctx, system, psvc.hosts_for_plan(session, system), psvc.observations(ctx, state.store, retention)
    )
    profile = psvc.plan_profile(ctx, system)
    groups = {g.id: g for g in profile.requirement_groups}
    out_items = []
    for item in items:
        control = groups[item.group_id].observed if item.group_id in groups else None
        out_items.append(
            PlanItemOut(
                id=item.id,
                group_id=item.group_id,
                kind=item.kind,
                title=item.title,
                source=item.source,
                state=item.state,
                target_date=item.target_date,
                evidence=list(item.evidence or []),
                note=item.note,
                observed=observed.get(control) if control else None,
                version=item.version,
            )
        )
    return PlanOut(
        system_id=system.id,
        level=psvc.plan_level(system),
        profile=profile.id,
        plan_parts=[p.model_dump() for p in profile.plan_parts.items],
        state=system.plan_state,
        target_date=system.plan_target_date,
        items=out_items,
    )


@router.get("/systems/{system_id}/plan", response_model=PlanOut, tags=["systems"])
def get_plan(system_id: str, session: SessionDep, state: StateDep, ctx: CtxDep) -> PlanOut:
    """The security-plan checklist for the system's level, with what our data observes."""
    system = _system(session, ctx, system_id)
    return _plan_out(session, ctx, state, system)


@router.patch("/systems/{system_id}/plan/{group_id}", response_model=PlanItemOut, tags=["systems"])
def update_plan_item(
    system_id: str,
    group_id: str,
    body: PlanItemPatch,
    request: Request,
    response: Response,
    session: SessionDep,
    ctx: CtxDep,
) -> PlanItemOut:
    system = _system(session, ctx, system_id, for_update=True)
    psvc.ensure_items(session, ctx, system)
    with rules():
        item = psvc.get_item(session, system, group_id)
        check_if_match(request, item.version)
        psvc.update_item(session, ctx, system, item, body)
    response.headers["ETag"] = etag(item.version)
    return PlanItemOut(
        id=item.id,
        group_id=item.group_id,
        kind=item.kind,
        title=item.title,
        source=item.source,
        state=item.state,
        target_date=item.target_date,
        evidence=list(item.evidence or []),
        note=item.note,
        observed=None,
        version=item.version,
    )


# -- dossiers -----------------------------------------------------------------------------------
@router.post("/systems/{system_id}/dossiers", response_model=DossierOut, status_code=201, tags=["dossiers"])
def create_dossier(system_id: str, body: DossierIn, response: Response, session: SessionDep, ctx: CtxDep) -> DossierOut:
    system = _system(session, ctx, system_id, for_update=True)
    with rules():
        dossier = dsvc.create(session, ctx, system, body)
        response.headers["ETag"] = etag(dossier.version)
        return dossier_out(session, ctx, dossier, system)


@router.get("/dossiers", response_model=list[DossierOut], tags=["dossiers"])
def list_dossiers(
    session: SessionDep, ctx: CtxDep, status: Annotated[str | None, Query(max_length=16)] = None
) -> list[DossierOut]:
    q = select(Dossier, InformationSystem).join(InformationSystem, InformationSystem.id == Dossier.system_id)
    if ctx.principal.sites is not None:
        q = q.where(InformationSystem.site.in_(sorted(ctx.principal.sites)))
    if status is not None:
        q = q.where(Dossier.status == status)
    with rules():
        return [dossier_out(session, ctx, d, s) for d, s in session.execute(q.order_by(Dossier.id))]


def _dossier(
    session: Session, ctx: Ctx, dossier_id: int, *, for_update: bool = False
) -> tuple[Dossier, InformationSystem]:
    dossier = session.get(Dossier, dossier_id, with_for_update=for_update)
    system = session.get(InformationSystem, dossier.system_id) if dossier else None
    if dossier is None or system is None or not ctx.principal.sees_site(system.site):
        raise Problem(404, "no such dossier", kind="not-found")
    return dossier, system


@router.get("/dossiers/{dossier_id}", response_model=DossierOut, tags=["dossiers"])
def get_dossier(dossier_id: int, response: Response, session: SessionDep, ctx: CtxDep) -> DossierOut:
    """The dossier, its parts and documents, and who must act next by when."""
    dossier, system = _dossier(session, ctx, dossier_id)
    response.headers["ETag"] = etag(dossier.version)
    with rules():
        return dossier_out(session, ctx, dossier, system)


@router.put(
    "/dossiers/{dossier_id}/documents/{part}",
    response_model=DocumentOut,
    status_code=201,
    tags=["dossiers"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def upload_document(
    dossier_id: int,
    part: str,
    request: Request,
    session: SessionDep,
    ctx: CtxDep,
    data: Annotated[bytes, Depends(document_body)],
    filename: Annotated[str, Query(min_length=1, max_length=MAX_FILENAME)],
) -> DocumentOut:
    """Upload a new version of a dossier part: the body is the file, ``Content-Type`` its type."""
    dossier, _system_row = _dossier(session, ctx, dossier_id, for_update=True)
    with rules():
        doc = dsvc.upload(session, ctx, dossier, part[:64], filename, request.headers.get("content-type", ""), data)
    return document_out(doc)


@router.get("/dossiers/{dossier_id}/documents/{document_id}/content", tags=["dossiers"], response_class=Response)
def download_document(dossier_id: int, document_id: int, session: SessionDep, ctx: CtxDep) -> Response:
    dossier, _system_row = _dossier(session, ctx, dossier_id)
    doc = session.get(DossierDocument, document_id)
    if doc is None or doc.dossier_id != dossier.id:
        raise Problem(404, "no such document", kind="not-found")
    with rules():
        data = docs.read_blob(ctx, doc)
    headers = {"Content-Disposition": f'attachment; filename="{doc.filename}"', "X-Content-SHA256": doc.sha256}
    return Response(data, media_type=doc.content_type, headers=headers)


def _step(
    request: Request, response: Response, session: Session, ctx: Ctx, dossier_id: int, action: Any, body: Any = None
) -> DossierOut:
    """One workflow step: If-Match checked, the rule applied, the new ETag set on the response."""
    dossier, system = _dossier(session, ctx, dossier_id, for_update=True)
    check_if_match(request, dossier.version)
    with rules():
        if body is None:
            action(session, ctx, dossier, system)
        else:
            action(session, ctx, dossier, system, body)
        session.flush()
        out = dossier_out(session, ctx, dossier, system)
    response.headers["ETag"] = etag(out.version)
    return out


@router.post("/dossiers/{dossier_id}/submit", response_model=DossierOut, tags=["dossiers"])
def submit(dossier_id: int, request: Request, response: Response, session: SessionDep, ctx: CtxDep) -> DossierOut:
    """Officers submit a complete dossier for appraisal (needs every part and a risk assessment)."""
    return _step(request, response, session, ctx, dossier_id, dsvc.submit)


@router.post("/dossiers/{dossier_id}/return", response_model=DossierOut, tags=["dossiers"])
def return_dossier(
    dossier_id: int, body: ReturnIn, request: Request, response: Response, session: SessionDep, ctx: CtxDep
) -> DossierOut:
    """The appraising authority returns an incomplete dossier for completion."""
    return _step(request, response, session, ctx, dossier_id, dsvc.return_for_completion, body)


@router.post("/dossiers/{dossier_id}/appraise", response_model=DossierOut, tags=["dossiers"])
def appraise(
    dossier_id: int, body: AppraiseIn, request: Request, response: Response, session: SessionDep, ctx: CtxDep
) -> DossierOut:
    """The appraising authority for the level records its appraisal opinion."""
    return _step(request, response, session, ctx, dossier_id, dsvc.appraise, body)


@router.post("/dossiers/{dossier_id}/approve", response_model=DossierOut, tags=["dossiers"])
def approve(
    dossier_id: int, body: ApproveIn, request: Request, response: Response, session: SessionDep, ctx: CtxDep
) -> DossierOut:
    """The approving authority approves with a decision number and date (a higher level needs a reason)."""
    return _step(request, response, session, ctx, dossier_id, dsvc.approve, body)


# -- calendar -----------------------------------------------------------------------------------
@router.get("/calendar/working-days", response_model=WorkingDaysOut, tags=["calendar"])
def working_days(
    ctx: CtxDep,
    start: date,
    days: Annotated[int | None, Query(ge=0, le=3660)] = None,
    end: date | None = None,
) -> WorkingDaysOut:
    """``start`` + ``days`` working days (the statutory deadline), or working days from ``start`` to ``end``,
    with the public holidays in between."""
    calendar = ctx.calendar()
    try:
        due = calendar.add_working_days(start, days) if days is not None else None
        between = calendar.working_days_between(start, end) if end is not None else None
    except ValueError as exc:
        raise Problem(422, str(exc), kind="validation-error") from None
    last = max(d for d in (start, due, end) if d is not None)
    first = min(d for d in (start, due, end) if d is not None)
    holidays: list[HolidayOut] = []
    for year in range(first.year, last.year + 1):
        holidays += [
            HolidayOut(date=d, name=n) for d, n in sorted(calendar.holidays(year).items()) if first <= d <= last
        ]
    return WorkingDaysOut(
        start=start, days=days, end=end, due_date=due, working_days_between=between, holidays=holidays
    )


__all__ = ["router"]
