"""Agent-batch ingest benchmark: HTTPS + mTLS -> pipeline -> embedded SQLite store.

The collector (ingest server, full processor chain, SQLite store) runs in this process; the agents
run in separate processes (so their JSON encoding does not share this interpreter's GIL) and each
ships pre-built NDJSON batches over one keep-alive mTLS connection. Prints events/s and peak RSS.

    .venv/bin/python bench/bench_ingest.py [--events 400000] [--clients 4] [--batch 1000] [--gzip]
    .venv/bin/python bench/bench_ingest.py --breakdown [--events 40000]   # CPU per stage, in process

The breakdown runs the same bodies through each stage in this process, without HTTP/TLS, so the
HTTP+TLS share is the end-to-end "collector CPU us/event" minus the breakdown's total.
``--no-store`` acknowledges batches without writing them: the collector CPU outside the store
(HTTP, TLS, NDJSON, stamping, every processor, metrics), which is the ingest path's own budget.
``--workers N`` runs the whole collector (``Collector``) with ``workers = N`` instead: N ingest
processes on the shared port writing one store; its CPU is this process's plus the workers'.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import os
import resource
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx
import psutil
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collector.config import CollectorConfig
from collector.gc_clock import TimedCollection
from collector.ingest.batch import parse_ndjson
from collector.ingest.registry import Registry
from collector.ingest.server import IngestServer
from collector.pipeline.runner import build_pipeline
from collector.runtime import Collector
from collector.store.base import Query, WriteResult
from collector.store.sqlite import SqliteEventStore
from soc_common.ecs import Event, new_event


def make_event(client: int, i: int) -> dict[str, object]:
    ev = new_event(dataset="system.auth", event_id=f"c{client}-{i}")
    ev["event"].update({"action": "ssh_login", "category": ["authentication"], "outcome": "failure"})
    ev["host"] = {"name": f"pc-{client:03d}", "ip": [f"10.1.{client}.{i % 250 + 1}"]}
    ev["source"] = {"ip": f"203.0.113.{i % 250 + 1}", "port": 40000 + i % 20000}
    ev["user"] = {"name": f"user{i % 50}"}
    ev["message"] = f"Failed password for user{i % 50} from 203.0.113.{i % 250 + 1} port {40000 + i % 20000} ssh2"
    return ev


def enroll(url: str, ca: str, token: str, folder: Path, name: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .sign(key, hashes.SHA256())
    )
    resp = httpx.post(
        f"{url}/v1/enroll",
        json={"token": token, "hostname": name, "csr": csr.public_bytes(serialization.Encoding.PEM).decode()},
        verify=ssl.create_default_context(cafile=ca),
    )
    resp.raise_for_status()
    (folder / f"{name}.crt").write_text(resp.json()["certificate"])
    (folder / f"{name}.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def agent_process(
    url: str,
    ca: str,
    folder: str,
    client: int,
    events: int,
    batch: int,
    compress: bool,
    start_at: float,
    out: mp.Queue,
    connections: int = 1,
) -> None:
    """One agent's batches, sent over ``connections`` keep-alive connections (threads) in turn."""
    bodies = []
    for first in range(0, events, batch):
        lines = "".join(json.dumps(make_event(client, i)) + "\n" for i in range(first, min(events, first + batch)))
        data = lines.encode()
        bodies.append(gzip.compress(data, 1) if compress else data)
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(Path(folder) / f"agent{client}.crt", Path(folder) / f"agent{client}.key")
    headers = {"Content-Type": "application/x-ndjson"}
    if compress:
        headers["Content-Encoding"] = "gzip"
    counts = [0] * connections

    def send(lane: int) -> None:
        with httpx.Client(verify=ctx, timeout=120) as http:
            http.get(f"{url}/v1/ca").raise_for_status()  # connect (and hand-shake) before the clock starts
            while time.time() < start_at:
                time.sleep(0.001)
            for body in bodies[lane::connections]:
                resp = http.post(f"{url}/v1/events", content=body, headers=headers)
                resp.raise_for_status()
                counts[lane] += resp.json()["accepted"]

    lanes = [threading.Thread(target=send, args=(lane,)) for lane in range(connections)]
    for lane in lanes:
        lane.start()
    while time.time() < start_at:
        time.sleep(0.001)
    began = time.time()
    for lane in lanes:
        lane.join()
    out.put((client, sum(counts), began, time.time()))


