"""The long-running anomaly service the collector runtime starts: one APScheduler job, one cycle at a time.

Runs never overlap (``max_instances=1``); missed runs coalesce, and since windows come from
checkpoints the next run simply covers the missed time.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from collector.anomaly.engine import AnomalyEngine, CycleReport
from collector.anomaly.settings import DETECTOR_PARAMS, AnomalySettings, merge_params
from collector.anomaly.state import AnomalyState
from collector.store.base import EventStore
from soc_common.alert import AlertSink

log = logging.getLogger(__name__)


def settings_of(config: Any) -> AnomalySettings:
    """``config.anomaly`` of a CollectorConfig, or the defaults until the lead wires the section in."""
    value = getattr(config, "anomaly", None)
    return value if isinstance(value, AnomalySettings) else AnomalySettings()


def state_path_of(config: Any, settings: AnomalySettings) -> Path:
    return settings.state_path or Path(config.data_dir) / "collector" / "anomaly.db"


class AnomalyService:
    """``AnomalyService(collector_config, store, alert_sink)``; ``start()``/``stop()``/``run_once()``."""

    def __init__(
        self, config: Any, store: EventStore, alert_sink: AlertSink, settings: AnomalySettings | None = None
    ) -> None:
        self.settings = settings or settings_of(config)
        self.state = AnomalyState(state_path_of(config, self.settings))
        zone_names = [z.name for z in getattr(getattr(config, "enrich", None), "zones", [])]
        self.engine = AnomalyEngine(self.settings, store, self.state, alert_sink, zone_names)
        self.scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(1)}, timezone="UTC")
        self._lock = threading.Lock()

    def run_once(self, now: datetime | None = None) -> CycleReport:
        with self._lock:
            return self.engine.run_once(now)

    def _job(self) -> None:
        report = self.run_once()
        log.info("anomaly cycle: %d alerts, windows %s, errors %s", len(report.alerts), report.windows, report.errors)

    def start(self) -> None:
        if not self.settings.enabled:
            log.info("anomaly detection disabled")
            return
        interval = int(self.settings.interval)
        self.scheduler.add_job(
            self._job,
            "interval",
            seconds=interval,
            id="anomaly",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=interval,
            next_run_time=datetime.now(UTC),
        )
        self.scheduler.start()
        log.info("anomaly detection started (every %d s)", interval)

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.state.close()

    def set_override(self, site: str, detector: str, params: dict[str, Any], *, actor: str, reason: str) -> None:
        """Tune or switch off ``detector`` for ``site`` (``{}`` removes the override); audited with who and why.

        Raises ValueError for an unknown detector or parameter, or a bad value.
        """
        if detector not in DETECTOR_PARAMS:
            raise ValueError(f"unknown detector {detector!r}")
        if not actor or not reason:
            raise ValueError("an override needs an actor and a reason")
        merge_params(self.settings.params(detector), params)  # validates
        self.state.set_override(site, detector, params, actor, reason)

    def status(self) -> dict[str, Any]:
        return {
            "enabled": self.settings.enabled,
            "state": str(self.state.path),
            "checkpoints": {d: t.isoformat() for d, t in self.state.checkpoints().items()},
            "last_runs": self.state.last_runs(),
            "reported": self.state.reported_counts(),
            "overrides": self.state.overrides(),
        }

    def explain(self, alert_id: str) -> dict[str, Any] | None:
        return self.state.reported(alert_id)
