"""APScheduler 3.x jobs of the API process: the daily reminder run and the drill-alert marking.

Call :func:`start_scheduler` from the app's lifespan and ``shutdown()`` the returned scheduler on
exit. Jobs never raise into the scheduler: a failed run is logged and the next one retries.
"""

from __future__ import annotations

import logging
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from soc_api.db.session import begin_write
from soc_api.drills.services.marking import mark_active_drills
from soc_api.reminders.services.run import run_reminders
from soc_api.reminders.settings import RemindersSettings
from soc_api.state import AppState
from soc_api.systems.calendar.holidays import VN_TZ
from soc_api.systems.settings import SystemsSettings
from soc_common.ecs import utc_now

log = logging.getLogger(__name__)


def _settings(state: AppState) -> tuple[RemindersSettings, SystemsSettings, Path | None]:
    reminders = getattr(state.config, "reminders", None)
    systems = getattr(state.config, "systems", None)
    compliance = getattr(state.config, "compliance", None)
    return (
        reminders if isinstance(reminders, RemindersSettings) else RemindersSettings(),
        systems if isinstance(systems, SystemsSettings) else SystemsSettings(),
        getattr(compliance, "obligations_file", None),
    )


def reminder_job(state: AppState) -> None:
    settings, systems, obligations_file = _settings(state)
    now = utc_now()
    try:
        result = run_reminders(
            state.sessions,
            settings,
            systems,
            state.config.data_dir,
            now.astimezone(VN_TZ).date(),
            now,
            obligations_file,
        )
        log.info(
            "reminders: %d new notifications, %d e-mails, %d e-mail errors",
            result.created,
            result.emailed,
            result.email_errors,
        )
    except Exception:
        log.exception("reminder run failed")


def drill_marking_job(state: AppState) -> None:
    try:
        with state.sessions() as session, session.begin():
            begin_write(session)
            marked = mark_active_drills(session, utc_now())
        if marked:
            log.info("drills: %d alerts marked as drill", marked)
    except Exception:
        log.exception("drill alert marking failed")


def start_scheduler(state: AppState) -> BackgroundScheduler | None:
    settings, _systems, _file = _settings(state)
    if not settings.enabled:
        return None
    scheduler = BackgroundScheduler(timezone=VN_TZ)
    scheduler.add_job(
        reminder_job,
        CronTrigger(hour=settings.run_hour, minute=0, timezone=VN_TZ),
        args=[state],
        id="reminders",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=6 * 3600,
    )
    scheduler.add_job(
        drill_marking_job,
        IntervalTrigger(minutes=settings.drill_marking_minutes),
        args=[state],
        id="drill-marking",
        coalesce=True,
        max_instances=1,
    )
    scheduler.start()
    return scheduler
