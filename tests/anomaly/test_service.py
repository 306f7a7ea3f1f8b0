"""The service across restarts (no re-alerting, only new alerts), and per-site overrides with their audit."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from collector.anomaly.service import AnomalyService
from collector.anomaly.settings import AnomalySettings
from collector.store.base import EventStore
from collector.store.sqlite import SqliteEventStore
from soc_common.ecs import Event

from .conftest import SCENARIO_T0, ListSink, collector_config, flow, ingest, replay

NOW = SCENARIO_T0 + timedelta(hours=2, minutes=30)
SETTINGS = AnomalySettings(initial_lookback=5 * 86400)


def service(store: EventStore, tmp_path: Path, sink: ListSink) -> AnomalyService:
    return AnomalyService(collector_config(tmp_path), store, sink, SETTINGS)


def sweep(at_minutes: int, source: str, site: str | None = None) -> list[Event]:
    out = []
    for i in range(1, 80):
        ev = flow(SCENARIO_T0 + timedelta(minutes=at_minutes, seconds=i), source, f"10.0.0.{i}", 445, 60, i, source)
        if site:
            ev["soc"] = {"site": site}
        out.append(ev)
    return out


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_restart_resumes_without_realerting(store: EventStore, tmp_path: Path) -> None:
    ingest(store, collector_config(tmp_path), replay("port-scan"))
    first = ListSink()
    svc = service(store, tmp_path, first)
    svc.run_once(NOW)
    svc.stop()
    assert {a.rule_id for a in first.alerts} == {"anomaly.fanout.port_scan", "anomaly.volume.dataset_spike"}

    again = ListSink()
    svc = service(store, tmp_path, again)  # a new process on the same state, same data, same time
    report = svc.run_once(NOW)
    assert again.alerts == [] and sum(report.windows.values()) == 0
    svc.stop()

    # A crash after the alerts went out but before the checkpoints were committed: the windows are
    # judged again and find the same things, and the reported table keeps them from going out twice.
    with sqlite3.connect(tmp_path / "collector" / "anomaly.db") as db:
        db.execute("DELETE FROM checkpoints")
    svc = service(store, tmp_path, again)
    report = svc.run_once(NOW)
    assert report.windows["fanout"] > 0 and again.alerts == []

    # Later data: only the new behaviour alerts.
    ingest(store, collector_config(tmp_path), sweep(3 * 60 + 5, "10.10.5.24"))
    svc.run_once(NOW + timedelta(hours=1))
    svc.stop()
    assert {(a.rule_id, a.source_ip) for a in again.alerts} == {
        ("anomaly.fanout.host_sweep", "10.10.5.24"),
        ("anomaly.fanout.lateral_spread", "10.10.5.24"),
    }
    assert len({a.id for a in first.alerts + again.alerts}) == len(first.alerts) + len(again.alerts)


def test_site_overrides_change_only_that_site(sqlite_store: SqliteEventStore, tmp_path: Path) -> None:
    events = sweep(5, "10.10.5.23", "hn") + sweep(6, "10.20.5.23", "dn") + sweep(7, "10.30.5.23", "hcm")
    ingest(sqlite_store, collector_config(tmp_path), events)
    sink = ListSink()
    svc = service(sqlite_store, tmp_path, sink)
    svc.set_override("hn", "fanout", {"distinct_hosts": 200}, actor="an.nguyen", reason="inventory scanner in hn")
    svc.set_override("dn", "fanout", {"enabled": False}, actor="an.nguyen", reason="dn lab network")
    report = svc.run_once(NOW)
    assert report.errors == {}
    fanout = {(a.rule_id, a.source_ip, a.site) for a in sink.alerts if a.rule_id.startswith("anomaly.fanout")}
    assert fanout == {
        ("anomaly.fanout.lateral_spread", "10.10.5.23", "hn"),  # hn: only the host-sweep threshold was raised
        ("anomaly.fanout.host_sweep", "10.30.5.23", "hcm"),  # defaults elsewhere
        ("anomaly.fanout.lateral_spread", "10.30.5.23", "hcm"),
    }  # dn: fan-out switched off

    audit = svc.state.override_audit()
    assert [(e["site"], e["params"], e["actor"], e["reason"]) for e in reversed(audit)] == [
        ("hn", {"distinct_hosts": 200}, "an.nguyen", "inventory scanner in hn"),
        ("dn", {"enabled": False}, "an.nguyen", "dn lab network"),
    ]
    svc.set_override("hn", "fanout", {}, actor="binh.tran", reason="scanner retired")
    assert "hn" not in svc.status()["overrides"]
    assert svc.state.override_audit(1)[0]["previous"] == {"distinct_hosts": 200}

    with pytest.raises(ValueError):
        svc.set_override("hn", "fanout", {"distinct_hostz": 5}, actor="x", reason="typo")
    with pytest.raises(ValueError):
        svc.set_override("hn", "fanout", {"distinct_hosts": 1}, actor="x", reason="below the minimum")
    with pytest.raises(ValueError):
        svc.set_override("hn", "nosuch", {}, actor="x", reason="unknown detector")
    with pytest.raises(ValueError):
        svc.set_override("hn", "fanout", {"distinct_hosts": 60}, actor="", reason="nobody")
    assert len(svc.state.override_audit()) == 3  # rejected changes leave no trace
    svc.stop()
