"""Syslog receiver benchmark: lines/s over UDP and TCP into the embedded SQLite store.

.venv/bin/python bench/bench_syslog.py [--lines 50000]
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from pathlib import Path

from collector.config import SyslogSettings
from collector.pipeline.sinks import StoreSink
from collector.store.factory import open_store
from collector.store.settings import StoreSettings
from collector.syslog.server import SyslogReceiver

LINE = b"<86>1 2024-05-01T10:00:00+07:00 web01 sshd 4242 - - Failed password for root from 10.0.%d.%d port 22 ssh2"


def run(proto: str, lines: int, workdir: Path, parse_only: bool) -> tuple[float, float, int]:
    store = open_store(StoreSettings(kind="sqlite", sqlite_path=workdir / f"syslog-{proto}-{parse_only}.db"))
    sink = StoreSink(store)
    done = [0]

    def handle(events: list[dict]) -> None:
        if not parse_only:
            sink.store_batch(events)
        done[0] += len(events)

    settings = SyslogSettings(enabled=True, udp_port=0, tcp_port=0, tls_port=None, batch_size=2000, flush_interval=0.2)
    rx = SyslogReceiver(settings, handle)
    ports = rx.start()
    start = time.perf_counter()
    payload = [LINE % (i // 250 % 250, i % 250) for i in range(lines)]
    if proto == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i, line in enumerate(payload):
                s.sendto(line, ("127.0.0.1", ports["udp"]))
                if i % 200 == 0:
                    time.sleep(0.0005)  # keep the offered rate near what a receiver can take
    else:
        with socket.create_connection(("127.0.0.1", ports["tcp"])) as c:
            c.sendall(b"\n".join(payload) + b"\n")
    deadline = time.monotonic() + 300
    while done[0] + rx.stats()["udp_kernel_drops"] < lines and time.monotonic() < deadline:
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    drops = rx.stats()["udp_kernel_drops"]
    rx.stop()
    store.close()
    return done[0] / elapsed, elapsed, drops


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=50000)
    args = ap.parse_args()
    print(f"nproc={os.cpu_count()}")
    print(f"{'proto':5} {'sink':10} {'lines':>8} {'lines/s':>10} {'seconds':>8} {'k-drops':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for proto in ("tcp", "udp"):
            for parse_only in (True, False):
                rate, secs, drops = run(proto, args.lines, Path(tmp), parse_only)
                sink = "parse-only" if parse_only else "sqlite"
                print(f"{proto:5} {sink:10} {args.lines:8d} {rate:10,.0f} {secs:8.2f} {drops:8d}")


if __name__ == "__main__":
    main()