class _UnstoredEvents(SqliteEventStore):
    """``--no-store``: counts and acknowledges batches without writing them (isolates the store's CPU)."""

    acknowledged = 0

    def write(self, events: Sequence[Event]) -> WriteResult:
        _UnstoredEvents.acknowledged += len(events)
        return WriteResult(stored=len(events))

    def count(self, query: Query) -> int:
        return _UnstoredEvents.acknowledged


def breakdown(config: CollectorConfig, root: Path, events: int, batch: int) -> None:
    """CPU microseconds per event of each stage: NDJSON decode, every processor, the store write."""
    bodies = [
        "".join(json.dumps(make_event(0, i)) + "\n" for i in range(first, min(events, first + batch))).encode()
        for first in range(0, events, batch)
    ]
    pipeline = build_pipeline(config, SqliteEventStore(root / "breakdown.db"), None, None)
    costs: dict[str, float] = {}

    def timed(name: str, work: Any) -> Any:
        started = time.process_time()
        out = work()
        costs[name] = costs.get(name, 0.0) + time.process_time() - started
        return out

    for body in bodies:
        parsed = timed("parse_ndjson", lambda body=body: parse_ndjson(body)).events
        for processor in pipeline.processors:
            parsed = timed(processor.name, lambda p=processor, e=parsed: p.process(e))
        timed("store.write", lambda e=parsed: pipeline.store.store_batch(e))
    pipeline.store.store.close()
    print(f"{'stage':<16} {'CPU us/event':>12}")
    for name, seconds in costs.items():
        print(f"{name:<16} {seconds / events * 1e6:12.2f}")
    total = sum(costs.values()) / events * 1e6
    print(f"{'total':<16} {total:12.2f}   ({1e6 / total:,.0f} events per CPU-second)")
    print(f"nproc / load average: {os.cpu_count()} / {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


class _Target(Protocol):
    """The collector under test, as the benchmark sees it."""

    port: int
    registry: Registry

    def cpu_seconds(self) -> float: ...
    def stored(self) -> int: ...
    def stop(self) -> None: ...


class _IngestOnly:
    """The ingest server and pipeline in this process (what every earlier row of RESULTS measured)."""

    def __init__(self, config: CollectorConfig, root: Path, no_store: bool) -> None:
        self.store = (_UnstoredEvents if no_store else SqliteEventStore)(root / "events.db")
        self.server = IngestServer(config, build_pipeline(config, self.store, None, None))
        self.port = self.server.start()
        self.registry = self.server.registry

    def cpu_seconds(self) -> float:
        return time.process_time()

    def stored(self) -> int:
        return self.store.count(Query())

    def stop(self) -> None:
        self.server.stop()
        self.store.close()


class _WholeCollector:
    """``Collector`` with ``workers = n``: this process supervises, the workers ingest."""

    def __init__(self, config: CollectorConfig, workers: int) -> None:
        quiet = {"enabled": False}
        config = config.model_copy(
            update={
                "workers": workers,
                "detection": config.detection.model_copy(update=quiet),
                "metrics": config.metrics.model_copy(update=quiet),
                "retention": config.retention.model_copy(update=quiet),
                "anomaly": config.anomaly.model_copy(update=quiet),
            }
        )
        self.collector = Collector(config)
        self.collector.start()
        self.port = int(self.collector.ports()["ingest"])
        assert self.collector.registry is not None
        self.registry = self.collector.registry
        pool = self.collector.pool
        self.workers = [psutil.Process(pid) for pid in pool.pids()] if pool else []

    def cpu_seconds(self) -> float:
        worker_cpu = sum(t.user + t.system for t in (p.cpu_times() for p in self.workers))
        return time.process_time() + worker_cpu

    def stored(self) -> int:
        assert self.collector.store is not None
        return self.collector.store.count(Query())

    def workers_rss_mib(self) -> float:
        return sum(p.memory_info().rss for p in self.workers) / 2**20

    def stop(self) -> None:
        self.collector.stop()


def main() -> None:
    TimedCollection().start()  # as the running collector does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400_000, help="total events")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--breakdown", action="store_true", help="per-stage CPU in this process, no HTTP")
    parser.add_argument("--no-store", action="store_true", help="acknowledge without writing (CPU outside the store)")
    parser.add_argument("--connections", type=int, default=1, help="keep-alive connections per client")
    parser.add_argument("--workers", type=int, default=0, help="run Collector with this many ingest workers")
    args = parser.parse_args()
    per_client = args.events // args.clients

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = CollectorConfig.model_validate(
            {
                "data_dir": str(root / "data"),
                "ingest": {"port": 0, "rate_limit_eps": 1e9, "rate_limit_burst": 10**9},
                "enrich": {
                    "zones": [
                        {"name": "party-wan", "cidrs": ["10.0.0.0/8"]},
                        {"name": "internet", "cidrs": ["0.0.0.0/0"]},
                    ],
                    "sites": [{"code": "hn", "cidrs": ["10.1.0.0/16"]}],
                },
            }
        )
        if args.breakdown:
            breakdown(config, root, args.events, args.batch)
            return
        if args.workers:
            target: _Target = _WholeCollector(config, args.workers)
        else:
            target = _IngestOnly(config, root, args.no_store)
        url = f"https://127.0.0.1:{target.port}"
        ca = str(config.ca_dir / "ca.crt")
        token, _ = target.registry.create_token(site="hn", uses=args.clients, ttl_seconds=600)
        for c in range(args.clients):
            enroll(url, ca, token, root, f"agent{c}")
        # Certificates carry the server-assigned id; files are named by our client number.
        spawn = mp.get_context("spawn")  # a fork would copy the collector's threads' locks mid-use
        ctxq: mp.Queue = spawn.Queue()
        start_at = time.time() + 3.0 + 0.00005 * per_client  # let every agent pre-build its batches
        procs = [
            spawn.Process(
                target=agent_process,
                args=(url, ca, str(root), c, per_client, args.batch, args.gzip, start_at, ctxq, args.connections),
            )
            for c in range(args.clients)
        ]
        for p in procs:
            p.start()
        cpu_started = target.cpu_seconds()
        results = [ctxq.get(timeout=600) for _ in procs]
        collector_cpu = target.cpu_seconds() - cpu_started
        for p in procs:
            p.join()
        elapsed = max(r[3] for r in results) - min(r[2] for r in results)
        late = max(r[2] for r in results) - start_at
        accepted = sum(r[1] for r in results)
        stored = target.stored()
        workers_rss = target.workers_rss_mib() if isinstance(target, _WholeCollector) else 0.0
        target.stop()

    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rate = accepted / elapsed
    print(f"{'metric':<28} value")
    print(f"{'clients (processes)':<28} {args.clients}")
    print(f"{'connections per client':<28} {args.connections}")
    print(f"{'batch size':<28} {args.batch}")
    print(f"{'gzip':<28} {args.gzip}")
    print(f"{'store':<28} {'none (--no-store)' if args.no_store else 'sqlite'}")
    print(f"{'collector':<28} {f'Collector, {args.workers} worker(s)' if args.workers else 'IngestServer in process'}")
    print(f"{'events accepted':<28} {accepted}")
    print(f"{'events in store':<28} {stored}")
    print(f"{'elapsed s':<28} {elapsed:.2f}")
    print(f"{'agents started late by s':<28} {max(0.0, late):.2f}")
    print(f"{'events/s':<28} {rate:,.0f}")
    print(f"{'collector peak RSS MiB':<28} {rss_mib:.0f}")
    if args.workers:
        print(f"{'workers RSS MiB at the end':<28} {workers_rss:.0f}")
    print(f"{'collector CPU us/event':<28} {collector_cpu / max(accepted, 1) * 1e6:.1f}")
    print(f"{'events per collector CPU-s':<28} {accepted / max(collector_cpu, 1e-9):,.0f}")
    print(f"{'nproc / load average':<28} {os.cpu_count()} / {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if stored != accepted:
        print("MISMATCH: store count differs from acknowledged events", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
