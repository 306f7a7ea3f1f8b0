"""Flow meter throughput: our meter (pure Python and numpy paths) against softflowd, same capture.

Builds a temporary pcap by concatenating the real captures in ../shared/data/pcaps (repeated, with
the timeline rebuilt so time only moves forward and gaps are capped at 10 minutes), then meters it
with ``agent.flows`` (in a child process, so peak RSS is ours alone), once with the pure-Python loop
and once with the numpy path (agent.flows.vector), and with ``softflowd -r`` exporting NetFlow v9 to
``nfcapd`` on loopback (its CPU seconds and peak RSS from wait4), and prints packets per CPU second,
flow counts, peak RSS and the ratio to softflowd.

    .venv/bin/python bench/bench_flows.py [--packets 1000000] [--keep FILE]

Flow counts are compared as unidirectional records (NetFlow v9 exports one per direction that
carried packets), with matching timeouts on both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED_PCAPS = ROOT / ".." / "shared" / "data" / "pcaps"
MAX_GAP = 600.0
ACTIVE, IDLE, LINGER = 300, 60, 2


def _rewrite_addresses(frame: bytes, rep: int) -> bytes:
    """XOR ``rep`` into the 2nd byte of both IP addresses: each repetition is new flows, same shape."""
    if rep == 0 or len(frame) < 14:
        return frame
    data = bytearray(frame)
    off = 14
    etype = int.from_bytes(data[12:14], "big")
    if etype == 0x8100 and len(data) >= 18:
        etype = int.from_bytes(data[16:18], "big")
        off = 18
    if etype == 0x0800 and len(data) >= off + 20:
        data[off + 13] ^= rep
        data[off + 17] ^= rep
    elif etype == 0x86DD and len(data) >= off + 40:
        data[off + 9] ^= rep
        data[off + 25] ^= rep
    return bytes(data)


def build_capture(out: Path, min_packets: int) -> int:
    """Concatenate the shared captures until ``min_packets``; return the packet count written."""
    sys.path.insert(0, str(ROOT))
    from agent.flows.pcap import LINKTYPE_ETHERNET, iter_records

    sources = sorted(SHARED_PCAPS.glob("*.pcap"))
    if not sources:
        raise SystemExit(f"no captures in {SHARED_PCAPS}")
    written = 0
    rep = 0
    clock = 1_600_000_000.0
    rec = struct.Struct("<IIII")
    with open(out, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET))
        while written < min_packets:
            for src in sources:
                prev: float | None = None
                for ts, linktype, buf, off, end in iter_records(src):
                    if linktype != LINKTYPE_ETHERNET:
                        break
                    gap = 0.0 if prev is None else min(max(ts - prev, 0.0), MAX_GAP)
                    prev = ts
                    clock += gap
                    sec = int(clock)
                    fh.write(rec.pack(sec, int((clock - sec) * 1e6), end - off, end - off))
                    fh.write(_rewrite_addresses(bytes(buf[off:end]), rep % 256))
                    written += 1
                clock += IDLE * 3  # flows of one file never run into the next
            rep += 1
    return written


def run_ours(path: Path, peer_timeouts: bool, vectorised: bool) -> dict[str, float]:
    """Meter ``path`` in this process (called in a child); return throughput and counts.

    ``peer_timeouts``: no timeouts at all, like ``softflowd -r`` (which only expires flows on the
    wall clock, so a 1-second replay ends every flow at EOF): the run for comparing flow counts.
    ``vectorised``: the numpy path (agent.flows.vector) instead of the pure-Python loop.
    """
    sys.path.insert(0, str(ROOT))
    from agent.flows import FlowMeter, meter_pcap

    if peer_timeouts:
        meter = FlowMeter(active_timeout=1e12, idle_timeout=1e12, close_linger=1e12)
    else:
        meter = FlowMeter(active_timeout=ACTIVE, idle_timeout=IDLE, close_linger=LINGER)
    records = 0
    flows = 0
    started = time.perf_counter()
    cpu_started = time.process_time()

    def stream() -> Iterator[dict[str, Any]]:  # the agent hands batches to its spool, it keeps nothing
        yield from meter_pcap(path, meter, vectorised=vectorised)
        yield from meter.flush()

    for event in stream():
        if event["event"]["dataset"] == "network_traffic.flow":
            flows += 1
            records += (event["source"]["packets"] > 0) + (event["destination"]["packets"] > 0)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "packets": meter.packets,
        "ip_packets": meter.packets - meter.non_ip - meter.malformed,
        "flows": flows,
        "records": records,
        "metadata_events": meter.metadata_events,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _ours_in_child(capture: Path, peer_timeouts: bool, vectorised: bool) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--ours", str(capture)] + (["--peer-timeouts"] if peer_timeouts else [])
    cmd += [] if vectorised else ["--pure-python"]
    return dict(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout))


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_softflowd(path: Path, workdir: Path) -> dict[str, float] | None:
    """Run softflowd over ``path`` exporting to a loopback nfcapd; count what nfdump stored."""
    if not (shutil.which("softflowd") and shutil.which("nfcapd") and shutil.which("nfdump")):
        return None
    port = _free_udp_port()
    flowdir = workdir / "nfcapd"
    flowdir.mkdir()
    nfcapd = subprocess.Popen(
        ["nfcapd", "-w", str(flowdir), "-p", str(port), "-b", "127.0.0.1", "-B", "8388608"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    timeouts = [
        *("-t", f"tcp={IDLE}", "-t", f"udp={IDLE}", "-t", f"icmp={IDLE}", "-t", f"general={IDLE}"),
        *("-t", f"tcp.rst={LINGER}", "-t", f"tcp.fin={LINGER}", "-t", f"maxlife={ACTIVE}"),
    ]
    cmd = ["softflowd", "-r", str(path), "-n", f"127.0.0.1:{port}", "-v", "9", "-6", "-d", "-m", "1000000"]
    # "-c none": with a control socket, softflowd 1.1.0 -r blocks in accept() before reading anything
    cmd += [*timeouts, "-c", "none", "-p", str(workdir / "softflowd.pid")]
    # wait4 gives softflowd's own CPU seconds (microsecond resolution) and peak RSS
    started = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
    if child.returncode != 0:
        raise SystemExit(f"softflowd failed ({child.returncode}): {stderr[-500:]}")
    cpu = usage.ru_utime + usage.ru_stime
    rss_mb = usage.ru_maxrss / 1024
    time.sleep(1.0)
    nfcapd.terminate()
    nfcapd.wait(timeout=30)
    dump = subprocess.run(
        ["nfdump", "-R", str(flowdir), "-q", "-o", "fmt:%pkt"], capture_output=True, text=True, check=False
    )
    counts = [int(line.split()[0]) for line in dump.stdout.splitlines() if line.strip()[:1].isdigit()]
    return {
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "peak_rss_mb": rss_mb,
        "records": len(counts),
        "ip_packets": sum(counts),
        "exit": child.returncode,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="keep the built capture at this path")
    parser.add_argument("--ours", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--peer-timeouts", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pure-python", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ours:
        print(json.dumps(run_ours(args.ours, args.peer_timeouts, vectorised=not args.pure_python)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-flows-") as tmp:
        work = Path(tmp)
        capture = args.keep or work / "bench.pcap"
        total = build_capture(capture, args.packets)
        size_mb = capture.stat().st_size / 1e6
        # interleaved, so machine load hits every run alike
        pure = _ours_in_child(capture, peer_timeouts=False, vectorised=False)
        peer = run_softflowd(capture, work)
        ours = _ours_in_child(capture, peer_timeouts=False, vectorised=True)
        ours_peer = _ours_in_child(capture, peer_timeouts=True, vectorised=True)
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    load = os.getloadavg()[0]
    print(f"capture: {total} packets, {size_mb:.1f} MB; machine: {os.cpu_count()} CPUs, {cpu}, load {load:.1f}")
    print("packets/s = packets / CPU seconds of the metering process (wall clock in brackets)")
    header = (
        f"{'run':<34}{'cpu s':>7}{'packets/s':>11}{'(wall)':>11}{'IP pkts':>9}{'flows':>7}{'uni recs':>9}{'RSS MB':>7}"
    )
    print(header)

    def row(name: str, r: dict[str, float], flows: object) -> None:
        pps, wall = total / r["cpu_seconds"], total / r["seconds"]
        print(
            f"{name:<34}{r['cpu_seconds']:>7.2f}{pps:>11,.0f}{wall:>11,.0f}{r['ip_packets']:>9.0f}"
            f"{flows!s:>7}{r['records']:>9.0f}{r['peak_rss_mb']:>7.0f}"
        )

    row(f"pure Python ({ACTIVE}/{IDLE}/{LINGER} s timeouts)", pure, pure["flows"])
    row(f"numpy ({ACTIVE}/{IDLE}/{LINGER} s timeouts)", ours, ours["flows"])
    row("numpy (no timeouts, as peer)", ours_peer, ours_peer["flows"])
    if pure["flows"] != ours["flows"] or pure["records"] != ours["records"]:
        print(f"MISMATCH: pure Python and numpy paths disagree ({pure['flows']} vs {ours['flows']} flows)")
    if peer is None:
        print("softflowd/nfcapd/nfdump not installed: no peer comparison")
        return
    row("softflowd -r -v 9 -> nfcapd", peer, "-")
    for name, r in (("pure Python", pure), ("numpy", ours)):
        ratio = peer["cpu_seconds"] / r["cpu_seconds"]
        print(f"ratio {name} / softflowd packets/s (CPU): {ratio:.2f}x (target >= 0.25x); CPU per packet "
              f"{r['cpu_seconds'] / total * 1e6:.2f} us vs {peer['cpu_seconds'] / total * 1e6:.2f} us")  # fmt: skip
    print(f"unidirectional records: ours {ours_peer['records']:.0f} vs softflowd {peer['records']:.0f}")
    print(f"metadata events (DNS/TLS/HTTP) besides flows: {ours['metadata_events']:.0f}")


if __name__ == "__main__":
    main()
