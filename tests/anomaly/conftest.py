"""Scenario harness: agent replay -> collector enrichment (demo zones) -> store -> anomaly engine -> alerts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from store.conftest import _es_settings, osmem, osmem_client  # noqa: F401 - osmem is a fixture

from agent.flows import events_from_pcap
from collector.anomaly.engine import AnomalyEngine
from collector.anomaly.settings import AnomalySettings
from collector.anomaly.state import AnomalyState
from collector.config import CollectorConfig
from collector.pipeline.runner import build_processors
from collector.store.base import EventStore
from collector.store.elastic import ElasticEventStore
from collector.store.sqlite import SqliteEventStore
from soc_common.alert import Alert
from soc_common.ecs import Event, iso, new_event, stable_event_id

PCAPS = Path(__file__).resolve().parents[2] / "pcaps"
SCENARIO_T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
DEMO_ZONES = [{"name": "datacenter", "cidrs": ["10.0.0.0/24"]}, {"name": "party-wan", "cidrs": ["10.10.0.0/16"]}]


class ListSink:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def emit(self, alerts: Sequence[Alert]) -> None:
        self.alerts.extend(alerts)


def collector_config(tmp_path: Path) -> CollectorConfig:
    return CollectorConfig(data_dir=tmp_path, enrich={"zones": DEMO_ZONES, "default_site": "hn"})


def ingest(store: EventStore, config: CollectorConfig, events: list[Event]) -> None:
    processors = build_processors(config)
    for i in range(0, len(events), 1000):
        batch = events[i : i + 1000]
        for p in processors:
            batch = p.process(batch)
        result = store.write(batch)
        assert not result.errors
    store.refresh()


def replay(name: str) -> list[Event]:
    return list(events_from_pcap(PCAPS / f"{name}.pcap"))


def flow(ts: datetime, src: str, dst: str, dport: int, sent: int, n: int) -> Event:
    ev = new_event(dataset="network_traffic.flow", timestamp=ts, event_id=stable_event_id("hist", src, dst, ts, n))
    ev["event"].update({"category": ["network"], "start": iso(ts), "reason": "closed"})
    ev["source"] = {"ip": src, "port": 50000 + n % 10000, "bytes": sent, "packets": 10}
    ev["destination"] = {"ip": dst, "port": dport, "bytes": 2000, "packets": 8}
    ev["network"] = {"transport": "tcp", "bytes": sent + 2000}
    return ev


def history(days: int = 4, end: datetime = SCENARIO_T0) -> list[Event]:
    """A few days of normal hourly traffic for the scenario hosts: web browsing and file server use."""
    out: list[Event] = []
    hosts = ["10.10.1.10", "10.10.1.11", "10.10.3.8", "10.10.7.50", "10.10.5.23", "10.10.9.14", "10.10.12.40"]
    start = end - timedelta(days=days)
    n = 0
    for hour in range(days * 24):
        t = start + timedelta(hours=hour)
        for k, host in enumerate(hosts):
            for j in range(4):
                n += 1
                ts = t + timedelta(minutes=7 * j + k, seconds=n % 50)
                out.append(flow(ts, host, "10.0.0.20", 445, 40_000 + (n * 37) % 20_000, n))
            n += 1
            out.append(flow(t + timedelta(minutes=31 + k), host, "10.10.1.2", 53, 120, n))
    return out


@pytest.fixture(params=["sqlite", pytest.param("es-osmem", marks=pytest.mark.es)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "sqlite":
        s = SqliteEventStore(tmp_path / "events.db")
        yield s
        s.close()
        return
    clone = request.getfixturevalue("osmem").clone()
    client = osmem_client(clone.url)
    es = ElasticEventStore(_es_settings(), client=client)
    yield es
    client.close()
    clone.close()


def make_engine(store: EventStore, tmp_path: Path, sink: ListSink, **settings: Any) -> AnomalyEngine:
    state = AnomalyState(tmp_path / "anomaly.db")
    cfg = AnomalySettings(**settings)
    return AnomalyEngine(cfg, store, state, sink, [z["name"] for z in DEMO_ZONES])
