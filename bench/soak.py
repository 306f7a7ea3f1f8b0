"""The full soak: the whole SOC under steady load for --minutes, through every fault; prints a Markdown table.

    .venv/bin/python bench/soak.py --minutes 10 --agents 4 --rate 50 --syslog-rate 100 --netflow-rate 10

Faults (kill -9 of the collector and the API, the event store unavailable, an agent's disk full, the
collector's disk almost full, a network partition between an agent and the collector) are spread
evenly over the run, with steady load between them; throughout, the last agent's clock runs 1 h
ahead. Needs root for the partition (network namespace) and the full disks (tmpfs); without it those
rows say why they were skipped. The harness is tests/soak/harness.py.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "soak"))

from harness import FAULTS, SoakSettings, run_soak  # noqa: E402
from soak_tally import markdown  # noqa: E402


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}, load {load[0]:.2f} at start"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--rate", type=float, default=100.0, help="auth.log lines/s per agent")
    parser.add_argument("--syslog-rate", type=float, default=200.0, help="syslog messages/s, TCP and UDP each")
    parser.add_argument("--netflow-rate", type=float, default=20.0, help="NetFlow v9 packets/s (10 flows each)")
    parser.add_argument("--store", choices=("sqlite", "elasticsearch"), default="sqlite")
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated, in order")
    parser.add_argument("--backoff-max", type=float, default=60.0, help="agent back-off ceiling (s)")
    parser.add_argument("--no-detection", action="store_true")
    parser.add_argument("--workers", type=int, default=1, help="the collector's ingest processes")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (logs, stores)")
    args = parser.parse_args()

    faults = tuple(f for f in args.faults.split(",") if f)
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        parser.error(f"unknown faults: {unknown}; known: {FAULTS}")
    total = args.minutes * 60
    # kills last 2 s (then a restart); the other faults share two thirds of the time (>= 40 s each),
    # steady load before, between and after them the rest
    lasting = [f for f in faults if not f.endswith("-kill")]
    fault_seconds = max(40.0, total * 2 / 3 / max(1, len(lasting)))
    steady = max(10.0, (total - fault_seconds * len(lasting) - 2 * (len(faults) - len(lasting))) / (len(faults) + 1))
    root = Path(tempfile.mkdtemp(prefix="soc-soak-"))
    settings = SoakSettings(
        root=root,
        agents=args.agents,
        agent_rate=args.rate,
        syslog_tcp_rate=args.syslog_rate,
        syslog_udp_rate=args.syslog_rate,
        netflow_rate=args.netflow_rate,
        store=args.store,
        detection=not args.no_detection,
        workers=args.workers,
        faults=faults,
        fault_seconds=fault_seconds,
        steady_seconds=steady,
        backoff_max=args.backoff_max,
    )
    print(f"machine: {machine()}", flush=True)
    print(
        f"soak: {args.minutes} min, {args.agents} agents x {args.rate}/s, syslog {args.syslog_rate}/s TCP + UDP, "
        f"NetFlow {args.netflow_rate} packets/s, store {args.store}, faults {fault_seconds:.0f} s each, "
        f"steady {steady:.0f} s between; working folder {root}",
        flush=True,
    )
    started = time.monotonic()
    try:
        result = run_soak(settings, progress=lambda m: print(f"[{time.monotonic() - started:6.0f}s] {m}", flush=True))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print(markdown(result))
    print()
    t = result.tally
    days = result.duration / 86400
    if settings.store == "sqlite":
        per_event = t.store_bytes / max(1, t.total_events)
        size = t.store_bytes / (1 << 20)
        print(f"stored events: {t.total_events}; store size {size:.1f} MiB; {per_event:.0f} bytes per stored event")
    else:
        print(f"stored events: {t.total_events} (osmem-server is in memory: no disk size to report)")
    per_stream = ", ".join(
        f"{k}: {r.sent} sent, {r.lost} lost, {r.duplicated} dup" for k, r in sorted(t.streams.items())
    )
    print(f"per generator: {per_stream}")
    print(f"elapsed {result.duration:.0f} s ({days * 24 * 60:.1f} min); unattributed tokens: {t.unattributed}")
    print(f"UDP syslog: kernel drops counted {result.udp_kernel_drops}; counters: {result.counters}")
    print(f"clock skew ({settings.skew} ahead): {result.skew or 'no events from the skewed agent'}")
    collector_rss = [(t, rss >> 20) for t, role, rss in result.memory_timeline if role == "collector"]
    if collector_rss:
        marks = [collector_rss[0], collector_rss[len(collector_rss) // 2], collector_rss[-1]]
        print(
            "collector RSS MiB start / middle / end: "
            + " / ".join(f"{rss} (at {t:.0f} s)" for t, rss in marks)
            + f"; min {min(r for _, r in collector_rss)}, max {max(r for _, r in collector_rss)}"
        )
        print(f"collector RSS over time (MiB): {', '.join(f'{t:.0f}s {r}' for t, r in collector_rss)}")
    print(f"peak open file descriptors: {result.peak_fds}")
    for phase in result.phases:
        if phase.notes:
            print(f"{phase.name}: {'; '.join(phase.notes)}")
    acked = t.path_total("agent")
    return 0 if acked.lost == 0 and acked.duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
