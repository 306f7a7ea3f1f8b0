"""Settings of scheduled detection (section ``[scheduled]``, or ``SOC_SCHEDULED_*`` variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from soc_common.config import Duration, Section


class ScheduledSettings(Section):
    """How often rules run over the Elasticsearch store and how far each run looks."""

    enabled: bool = True
    # Empty: the collector's detection.rule_paths / statuses / levels are used.
    rule_paths: list[Path] = Field(default_factory=list)
    statuses: list[str] | None = None
    levels: list[str] | None = None
    interval: Duration = 300.0  # default run interval of a rule
    # rule id -> interval, overriding the rule's own ``scheduled_interval`` attribute and the default
    rule_intervals: dict[str, Duration] = Field(default_factory=dict)
    # Events become searchable a little after their event.ingested is set (bulk + refresh); a window
    # ends this long before "now" so it only covers ingest times that can no longer appear.
    ingest_delay: Duration = 60.0
    # The first run of a rule (no checkpoint yet) looks back this far on event.ingested.
    initial_lookback: Duration = 3600.0
    page_size: int = Field(default=1000, ge=1, le=10_000)
    max_hits_per_run: int = Field(default=10_000, ge=1)  # further hits are counted as overflow
    max_groups: int = Field(default=10_000, ge=1)  # correlation candidate groups per run
    max_events_per_group: int = Field(default=10_000, ge=1)  # correlation context events per group
    state_path: Path | None = None  # default: <data_dir>/collector/scheduled.db
    max_workers: int = Field(default=2, ge=1, le=32)
