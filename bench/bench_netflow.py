"""NetFlow v9/IPFIX receiver benchmark.

(a) decode only: records/s through FlowDecoder (templates + data, 30 records per packet);
(b) end to end over UDP loopback into the embedded SQLite store at increasing offered rates:
    records/s stored and the first offered rate where loss (kernel drops or sequence gaps) appears;
(c) the same stream into nfcapd, as a ratio (nfcapd must be installed).

    .venv/bin/python bench/bench_netflow.py [--packets 20000] [--rates 5000,20000,50000,100000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "collector"))

from peers import netflow_stream, nfdump_totals

from collector.config import NetflowSettings
from collector.netflow.decoder import FlowDecoder
from collector.netflow.events import batch_events
from collector.netflow.server import NetflowReceiver
from collector.pipeline.sinks import StoreSink
from collector.store.factory import open_store
from collector.store.settings import StoreSettings

PER_PACKET = 30


def decode_only(version: int, packets: list[bytes]) -> tuple[float, float]:
    decoder = FlowDecoder()
    start = time.perf_counter()
    records = 0
    for p in packets:
        records += decoder.decode(p, "192.0.2.1").record_count
    decode_rate = records / (time.perf_counter() - start)
    decoder = FlowDecoder()
    start = time.perf_counter()
    events = 0
    for p in packets[:5000]:
        for batch in decoder.decode(p, "192.0.2.1").batches:
            events += len(batch_events(batch))
    return decode_rate, events / (time.perf_counter() - start)


def send_paced(port: int, packets: list[bytes], records_per_s: float) -> float:
    interval = PER_PACKET / records_per_s
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        start = time.perf_counter()
        for i, p in enumerate(packets):
            target = start + i * interval
            while time.perf_counter() < target:
                pass
            s.sendto(p, ("127.0.0.1", port))
        return time.perf_counter() - start


def end_to_end(version: int, packets: list[bytes], rate: float, workdir: Path) -> dict[str, float]:
    store = open_store(StoreSettings(kind="sqlite", sqlite_path=workdir / f"bench-{version}-{int(rate)}.db"))
    sink = StoreSink(store)
    stored = [0]

    def handle(events: list[dict]) -> None:
        stored[0] += sink.store_batch(events).stored

    rx = NetflowReceiver(
        NetflowSettings(enabled=True, port=0, batch_size=2000, flush_interval=0.2, receive_buffer_bytes=64 << 20),
        handle,
    )
    port = rx.start()
    start = time.perf_counter()
    sent_for = send_paced(port, packets, rate)
    expected = len(packets) * PER_PACKET
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        st = rx.stats()
        lost = st["missing_ipfix_records"] + st["missing_v9_packets"] * PER_PACKET
        if stored[0] >= expected - lost and st["packets_queued"] == 0 and st["queued"] == 0:
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    rx.stop()
    store.close()
    st = rx.stats()
    return {
        "offered": len(packets) * PER_PACKET / sent_for,
        "stored": stored[0],
        "stored_per_s": stored[0] / elapsed,
        "kernel_drops": st["kernel_drops"],
        "gaps": st["missing_ipfix_records"] + st["missing_v9_packets"] * PER_PACKET,
    }


def nfcapd_run(packets: list[bytes], rate: float, workdir: Path) -> tuple[int, float] | None:
    binary = shutil.which("nfcapd")
    if binary is None or shutil.which("nfdump") is None:
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = workdir / f"nfcapd-{int(rate)}"
    out.mkdir()
    proc = subprocess.Popen([binary, "-w", str(out), "-p", str(port), "-b", "127.0.0.1", "-B", str(64 << 20)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(1.0)
    start = time.perf_counter()
    send_paced(port, packets, rate)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    elapsed = time.perf_counter() - start
    count, _bytes = nfdump_totals(out)
    return count, count / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=20000)
    ap.add_argument("--rates", default="10000,30000,60000,100000")
    args = ap.parse_args()
    print(f"nproc={os.cpu_count()} cpu={_cpu()}")
    print("\n(a) decode only")
    print(f"{'stream':8} {'records/s decode':>18} {'records/s to ECS':>18}")
    for version in (9, 10):
        packets = netflow_stream(version, args.packets, PER_PACKET)
        dec, ecs = decode_only(version, packets)
        print(f"{'v9' if version == 9 else 'IPFIX':8} {dec:18,.0f} {ecs:18,.0f}")
    print("\n(b) UDP loopback -> receiver -> SQLite store  /  (c) nfcapd on the same stream")
    print(
        f"{'stream':6} {'offered/s':>10} {'stored':>9} {'stored/s':>10} {'k-drops':>8} {'gaps':>7} "
        f"{'nfcapd':>9} {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for version in (9, 10):
            for rate in [float(r) for r in args.rates.split(",")]:
                packets = netflow_stream(version, max(50, int(rate * 3 / PER_PACKET)), PER_PACKET)
                r = end_to_end(version, packets, rate, work)
                nf = nfcapd_run(packets, rate, work) if version == 10 else None
                nf_text = (
                    f"{nf[0]:9d} {r['stored'] / nf[0] if nf and nf[0] else 0:6.2f}" if nf else f"{'-':>9} {'-':>6}"
                )
                name = "v9" if version == 9 else "IPFIX"
                print(f"{name:6} {r['offered']:10,.0f} {r['stored']:9,d} {r['stored_per_s']:10,.0f} "
                      f"{r['kernel_drops']:8d} {r['gaps']:7d} {nf_text}")  # fmt: skip


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


if __name__ == "__main__":
    main()
