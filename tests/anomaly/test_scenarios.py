"""Each detector fires on its scenario capture replayed end to end, and not on the office background."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from collector.store.base import EventStore

from .conftest import PCAPS, SCENARIO_T0, ListSink, collector_config, ingest, make_engine, replay

NOW = SCENARIO_T0 + timedelta(hours=2, minutes=30)
SCENARIOS = ["port-scan", "host-sweep", "beaconing", "dns-tunnel", "bulk-upload", "wan-to-internet", "office-day"]


def run_scenario(store: EventStore, tmp_path: Path, name: str) -> list[str]:
    ingest(store, collector_config(tmp_path), replay(name))
    sink = ListSink()
    report = make_engine(store, tmp_path, sink, initial_lookback=5 * 86400).run_once(NOW)
    assert report.errors == {}
    for alert in sink.alerts:
        assert alert.source == "anomaly" and alert.explanation["window"] and "score" in alert.explanation
    return sorted({a.rule_id for a in sink.alerts})


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_alerts_match_notes(store: EventStore, tmp_path: Path, name: str) -> None:
    expected = json.loads((PCAPS / f"{name}.anomaly.json").read_text(encoding="utf-8"))
    assert run_scenario(store, tmp_path, name) == sorted(expected["rule_ids"])
