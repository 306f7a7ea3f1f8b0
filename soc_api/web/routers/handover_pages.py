"""Hand-over status: what this site has sent to the central monitoring centre. Per-site sequence
counters, packages by state (queued, sent, acknowledged, failed) with their last error, the newest
receipt, when the scheduler runs next, and "retry now" for a failed package (the outbox's requeue,
audited). Air-gapped export stays a command (``soc handover export``): it writes files on the server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from apscheduler.triggers.cron import CronTrigger
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from soc_api.deps import SessionDep, StateDep
from soc_api.handover import outbox
from soc_api.handover.models import OUTBOX_STATUSES, HandoverReceipt, HandoverSequence, OutboxEntry
from soc_api.handover.settings import HandoverSettings
from soc_api.services.principal import HANDOVER_BUILD, HANDOVER_READ
from soc_api.web import nav
from soc_api.web.forms import FormPost
from soc_api.web.guard import FormRejected, PagePrincipal, allow
from soc_api.web.i18n import N_
from soc_api.web.render import render
from soc_common.ecs import utc_now

router = APIRouter()
nav.register(nav.NavEntry("handover", N_("Hand-over"), "/admin/handover", order=65, allowed=nav.can(HANDOVER_READ)))
BACK = "/admin/handover"
SHOWN = 100
STATUS_LABELS = {
    "queued": N_("Queued"),
    "sent": N_("Sent, awaiting receipt"),
    "acknowledged": N_("Acknowledged"),
    "failed": N_("Failed"),
}


def delivering(settings: HandoverSettings) -> bool:
    """Whether this API process runs the delivery scheduler (the app factory's condition)."""
    return settings.enabled and settings.endpoint is not None and settings.receiver_keys is not None


def next_runs(session: Session, settings: HandoverSettings, now: datetime) -> dict[str, datetime | None]:
    """When each scheduled hand-over job fires next (None: not scheduled in this process)."""
    if not delivering(settings):
        return {}
    due = session.scalar(
        select(func.min(OutboxEntry.next_attempt_at)).where(OutboxEntry.status.in_(("queued", "sent")))
    )
    return {
        "push": max(due, now) if due is not None else None,
        "daily": CronTrigger.from_crontab(settings.daily_summary_cron, timezone="UTC").get_next_fire_time(None, now),
        "quarterly": CronTrigger.from_crontab(settings.quarterly_kpi_cron, timezone="UTC").get_next_fire_time(
            None, now
        ),
    }


def site_rows(session: Session) -> list[dict[str, Any]]:
    """Per sending site: last sequence number, packages per state, newest receipt."""
    counts: dict[str, dict[str, int]] = {}
    for site, status, n in session.execute(
        select(OutboxEntry.site, OutboxEntry.status, func.count()).group_by(OutboxEntry.site, OutboxEntry.status)
    ):
        counts.setdefault(site, {})[status] = int(n)
    receipts = dict(
        session.execute(
            select(OutboxEntry.site, func.max(HandoverReceipt.received_at))
            .join(HandoverReceipt, HandoverReceipt.package_id == OutboxEntry.package_id)
            .group_by(OutboxEntry.site)
        ).all()
    )
    return [
        {"site": seq.site, "last_sequence": seq.last_sequence, "counts": counts.get(seq.site, {}),
         "last_receipt": receipts.get(seq.site)}
        for seq in session.scalars(select(HandoverSequence).order_by(HandoverSequence.site))
    ]  # fmt: skip


@router.get("/admin/handover")
def handover(
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: PagePrincipal,
    status: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    allow(principal, nav.can(HANDOVER_READ))
    settings = state.config.handover
    stmt = select(OutboxEntry).order_by(OutboxEntry.created_at.desc(), OutboxEntry.sequence.desc()).limit(SHOWN)
    if status in OUTBOX_STATUSES:
        stmt = stmt.where(OutboxEntry.status == status)
    context = {
        "settings": settings,
        "delivering": delivering(settings),
        "sites": site_rows(session),
        "entries": list(session.scalars(stmt)),
        "status": status if status in OUTBOX_STATUSES else "",
        "statuses": OUTBOX_STATUSES,
        "status_labels": STATUS_LABELS,
        "next_runs": next_runs(session, settings, utc_now()),
        "can_retry": principal.can(HANDOVER_BUILD),
    }
    return render(request, state, "handover.html", context, principal=principal, active="handover")


@router.post("/admin/handover/{package_id}/retry")
def retry(package_id: str, post: FormPost) -> Response:
    """Queue a failed package again for the next push (numbers never change: the centre sees order)."""
    post.allow(nav.can(HANDOVER_BUILD))
    if outbox.requeue(post.session, package_id[:36], post.principal.name) is None:
        raise FormRejected(N_("Only a failed package can be retried."), BACK)
    return post.done(BACK, N_("Package queued for the next delivery."))
