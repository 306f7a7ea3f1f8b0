"""The collector's memory under steady mixed load and after a backlog: RSS every 10 s and its slope.

    .venv/bin/python bench/bench_collector_memory.py --minutes 10 --agents 4 --rate 50 \
        --syslog-rate 100 --netflow-rate 10 --backlog 60

Starts the soak's stack (tests/soak/harness.py: a real ``soc collector run`` with the SQLite store
and detection, the API, enrolled agents tailing generated auth.logs, syslog TCP + UDP and NetFlow v9
senders) and, with ``--backlog S``, makes the event store unavailable for S seconds halfway through
(another connection holds SQLite's write lock, as in the soak). Every 10 s it samples the
collector's RSS and CPU time and the queue depths it exports on /metrics, then prints a table and
the RSS slope (MiB/min) over the steady stretch before the backlog and after it drained, the
first warm-up minute excluded. A slope near 0 means flat; the post-backlog level against the
pre-backlog one shows whether memory taken by the backlog came back.
"""

from __future__ import annotations

import argparse
import copy
import gc
import shutil
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "soak"))
sys.path.insert(0, str(REPO / "bench"))

from harness import SoakSettings, SoakStack  # noqa: E402
from soak import machine  # noqa: E402
from soak_injectors import StoreUnavailable  # noqa: E402
from soak_procs import parse_metrics  # noqa: E402

from soc_common.ecs import iso  # noqa: E402

SAMPLE_SECONDS = 10.0
WARM_UP_SECONDS = 60.0
MIB = 1 << 20
ENGINE_T0 = 1_735_689_600.0  # 2025-01-01T00:00:00Z
_FLOW_TEMPLATE: dict[str, Any] | None = None


@dataclass
class Sample:
    t: float
    phase: str
    rss: int
    cpu: float  # collector user+system CPU seconds since start (children included)
    stored: float
    queues: dict[str, float]


def queue_depths(stack: SoakStack) -> dict[str, float]:
    """Queue depths from the collector's /metrics: detection, syslog/NetFlow batchers and packets."""
    import urllib.error
    import urllib.request

    try:
        url = f"http://127.0.0.1:{stack.layout.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=3) as resp:
            values = parse_metrics(resp.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError):
        return {}
    out: dict[str, float] = {
        "stored": sum(v for k, v in values.items() if k.startswith("soc_collector_events_stored_total"))
    }
    for key, value in values.items():
        if key.startswith("soc_collector_queue_depth"):
            out["detect"] = out.get("detect", 0) + value
        elif key.startswith("soc_collector_receiver_state") and ('kind="queued"' in key or "packets_queued" in key):
            name = key.split('receiver="', 1)[1].split('"', 1)[0]
            kind = "pkts" if "packets_queued" in key else "q"
            out[f"{name}.{kind}"] = value
    return out


def sample(stack: SoakStack, started: float) -> Sample | None:
    if stack.collector is None:
        return None
    try:
        proc = psutil.Process(stack.collector.pid)
        rss = proc.memory_info().rss
        times = proc.cpu_times()
    except psutil.Error:
        return None
    queues = queue_depths(stack)
    stored = queues.pop("stored", 0.0)
    cpu = times.user + times.system + times.children_user + times.children_system
    return Sample(time.monotonic() - started, stack.phases.get(), rss, cpu, stored, queues)


