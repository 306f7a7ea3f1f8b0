"""The benign background raises nothing: no Sigma alert from rules/ once the collector has enriched it
with the demo zones (the anomaly half is in test_scenarios)."""

from __future__ import annotations

from pathlib import Path

from collector.detection.loader import load_engine

from .conftest import collector_config, enrich, replay

RULES = Path(__file__).resolve().parents[2] / "rules"


def test_office_day_raises_no_sigma_alert_after_enrichment(tmp_path: Path) -> None:
    events = enrich(collector_config(tmp_path), replay("office-day"))
    zones = {(e.get("soc", {}).get("source_zone"), e.get("soc", {}).get("destination_zone")) for e in events}
    assert ("office", "internet") in zones and ("party-wan", "datacenter") in zones  # the plan is exercised
    assert not any(src == "party-wan" and dst == "internet" for src, dst in zones)
    engine = load_engine([RULES])
    assert engine.process(events) == []


def test_party_wan_to_internet_capture_does_raise_the_policy_rule(tmp_path: Path) -> None:
    """The same path is not blind: the breach capture trips the zone rule."""
    events = enrich(collector_config(tmp_path), replay("wan-to-internet"))
    titles = {a.rule_title for a in load_engine([RULES]).process(events)}
    assert "Party WAN Host Communicating With The Internet" in titles
