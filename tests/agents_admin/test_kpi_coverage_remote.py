"""Endpoint coverage in the KPIs counts the collector's agents through its admin API, so the SOC API
does not need the collector's registry file (they run on different machines in production)."""

from __future__ import annotations

from pathlib import Path

from tests.agents_admin.conftest import World
from tests.collector.ingest_harness import sample_events


def _monitored(world: World, site: str) -> int:
    r = world.client.get("/api/v1/kpi", params={"site": site}, headers=world.as_("admin"))
    assert r.status_code == 200, r.text
    (row,) = [s for s in r.json()["sites"] if s["site"] == site]
    return int(row["pcs_monitored"]["count"]) + int(row["servers_monitored"]["count"])


def test_kpi_counts_agents_seen_by_a_remote_collector(world: World, tmp_path: Path) -> None:
    assert _monitored(world, "hn") == 0
    agent = world.stack.agent(tmp_path, "pc-hn-07", site="hn")
    r = agent.ship(sample_events(3, prefix="kpi"))  # ordinary events: no inventory snapshot in the store
    assert r.status_code == 200, r.text
    assert _monitored(world, "hn") == 1
    assert _monitored(world, "hcm") == 0


def test_kpi_still_answers_when_the_collector_is_down(world: World, tmp_path: Path) -> None:
    agent = world.stack.agent(tmp_path, "pc-hn-08", site="hn")
    assert agent.ship(sample_events(1, prefix="down")).status_code == 200
    world.stack.server.stop()
    assert _monitored(world, "hn") == 0  # coverage without registry data, logged; never a 500
