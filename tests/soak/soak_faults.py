"""The machinery behind the soak's faults that need the operating system's help.

Everything here stays on this machine: the network namespace and its veth pair carry a private
/30 (10.231.x.0/30) that exists only between the namespace and the host, and the small disk is a
tmpfs. Each helper says up front whether it can run here (root, ``ip netns``, ``mount``), so the
soak skips a fault with a reason instead of failing on a machine that cannot host it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False)


class NetNamespace:
    """A network namespace joined to the host by a veth pair: host side .1, namespace side .2 of a /30.

    ``partition()`` sets the namespace end down (packets in flight are lost, TCP connections stall
    exactly as when a cable or a WAN link fails); ``heal()`` brings it back.
    """

    def __init__(self, tag: int) -> None:
        self.tag = _free_subnet(tag)
        self.name = f"soak{os.getpid()}"
        self.host_if = f"sk{os.getpid() % 100000}h"
        self.ns_if = f"sk{os.getpid() % 100000}n"
        self.host_ip = f"10.231.{self.tag}.1"
        self.ns_ip = f"10.231.{self.tag}.2"
        self.up = False

    @staticmethod
    def unavailable() -> str | None:
        """Why namespaces cannot be used here, or None when they can."""
        if os.geteuid() != 0:
            return "network namespaces need root (ip netns add)"
        if shutil.which("ip") is None:
            return "the ip command (iproute2) is not installed"
        probe = f"soakprobe{os.getpid()}"
        result = _run("ip", "netns", "add", probe)
        if result.returncode != 0:
            return f"ip netns add is not permitted here: {result.stderr.strip()}"
        _run("ip", "netns", "del", probe)
        return None

    def create(self) -> None:
        steps = [
            ("ip", "netns", "add", self.name),
            ("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if),
            ("ip", "link", "set", self.ns_if, "netns", self.name),
            ("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if),
            ("ip", "link", "set", self.host_if, "up"),
            ("ip", "netns", "exec", self.name, "ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if),
            ("ip", "netns", "exec", self.name, "ip", "link", "set", self.ns_if, "up"),
            ("ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up"),
        ]
        self.up = True
        for step in steps:
            result = _run(*step)
            if result.returncode != 0:
                self.destroy()
                raise RuntimeError(f"{' '.join(step)} failed: {result.stderr.strip()}")

    def prefix(self) -> list[str]:
        """Command prefix that runs a program inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def partition(self) -> None:
        _run("ip", "netns", "exec", self.name, "ip", "link", "set", self.ns_if, "down")

    def heal(self) -> None:
        _run("ip", "netns", "exec", self.name, "ip", "link", "set", self.ns_if, "up")

    def destroy(self) -> None:
        if not self.up:
            return
        _run("ip", "link", "del", self.host_if)  # deletes both ends
        _run("ip", "netns", "del", self.name)
        self.up = False


def _free_subnet(start: int) -> int:
    """A 10.231.x.0/30 no interface of this host uses yet (two soaks may run at once)."""
    used = _run("ip", "-o", "-4", "addr", "show").stdout
    for step in range(250):
        tag = (start + step) % 250
        if f"10.231.{tag}." not in used:
            return tag
    raise RuntimeError("no free 10.231.x.0/30 subnet")


class SmallDisk:
    """A tmpfs of ``size_mb`` to hold one agent's data folder; ``fill()`` leaves ~``keep_kb`` free."""

    def __init__(self, path: Path, size_mb: int) -> None:
        self.path = path
        self.size_mb = size_mb
        self.mounted = False

    @staticmethod
    def unavailable(probe_dir: Path) -> str | None:
        if os.geteuid() != 0:
            return "mounting a small tmpfs needs root"
        probe = probe_dir / f"mount-probe-{os.getpid()}"
        probe.mkdir(parents=True, exist_ok=True)
        result = _run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe))
        if result.returncode != 0:
            return f"mount -t tmpfs is not permitted here: {result.stderr.strip()}"
        _run("umount", str(probe))
        probe.rmdir()
        return None

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        result = _run("mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m,mode=0700", "tmpfs", str(self.path))
        if result.returncode != 0:
            raise RuntimeError(f"mount failed: {result.stderr.strip()}")
        self.mounted = True

    @property
    def filler(self) -> Path:
        return self.path / "filler.bin"

    def fill(self, keep_kb: int = 64) -> int:
        """Write a filler file until only ``keep_kb`` KiB are free (or the disk refuses); bytes written."""
        written = 0
        chunk = b"\0" * (1 << 20)
        with self.filler.open("ab") as fh:
            while True:
                free = shutil.disk_usage(self.path).free
                want = free - keep_kb * 1024
                if want <= 0:
                    break
                try:
                    fh.write(chunk[: min(len(chunk), want)])
                    fh.flush()
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
                written += min(len(chunk), want)
        return written

    def free(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.filler.unlink()

    def squeeze(self, keep_mb: int = 4) -> int:
        """Shrink the tmpfs to what it holds plus ``keep_mb`` MiB (no filler: costs no memory); bytes free."""
        used_kb = (shutil.disk_usage(self.path).used + 1023) // 1024
        result = _run("mount", "-o", f"remount,size={used_kb + keep_mb * 1024}k", str(self.path))
        if result.returncode != 0:
            raise RuntimeError(f"remount failed: {result.stderr.strip()}")
        return shutil.disk_usage(self.path).free

    def unsqueeze(self) -> None:
        result = _run("mount", "-o", f"remount,size={self.size_mb}m", str(self.path))
        if result.returncode != 0:
            raise RuntimeError(f"remount failed: {result.stderr.strip()}")

    def unmount(self) -> None:
        if self.mounted:
            # the agent using it has been stopped; lazy unmount so a straggler cannot block cleanup
            _run("umount", "-l", str(self.path))
            self.mounted = False


class SqliteWriteLock:
    """Holds ``BEGIN EXCLUSIVE`` on the event store from another connection: the store cannot be written.

    This is what a backup tool or an operator's sqlite3 shell holding a write transaction does; the
    collector's writes wait out its busy timeout and then fail, and ingest must answer 503.
    """

    def __init__(self, db: Path) -> None:
        self.db = db
        self._release = threading.Event()
        self._held = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def acquire(self, timeout: float = 60.0) -> None:
        self._thread = threading.Thread(target=self._hold, name="sqlite-lock", daemon=True)
        self._thread.start()
        if not self._held.wait(timeout):
            raise RuntimeError(f"could not take the exclusive lock: {self.error}")

    def _hold(self) -> None:
        conn = sqlite3.connect(self.db, timeout=60.0, isolation_level=None)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            self._held.set()
            self._release.wait()
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            self.error = str(exc)
        finally:
            conn.close()

    def release(self) -> None:
        self._release.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.25) -> float | None:
    """Seconds until ``condition()`` was true, or None if it never was within ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(interval)
    return None
