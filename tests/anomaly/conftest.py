"""Scenario harness: agent replay -> collector enrichment (demo zones) -> store -> anomaly engine -> alerts.

The four days of normal history every scenario needs are written once per session into a template
(a SQLite file copied per test; the base cluster of a private osmem server, cloned per test), so
each test only ingests its own capture.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from store.conftest import _es_settings, osmem_client

from agent.flows import events_from_pcap
from collector.anomaly.engine import AnomalyEngine
from collector.anomaly.settings import AnomalySettings
from collector.anomaly.state import AnomalyState
from collector.config import CollectorConfig
from collector.pipeline.runner import build_processors
from collector.store.base import EventStore
from collector.store.elastic import ElasticEventStore
from collector.store.sqlite import SqliteEventStore
from soc_common.alert import Alert, AlertSink
from soc_common.demo import DEMO_ZONES as DEMO_ZONE_PLAN
from soc_common.ecs import Event, iso, new_event, stable_event_id

PCAPS = Path(__file__).resolve().parents[2] / "pcaps"
SCENARIO_T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
HISTORY_END = SCENARIO_T0 + timedelta(hours=3)
DEMO_ZONES: list[dict[str, Any]] = [{"name": name, "cidrs": list(cidrs)} for name, cidrs in DEMO_ZONE_PLAN]
ZONE_NAMES: list[str] = [name for name, _ in DEMO_ZONE_PLAN]
# Normal users of the scenario hosts: party-WAN PCs, office PCs (which may also browse the Internet).
WAN_HOSTS = ["10.10.1.10", "10.10.3.8", "10.10.7.50", "10.10.5.23", "10.10.9.14", "10.10.12.40", "10.10.2.21"]
OFFICE_HOSTS = ["192.168.1.10", "192.168.1.11"]


class ListSink:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def emit(self, alerts: Sequence[Alert]) -> None:
        self.alerts.extend(alerts)


def collector_config(tmp_path: Path) -> CollectorConfig:
    return CollectorConfig.model_validate({"data_dir": tmp_path, "enrich": {"zones": DEMO_ZONES, "default_site": "hn"}})


def enrich(config: CollectorConfig, events: list[Event]) -> list[Event]:
    """The collector's processors, as the ingest pipeline runs them."""
    out: list[Event] = []
    processors = build_processors(config)
    for i in range(0, len(events), 1000):
        batch = events[i : i + 1000]
        for p in processors:
            batch = p.process(batch)
        out += batch
    return out


def ingest(store: EventStore, config: CollectorConfig, events: list[Event]) -> None:
    enriched = enrich(config, events)
    for i in range(0, len(enriched), 1000):
        result = store.write(enriched[i : i + 1000])
        assert not result.errors
    store.refresh()


def replay(name: str) -> list[Event]:
    return list(events_from_pcap(PCAPS / f"{name}.pcap"))


def flow(ts: datetime, src: str, dst: str, dport: int, sent: int, n: int, tag: str = "hist") -> Event:
    ev = new_event(dataset="network_traffic.flow", timestamp=ts, event_id=stable_event_id(tag, src, dst, ts, n))
    ev["event"].update({"category": ["network"], "start": iso(ts), "reason": "closed"})
    ev["source"] = {"ip": src, "port": 50000 + n % 10000, "bytes": sent, "packets": 10}
    ev["destination"] = {"ip": dst, "port": dport, "bytes": 2000, "packets": 8}
    ev["network"] = {"transport": "tcp", "bytes": sent + 2000}
    return ev


def history(days: int = 4, end: datetime = HISTORY_END) -> list[Event]:
    """Days of normal traffic up to ``end`` (the background goes on while a scenario plays): hourly
    file-server and DNS use by every host; office PCs also browse the web at irregular times."""
    rnd = random.Random(20240301)
    out: list[Event] = []
    start = end - timedelta(days=days)
    n = 0
    for hour in range(days * 24):
        t = start + timedelta(hours=hour)
        for k, host in enumerate(WAN_HOSTS + OFFICE_HOSTS):
            n += 1
            ts = t + timedelta(minutes=9 + k, seconds=n % 50)
            out.append(flow(ts, host, "10.0.0.20", 445, 40_000 + (n * 37) % 20_000, n))
            n += 1
            resolver = "192.168.1.2" if host in OFFICE_HOSTS else "10.0.0.53"
            out.append(flow(t + timedelta(minutes=31 + k), host, resolver, 53, 120, n))
            if host in OFFICE_HOSTS:
                for _ in range(rnd.randint(0, 2)):
                    n += 1
                    at = t + timedelta(seconds=rnd.randrange(3600))
                    site = rnd.choice(["203.0.113.80", "203.0.113.25", "198.51.100.8"])
                    out.append(flow(at, host, site, 443, rnd.randrange(2_000, 200_000), n))
    return out


@pytest.fixture(scope="session")
def history_config(tmp_path_factory: pytest.TempPathFactory) -> CollectorConfig:
    return collector_config(tmp_path_factory.mktemp("history-config"))


def sqlite_history_file(path: Path) -> Path:
    """A closed SQLite store at ``path`` holding the history (copy it to use it)."""
    s = SqliteEventStore(path)
    ingest(s, collector_config(path.parent), history())
    s.close()
    return path


@pytest.fixture(scope="session")
def sqlite_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sqlite_history_file(tmp_path_factory.mktemp("history") / "events.db")


@pytest.fixture(scope="session")
def osmem_history(history_config: CollectorConfig) -> Iterator[Any]:
    """A private osmem server whose base cluster holds the history (clones copy it)."""
    try:
        from osmem_server import OsmemServer
    except ImportError:
        pytest.skip("osmem-server is not installed (pip install osmem-server)")
    server = OsmemServer.start(japanese=False)
    client = osmem_client(server.url)
    ingest(ElasticEventStore(_es_settings(), client=client), history_config, history())
    client.close()
    yield server
    server.close()


@pytest.fixture(params=["sqlite", pytest.param("es-osmem", marks=pytest.mark.es)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    """A store already holding the four days of history."""
    if request.param == "sqlite":
        path = tmp_path / "events.db"
        shutil.copyfile(request.getfixturevalue("sqlite_history"), path)
        s = SqliteEventStore(path)
        yield s
        s.close()
        return
    clone = request.getfixturevalue("osmem_history").clone()
    client = osmem_client(clone.url)
    es = ElasticEventStore(_es_settings(), client=client)
    yield es
    client.close()
    clone.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteEventStore]:
    """An empty SQLite store, for tests that build their own data."""
    s = SqliteEventStore(tmp_path / "events.db")
    yield s
    s.close()


def make_engine(store: EventStore, tmp_path: Path, sink: AlertSink, **settings: Any) -> AnomalyEngine:
    state = AnomalyState(tmp_path / "anomaly.db")
    cfg = AnomalySettings(**settings)
    return AnomalyEngine(cfg, store, state, sink, ZONE_NAMES)
