"""The collector with ingest workers (``workers = 2``): real worker processes on shared ports writing
one store, detection and /metrics in the supervisor."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from collector.config import CollectorConfig
from collector.pipeline.sinks import read_jsonl_alerts
from collector.runtime import Collector
from collector.store.base import Query, Term
from tests.collector.ingest_harness import Agent, sample_events
from tests.collector.test_collector_runtime import RULE, whoami_event

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="workers need SO_REUSEPORT (Linux)")
TOKEN = "workers-metrics-token"


@dataclass
class Endpoint:
    url: str
    ca_file: Path


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Collector]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "whoami.yml").write_text(RULE)
    config = CollectorConfig.model_validate(
        {
            "data_dir": str(tmp_path / "data"),
            "workers": 2,
            "ingest": {"port": 0, "agent_cache_seconds": 0},
            "syslog": {"enabled": True, "udp_port": 0, "tcp_port": 0, "tls_port": None},
            "netflow": {"enabled": True, "port": 0},
            "detection": {"rule_paths": [str(rules)]},
            "alerts": {"database_url": ""},
            "metrics": {"port": 0, "bearer_token": TOKEN},
        }
    )
    collector = Collector(config)
    collector.start()
    yield collector
    started = time.monotonic()
    collector.stop()
    # the workers drain and exit at once; a second waiter on a worker process (ECHILD) once made
    # every stop wait out the 30 s timeout
    assert time.monotonic() - started < 15


def metrics_text(collector: Collector) -> str:
    assert collector.metrics_server is not None
    url = f"http://127.0.0.1:{collector.metrics_server.port}/metrics"
    return httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).text


def sample_value(text: str, prefix: str) -> float:
    """The value of the one sample line starting with ``prefix`` (0 when absent)."""
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert len(lines) <= 1, lines
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


def wait_for(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def enrolled(collector: Collector, tmp_path: Path, name: str) -> Agent:
    assert collector.registry is not None
    ports = collector.ports()
    endpoint = Endpoint(f"https://127.0.0.1:{ports['ingest']}", collector.config.ca_dir / "ca.crt")
    agent = Agent(endpoint, tmp_path / name, name)  # type: ignore[arg-type]
    token, _ = collector.registry.create_token(site="hn", uses=1, ttl_seconds=60)
    assert agent.enroll(token).status_code == 200
    return agent


def test_workers_share_the_ports_and_store_everything_once(supervisor: Collector, tmp_path: Path) -> None:
    assert supervisor.pool is not None and len(supervisor.pool.pids()) == 2
    assert supervisor.ingest is None and not supervisor.receivers  # the supervisor receives nothing itself
    agent = enrolled(supervisor, tmp_path, "pc-01")
    batches = [sample_events(50, prefix=f"b{n}") for n in range(20)]
    for batch in batches:  # a new connection per batch: the kernel spreads them over both workers
        assert agent.ship(batch).json()["accepted"] == 50
    assert agent.ship(batches[0]).json() == {"accepted": 0, "duplicates": 50, "rejected": []}
    assert agent.ship([whoami_event("w-1")]).json()["accepted"] == 1
    ports = supervisor.ports()["syslog"]
    with socket.create_connection(("127.0.0.1", ports["tcp"])) as conn:
        conn.sendall(b"".join(b"<13>Nov 21 10:00:%02d web01 app: line %d\n" % (i % 60, i) for i in range(300)))
    store = supervisor.store
    assert store is not None
    wait_for(lambda: store.count(Query()) == 1000 + 1 + 300)
    # every worker wrote: the per-worker texts both count stored agent events
    wait_for(lambda: len(supervisor.pool.metrics_texts()) == 2)  # type: ignore[union-attr]
    per_worker = [
        sample_value(t.decode(), 'soc_collector_events_stored_total{source="agent"}')
        for t in supervisor.pool.metrics_texts()
    ]
    assert all(n > 0 for n in per_worker), per_worker
    # detection ran once, in the supervisor, on what the workers stored
    wait_for(lambda: bool(read_jsonl_alerts(supervisor.config.alerts_jsonl_path)))
    [alert] = read_jsonl_alerts(supervisor.config.alerts_jsonl_path)
    assert alert.rule_title == "Whoami test" and alert.event_ids == ["w-1"]

    def summed() -> bool:
        text = metrics_text(supervisor)
        return (
            sample_value(text, 'soc_collector_events_stored_total{source="agent"}') == 1001
            and sample_value(text, 'soc_collector_events_deduplicated_total{source="agent"}') == 50
            and sample_value(text, 'soc_collector_events_stored_total{source="syslog"}') == 300
            and sample_value(text, 'soc_collector_detection_alerts_total{level="high"}') == 1
        )

    wait_for(summed, timeout=10)
    health = httpx.get(f"http://127.0.0.1:{supervisor.metrics_server.port}/health").json()  # type: ignore[union-attr]
    assert health["workers"] == {"configured": 2, "alive": 2, "restarts": 0}
    assert health["receivers"] == ["netflow", "syslog"] and health["status"] == "ok"


def test_the_supervisor_indexes_what_the_workers_write(supervisor: Collector, tmp_path: Path) -> None:
    agent = enrolled(supervisor, tmp_path, "pc-02")
    for n in range(4):
        agent.ship(sample_events(100, prefix=f"ix{n}"))
    store = supervisor.store
    from collector.store import sqlite_index as ix
    from collector.store.sqlite import SqliteEventStore

    assert isinstance(store, SqliteEventStore)

    def indexed() -> bool:
        conn = store._reader()
        newest = conn.execute("SELECT MAX(rowid) FROM events").fetchone()[0]
        return newest is not None and ix.indexed_upto(conn) == newest

    wait_for(indexed, timeout=20)  # the maintenance thread saw rows it did not write itself
    assert store.count(Query((Term("user.name", "user3"),))) == 4 * len([i for i in range(100) if i % 7 == 3])


def test_a_killed_worker_is_replaced_and_nothing_acknowledged_is_lost(supervisor: Collector, tmp_path: Path) -> None:
    agent = enrolled(supervisor, tmp_path, "pc-03")
    assert supervisor.pool is not None
    victim = supervisor.pool.pids()[0]
    acknowledged = 0
    for n in range(30):
        if n == 10:
            os.kill(victim, signal.SIGKILL)
        # a connection that lands on the dying worker fails: an agent keeps that batch and retries
        with contextlib.suppress(httpx.HTTPError):
            acknowledged += agent.ship(sample_events(20, prefix=f"k{n}")).json()["accepted"]
    wait_for(lambda: victim not in supervisor.pool.pids() and len(supervisor.pool.pids()) == 2)  # type: ignore[union-attr]
    assert supervisor.store is not None and supervisor.store.count(Query()) >= acknowledged > 0
    assert supervisor.health()["workers"]["restarts"] == 1


def test_netflow_exporters_keep_their_templates_with_one_worker_each(supervisor: Collector) -> None:
    """Six routers: each decoded by one worker, three each whatever the kernel's hash gave whom."""
    from peers import netflow_stream

    port = supervisor.ports()["netflow"]
    exporters = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(6)]
    try:
        for n, sock in enumerate(exporters):  # six routers (addresses), each its template first, then data
            sock.bind((f"127.0.0.{n + 2}", 0))
            for packet in netflow_stream(9, 10):
                sock.sendto(packet, ("127.0.0.1", port))
                time.sleep(0.001)
        store = supervisor.store
        assert store is not None
        wait_for(lambda: store.count(Query((Term("event.dataset", "netflow.flow"),))) == 6 * 300)
    finally:
        for sock in exporters:
            sock.close()

    def no_template_drops() -> bool:
        drops = supervisor.health()["receiver_drops"].get("netflow", {})
        return not drops.get("no_template") and not drops.get("sequence_gap")

    wait_for(no_template_drops, timeout=5)
    text = metrics_text(supervisor)
    assert 'soc_collector_receiver_records_total{kind="records",receiver="netflow"} 1800.0' in text
    pool = supervisor.pool
    assert pool is not None

    def decoded_by_each() -> list[set[str]]:
        return [{key.split("/")[0] for key in stats["exporters"]} for stats in pool.receiver_stats("netflow")]

    wait_for(lambda: sum(len(mine) for mine in decoded_by_each()) == 6, timeout=5)
    first, second = decoded_by_each()
    assert len(first) == len(second) == 3 and not first & second
    handed = sum(stats["packets_handed_over"] for stats in pool.receiver_stats("netflow"))
    taken = sum(stats["packets_taken_over"] for stats in pool.receiver_stats("netflow"))
    assert handed == taken and handed % 10 == 0  # whole streams (10 packets each) moved, or none
    text = metrics_text(supervisor)  # the workers' counters, summed
    assert sample_value(text, 'soc_collector_receiver_records_total{kind="packets_handed_over"') == handed


