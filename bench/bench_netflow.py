"""NetFlow v9/IPFIX receiver benchmark.

(a) decode and ECS event building: CPU per record through FlowDecoder (templates + data, 30 records
    per packet), then the compiled per-template builder and the generic one it replaces;
(b) in-process stage costs per record: decode, ECS event building, the collector's processor
    chain (enrichment), SQLite store write;
(c) end to end over UDP loopback into the embedded SQLite store at increasing offered rates:
    records/s stored and the first offered rate where loss (kernel drops or sequence gaps) appears;
(d) the same stream into nfcapd, as a ratio (nfcapd must be installed);
(e) with ``--workers 1,2``: the whole collector (``Collector`` with that many ingest workers)
    receiving from ``--exporters`` routers at once (each a process bound to its own loopback address,
    so the kernel hashes each to one worker), IPFIX flows of the last minutes at each offered total
    rate: records/s stored, and the drops and sequence gaps the collector reports.

The paced sender runs in its own process (in the receiver's interpreter it would take the GIL from
it) and sleeps between sends; "rx CPU us" is the receiver process's CPU time per record sent (decode, event
building, store), next to nfcapd's CPU per record (its child's rusage).

    .venv/bin/python bench/bench_netflow.py [--packets 20000] [--rates 5000,20000,50000,100000]
    .venv/bin/python bench/bench_netflow.py --workers 1,2 --exporters 4 --rates 50000,100000
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "collector"))

from peers import netflow_stream, nfdump_totals

from collector.config import CollectorConfig, NetflowSettings
from collector.gc_clock import TimedCollection
from collector.netflow.decoder import FlowDecoder
from collector.netflow.events import batch_events
from collector.netflow.server import NetflowReceiver
from collector.pipeline.runner import build_processors
from collector.pipeline.sinks import StoreSink
from collector.runtime import Collector
from collector.store.base import Query
from collector.store.factory import open_store
from collector.store.settings import StoreSettings

PER_PACKET = 30


def decode_only(version: int, packets: list[bytes], runs: int = 3) -> tuple[float, float, float]:
    """CPU microseconds per record, medians of ``runs``: decoding alone, then building the ECS events
    with the template's compiled builder and with the generic per-field builder (the reference).

    Events are dropped every ~2000 records, as the receiver hands them on, so the cyclic GC sees
    what it sees in the collector rather than a heap of every event of the run.
    """
    decode: list[float] = []
    compiled: list[float] = []
    generic: list[float] = []
    for _ in range(runs):
        decoder = FlowDecoder()
        start = time.process_time()
        records = sum(decoder.decode(p, "192.0.2.1").record_count for p in packets)
        decode.append((time.process_time() - start) / max(records, 1) * 1e6)
        decoder = FlowDecoder()
        results = [decoder.decode(p, "192.0.2.1") for p in packets]
        for use_compiled, out in ((True, compiled), (False, generic)):
            start = time.process_time()
            built = 0
            chunk: list[dict] = []
            for result in results:
                for batch in result.batches:
                    chunk.extend(batch_events(batch, compiled=use_compiled))
                if len(chunk) >= 2000:
                    built, chunk = built + len(chunk), []
            built += len(chunk)
            out.append((time.process_time() - start) / max(built, 1) * 1e6)
    return statistics.median(decode), statistics.median(compiled), statistics.median(generic)


def stages(version: int, packets: list[bytes], workdir: Path, batch: int = 1000) -> dict[str, float]:
    """CPU microseconds per record of each stage, run one after the other on the same records."""
    decoder = FlowDecoder()
    started = time.process_time()
    results = [decoder.decode(p, "192.0.2.1") for p in packets]
    decode = time.process_time() - started
    started = time.process_time()
    events = [e for r in results for b in r.batches for e in batch_events(b)]
    build = time.process_time() - started
    config = CollectorConfig.model_validate(
        {
            "data_dir": str(workdir / f"stages-{version}"),
            "enrich": {"zones": [{"name": "lan", "cidrs": ["10.0.0.0/8"]}]},
        }
    )
    processors = build_processors(config)
    chunks = [events[i : i + batch] for i in range(0, len(events), batch)]
    started = time.process_time()
    for chunk in chunks:
        for processor in processors:
            processor.process(chunk)
    enrich = time.process_time() - started
    store = open_store(StoreSettings(kind="sqlite", sqlite_path=workdir / f"stages-{version}.db"))
    started = time.process_time()
    for chunk in chunks:
        store.write(chunk)
    write = time.process_time() - started
    store.close()
    n = max(len(events), 1) / 1e6
    return {"decode": decode / n, "build": build / n, "enrich": enrich / n, "store": write / n}


def _sender(
    port: int,
    packets: list[bytes],
    records_per_s: float,
    out: mp.Queue,
    source: str = "127.0.0.1",
    start_at: float = 0.0,
) -> None:
    """Sends on a fixed schedule, sleeping between sends: a spinning sender would take a core from
    the collector on this two-core machine (four of them took most of both). A late wake-up sends
    the packets that fell due meanwhile at once, as a router's export burst, so the average rate
    holds; ``time.sleep`` wakes within ~0.1 ms here, well inside the kernel buffer's slack."""
    interval = PER_PACKET / records_per_s
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        while time.time() < start_at:  # every exporter starts at once
            time.sleep(0.001)
        start = time.perf_counter()
        for i, p in enumerate(packets):
            wait = start + i * interval - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            s.sendto(p, ("127.0.0.1", port))
        out.put(time.perf_counter() - start)


