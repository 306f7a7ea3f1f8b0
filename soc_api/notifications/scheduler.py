"""The APScheduler job that runs notifications every ``poll_seconds``.

Call :func:`start_notification_scheduler` from the app's lifespan and ``shutdown()`` the result on
exit. The job never raises into the scheduler; a failed run is logged and the next one retries.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from soc_api.notifications.dispatch import run_once
from soc_api.notifications.settings import NotificationsSettings
from soc_api.state import AppState

log = logging.getLogger(__name__)


def settings_of(state: AppState) -> NotificationsSettings:
    value = getattr(state.config, "notifications", None)
    return value if isinstance(value, NotificationsSettings) else NotificationsSettings()


def notification_job(state: AppState) -> None:
    try:
        result = run_once(state.sessions, settings_of(state))
        if result.queued or result.sent or result.retrying or result.dead:
            log.info(
                "notifications: %d queued, %d sent, %d retrying, %d dead",
                result.queued, result.sent, result.retrying, result.dead,
            )  # fmt: skip
    except Exception:
        log.exception("notification run failed")


def start_notification_scheduler(state: AppState) -> BackgroundScheduler:
    settings = settings_of(state)
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        notification_job, IntervalTrigger(seconds=settings.poll_seconds), args=[state],
        id="notifications", max_instances=1, coalesce=True,
    )  # fmt: skip
    scheduler.start()
    return scheduler