def test_one_busy_syslog_connection_is_parsed_by_both_workers(supervisor: Collector) -> None:
    """A relay's single TCP connection: the worker that accepted it hands half of every read over."""
    pool, store = supervisor.pool, supervisor.store
    assert pool is not None and store is not None
    total = 20_000
    payload = b"".join(b"<13>Nov 21 10:00:%02d relay app: line %d\n" % (i % 60, i) for i in range(total))
    with socket.create_connection(("127.0.0.1", supervisor.ports()["syslog"]["tcp"])) as conn:
        conn.sendall(payload)
    wait_for(lambda: store.count(Query((Term("event.dataset", "syslog"),))) == total)

    def parsed_by_each() -> list[int]:
        return [stats["received"] for stats in pool.receiver_stats("syslog")]

    wait_for(lambda: sum(parsed_by_each()) == total, timeout=5)
    assert min(parsed_by_each()) > total // 4, parsed_by_each()
    handed = sum(stats["lines_handed_over"] for stats in pool.receiver_stats("syslog"))
    taken = sum(stats["lines_taken_over"] for stats in pool.receiver_stats("syslog"))
    assert handed == taken > 0


def test_a_port_taken_by_another_program_stops_the_start_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        config = CollectorConfig.model_validate(
            {
                "data_dir": str(tmp_path / "data"),
                "workers": 2,
                "ingest": {"port": other.getsockname()[1]},
                "detection": {"enabled": False},
                "metrics": {"enabled": False},
            }
        )
        collector = Collector(config)
        with pytest.raises(OSError, match="ingest worker"):
            try:
                collector.start()
            finally:
                collector.stop()
        assert collector.pool is not None and not any(p for p in collector.pool.pids() if _alive(p))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
