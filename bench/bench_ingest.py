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
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collector.config import CollectorConfig
from collector.ingest.batch import parse_ndjson
from collector.ingest.server import IngestServer
from collector.pipeline.runner import build_pipeline
from collector.runtime import tune_gc
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
) -> None:
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
    accepted = 0
    with httpx.Client(verify=ctx, timeout=120) as http:
        while time.time() < start_at:
            time.sleep(0.001)
        began = time.time()
        for body in bodies:
            resp = http.post(f"{url}/v1/events", content=body, headers=headers)
            resp.raise_for_status()
            accepted += resp.json()["accepted"]
    out.put((client, accepted, began, time.time()))


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


def main() -> None:
    tune_gc()  # as the running collector does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400_000, help="total events")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--breakdown", action="store_true", help="per-stage CPU in this process, no HTTP")
    parser.add_argument("--no-store", action="store_true", help="acknowledge without writing (CPU outside the store)")
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
        store = (_UnstoredEvents if args.no_store else SqliteEventStore)(root / "events.db")
        pipeline = build_pipeline(config, store, None, None)
        server = IngestServer(config, pipeline)
        port = server.start()
        url = f"https://127.0.0.1:{port}"
        ca = str(server.ca.cert_path)
        token, _ = server.registry.create_token(site="hn", uses=args.clients, ttl_seconds=600)
        for c in range(args.clients):
            enroll(url, ca, token, root, f"agent{c}")
        # Certificates carry the server-assigned id; files are named by our client number.
        ctxq: mp.Queue = mp.Queue()
        start_at = time.time() + 3.0 + 0.00005 * per_client  # let every agent pre-build its batches
        procs = [
            mp.Process(
                target=agent_process,
                args=(url, ca, str(root), c, per_client, args.batch, args.gzip, start_at, ctxq),
            )
            for c in range(args.clients)
        ]
        for p in procs:
            p.start()
        cpu_started = time.process_time()
        results = [ctxq.get(timeout=600) for _ in procs]
        collector_cpu = time.process_time() - cpu_started
        for p in procs:
            p.join()
        elapsed = max(r[3] for r in results) - min(r[2] for r in results)
        late = max(r[2] for r in results) - start_at
        accepted = sum(r[1] for r in results)
        stored = store.count(Query())
        server.stop()
        store.close()

    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rate = accepted / elapsed
    print(f"{'metric':<28} value")
    print(f"{'clients (processes)':<28} {args.clients}")
    print(f"{'batch size':<28} {args.batch}")
    print(f"{'gzip':<28} {args.gzip}")
    print(f"{'store':<28} {'none (--no-store)' if args.no_store else 'sqlite'}")
    print(f"{'events accepted':<28} {accepted}")
    print(f"{'events in store':<28} {stored}")
    print(f"{'elapsed s':<28} {elapsed:.2f}")
    print(f"{'agents started late by s':<28} {max(0.0, late):.2f}")
    print(f"{'events/s':<28} {rate:,.0f}")
    print(f"{'collector peak RSS MiB':<28} {rss_mib:.0f}")
    print(f"{'collector CPU us/event':<28} {collector_cpu / max(accepted, 1) * 1e6:.1f}")
    print(f"{'events per collector CPU-s':<28} {accepted / max(collector_cpu, 1e-9):,.0f}")
    print(f"{'nproc / load average':<28} {os.cpu_count()} / {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if stored != accepted:
        print("MISMATCH: store count differs from acknowledged events", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
