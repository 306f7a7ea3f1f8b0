"""Syslog receiver benchmark: lines/s and receiver CPU per line over UDP and TCP into the embedded SQLite store.

Sinks: ``parse-only`` (receiver and parser), ``sqlite`` (straight into the store), ``pipeline`` (the
collector's full processor chain, then the store: what a deployed collector pays per line). The
sender runs in its own process so it does not share the receiver's GIL; "CPU us" is this process's
CPU time per line received (receiver threads, parsing, pipeline, store).

A ``parse`` table first gives the parser alone per line kind (RFC 3164, RFC 5424 with and without
structured data, CEF, FortiGate): CPU per line, in-process, no sockets. Every figure is the median
of ``--repeat`` runs.

.venv/bin/python bench/bench_syslog.py [--lines 50000] [--udp-rate 20000] [--repeat 3]
    [--sinks parse-only,sqlite,pipeline] [--protos tcp,udp] [--no-store]   (--no-store = parse-only)

``--workers 1,2`` adds a table for the whole collector (``Collector`` with ``workers = N``, syslog over
TCP only, no detection) fed by ``--senders`` TCP connections at once: lines/s until every line is
in the store, and the CPU of the collector's processes (the supervisor here plus its workers).
The lines carry a fixed time in 2024, so each is tagged ``late_arrival`` on the way (comparable
with earlier rounds); ``--current-time`` stamps them at sending, as a live sender's lines are.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.config import CollectorConfig, SyslogSettings
from collector.gc_clock import TimedCollection
from collector.pipeline.runner import build_pipeline
from collector.pipeline.sinks import StoreSink
from collector.store.factory import open_store
from collector.store.settings import StoreSettings
from collector.syslog.message import MessageParser
from collector.syslog.server import SyslogReceiver

LINE = b"<86>1 2024-05-01T10:00:00+07:00 web01 sshd 4242 - - Failed password for root from 10.0.%d.%d port 22 ssh2"
SINKS = ("parse-only", "sqlite", "pipeline")
KINDS = {
    "rfc3164": b"<38>May  1 10:00:00 web01 sshd[4242]: Failed password for root from 10.0.%d.%d port 22 ssh2",
    "rfc5424": LINE,
    "rfc5424-sd": b'<165>1 2024-05-01T10:00:00.123Z web01 evntslog 4242 ID47 [exampleSDID@32473 iut="3" '
    b'eventSource="Application" eventID="1011"] Failed password from 10.0.%d.%d',
    "cef": b"<134>May  1 10:00:00 fw01 CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|10|"
    b"src=10.0.%d.%d dst=2.1.2.2 spt=1232 dpt=443 suser=admin act=blocked proto=TCP rt=1714550400000 in=4242",
    "fortigate": b'<189>date=2024-05-01 time=10:00:01 devname="FG-HN" devid=FG100F logid=0000000013 type=traffic '
    b"subtype=forward level=notice srcip=10.0.%d.%d srcport=51000 dstip=1.1.1.1 dstport=443 action=accept "
    b'proto=6 sentbyte=100 rcvdbyte=200 policyid=7 service="HTTPS"',
}


def parse_cpu_us(template: bytes, lines: int) -> float:
    """CPU microseconds per line for the message parser alone (bytes in, ECS event out).

    Events are kept in batches of 2000 as the receiver keeps them until the store has them: a
    parse whose event is dropped at once reuses the same hot memory and looks faster than it is.
    """
    payload = [template % (i // 250 % 250, i % 250) for i in range(lines)]
    parse = MessageParser("Asia/Ho_Chi_Minh").parse
    batch: list[dict[str, Any]] = []
    started = time.process_time()
    for raw in payload:
        batch.append(parse(raw, "10.0.0.1", 514))
        if len(batch) == 2000:
            batch = []
    return (time.process_time() - started) / lines * 1e6


def _send(proto: str, port: int, lines: int, udp_rate: float, start_at: float = 0.0, current: bool = False) -> None:
    template = LINE
    if current:  # stamped now, as a live sender's lines are (the fixed 2024 time makes each one late_arrival)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z").encode()
        template = LINE.replace(b"2024-05-01T10:00:00+07:00", now)
    payload = [template % (i // 250 % 250, i % 250) for i in range(lines)]
    while time.time() < start_at:  # senders started in their own processes begin together
        time.sleep(0.001)
    if proto == "udp":
        interval = 1.0 / udp_rate if udp_rate > 0 else 0.0  # 0: as fast as the sender can
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            start = time.perf_counter()
            for i, line in enumerate(payload):
                while interval and time.perf_counter() < start + i * interval:
                    pass
                s.sendto(line, ("127.0.0.1", port))
    else:
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(b"\n".join(payload) + b"\n")


def _handler(sink: str, workdir: Path, name: str) -> tuple[Any, Any]:
    if sink == "parse-only":
        return None, None
    store = open_store(StoreSettings(kind="sqlite", sqlite_path=workdir / f"{name}.db"))
    if sink == "sqlite":
        return store, StoreSink(store).store_batch
    config = CollectorConfig.model_validate(
        {"data_dir": str(workdir / name), "enrich": {"zones": [{"name": "lan", "cidrs": ["10.0.0.0/8"]}]}}
    )
    return store, build_pipeline(config, store, None, None).receiver("syslog")


def run(proto: str, lines: int, workdir: Path, sink: str, udp_rate: float) -> dict[str, float]:
    store, handle_batch = _handler(sink, workdir, f"syslog-{proto}-{sink}")
    done = [0]

    def handle(events: list[dict]) -> None:
        if handle_batch is not None:
            handle_batch(events)
        done[0] += len(events)

    settings = SyslogSettings(enabled=True, udp_port=0, tcp_port=0, tls_port=None, batch_size=2000, flush_interval=0.2)
    rx = SyslogReceiver(settings, handle)
    ports = rx.start()
    cpu_started = time.process_time()
    start = time.perf_counter()
    sender = mp.get_context("fork").Process(target=_send, args=(proto, ports[proto], lines, udp_rate))
    sender.start()
    deadline = time.monotonic() + 300
    while done[0] + rx.stats()["udp_kernel_drops"] + rx.stats()["dropped_queue_full"] < lines:
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_started
    sender.join()
    stats = rx.stats()
    rx.stop()
    if store is not None:
        store.close()
    return {
        "rate": done[0] / elapsed,
        "seconds": elapsed,
        "cpu_us": cpu / max(done[0], 1) * 1e6,
        "drops": stats["udp_kernel_drops"] + stats["dropped_queue_full"],
    }


def run_collector(workers: int, lines: int, senders: int, workdir: Path, current: bool = False) -> dict[str, float]:
    """Lines/s through ``Collector`` with ``workers`` ingest processes, ``senders`` TCP connections."""
    import psutil

    from collector.runtime import Collector
    from collector.store.base import Query

    config = CollectorConfig.model_validate(
        {
            "data_dir": str(workdir),
            "workers": workers,
            "ingest": {"enabled": False},
            "syslog": {"enabled": True, "udp_port": None, "tcp_port": 0, "tls_port": None, "batch_size": 2000},
            "detection": {"enabled": False},
            "metrics": {"enabled": False},
            "retention": {"enabled": False},
            "anomaly": {"enabled": False},
            "enrich": {"zones": [{"name": "lan", "cidrs": ["10.0.0.0/8"]}]},
        }
    )
    collector = Collector(config)
    collector.start()
    try:
        port = int(collector.ports()["syslog"]["tcp"])
        store = collector.store
        assert store is not None
        procs = [psutil.Process(pid) for pid in (collector.pool.pids() if collector.pool else [])]

        def cpu() -> float:
            return time.process_time() + sum(t.user + t.system for t in (p.cpu_times() for p in procs))

        context = mp.get_context("spawn")  # a fork would copy the collector's threads' locks mid-use
        each = lines // senders
        start_at = time.time() + 2.0 + each / 500_000  # spawned, importing, building their lines
        jobs = [context.Process(target=_send, args=("tcp", port, each, 0.0, start_at, current)) for _ in range(senders)]
        for job in jobs:
            job.start()
        time.sleep(max(start_at - time.time(), 0.0))
        cpu_started, start = cpu(), time.perf_counter()
        deadline = time.monotonic() + 300
        with sqlite3.connect(config.store.sqlite_path) as rows:  # MAX(rowid): a count without a scan
            while rows.execute("SELECT COALESCE(MAX(rowid), 0) FROM events").fetchone()[0] < each * senders:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        elapsed, used = time.perf_counter() - start, cpu() - cpu_started
        stored = store.count(Query())
        for job in jobs:
            job.join()
    finally:
        collector.stop()
    return {"rate": stored / elapsed, "cpu_us": used / max(stored, 1) * 1e6, "seconds": elapsed, "stored": stored}


def main() -> None:
    TimedCollection().start()  # as the running collector does
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=50000)
    ap.add_argument("--udp-rate", type=float, default=20000, help="offered UDP lines/s (0: unpaced)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per row; the median is printed")
    ap.add_argument("--sinks", default=",".join(SINKS), help="comma-separated subset of " + ",".join(SINKS))
    ap.add_argument("--protos", default="tcp,udp")
    ap.add_argument("--no-store", action="store_true", help="receiver and parser only (the parse-only sink)")
    ap.add_argument("--workers", default="", help="e.g. 1,2: the whole collector with these worker counts")
    ap.add_argument("--senders", type=int, default=8, help="TCP connections at once (with --workers)")
    ap.add_argument("--current-time", action="store_true", help="lines stamped now, not 2024 (with --workers)")
    args = ap.parse_args()
    if args.workers:
        print(f"nproc={os.cpu_count()} load={' '.join(f'{x:.2f}' for x in os.getloadavg())} senders={args.senders}")
        print(f"{'workers':>7} {'lines':>8} {'lines/s':>10} {'CPU us':>7} {'seconds':>8}  runs (lines/s)")
        with tempfile.TemporaryDirectory() as tmp:
            for workers in (int(w) for w in args.workers.split(",")):
                trials = [
                    run_collector(workers, args.lines, args.senders, Path(tmp) / f"w{workers}-{i}", args.current_time)
                    for i in range(args.repeat)
                ]
                r = {key: statistics.median(x[key] for x in trials) for key in trials[0]}
                print(
                    f"{workers:7d} {int(r['stored']):8d} {r['rate']:10,.0f} {r['cpu_us']:7.1f} {r['seconds']:8.2f}  "
                    + " ".join(f"{x['rate']:,.0f}" for x in trials)
                )
        return
    sinks = ["parse-only"] if args.no_store else [s for s in args.sinks.split(",") if s in SINKS]
    print(f"nproc={os.cpu_count()} load={' '.join(f'{x:.2f}' for x in os.getloadavg())} repeat={args.repeat}")
    print(f"{'kind':12} {'parse CPU us':>12} {'runs':>24}")
    for kind, template in KINDS.items():
        runs = [parse_cpu_us(template, min(args.lines, 20000)) for _ in range(args.repeat)]
        print(f"{kind:12} {statistics.median(runs):12.2f} {' '.join(f'{r:.2f}' for r in runs):>24}")
    print(f"{'proto':5} {'sink':10} {'lines':>8} {'lines/s':>10} {'CPU us':>7} {'lines/CPU-s':>12}", end="")
    print(f" {'seconds':>8} {'drops':>7} {'CPU us runs':>18}")
    with tempfile.TemporaryDirectory() as tmp:
        for proto in args.protos.split(","):
            for sink in sinks:
                results = []
                for i in range(args.repeat):
                    workdir = Path(tmp) / f"run{i}"
                    workdir.mkdir(exist_ok=True)
                    results.append(run(proto, args.lines, workdir, sink, args.udp_rate))
                r = {key: statistics.median(x[key] for x in results) for key in results[0]}
                cpu_runs = " ".join(f"{x['cpu_us']:.1f}" for x in results)
                print(
                    f"{proto:5} {sink:10} {args.lines:8d} {r['rate']:10,.0f} {r['cpu_us']:7.1f} "
                    f"{1e6 / max(r['cpu_us'], 1e-9):12,.0f} {r['seconds']:8.2f} {int(r['drops']):7d} "
                    f"{cpu_runs:>18}"
                )


if __name__ == "__main__":
    main()
