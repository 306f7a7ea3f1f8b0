"""Real peers for the syslog and NetFlow receiver tests: logger, rsyslogd, softflowd, nfcapd/nfdump.

A missing binary skips the test with the reason, except under CI (env ``CI`` set), where the test
command installs them and a missing one must fail loudly instead of silently testing nothing.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_PCAPS = REPO / ".." / "shared" / "data" / "pcaps"
OWN_PCAPS = REPO / "pcaps"


class Collect:
    """A receiver's ``handle``: keeps every event it is given (from any thread)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, events: list[dict[str, Any]]) -> None:
        with self.lock:
            self.events.extend(events)

    def messages(self) -> list[str]:
        with self.lock:
            return [e.get("message", "") for e in self.events]

    def observers(self) -> set[str]:
        """The senders' addresses (``observer.ip``) of the events kept so far."""
        with self.lock:
            return {e["observer"]["ip"] for e in self.events}


def require(binary: str) -> str:
    path = shutil.which(binary) or next(
        (str(p) for p in (Path("/usr/sbin") / binary, Path("/sbin") / binary) if p.exists()), None
    )
    if path is None:
        message = f"{binary} is not installed (Debian package providing it is needed for this peer test)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def pcap(name: str) -> Path:
    path = SHARED_PCAPS / name
    if not path.exists():
        message = f"reference capture {path} is missing"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def softflowd_export(capture: Path, port: int, version: int, workdir: Path) -> None:
    """Replay ``capture`` through softflowd to 127.0.0.1:port; returns when everything is sent.

    ``-c none``: softflowd 1.1.0 blocks in accept() on its control socket when reading a file.
    """
    binary = require("softflowd")
    pidfile = workdir / f"softflowd-{port}-{version}.pid"
    subprocess.run(
        [
            binary,
            "-r",
            str(capture),
            "-n",
            f"127.0.0.1:{port}",
            "-v",
            str(version),
            "-d",
            "-c",
            "none",
            "-p",
            str(pidfile),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _udp_bound(port: int) -> bool:
    needle = f":{port:04X} "
    try:
        return any(needle in line.split()[1] + " " for line in Path("/proc/net/udp").read_text().splitlines()[1:])
    except OSError:
        return False


@contextmanager
def nfcapd(workdir: Path, port: int) -> Iterator[Path]:
    """An nfcapd collecting on 127.0.0.1:port into a fresh directory, stopped (and flushed) on exit."""
    binary = require("nfcapd")
    require("nfdump")
    flows = workdir / f"nfcapd-{port}"
    flows.mkdir()
    proc = subprocess.Popen(
        [binary, "-w", str(flows), "-p", str(port), "-b", "127.0.0.1", "-t", "3600", "-B", str(8 << 20)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        if not wait_for(lambda: _udp_bound(port), timeout=10):
            raise RuntimeError("nfcapd did not start listening")
        yield flows
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def nfdump_totals(flows: Path) -> tuple[int, int]:
    """(flow records, bytes) nfdump reads from an nfcapd directory."""
    out = subprocess.run(
        [require("nfdump"), "-R", str(flows), "-o", "csv"], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    lines = [line for line in out.splitlines() if line and not line.startswith("Summary")]
    reader = csv.reader(io.StringIO("\n".join(lines)))
    header = next(reader, [])
    if "ibyt" not in header:
        return 0, 0
    col = header.index("ibyt")
    count = total = 0
    for row in reader:
        if len(row) <= col or not row[col].strip().isdigit():
            break  # the summary block after the records
        count += 1
        total += int(row[col])
    return count, total


RSYSLOG_MODULES = Path("/usr/lib/x86_64-linux-gnu/rsyslog")


@contextmanager
def rsyslogd(workdir: Path, config: str) -> Iterator[subprocess.Popen[bytes]]:
    """rsyslogd in the foreground with ``config`` (no imuxsock/imklog: nothing from this host)."""
    binary = require("rsyslogd")
    conf = workdir / "rsyslog.conf"
    conf.write_text(config)
    pidfile = workdir / "rsyslogd.pid"
    proc = subprocess.Popen(
        [binary, "-n", "-f", str(conf), "-i", str(pidfile)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(0.3)
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"rsyslogd exited: {out}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- a synthetic NetFlow v9 / IPFIX exporter (for loss, template and speed tests) -------------------

FLOW_FIELDS = ((8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (1, 8), (2, 8), (152, 8), (153, 8))
FLOW_RECORD = "!4s4sHHBBQQQQ"


def netflow_stream(
    version: int, packets: int, per_packet: int = 30, *, template_every: int = 20, domain: int = 7,
    template_id: int = 300, start_ms: int = 1_700_000_000_000,
) -> list[bytes]:  # fmt: skip
    """Export packets of ``per_packet`` flow records each; the template is (re)sent every ``template_every``.

    Record ``n`` of the stream has source 10.x.y.z derived from ``n``, ``n+1`` packets and
    ``(n+1)*100`` bytes, so totals are easy to check.
    """
    import struct

    rec = struct.Struct(FLOW_RECORD)
    template_body = struct.pack("!HH", template_id, len(FLOW_FIELDS)) + b"".join(
        struct.pack("!HH", ie, ln) for ie, ln in FLOW_FIELDS
    )
    out: list[bytes] = []
    n = 0
    for p in range(packets):
        sets = b""
        if p % template_every == 0:
            sets += struct.pack("!HH", 2 if version == 10 else 0, 4 + len(template_body)) + template_body
        body = b""
        for _ in range(per_packet):
            src = struct.pack("!I", 0x0A000000 + n)
            body += rec.pack(src, b"\xc0\xa8\x01\x01", 1024 + n % 60000, 443, 6, 0x1B, (n + 1) * 100, n + 1,
                             start_ms + n, start_ms + n + 50)  # fmt: skip
            n += 1
        sets += struct.pack("!HH", template_id, 4 + len(body)) + body
        secs = start_ms // 1000 + p
        if version == 10:
            seq = p * per_packet
            out.append(struct.pack("!HHIII", 10, 16 + len(sets), secs, seq, domain) + sets)
        else:
            count = per_packet + (1 if p % template_every == 0 else 0)
            out.append(struct.pack("!HHIIII", 9, count, 3_600_000, secs, p, domain) + sets)
    return out
