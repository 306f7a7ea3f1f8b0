"""Clock-skew tagging is configurable per collector and visible on /metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.config import CollectorConfig
from collector.metrics import CollectorMetrics
from collector.pipeline.normalize import Normalize
from collector.pipeline.runner import build_processors
from soc_common.ecs import iso, new_event


def _normalize(config: CollectorConfig) -> Normalize:
    return next(p for p in build_processors(config) if isinstance(p, Normalize))


def test_thresholds_come_from_the_enrich_section() -> None:
    config = CollectorConfig.model_validate({"enrich": {"clock_skew_tolerance": "30s", "late_arrival_after": "2h"}})
    normalize = _normalize(config)
    ahead = new_event(dataset="system.auth", event_id="ahead")
    ahead["@timestamp"] = iso(datetime.now(UTC) + timedelta(minutes=2))  # inside the 5 min default, outside 30 s
    behind = new_event(dataset="system.auth", event_id="behind")
    behind["@timestamp"] = iso(datetime.now(UTC) - timedelta(hours=3))  # inside the 24 h default, outside 2 h
    normalize.process([ahead, behind])
    assert "clock_skew" in ahead["tags"] and "late_arrival" in behind["tags"]
    assert (normalize.skewed, normalize.late) == (1, 1)


def test_tagged_counts_are_exported() -> None:
    normalize = _normalize(CollectorConfig())
    metrics = CollectorMetrics()
    metrics.watch_clock_tags(lambda: {"clock_skew": normalize.skewed, "late_arrival": normalize.late})
    events = []
    for i in range(3):
        event = new_event(dataset="system.auth", event_id=f"skew-{i}")
        event["@timestamp"] = iso(datetime.now(UTC) + timedelta(hours=1))
        events.append(event)
    normalize.process(events)
    text = metrics.render().decode()
    assert 'soc_collector_events_clock_tagged_total{tag="clock_skew"} 3.0' in text
    assert 'soc_collector_events_clock_tagged_total{tag="late_arrival"} 0.0' in text
