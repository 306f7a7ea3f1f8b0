"""Hosts and agents linked to systems in the SOC pages attribute the collector's events (soc.system_id).

The real API on SQLite and PostgreSQL, the collector's copy of its registry, and a collector with
ingest workers receiving syslog.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from collector.config import CollectorConfig, EnrichSettings, SystemSettings
from collector.pipeline.systems import EnrichSystem, RegistryResolver
from collector.registry_sync import RegistrySync
from collector.runtime import Collector
from collector.store.base import Query, Term
from soc_common.ecs import Event, get
from tests.helpers.api_world import Api
from tests.systems.helpers import create_system


def link(api: Api, system_id: str, **host: str) -> int:
    r = api.client.post(f"/api/v1/systems/{system_id}/hosts", json=host, headers=api.headers("officer_hn"))
    assert r.status_code == 201, r.text
    host_id: int = r.json()["id"]
    return host_id


def unlink(api: Api, system_id: str, host_id: int) -> None:
    r = api.client.delete(f"/api/v1/systems/{system_id}/hosts/{host_id}", headers=api.headers("officer_hn"))
    assert r.status_code == 204, r.text


def attributed(resolver: RegistryResolver, events: list[Event]) -> list[str | None]:
    return [get(e, "soc.system_id") for e in EnrichSystem(resolver).process(events)]


def wait_for(check: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_links_made_in_the_pages_reach_the_pipeline(api: Api, db_url: str, tmp_path: Path) -> None:
    create_system(api)  # qlvb-hn, network 10.10.0.0/24
    create_system(api, system_id="mat-hn", information_types=["state_secret"])
    r = api.client.patch("/api/v1/systems/mat-hn", json={"cidrs": ["10.66.0.0/16"]}, headers=api.headers("officer_hn"))
    assert r.status_code == 200, r.text
    link(api, "qlvb-hn", host_name="SRV-QLVB-01", agent_id="agent-7", ip="192.0.2.10")
    snapshot = tmp_path / "systems.json"
    sync = RegistrySync(db_url, snapshot, interval=60)
    try:
        assert sync.sync_once() and sync.health()["links"] == 4  # agent, name, address, network
        resolver = RegistryResolver(EnrichSettings(), snapshot, check_every=0)
        events: list[Event] = [
            {"soc": {"agent_id": "agent-7"}, "host": {"name": "renamed-since"}},  # the agent decides
            {"host": {"hostname": "srv-qlvb-01"}},
            {"host": {"name": "x", "ip": ["192.0.2.10"]}},
            {"host": {"name": "y", "ip": "10.10.0.77"}},  # the system's network
            {"host": {"name": "z", "ip": "10.66.1.1"}},  # a state-secret system's network: never
            {"host": {"name": "srv-moi"}},
            {"host": {"name": "srv-qlvb-01"}, "soc": {"system_id": "set-by-the-source"}},
        ]
        assert attributed(resolver, [dict(e) for e in events]) == [
            "qlvb-hn", "qlvb-hn", "qlvb-hn", "qlvb-hn", None, None, "set-by-the-source",
        ]  # fmt: skip
        # Unchanged links leave the file alone; a new link rewrites it and the pipeline sees it.
        written = snapshot.stat().st_mtime_ns
        assert sync.sync_once() and snapshot.stat().st_mtime_ns == written
        new = link(api, "qlvb-hn", host_name="srv-moi")
        assert sync.sync_once() and sync.health()["links"] == 5
        assert attributed(resolver, [{"host": {"name": "SRV-MOI"}}]) == ["qlvb-hn"]
        unlink(api, "qlvb-hn", new)
        assert sync.sync_once()
        assert attributed(resolver, [{"host": {"name": "srv-moi"}}]) == [None]
        assert resolver.reloads == 3 and resolver.failures == 0
    finally:
        sync.stop()


def test_an_unreachable_database_keeps_the_last_copy(
    api: Api, db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    create_system(api)
    link(api, "qlvb-hn", host_name="srv-qlvb-01")
    snapshot = tmp_path / "systems.json"
    good = RegistrySync(db_url, snapshot, interval=60)
    assert good.sync_once()
    good.stop()
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = RegistrySync(f"postgresql://soc:s3cret-Passw0rd@127.0.0.1:{port}/soc", snapshot, interval=60)
    with caplog.at_level(logging.INFO, logger="collector.registry_sync"):
        assert not down.sync_once() and not down.sync_once()
    down.stop()
    assert down.health() == {"links": 0, "copied_s_ago": None, "failures": 2}
    assert len([r for r in caplog.records if "not copied" in r.getMessage()]) == 1  # once per outage
    assert "s3cret" not in caplog.text
    resolver = RegistryResolver(EnrichSettings(), snapshot, check_every=0)
    assert attributed(resolver, [{"host": {"name": "srv-qlvb-01"}}]) == ["qlvb-hn"]


def test_a_damaged_copy_keeps_the_table_last_read(tmp_path: Path) -> None:
    snapshot = tmp_path / "systems.json"
    snapshot.write_text(json.dumps({"format": 1, "links": [["web-hn", "host", "web-01"], ["x", "other", "y"]]}))
    configured = EnrichSettings(systems=[SystemSettings(id="mail-hn", hosts=["web-01", "mail-*"])])
    resolver = RegistryResolver(configured, snapshot, check_every=0)
    # The configuration's links come first; a kind this version does not know is skipped.
    assert attributed(resolver, [{"host": {"name": "web-01"}}, {"host": {"name": "mail-2"}}]) == ["mail-hn"] * 2
    snapshot.write_text(json.dumps({"format": 1, "links": [["web-hn", "host", "web-02"]]}))
    assert attributed(resolver, [{"host": {"name": "web-02"}}]) == ["web-hn"]
    for damaged in ('{"format": 1, "links": [["web-hn", "host"]]}', '{"format": 2, "links": []}', "{not json"):
        snapshot.write_text(damaged)
        assert attributed(resolver, [{"host": {"name": "web-02"}}]) == ["web-hn"]
    assert resolver.failures == 3 and resolver.reloads == 2


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="ingest workers need SO_REUSEPORT (Linux)")
def test_a_collector_with_workers_attributes_syslog_by_the_registry(api: Api, db_url: str, tmp_path: Path) -> None:
    create_system(api)
    link(api, "qlvb-hn", host_name="srv-qlvb-01")
    config = CollectorConfig.model_validate(
        {
            "data_dir": str(tmp_path / "collector"),
            "workers": 2,
            "ingest": {"enabled": False},
            "syslog": {"enabled": True, "udp_port": None, "tcp_port": 0, "tls_port": None, "flush_interval": 0.1},
            "detection": {"enabled": False},
            "anomaly": {"enabled": False},
            "metrics": {"enabled": False},
            "alerts": {"database_url": db_url},
            "enrich": {"registry_refresh": 0.2},
        }
    )
    collector = Collector(config)
    collector.start()
    try:
        store, sync = collector.store, collector.systems_sync
        assert store is not None and sync is not None
        port = collector.ports()["syslog"]["tcp"]

        def stored_system(host: str, n: int) -> Callable[[], str | None]:
            """Send one line from ``host``; the check answers the system id once it is stored."""
            with socket.create_connection(("127.0.0.1", port)) as conn:
                conn.sendall(b"<13>Nov 21 10:00:00 %s app: line %d\n" % (host.encode(), n))

            def check() -> str | None:
                hits = store.search(Query((Term("message", f"line {n}"),))).events
                return get(hits[0], "soc.system_id") or "none" if hits else None

            return check

        wait_for(lambda: sync.health()["links"] == 2)  # the host and the system's network
        first = stored_system("srv-qlvb-01", 1)
        wait_for(first)
        assert first() == "qlvb-hn"
        link(api, "qlvb-hn", host_name="srv-moi")
        wait_for(lambda: sync.health()["links"] == 3)
        # each worker looks at the copy every 2 s: lines from the new host are attributed after that
        n = 1
        while True:
            n += 1
            check = stored_system("srv-moi", n)
            wait_for(check)
            if check() == "qlvb-hn":
                break
            assert n < 40, "the new link never reached the workers"
            time.sleep(0.2)
        assert collector.health()["systems_registry"]["failures"] == 0
        exposition = generate_latest(collector.metrics.registry).decode()
        assert "soc_collector_systems_registry_links 3.0" in exposition
        assert "soc_collector_systems_registry_copy_failures_total 0.0" in exposition
    finally:
        collector.stop()
