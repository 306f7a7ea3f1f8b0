"""One notification run: produce messages, then deliver what is due, outside any transaction.

Delivery happens between two short transactions (claim, then record), so a slow mail server never
holds a database lock that API requests wait on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from soc_api.db.session import begin_write
from soc_api.notifications import producers
from soc_api.notifications.mailer import send_email
from soc_api.notifications.models import OutboxMessage
from soc_api.notifications.outbox import claim, record_outcome
from soc_api.notifications.settings import NotificationsSettings
from soc_api.notifications.webhook import post_webhook
from soc_common.ecs import utc_now

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    queued: int = 0
    sent: int = 0
    retrying: int = 0
    dead: int = 0


@dataclass(frozen=True)
class Job:
    id: int
    channel: str
    target: str
    kind: str
    subject: str
    body: str
    payload: dict[str, object]


def deliver(settings: NotificationsSettings, job: Job) -> None:
    if job.channel == "email":
        send_email(settings.email, job.target, job.subject, job.body)
        return
    hook = next((h for h in settings.webhooks if h.name == job.target), None)
    if hook is None:
        raise RuntimeError(f"webhook {job.target!r} is no longer configured")
    post_webhook(hook, job.kind, dict(job.payload))


def produce(sessions: sessionmaker[Session], settings: NotificationsSettings, now: datetime) -> int:
    with sessions() as session, session.begin():
        begin_write(session)
        return (
            producers.new_alerts(session, settings, now)
            + producers.assignments(session, settings, now)
            + producers.deadlines(session, settings, now)
        )


def _job(row: OutboxMessage) -> Job:
    return Job(row.id, row.channel, row.target, row.kind, row.subject, row.body, dict(row.payload or {}))


def deliver_due(
    sessions: sessionmaker[Session],
    settings: NotificationsSettings,
    now: datetime | None = None,
    send: Callable[[NotificationsSettings, Job], None] = deliver,
) -> RunResult:
    result = RunResult()
    with sessions() as session, session.begin():
        begin_write(session)
        jobs = [_job(r) for r in claim(session, settings, now or utc_now())]
    for job in jobs:
        error: str | None = None
        try:
            send(settings, job)
        except Exception as exc:  # any failure is retried; the message names no secret
            error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("notification %d (%s to %s) failed: %s", job.id, job.channel, job.target, error)
        with sessions() as session, session.begin():
            begin_write(session)
            state = record_outcome(session, settings, job.id, error, utc_now())
        if state == "sent":
            result.sent += 1
        elif state == "dead":
            result.dead += 1
        else:
            result.retrying += 1
    return result


def run_once(
    sessions: sessionmaker[Session], settings: NotificationsSettings, now: datetime | None = None
) -> RunResult:
    if not settings.enabled:
        return RunResult()
    moment = now or utc_now()
    queued = produce(sessions, settings, moment)
    result = deliver_due(sessions, settings, moment)
    result.queued = queued
    return result
