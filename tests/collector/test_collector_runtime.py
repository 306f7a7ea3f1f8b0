"""The assembled collector in-process: ingest -> pipeline -> SQLite store -> Sigma detection -> alerts,
plus the metrics/health endpoint."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from collector.config import CollectorConfig
from collector.metrics import record_netflow_gap
from collector.pipeline.sinks import read_jsonl_alerts
from collector.runtime import Collector
from soc_common.ecs import new_event
from tests.collector.ingest_harness import Agent

RULE = r"""
title: Whoami test
id: 11111111-2222-3333-4444-555555555555
status: test
level: high
logsource:
  product: windows
  category: process_creation
detection:
  selection:
    Image|endswith: '\whoami.exe'
  condition: selection
tags: [attack.discovery, attack.t1033]
"""


@dataclass
class Endpoint:
    url: str
    ca_file: Path


def whoami_event(event_id: str) -> dict[str, object]:
    ev = new_event(dataset="windows.sysmon", event_id=event_id)
    ev["event"]["code"] = "1"
    ev["winlog"] = {
        "channel": "Microsoft-Windows-Sysmon/Operational",
        "event_id": 1,
        "event_data": {"Image": r"C:\Windows\System32\whoami.exe"},
    }
    ev["process"] = {"executable": r"C:\Windows\System32\whoami.exe"}
    ev["host"] = {"name": "pc-01", "ip": ["10.1.0.5"]}
    return ev


def make_collector(tmp_path: Path, database_url: str) -> Collector:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "whoami.yml").write_text(RULE)
    config = CollectorConfig.model_validate(
        {
            "data_dir": str(tmp_path / "data"),
            "ingest": {"port": 0, "agent_cache_seconds": 0},
            "detection": {"rule_paths": [str(rules)]},
            "alerts": {"database_url": database_url},
            "metrics": {"port": 0, "bearer_token": "s3cret-metrics"},
            "retention": {"interval": "1h"},
            "enrich": {"zones": [{"name": "party-wan", "cidrs": ["10.0.0.0/8"]}]},
        }
    )
    return Collector(config)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Collector]:
    collector = make_collector(tmp_path, database_url="")
    collector.start()
    yield collector
    collector.stop()


def enrolled_agent(collector: Collector, tmp_path: Path) -> Agent:
    assert collector.ingest is not None and collector.registry is not None
    endpoint = Endpoint(f"https://127.0.0.1:{collector.ingest.port}", collector.ingest.ca.cert_path)
    agent = Agent(endpoint, tmp_path / "agent", "pc-01")  # type: ignore[arg-type]
    token, _ = collector.registry.create_token(site="hn", uses=1, ttl_seconds=60)
    assert agent.enroll(token).status_code == 200
    return agent


def test_shipped_event_is_stored_enriched_and_raises_alert(running: Collector, tmp_path: Path) -> None:
    agent = enrolled_agent(running, tmp_path)
    resp = agent.ship([whoami_event("w-1")])
    assert resp.json()["accepted"] == 1
    assert running.pipeline is not None and running.pipeline.detection is not None
    assert running.pipeline.detection.drain(10)
    assert running.store is not None
    [stored] = running.store.get(["w-1"])
    assert stored["soc"]["zone"] == "party-wan" and stored["soc"]["site"] == "hn"
    alerts = read_jsonl_alerts(running.config.alerts_jsonl_path)
    assert [a.rule_title for a in alerts] == ["Whoami test"]
    assert alerts[0].event_ids == ["w-1"]


def test_metrics_need_bearer_and_count_everything(running: Collector, tmp_path: Path) -> None:
    agent = enrolled_agent(running, tmp_path)
    first = whoami_event("m-1")
    agent.ship([first, whoami_event("m-2"), "{broken"])
    agent.ship([first])  # a retry: the same event again (same id and time)
    assert running.pipeline is not None and running.pipeline.detection is not None
    running.pipeline.detection.drain(10)
    record_netflow_gap("192.0.2.1", 3)
    assert running.metrics_server is not None
    url = f"http://127.0.0.1:{running.metrics_server.port}"
    assert httpx.get(f"{url}/metrics").status_code == 401
    assert httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    text = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer s3cret-metrics"}).text
    assert 'soc_collector_events_received_total{source="agent"} 4.0' in text
    assert 'soc_collector_events_stored_total{source="agent"} 2.0' in text
    assert 'soc_collector_events_deduplicated_total{source="agent"} 1.0' in text
    assert 'soc_collector_events_failed_total{source="agent"} 1.0' in text
    assert 'soc_collector_detection_alerts_total{level="high"}' in text
    assert 'soc_collector_netflow_sequence_gaps_total{exporter="192.0.2.1"} 3.0' in text
    assert f'soc_collector_agent_last_seen_lag_seconds{{agent="{agent.agent_id}"}}' in text
    assert "soc_collector_store_write_seconds_count" in text
    health = httpx.get(f"{url}/health").json()
    assert health["status"] == "ok" and health["detection"]["enabled"] is True
    assert "s3cret" not in str(health)


def test_retention_deletes_old_events(running: Collector, tmp_path: Path) -> None:
    agent = enrolled_agent(running, tmp_path)
    old = whoami_event("old-1")
    old["@timestamp"] = "2001-01-01T00:00:00.000Z"
    agent.ship([old, whoami_event("new-1")])
    assert running.run_retention() == 1
    assert running.store is not None
    assert [e["event"]["id"] for e in running.store.get(["old-1", "new-1"])] == ["new-1"]


def test_alerts_reach_the_soc_database(tmp_path: Path) -> None:
    from sqlalchemy import select

    from soc_api.db.models import AlertRow
    from soc_api.db.session import make_engine

    url = f"sqlite:///{tmp_path / 'soc.db'}"
    collector = make_collector(tmp_path, database_url=url)
    collector.start()
    try:
        agent = enrolled_agent(collector, tmp_path)
        agent.ship([whoami_event("db-1")])
        assert collector.pipeline is not None and collector.pipeline.detection is not None
        collector.pipeline.detection.drain(10)
    finally:
        collector.stop()
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(AlertRow.rule_title)).all()
    engine.dispose()
    assert [r[0] for r in rows] == ["Whoami test"]


def test_stop_is_clean_and_quick(tmp_path: Path) -> None:
    collector = make_collector(tmp_path, database_url="")
    collector.start()
    started = time.monotonic()
    collector.stop()
    assert time.monotonic() - started < 5


def test_automatic_gc_is_off_while_running_and_back_after(tmp_path: Path) -> None:
    import gc

    assert gc.isenabled()
    collector = make_collector(tmp_path, database_url="")
    collector.start()
    try:
        assert not gc.isenabled()  # collector.gc_clock collects by the clock instead
        assert any(t.name == "gc-clock" for t in threading.enumerate())
    finally:
        collector.stop()
    assert gc.isenabled()
