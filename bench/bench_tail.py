"""Tail -> parse throughput of the agent's FileSource on auth-log lines, on one core.

Writes N realistic auth.log lines to a temporary file, runs a FileSource over it until every line
is emitted (emit only counts, as the spool is benchmarked elsewhere), and prints lines/s and peak
RSS. Also times parse_line alone per format. Usage: python bench/bench_tail.py [--lines 200000]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from agent.sources.files import FileSource, FileSourceSettings, LogFormat
from soc_common.ecs import Event
from soc_common.parsers import parse_line

TEMPLATES = [
    "sshd[{pid}]: Failed password for invalid user {user} from 203.0.113.{n} port {port} ssh2",
    "sshd[{pid}]: Failed password for root from 198.51.100.{n} port {port} ssh2",
    "sshd[{pid}]: Accepted publickey for {user} from 10.20.1.{n} port {port} ssh2: ED25519 SHA256:Qm9vYmFy",
    "sshd[{pid}]: pam_unix(sshd:session): session opened for user {user}(uid=1001) by (uid=0)",
    "sudo:   {user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/systemctl status nginx",
    "CRON[{pid}]: pam_unix(cron:session): session closed for user root",
    "systemd-logind[512]: New session {n} of user {user}.",
]


def make_lines(count: int) -> bytes:
    rng = random.Random(1)
    users = ["root", "admin", "nguyenvana", "tranthib", "oracle", "deploy"]
    out = []
    for i in range(count):
        body = rng.choice(TEMPLATES).format(
            pid=1000 + i % 5000, user=rng.choice(users), n=i % 250, port=30000 + i % 30000
        )
        out.append(f"Mar 12 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d} srv-vp01 {body}\n")
    return "".join(out).encode()


def bench_parse(lines: list[str], fmt: str) -> float:
    start = time.perf_counter()
    for line in lines:
        parse_line(line, fmt)
    return len(lines) / (time.perf_counter() - start)


def bench_tail(path: Path, state: Path, total: int, fmt: LogFormat) -> float:
    count = 0
    done = threading.Event()

    def emit(batch: Sequence[Event]) -> None:
        nonlocal count
        count += len(batch)
        if count >= total:
            done.set()

    settings = FileSourceSettings(paths=[str(path)], format=fmt, start_at="beginning", poll_interval=0.01)
    source = FileSource("bench", settings, state_dir=state, host_id="bench")
    start = time.perf_counter()
    source.run(emit, done)
    elapsed = time.perf_counter() - start
    assert count == total, (count, total)
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    data = make_lines(args.lines)
    sample = data.decode().splitlines()[:50_000]
    rows = []
    for fmt in ("authlog", "auto", "raw"):
        rows.append((f"parse_line({fmt})", bench_parse(sample, fmt)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "auth.log"
        path.write_bytes(data)
        tail_formats: tuple[LogFormat, ...] = ("authlog", "raw")
        for tail_fmt in tail_formats:
            rows.append(
                (
                    f"FileSource tail+parse ({tail_fmt})",
                    bench_tail(path, Path(tmp) / f"state-{tail_fmt}", args.lines, tail_fmt),
                )
            )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'measurement':<36}{'lines/s':>12}")
    for name, rate in rows:
        print(f"{name:<36}{rate:>12,.0f}")
    print(f"lines: {args.lines:,}  file: {len(data) / 1e6:.1f} MB  peak RSS: {peak_mb:.0f} MiB")


if __name__ == "__main__":
    main()
