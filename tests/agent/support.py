"""Agent test helpers: a simple in-test source plug-in and a real collector ingest stack on loopback.

Imported as ``tests.agent.support`` by the tests and by conftest.py, so there is one module object
(and one ``CountingSource`` class) whatever the import order."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import Field

from agent.config import AgentConfig
from agent.plugins import PluginRegistry, PluginSpec
from agent.sources.base import Emit, Source
from soc_common.config import Section
from soc_common.ecs import Event, new_event, stable_event_id


class CountingSettings(Section):
    total: int = Field(default=100, ge=0)
    batch: int = Field(default=10, gt=0)
    fail_after: int = -1  # raise once after this many events (tests the supervisor)
    prefix: str = "c"
    delay: float = 0.0  # pause between batches


class CountingSource(Source):
    """Emits ``total`` numbered events and persists its position after each emit (like a file tailer)."""

    type = "counting"
    settings_model = CountingSettings
    failures: ClassVar[dict[str, int]] = {}

    def __init__(self, name: str, settings: CountingSettings) -> None:
        super().__init__(name)
        self.settings = settings
        self.state_file: Path | None = None

    def run(self, emit: Emit, stop: threading.Event) -> None:
        position = int(self.state_file.read_text()) if self.state_file and self.state_file.exists() else 0
        while position < self.settings.total and not stop.is_set():
            if position == self.settings.fail_after and not CountingSource.failures.get(self.name):
                CountingSource.failures[self.name] = 1
                raise RuntimeError("simulated crash")
            n = min(self.settings.batch, self.settings.total - position)
            batch = []
            for i in range(position, position + n):
                event = new_event(dataset="test.counting", event_id=stable_event_id(self.settings.prefix, i))
                event["message"] = f"{self.settings.prefix}-{i}"
                batch.append(event)
            emit(batch)
            position += n
            if self.state_file:
                self.state_file.write_text(str(position))
            if self.settings.delay:
                stop.wait(self.settings.delay)
        stop.wait()


@pytest.fixture
def plugins() -> PluginRegistry:
    registry = PluginRegistry()
    registry.register(PluginSpec("counting", __name__, "CountingSource"))
    CountingSource.failures = {}
    return registry


def agent_config(tmp_path: Path, **overrides: Any) -> AgentConfig:
    raw: dict[str, Any] = {
        "data_dir": str(tmp_path / "agent"),
        "sources": [],
        "shipping": {"flush_interval": 0.05, "backoff_initial": 0.05, "backoff_max": 0.3, "timeout": 5},
        "status_interval": 0.2,
        "policy": {"poll_interval": 0.2},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return AgentConfig.model_validate(raw)


@dataclass
class Collector:
    """A real ingest server (collector.ingest) over the real SQLite event store."""

    server: Any
    store: Any
    registry: Any
    tmp_path: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.port}"

    @property
    def ca_file(self) -> Path:
        return Path(self.server.ca.cert_path)

    @property
    def fingerprint(self) -> str:
        return str(self.server.ca.fingerprint)

    def token(self, uses: int = 1, site: str | None = None) -> str:
        token, _ = self.server.registry.create_token(site=site, uses=uses, ttl_seconds=3600)
        return str(token)

    def count(self) -> int:
        from collector.store.base import Query

        return int(self.store.count(Query()))

    def ids(self) -> list[str]:
        from collector.store.base import Query

        out: list[str] = []
        cursor = None
        while True:
            page = self.store.search(Query(), size=1000, cursor=cursor)
            out += [e["event"]["id"] for e in page.events]
            cursor = page.cursor
            if not cursor:
                return out

    def stop(self) -> None:
        self.server.stop()

    def restart(self) -> None:
        """Stop and start again on the same port (same CA, registry and store)."""
        from collector.ingest.server import IngestServer

        port = self.server.port
        self.server.stop()
        config = self.server.config.model_copy(deep=True)
        config.ingest.port = port
        self.server = IngestServer(config, self.server.pipeline, registry=self.registry, ca=self.server.ca)
        self.server.start()


def _start_collector(tmp_path: Path, **ingest: Any) -> Collector:
    pytest.importorskip("collector.ingest.server", reason="the collector ingest server (collector/ingest) is needed")
    from collector.config import CollectorConfig
    from collector.ingest.registry import Registry
    from collector.ingest.server import IngestServer
    from collector.pipeline.runner import build_pipeline
    from collector.store.base import StoreError, WriteResult
    from collector.store.sqlite import SqliteEventStore

    class SwitchableStore(SqliteEventStore):
        failing = False

        def write(self, events: Sequence[Event]) -> WriteResult:
            if self.failing:
                raise StoreError("store offline (test switch)")
            return super().write(events)

    config = CollectorConfig.model_validate(
        {
            "data_dir": str(tmp_path / "collector"),
            "ingest": {"port": 0, "agent_cache_seconds": 0, **ingest},
            "detection": {"enabled": False},
            "metrics": {"enabled": False},
            "retention": {"enabled": False},
        }
    )
    store = SwitchableStore(tmp_path / "events.db")
    registry = Registry(config.registry_path)
    server = IngestServer(config, build_pipeline(config, store, None, None), registry=registry)
    server.start()
    return Collector(server, store, registry, tmp_path)


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    c = _start_collector(tmp_path)
    yield c
    c.server.stop()
    c.registry.close()
    c.store.close()


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
