"""One reminder run: collect, store notifications, e-mail them. Called by the scheduler and tests."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from soc_api.assessments.obligations import load_obligations
from soc_api.db.session import begin_write
from soc_api.reminders.services.collect import collect_all
from soc_api.reminders.services.deliver import DeliveryResult, send_pending, store
from soc_api.reminders.settings import RemindersSettings
from soc_api.services.principal import Principal
from soc_api.systems.services.context import Ctx
from soc_api.systems.settings import SystemsSettings

SCHEDULER = Principal(name="scheduler", kind="system", permissions=frozenset(), sites=None)


def run_reminders(
    sessions: sessionmaker[Session],
    settings: RemindersSettings,
    systems: SystemsSettings,
    data_dir: Path,
    today: date,
    now: datetime,
    obligations_file: Path | None = None,
) -> DeliveryResult:
    ctx = Ctx(SCHEDULER, None, systems, data_dir)
    obligations = load_obligations(obligations_file)
    result = DeliveryResult()
    with sessions() as session, session.begin():
        begin_write(session)
        reminders = collect_all(session, ctx, obligations, settings, ctx.calendar(), today)
        result.created = store(session, reminders, now)
    with sessions() as session, session.begin():
        begin_write(session)
        result.emailed, result.email_errors = send_pending(session, settings.smtp, now, settings.email_retry_days)
    return result
