"""Syslog receiver benchmark: lines/s and receiver CPU per line over UDP and TCP into the embedded SQLite store.

Sinks: ``parse-only`` (receiver and parser), ``sqlite`` (straight into the store), ``pipeline`` (the
collector's full processor chain, then the store: what a deployed collector pays per line). The
sender runs in its own process so it does not share the receiver's GIL; "CPU us" is this process's
CPU time per line received (receiver threads, parsing, pipeline, store).

.venv/bin/python bench/bench_syslog.py [--lines 50000] [--udp-rate 20000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from collector.config import CollectorConfig, SyslogSettings
from collector.pipeline.runner import build_pipeline
from collector.pipeline.sinks import StoreSink
from collector.runtime import tune_gc
from collector.store.factory import open_store
from collector.store.settings import StoreSettings
from collector.syslog.server import SyslogReceiver

LINE = b"<86>1 2024-05-01T10:00:00+07:00 web01 sshd 4242 - - Failed password for root from 10.0.%d.%d port 22 ssh2"
SINKS = ("parse-only", "sqlite", "pipeline")


def _send(proto: str, port: int, lines: int, udp_rate: float) -> None:
    payload = [LINE % (i // 250 % 250, i % 250) for i in range(lines)]
    if proto == "udp":
        interval = 1.0 / udp_rate
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            start = time.perf_counter()
            for i, line in enumerate(payload):
                while time.perf_counter() < start + i * interval:
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


def main() -> None:
    tune_gc()  # as the running collector does
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=50000)
    ap.add_argument("--udp-rate", type=float, default=20000, help="offered UDP lines/s")
    args = ap.parse_args()
    print(f"nproc={os.cpu_count()} load={' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'proto':5} {'sink':10} {'lines':>8} {'lines/s':>10} {'CPU us':>7} {'lines/CPU-s':>12}", end="")
    print(f" {'seconds':>8} {'drops':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for proto in ("tcp", "udp"):
            for sink in SINKS:
                r = run(proto, args.lines, Path(tmp), sink, args.udp_rate)
                print(
                    f"{proto:5} {sink:10} {args.lines:8d} {r['rate']:10,.0f} {r['cpu_us']:7.1f} "
                    f"{1e6 / max(r['cpu_us'], 1e-9):12,.0f} {r['seconds']:8.2f} {int(r['drops']):7d}"
                )


if __name__ == "__main__":
    main()
