"""Beaconing keeps per-slice pair counts in its state: a steady run aggregates only the slice that just
closed, finds what a run from empty state finds, and recomputes slices when their parameters change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from collector.anomaly.detectors.beacon import BeaconDetector
from collector.anomaly.engine import AnomalyEngine
from collector.anomaly.settings import AnomalySettings
from collector.anomaly.state import AnomalyState
from collector.store.base import Aggregation, Bucket, EventStore, Query, SearchPage, WriteResult
from soc_common.alert import Alert
from soc_common.ecs import Event

from .conftest import HISTORY_END, ZONE_NAMES, ListSink, collector_config, flow, ingest

BEACON_SRC, BEACON_DST = "192.168.1.21", "203.0.113.66"
START = HISTORY_END - timedelta(hours=6)


class CountingStore(EventStore):
    """The real store, with its composite aggregations (one per slice computed) counted."""

    def __init__(self, inner: EventStore) -> None:
        self.inner = inner
        self.composites = 0

    def aggregate(self, query: Query, agg: Aggregation) -> list[Bucket]:
        self.composites += agg.kind == "composite"
        return self.inner.aggregate(query, agg)

    def write(self, events: Sequence[Event]) -> WriteResult:
        return self.inner.write(events)

    def search(self, query: Query, *, size: int = 100, cursor: str | None = None) -> SearchPage:
        return self.inner.search(query, size=size, cursor=cursor)

    def get(self, event_ids: Sequence[str]) -> list[Event]:
        return self.inner.get(event_ids)

    def count(self, query: Query) -> int:
        return self.inner.count(query)

    def delete_older_than(self, cutoff: datetime) -> int:
        return self.inner.delete_older_than(cutoff)

    def health(self) -> dict[str, Any]:
        return self.inner.health()


def beacon_flows() -> list[Event]:
    """Every 60 s (+/- 2 s) for six hours up to the end of the history."""
    return [
        flow(START + timedelta(seconds=60 * k + (k * 7) % 5 - 2), BEACON_SRC, BEACON_DST, 443, 900, k, "beacon")
        for k in range(6 * 60)
    ]


def run(store: EventStore, state_path: Path, now: datetime, **beacon: Any) -> list[Alert]:
    sink = ListSink()
    state = AnomalyState(state_path)
    settings = AnomalySettings(beacon={"realert_after": 0, **beacon})  # type: ignore[arg-type]
    report = AnomalyEngine(settings, store, state, sink, ZONE_NAMES, [BeaconDetector()]).run_once(now)
    state.close()
    assert report.errors == {}
    return sink.alerts


def test_steady_run_aggregates_only_the_new_slice(store: EventStore, tmp_path: Path) -> None:
    ingest(store, collector_config(tmp_path), beacon_flows())
    store.refresh()
    counting = CountingStore(store)
    first_now = HISTORY_END - timedelta(minutes=45)  # judges the hour that closed 1 h 45 min ago
    first = run(counting, tmp_path / "state.db", first_now)
    assert counting.composites == 24  # the whole day, one slice per hour
    assert [(a.source_ip, a.destination_ip) for a in first] == [(BEACON_SRC, BEACON_DST)]

    counting.composites = 0
    steady = run(counting, tmp_path / "state.db", first_now + timedelta(hours=1))
    assert counting.composites == 1  # only the hour that just closed

    fresh = run(store, tmp_path / "fresh.db", first_now + timedelta(hours=1))
    assert [a.explanation["observed"] for a in steady] == [a.explanation["observed"] for a in fresh]
    assert steady[0].explanation["observed"]["connections"] > first[0].explanation["observed"]["connections"]


def test_changed_parameters_recompute_the_slices(store: EventStore, tmp_path: Path) -> None:
    ingest(store, collector_config(tmp_path), beacon_flows())
    store.refresh()
    counting = CountingStore(store)
    now = HISTORY_END - timedelta(minutes=45)
    assert run(counting, tmp_path / "state.db", now)
    counting.composites = 0
    # max_prevalence shapes what a slice keeps: every office PC talks to the web servers, so with a
    # huge prevalence the beacon's destination would compete with them; the slices must be redone
    assert run(counting, tmp_path / "state.db", now + timedelta(hours=1), max_prevalence=1000)
    assert counting.composites == 24  # not just the new hour


def test_shared_destinations_are_not_candidates(store: EventStore, tmp_path: Path) -> None:
    """The same beat towards a destination many hosts use is a shared service, not a beacon."""
    many = [
        flow(START + timedelta(minutes=m, seconds=k), f"192.168.1.{30 + k}", BEACON_DST, 443, 500, m * 10 + k, "shr")
        for m in range(0, 300, 30)
        for k in range(8)
    ]
    ingest(store, collector_config(tmp_path), beacon_flows() + many)
    store.refresh()
    now = HISTORY_END - timedelta(minutes=45)
    assert run(store, tmp_path / "state.db", now) == []
    tolerant = run(store, tmp_path / "other.db", now, max_prevalence=20)
    assert [(a.source_ip, a.destination_ip) for a in tolerant] == [(BEACON_SRC, BEACON_DST)]