def send_paced(port: int, packets: list[bytes], records_per_s: float) -> float:
    """Send from a child process at the offered rate; returns how long sending took."""
    out: mp.Queue = mp.Queue()
    proc = mp.get_context("fork").Process(target=_sender, args=(port, packets, records_per_s, out))
    proc.start()
    took = float(out.get(timeout=600))
    proc.join()
    return took


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
    cpu_started = time.process_time()
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
    cpu = time.process_time() - cpu_started
    st = rx.stats()
    return {
        "cpu_us": cpu / expected * 1e6,
        "offered": len(packets) * PER_PACKET / sent_for,
        "stored": stored[0],
        "stored_per_s": stored[0] / elapsed,
        "kernel_drops": st["kernel_drops"],
        "gaps": st["missing_ipfix_records"] + st["missing_v9_packets"] * PER_PACKET,
    }


def whole_collector(workers: int, exporters: int, packets: list[bytes], rate: float, workdir: Path) -> dict[str, Any]:
    """``Collector`` with ``workers`` ingest processes; ``exporters`` routers each send ``packets`` at
    ``rate / exporters`` records/s from their own address (spawned: this process has the collector's
    threads, and a forked child of a threaded process can deadlock)."""
    config = CollectorConfig.model_validate(
        {
            "data_dir": str(workdir / f"whole-{workers}-{int(rate)}"),
            "workers": workers,
            "ingest": {"enabled": False},
            "syslog": {"enabled": False},
            "netflow": {"enabled": True, "port": 0, "receive_buffer_bytes": 64 << 20, "batch_size": 2000},
            "detection": {"enabled": False},
            "metrics": {"enabled": False},
            "retention": {"enabled": False},
            "anomaly": {"enabled": False},
            "alerts": {"database_url": ""},
        }
    )
    collector = Collector(config)
    collector.start()
    try:
        port = int(collector.ports()["netflow"])
        pids = collector.pool.pids() if collector.pool else []
        each_before = [_cpu_seconds([pid]) for pid in pids]
        own_before = time.process_time()
        ctx = mp.get_context("spawn")
        out: mp.Queue = ctx.Queue()
        start_at = time.time() + 2.0
        senders = [
            ctx.Process(target=_sender, args=(port, packets, rate / exporters, out, f"127.0.0.{n + 2}", start_at))
            for n in range(exporters)
        ]
        for proc in senders:
            proc.start()
        took = max(float(out.get(timeout=600)) for _ in senders)
        for proc in senders:
            proc.join()
        started = start_at
        expected = exporters * len(packets) * PER_PACKET
        deadline = time.monotonic() + 120
        stored = last = 0
        quiet_since = time.monotonic()
        # MAX(rowid) counts the rows of this fresh file from the end of its tree; COUNT(*) walked an
        # index, tens of ms per poll at these sizes, on the cores the collector was measured on.
        with sqlite3.connect(config.store.sqlite_path) as rows:
            while time.monotonic() < deadline:  # until everything is stored, or nothing more comes for 3 s
                stored = int(rows.execute("SELECT COALESCE(MAX(rowid), 0) FROM events").fetchone()[0])
                if stored >= expected:
                    break
                if stored != last:
                    last, quiet_since = stored, time.monotonic()
                elif time.monotonic() - quiet_since > 3.0:
                    break
                time.sleep(0.05)
        elapsed = time.time() - started
        store = collector.store
        assert store is not None
        stored = store.count(Query())  # the exact count, once
        drops = collector.health()["receiver_drops"].get("netflow", {})
        each = [_cpu_seconds([pid]) - before for pid, before in zip(pids, each_before, strict=True)]
        workers_cpu = sum(each)
        own_cpu = time.process_time() - own_before  # the supervisor (and this loop's counting)
    finally:
        collector.stop()
    return {
        "offered": expected / took,
        "stored": stored,
        "stored_per_s": stored / elapsed,
        "cpu_us": (workers_cpu + own_cpu) / expected * 1e6,
        "own_us": own_cpu / expected * 1e6,
        # how the kernel spread the exporters: each worker's share of the workers' CPU
        "split": "/".join(f"{100 * c / workers_cpu:.0f}" for c in each) if workers_cpu > 0 else "-",
        "lost": expected - stored,  # records; the detail counts them as reported (packets or records)
        "detail": drops,
    }


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def nfcapd_run(packets: list[bytes], rate: float, workdir: Path) -> tuple[int, float, float] | None:
    binary = shutil.which("nfcapd")
    if binary is None or shutil.which("nfdump") is None:
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = workdir / f"nfcapd-{int(rate)}"
    out.mkdir()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    children_cpu = before.ru_utime + before.ru_stime
    proc = subprocess.Popen([binary, "-w", str(out), "-p", str(port), "-b", "127.0.0.1", "-B", str(64 << 20)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(1.0)
    start = time.perf_counter()
    send_paced(port, packets, rate)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    elapsed = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime - children_cpu
    count, _bytes = nfdump_totals(out)
    return count, count / elapsed, cpu / max(count, 1) * 1e6


def main() -> None:
    TimedCollection().start()  # as the running collector does
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=20000)
    ap.add_argument("--rates", default="10000,30000,60000,100000")
    ap.add_argument("--workers", default="", help="e.g. 1,2: only (e), the whole collector with these worker counts")
    ap.add_argument("--exporters", type=int, default=4, help="routers sending at once (with --workers)")
    ap.add_argument(
        "--seconds",
        type=float,
        default=3.0,
        help="how long each rate is offered (with --workers): a few seconds fit in the socket buffer and "
        "packet queue whatever the rate; sustained loss needs longer",
    )
    args = ap.parse_args()
    print(f"nproc={os.cpu_count()} cpu={_cpu()} load={' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.workers:
        workers_table([int(w) for w in args.workers.split(",")], args.exporters, args.rates, args.seconds)
        return
    print("\n(a) decode and ECS build, CPU us per record (medians of 3)")
    print(f"{'stream':8} {'decode':>7} {'build':>7} {'decode+build':>12} {'records/CPU-s':>14} {'generic build':>13}")
    for version in (9, 10):
        packets = netflow_stream(version, args.packets, PER_PACKET)
        dec, ecs, generic = decode_only(version, packets)
        both = dec + ecs
        print(f"{'v9' if version == 9 else 'IPFIX':8} {dec:7.2f} {ecs:7.2f} {both:12.2f} {1e6 / both:14,.0f} "
              f"{generic:13.2f}")  # fmt: skip
    print("\n(b) stage costs, CPU us per record (1000-record batches)")
    print(f"{'stream':8} {'decode':>7} {'build':>7} {'enrich':>7} {'store':>7} {'total':>7} {'records/CPU-s':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for version in (9, 10):
            st = stages(version, netflow_stream(version, 1000, PER_PACKET), Path(tmp))
            total = sum(st.values())
            print(f"{'v9' if version == 9 else 'IPFIX':8} {st['decode']:7.2f} {st['build']:7.2f} {st['enrich']:7.2f} "
                  f"{st['store']:7.2f} {total:7.2f} {1e6 / total:14,.0f}")  # fmt: skip
    print("\n(c) UDP loopback -> receiver -> SQLite store  /  (d) nfcapd on the same stream")
    print(
        f"{'stream':6} {'offered/s':>10} {'stored':>9} {'stored/s':>10} {'rx CPU us':>9} {'k-drops':>8} "
        f"{'gaps':>7} {'nfcapd':>9} {'ratio':>6} {'nfcapd CPU us':>13}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for version in (9, 10):
            for rate in [float(r) for r in args.rates.split(",")]:
                packets = netflow_stream(version, max(50, int(rate * 3 / PER_PACKET)), PER_PACKET)
                r = end_to_end(version, packets, rate, work)
                nf = nfcapd_run(packets, rate, work) if version == 10 else None
                nf_text = (
                    f"{nf[0]:9d} {r['stored'] / nf[0] if nf[0] else 0:6.2f} {nf[2]:13.2f}"
                    if nf
                    else f"{'-':>9} {'-':>6} {'-':>13}"
                )
                name = "v9" if version == 9 else "IPFIX"
                print(f"{name:6} {r['offered']:10,.0f} {r['stored']:9,d} {r['stored_per_s']:10,.0f} {r['cpu_us']:9.1f} "
                      f"{r['kernel_drops']:8d} {r['gaps']:7d} {nf_text}")  # fmt: skip


def workers_table(worker_counts: list[int], exporters: int, rates: str, seconds: float = 3.0) -> None:
    print(
        f"\n(e) {exporters} IPFIX exporters -> Collector with N ingest workers -> SQLite store, {seconds:g} s per rate"
    )
    print(
        f"{'workers':>7} {'offered/s':>10} {'stored':>9} {'stored/s':>10} {'CPU us':>7} {'of it sup':>9} {'split %':>8}"
        f" {'lost':>9}  as counted by the collector"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for rate in [float(r) for r in rates.split(",")]:
            per_exporter = max(50, int(rate * seconds / PER_PACKET / exporters))
            # flows of the last minutes, as a live router's are (sections c/d replay 2023: every
            # record there is also tagged late_arrival on the way)
            start_ms = int(time.time() * 1000) - per_exporter * PER_PACKET
            packets = netflow_stream(10, per_exporter, PER_PACKET, start_ms=start_ms)
            for workers in worker_counts:
                r = whole_collector(workers, exporters, packets, rate, Path(tmp))
                lost = {k: v for k, v in r["detail"].items() if v} or ""  # packet_queue_full: packets
                print(f"{workers:7d} {r['offered']:10,.0f} {r['stored']:9,d} {r['stored_per_s']:10,.0f} "
                      f"{r['cpu_us']:7.1f} {r['own_us']:9.1f} {r['split']:>8} {r['lost']:9,d}  {lost}")  # fmt: skip


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
