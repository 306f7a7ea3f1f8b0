"""The level-dossier workflow: drafting -> submitted -> (returned -> submitted)* -> appraised -> approved.

Each step checks that the caller acts for the authority the profile names for the dossier's level
(own dedicated unit, owner, independent council, MPS/MOD/Cipher Committee...), records the step in
the audit trail in the same transaction, and the dossier always says who must act next and by
when, counting the statutory time limit in working days on the holiday calendar.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.services import audit
from soc_api.systems.calendar.holidays import VN_TZ
from soc_api.systems.levels import Determination
from soc_api.systems.models import Dossier, InformationSystem
from soc_api.systems.profiles import DossierPart, Profile
from soc_api.systems.schemas import AppraiseIn, ApproveIn, DossierIn, ReturnIn
from soc_api.systems.services import documents as docs
from soc_api.systems.services.access import EDIT_ROLES, authority_kind, authority_org, require_authority, require_role
from soc_api.systems.services.context import Ctx, RuleError
from soc_api.systems.services.registry import determination_for, latest_risk_assessment
from soc_common.ecs import utc_now

OPEN_STATUSES = ("drafting", "submitted", "returned", "appraised")


def _determination_json(det: Determination) -> dict[str, Any]:
    return asdict(det)


def _audit(
    session: Session, ctx: Ctx, dossier: Dossier, action: str, before: dict[str, Any] | None, after: dict[str, Any]
) -> None:
    audit.append(
        session,
        actor=ctx.actor,
        action=f"dossier.{action}",
        object_type="dossier",
        object_id=str(dossier.id),
        before=before,
        after=after,
        source_ip=ctx.source_ip,
    )


def create(session: Session, ctx: Ctx, system: InformationSystem, body: DossierIn) -> Dossier:
    require_role(ctx.principal, EDIT_ROLES, "drafting a dossier")
    open_one = session.scalar(
        select(Dossier.id).where(Dossier.system_id == system.id, Dossier.status.in_(OPEN_STATUSES))
    )
    if open_one is not None:
        raise RuleError(f"system {system.id} already has an open dossier ({open_one})")
    profile_id = body.profile or system.profile
    det = determination_for(session, ctx, system, profile_id)
    level = body.proposed_level or det.level
    if level is None:
        raise RuleError(
            "no criterion gives a level: record a risk assessment or propose a level",
            status=422,
            kind="level-undetermined",
        )
    if det.level is not None and level < det.level:
        raise RuleError(
            f"the criteria require at least level {det.level} ({det.drivers[0].criterion_id})",
            status=422,
            kind="level-too-low",
        )
    if det.level is not None and level > det.level and not body.reason:
        raise RuleError("a level above the determined minimum needs a reason", status=422, kind="reason-required")
    dossier = Dossier(
        system_id=system.id,
        profile=profile_id,
        minimum_level=det.level,
        proposed_level=level,
        determination=_determination_json(det),
        created_by=ctx.actor,
        override_reason=body.reason,
    )
    session.add(dossier)
    session.flush()
    _audit(
        session,
        ctx,
        dossier,
        "create",
        None,
        {
            "system_id": system.id,
            "profile": profile_id,
            "minimum_level": det.level,
            "proposed_level": level,
            "reason": body.reason,
            "drivers": [d.criterion_id for d in det.drivers],
        },
    )
    return dossier


def parts(profile: Profile, level: int) -> list[DossierPart]:
    return profile.parts_for(level)


def missing_parts(session: Session, profile: Profile, dossier: Dossier, before: str | None = None) -> list[str]:
    have = {d.part for d in docs.documents(session, dossier.id)}
    return [
        p.id
        for p in parts(profile, dossier.proposed_level)
        if p.id not in have and (before is None or p.before == before)
    ]


def _locked(session: Session, dossier_id: int) -> tuple[Dossier, InformationSystem]:
    dossier = session.get(Dossier, dossier_id, with_for_update=True)
    if dossier is None:
        raise RuleError("no such dossier", status=404, kind="not-found")
    system = session.get(InformationSystem, dossier.system_id)
    assert system is not None
    return dossier, system


def _expect(dossier: Dossier, *statuses: str) -> None:
    if dossier.status not in statuses:
        raise RuleError(
            f"the dossier is {dossier.status}; this step needs it {' or '.join(statuses)}", kind="invalid-transition"
        )


def upload(
    session: Session, ctx: Ctx, dossier: Dossier, part: str, filename: str, content_type: str, data: bytes
) -> Any:
    """A new version of a part: while drafting, or (for parts due before approval, such as the
    security regulation) until the dossier is approved."""
    require_role(ctx.principal, EDIT_ROLES, "uploading dossier documents")
    profile = ctx.profile(dossier.profile)
    known = {p.id: p for p in parts(profile, dossier.proposed_level)}
    if part not in known:
        raise RuleError(
            f"level {dossier.proposed_level} dossiers have no part {part!r}; parts: {', '.join(known)}",
            status=422,
            kind="validation-error",
        )
    if known[part].before == "approve":
        _expect(dossier, "drafting", "returned", "submitted", "appraised")
    else:
        _expect(dossier, "drafting", "returned")
    doc = docs.upload(session, ctx, dossier, part, filename, content_type, data)
    dossier.updated_at = utc_now()
    session.flush()
    return doc


def submit(session: Session, ctx: Ctx, dossier: Dossier, system: InformationSystem) -> Dossier:
    require_role(ctx.principal, EDIT_ROLES, "submitting a dossier")
    _expect(dossier, "drafting", "returned")
    profile = ctx.profile(dossier.profile)
    missing = missing_parts(session, profile, dossier, before="submit")
    if missing:
        raise RuleError(f"parts missing before submission: {', '.join(missing)}", kind="incomplete")
    if profile.risk_assessment.required and latest_risk_assessment(session, system.id) is None:
        raise RuleError(f"a risk assessment record is required ({profile.risk_assessment.source})", kind="incomplete")
    before = {"status": dossier.status}
    dossier.status = "submitted"
    dossier.submitted_at = utc_now()
    dossier.returned_reason = None
    session.flush()
    _audit(session, ctx, dossier, "submit", before, {"status": "submitted"})
    return dossier


def return_for_completion(
    session: Session, ctx: Ctx, dossier: Dossier, system: InformationSystem, body: ReturnIn
) -> Dossier:
    _expect(dossier, "submitted")
    profile = ctx.profile(dossier.profile)
    kind = authority_kind(profile, system, dossier.proposed_level, "appraise")
    require_authority(session, ctx.principal, system, kind, "appraise")
    dossier.status = "returned"
    dossier.returned_reason = body.reason
    session.flush()
    _audit(
        session,
        ctx,
        dossier,
        "return",
        {"status": "submitted"},
        {"status": "returned", "reason": body.reason, "authority": kind},
    )
    return dossier


def appraise(session: Session, ctx: Ctx, dossier: Dossier, system: InformationSystem, body: AppraiseIn) -> Dossier:
    _expect(dossier, "submitted")
    profile = ctx.profile(dossier.profile)
    kind = authority_kind(profile, system, dossier.proposed_level, "appraise")
    org = require_authority(session, ctx.principal, system, kind, "appraise")
    dossier.status = "appraised"
    dossier.appraised_at = utc_now()
    dossier.appraised_by = ctx.actor
    dossier.appraisal_opinion = body.opinion
    session.flush()
    _audit(
        session,
        ctx,
        dossier,
        "appraise",
        {"status": "submitted"},
        {"status": "appraised", "authority": kind, "organisation": org.code, "opinion": body.opinion},
    )
    return dossier


def approve(session: Session, ctx: Ctx, dossier: Dossier, system: InformationSystem, body: ApproveIn) -> Dossier:
    _expect(dossier, "appraised")
    profile = ctx.profile(dossier.profile)
    kind = authority_kind(profile, system, dossier.proposed_level, "approve")
    org = require_authority(session, ctx.principal, system, kind, "approve")
    missing = missing_parts(session, profile, dossier, before="approve")
    if missing or not system.security_regulation_no or not system.security_regulation_date:
        raise RuleError(
            "the system's security regulation (quy chế) must be issued before approval: upload it "
            "and record its decision number and date on the system",
            kind="incomplete",
        )
    level = body.level or dossier.proposed_level
    if level < dossier.proposed_level:
        raise RuleError(
            f"the approved level cannot be below the proposed level {dossier.proposed_level}",
            status=422,
            kind="level-too-low",
        )
    if level > dossier.proposed_level and not body.reason:
        raise RuleError("approving a higher level than proposed needs a reason", status=422, kind="reason-required")
    before = {"status": dossier.status, "system_approved_level": system.approved_level}
    dossier.status = "approved"
    dossier.approved_at = utc_now()
    dossier.approved_by = ctx.actor
    dossier.approved_level = level
    dossier.decision_no = body.decision_no
    dossier.decision_date = body.decision_date
    if level > dossier.proposed_level:
        dossier.override_reason = body.reason
    system.approved_level = level
    system.approved_profile = dossier.profile
    system.approval_decision_no = body.decision_no
    system.approval_decision_date = body.decision_date
    system.level_review_required = False
    system.level_review_reasons = []
    session.flush()
    _audit(
        session,
        ctx,
        dossier,
        "approve",
        before,
        {
            "status": "approved",
            "authority": kind,
            "organisation": org.code,
            "approved_level": level,
            "proposed_level": dossier.proposed_level,
            "override_reason": body.reason if level > dossier.proposed_level else None,
            "decision_no": body.decision_no,
            "decision_date": body.decision_date.isoformat(),
        },
    )
    return dossier


@dataclass(frozen=True)
class Next:
    action: str | None
    authority: str | None
    organisation: str | None
    due_at: datetime | None
    due_date: date | None
    time_limit_source: str | None
    overdue: bool


def next_step(
    session: Session, ctx: Ctx, dossier: Dossier, system: InformationSystem, now: datetime | None = None
) -> Next:
    """Who must act next on the dossier, and the statutory deadline if the rules set one."""
    profile = ctx.profile(dossier.profile)
    now = now or utc_now()
    calendar = ctx.calendar()
    if dossier.status in ("drafting", "returned"):
        owner = authority_org(session, system, "owner")
        return Next("complete_and_submit", "owner", owner.name if owner else None, None, None, None, False)
    if dossier.status == "approved":
        return Next(None, None, None, None, None, None, False)
    step = "appraise" if dossier.status == "submitted" else "approve"
    kind = authority_kind(profile, system, dossier.proposed_level, step)
    org = authority_org(session, system, kind)
    if step == "appraise":
        limit = profile.appraisal_days(dossier.proposed_level)
        since = dossier.submitted_at
    else:
        limit = profile.time_limits.approval
        since = dossier.appraised_at
    if limit is None or limit.days is None or since is None:
        return Next(step, kind, org.name if org else None, None, None, limit.source if limit else None, False)
    due_at = calendar.deadline(since, limit.days)
    due_date = calendar.add_working_days(since.astimezone(VN_TZ).date(), limit.days)
    return Next(step, kind, org.name if org else None, due_at, due_date, limit.source, now > due_at)