def slope(points: list[Sample]) -> float | None:
    """Least-squares RSS slope in MiB/min."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(p.t for p in points) / n
    mean_r = sum(p.rss for p in points) / n
    var = sum((p.t - mean_t) ** 2 for p in points)
    if var == 0:
        return None
    cov = sum((p.t - mean_t) * (p.rss - mean_r) for p in points)
    return cov / var * 60 / MIB


def run_for(stack: SoakStack, seconds: float, started: float, samples: list[Sample], echo: bool) -> None:
    deadline = time.monotonic() + seconds
    next_sample = time.monotonic()
    while time.monotonic() < deadline:
        if time.monotonic() >= next_sample:
            s = sample(stack, started)
            if s is not None:
                samples.append(s)
                if echo:
                    print(row(s), flush=True)
            next_sample += SAMPLE_SECONDS
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def row(s: Sample) -> str:
    queues = " ".join(f"{k}={v:.0f}" for k, v in sorted(s.queues.items()) if v)
    return f"| {s.t:5.0f} | {s.phase:<16} | {s.rss / MIB:7.1f} | {s.cpu:7.1f} | {s.stored:9.0f} | {queues or '-'} |"


def summary(samples: list[Sample], phase: str) -> str:
    points = [s for s in samples if s.phase == phase and s.t >= WARM_UP_SECONDS]
    if not points:
        return f"{phase}: no samples after the {WARM_UP_SECONDS:.0f} s warm-up"
    rate = slope(points)
    rss = [p.rss / MIB for p in points]
    events = points[-1].stored - points[0].stored
    cpu = points[-1].cpu - points[0].cpu
    per_event = f"{cpu / events * 1e6:.0f} us CPU/event" if events > 0 else "no events"
    return (
        f"{phase}: {len(points)} samples {points[0].t:.0f}-{points[-1].t:.0f} s, RSS {min(rss):.1f}-{max(rss):.1f} MiB "
        f"(mean {sum(rss) / len(rss):.1f}), slope {'n/a' if rate is None else f'{rate:+.2f}'} MiB/min, "
        f"{events / max(1.0, points[-1].t - points[0].t):.0f} events/s stored, {per_event}"
    )


def engine_events(start: int, count: int, per_second: float) -> list[dict[str, Any]]:
    """Flow events as the NetFlow receiver makes them (a new source address each) and 1 in 10 an SSH failure."""
    sys.path.insert(0, str(REPO / "tests" / "collector"))
    from peers import netflow_stream

    from collector.netflow.decoder import FlowDecoder
    from collector.netflow.events import batch_events

    global _FLOW_TEMPLATE
    if _FLOW_TEMPLATE is None:
        decoded = FlowDecoder().decode(netflow_stream(9, 1, 1)[0], "127.0.0.1")
        _FLOW_TEMPLATE = batch_events(decoded.batches[0])[0]
    out: list[dict[str, Any]] = []
    for i in range(start, start + count):
        ts = ENGINE_T0 + i / per_second
        stamp = iso(datetime.fromtimestamp(ts, UTC))
        source = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        if i % 10 == 0:
            out.append({
                "@timestamp": stamp, "message": f"Failed password for u{i % 7} from 172.16.0.{i % 50} port 22",
                "event": {"id": f"ssh{i}", "action": "ssh_login", "outcome": "failure", "dataset": "system.auth"},
                "host": {"name": f"srv{i % 4}"}, "source": {"ip": f"172.16.0.{i % 50}"}, "user": {"name": f"u{i % 7}"},
            })  # fmt: skip
            continue
        event = copy.deepcopy(_FLOW_TEMPLATE)
        event["@timestamp"] = stamp
        event["event"]["id"] = f"{i:032x}"
        event["source"]["ip"] = event["netflow"]["source_ipv4_address"] = source
        out.append(event)
    return out


def engine_memory(n: int, per_second: float) -> None:
    """The detection engine alone: traced memory, correlation groups and CPU per event."""
    from collector.detection.loader import load_engine

    engine = load_engine([REPO / "rules"])
    engine.process(engine_events(0, 10, per_second))  # imports made by the first alert, not state
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    cpu = 0.0
    batch = 1000
    print("| events | traced MiB | groups | CPU us/event (traced) |\n|---:|---:|---:|---:|")
    for start in range(10, n + 10, batch):
        events = engine_events(start, batch, per_second)
        began = time.process_time()
        engine.process(events)
        cpu += time.process_time() - began
        del events
        done = start + batch - 10
        if done % max(batch, n // 5) == 0:
            gc.collect()
            traced = (tracemalloc.get_traced_memory()[0] - base) / MIB
            groups = sum(s["groups"] for s in engine.correlation_stats().values())
            print(f"| {done} | {traced:.1f} | {groups} | {cpu / done * 1e6:.1f} |", flush=True)
    tracemalloc.stop()
    for rule, stats in engine.correlation_stats().items():
        if any(stats.values()):
            print(f"{rule}: {stats}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="total load time")
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--rate", type=float, default=50.0, help="auth.log lines/s per agent")
    parser.add_argument("--syslog-rate", type=float, default=100.0, help="syslog messages/s, TCP and UDP each")
    parser.add_argument("--netflow-rate", type=float, default=10.0, help="NetFlow v9 packets/s (10 flows each)")
    parser.add_argument("--backlog", type=float, default=0.0, help="store unavailable this many s (0: none)")
    parser.add_argument("--no-detection", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="print the table only at the end")
    parser.add_argument("--engine", type=int, default=0, help="measure the detection engine alone on N events")
    parser.add_argument("--engine-rate", type=float, default=100.0, help="--engine: flows per s of event time")
    args = parser.parse_args()
    if args.engine:
        print(f"machine: {machine()}", flush=True)
        engine_memory(args.engine, args.engine_rate)
        return 0
    if args.backlog and args.backlog < 35:
        parser.error("--backlog must be >= 35 s (the SQLite store waits 30 s for its write lock)")

    total = args.minutes * 60
    root = Path(tempfile.mkdtemp(prefix="soc-mem-"))
    settings = SoakSettings(
        root=root,
        agents=args.agents,
        agent_rate=args.rate,
        syslog_tcp_rate=args.syslog_rate,
        syslog_udp_rate=args.syslog_rate,
        netflow_rate=args.netflow_rate,
        detection=not args.no_detection,
        faults=("store-unavailable",) if args.backlog else (),
        fault_seconds=args.backlog or 10.0,
        steady_seconds=total,
        skew=timedelta(),  # no skewed agent: this bench measures memory, not clock handling
    )
    print(f"machine: {machine()}", flush=True)
    print(
        f"load: {args.agents} agents x {args.rate}/s, syslog {args.syslog_rate}/s TCP + UDP, NetFlow "
        f"{args.netflow_rate} packets/s x 10 flows; {args.minutes} min; backlog {args.backlog or 'none'} s",
        flush=True,
    )
    header = (
        "|     t | phase            | RSS MiB | CPU s   |    stored | queue depths |\n|---:|---|---:|---:|---:|---|"
    )
    samples: list[Sample] = []
    stack = SoakStack(settings)
    try:
        stack.prepare()
        stack.memory.start()  # the harness stops it in close()
        stack.bring_up()
        for g in stack.generators:
            g.start()
        started = time.monotonic()
        echo = not args.quiet
        if echo:
            print(header, flush=True)
        if args.backlog:
            before = max(WARM_UP_SECONDS + 3 * SAMPLE_SECONDS, (total - args.backlog) / 2)
            stack.phases.set("before")
            run_for(stack, before, started, samples, echo)
            fault = StoreUnavailable(stack)
            stack.phases.set("backlog")
            fault.begin()
            run_for(stack, args.backlog, started, samples, echo)
            fault.clear()
            stack.phases.set("after")
            run_for(stack, max(3 * SAMPLE_SECONDS, total - before - args.backlog), started, samples, echo)
        else:
            stack.phases.set("steady")
            run_for(stack, total, started, samples, echo)
    finally:
        stack.close()
        shutil.rmtree(root, ignore_errors=True)
    if args.quiet:
        print(header)
        for s in samples:
            print(row(s))
    print()
    for phase in ("steady", "before", "backlog", "after"):
        if any(s.phase == phase for s in samples):
            print(summary(samples, phase))
    if samples:
        peak = max(samples, key=lambda s: s.rss)
        print(
            f"peak RSS {peak.rss / MIB:.1f} MiB at {peak.t:.0f} s ({peak.phase}); end {samples[-1].rss / MIB:.1f} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
