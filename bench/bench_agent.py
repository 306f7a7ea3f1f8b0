"""Agent throughput and footprint: file tail -> parse -> spool -> ship into a local collector.

Runs the real ``soc agent run`` as a child process pinned to one core, with a files source reading a
generated auth log from the beginning, shipping over mTLS to an in-process collector ingest server
(SQLite store) pinned to the other cores. Prints sustained lines/s, CPU seconds, peak RSS while
shipping, and RSS/CPU while idle.

    .venv/bin/python bench/bench_agent.py [--lines 300000] [--idle 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

LINE = (
    "Mar  3 10:{m:02d}:{s:02d} pc-{h:02d} sshd[{pid}]: Failed password for invalid user u{u} "
    "from 203.0.{a}.{b} port {port} ssh2\n"
)


def write_log(path: Path, lines: int) -> None:
    with path.open("w") as fh:
        for i in range(lines):
            fh.write(
                LINE.format(
                    m=(i // 60) % 60,
                    s=i % 60,
                    h=i % 50,
                    pid=1000 + i % 3000,
                    u=i % 997,
                    a=i % 250,
                    b=(i // 250) % 250,
                    port=1024 + i % 60000,
                )
            )


def start_collector(work: Path) -> tuple[object, object, object, str, str]:
    from collector.config import CollectorConfig
    from collector.ingest.registry import Registry
    from collector.ingest.server import IngestServer
    from collector.pipeline.runner import build_pipeline
    from collector.store.sqlite import SqliteEventStore

    config = CollectorConfig.model_validate(
        {
            "data_dir": str(work / "collector"),
            "ingest": {"port": 0, "rate_limit_eps": 10_000_000, "rate_limit_burst": 10_000_000},
            "detection": {"enabled": False},
            "metrics": {"enabled": False},
            "retention": {"enabled": False},
        }
    )
    store = SqliteEventStore(work / "events.db")
    registry = Registry(config.registry_path)
    server = IngestServer(config, build_pipeline(config, store, None, None), registry=registry)
    server.start()
    token, _ = registry.create_token(site=None, uses=1, ttl_seconds=3600)
    return server, store, registry, f"https://127.0.0.1:{server.port}", str(token)


def read_acked(status_file: Path) -> int:
    import json

    try:
        return int(json.loads(status_file.read_text())["shipping"]["acked"])
    except (OSError, ValueError, KeyError):
        return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--idle", type=float, default=10.0)
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if cpus > 1:
            psutil.Process().cpu_affinity(list(range(1, cpus)))
        server, store, registry, url, token = start_collector(work)
        soc = str(Path(sys.executable).with_name("soc"))
        data_dir = work / "agent"
        fp = server.ca.fingerprint  # type: ignore[attr-defined]
        config = work / "agent.toml"
        log = work / "auth.log"
        config.write_text(
            f'collector_url = "{url}"\ndata_dir = "{data_dir}"\nstatus_interval = 0.5\n'
            f'[[sources]]\ntype = "files"\nname = "auth"\npaths = ["{log}"]\nstart_at = "beginning"\n'
            f"batch_lines = 2000\n"
        )
        subprocess.run(
            [
                soc,
                "agent",
                "enroll",
                "--collector",
                url,
                "--token",
                token,
                "--ca-fingerprint",
                fp,
                "--config",
                str(config),
            ],
            check=True,
            capture_output=True,
        )
        write_log(log, 0)
        agent = subprocess.Popen([soc, "agent", "run", "--config", str(config)], stderr=subprocess.DEVNULL)
        proc = psutil.Process(agent.pid)
        proc.cpu_affinity([0])
        time.sleep(3)  # start-up
        idle_cpu0 = sum(proc.cpu_times()[:2])
        idle_rss_start = proc.memory_info().rss
        time.sleep(args.idle)
        idle_cpu = (sum(proc.cpu_times()[:2]) - idle_cpu0) / args.idle * 100
        idle_rss = max(idle_rss_start, proc.memory_info().rss)
        baseline = read_acked(data_dir / "status.json")

        write_log(work / "gen.log", args.lines)
        cpu0 = sum(proc.cpu_times()[:2])
        me = psutil.Process()
        collector_cpu0 = sum(me.cpu_times()[:2])
        start = time.monotonic()
        os.rename(work / "gen.log", log)  # rotation-like switch: a new file with all the lines
        peak = 0
        while read_acked(data_dir / "status.json") < baseline + args.lines:
            peak = max(peak, proc.memory_info().rss)
            if time.monotonic() - start > 600:
                print("timed out", file=sys.stderr)
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - start
        busy_cpu = sum(proc.cpu_times()[:2]) - cpu0
        collector_cpu = sum(me.cpu_times()[:2]) - collector_cpu0
        shipped = read_acked(data_dir / "status.json") - baseline
        agent.terminate()
        agent.wait(60)
        server.stop()  # type: ignore[attr-defined]
        registry.close()  # type: ignore[attr-defined]
        store.close()  # type: ignore[attr-defined]

    cpu_model = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        platform.processor(),
    )
    rows = [
        ("lines shipped", f"{shipped}"),
        ("elapsed (s, incl. status poll granularity 0.5 s)", f"{elapsed:.2f}"),
        ("sustained lines/s (end to end, agent on 1 core)", f"{shipped / elapsed:,.0f}"),
        ("agent CPU seconds while shipping", f"{busy_cpu:.2f}"),
        ("lines per agent CPU second (target >= 30,000)", f"{shipped / busy_cpu:,.0f}" if busy_cpu else "n/a"),
        ("agent CPU microseconds per line", f"{busy_cpu / shipped * 1e6:.1f}" if shipped else "n/a"),
        ("collector CPU seconds (same run, other cores)", f"{collector_cpu:.2f}"),
        ("peak RSS while shipping (MB)", f"{peak / 1e6:.1f}"),
        ("idle RSS (MB)", f"{idle_rss / 1e6:.1f}"),
        ("idle CPU (% of one core)", f"{idle_cpu:.2f}"),
    ]
    load = os.getloadavg()
    print(f"machine: {cpus} CPUs, {cpu_model}, Python {platform.python_version()}, load {load[0]:.1f} {load[1]:.1f}")
    print("end to end is bounded by the collector on the other core: the agent's CPU per line is the measure")
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
