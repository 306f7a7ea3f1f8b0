"""The long-running scheduler: one APScheduler interval job per rule.

Jobs never overlap (``max_instances=1``, plus the detector's own per-rule guard), missed runs are
coalesced into one (the next window simply covers the missed time, since windows are driven by
checkpoints, not by the clock of the job), and jitter spreads rules so they do not all query the
cluster in the same second.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from collector.detection.scheduled.runner import ScheduledDetector

log = logging.getLogger(__name__)


class ScheduledService:
    """Run every rule of ``detector`` at its interval until :meth:`stop`."""

    def __init__(self, detector: ScheduledDetector) -> None:
        self.detector = detector
        workers = detector.settings.max_workers
        self.scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(workers)}, timezone="UTC")
        self._stopped = threading.Event()

    def start(self) -> None:
        for rule in self.detector.scheduled_rules():
            interval = self.detector.interval_of(rule)
            self.scheduler.add_job(
                self.detector.run_rule,
                "interval",
                args=[rule],
                seconds=interval,
                id=rule.meta.id,
                name=rule.meta.title,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=int(interval),
                jitter=min(30, int(interval / 10)),
                next_run_time=datetime.now(UTC),  # catch up at once, then every interval
            )
        self.scheduler.start()
        log.info("scheduled detection started with %d rules", len(self.scheduler.get_jobs()))

    def wait(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def stop(self) -> None:
        self.scheduler.shutdown(wait=True)
        self._stopped.set()
