"""Host inventory: what this machine is, what listens on it, who is logged in, and whether it is protected.

One ``soc.inventory`` snapshot at a fixed interval (it doubles as the heartbeat the collector uses
for ``last_seen``) and, between intervals, as soon as something that matters changes (a new
listening port, a user logging in, protection switched off). The protection state feeds the
"PCs under central protection" coverage KPI.
"""

from __future__ import annotations

import contextlib
import glob
import json
import platform
import shutil
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from pydantic import Field

from agent.sources.base import Emit, Source
from soc_common.config import Section
from soc_common.ecs import Event, new_event, put

MAX_CONNECTIONS = 500
MAX_NEW_PROCESSES = 200


class InventorySettings(Section):
    interval: float = Field(default=300.0, gt=0)  # full snapshot (and heartbeat) at least this often
    check_interval: float = Field(default=30.0, gt=0)  # how often to look for changes
    connections: bool = True
    clamav_db_dir: Path = Path("/var/lib/clamav")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def os_info() -> dict[str, Any]:
    system = platform.system()
    info: dict[str, Any] = {
        "platform": system.lower(),
        "type": {"Linux": "linux", "Windows": "windows", "Darwin": "macos"}.get(system, system.lower()),
        "kernel": platform.release(),
        "version": platform.version(),
        "name": system,
    }
    if system == "Linux":
        with contextlib.suppress(OSError):
            release = platform.freedesktop_os_release()
            info["name"] = release.get("NAME", system)
            info["version"] = release.get("VERSION_ID", info["version"])
            info["family"] = release.get("ID_LIKE", release.get("ID", ""))
            info["full"] = release.get("PRETTY_NAME", "")
    elif system == "Windows":
        info["full"] = f"Windows {platform.release()} {platform.version()}"
    return info


def addresses() -> tuple[list[str], list[str]]:
    ips: list[str] = []
    macs: list[str] = []
    for name, addrs in psutil.net_if_addrs().items():
        for addr in addrs:
            if addr.family in (socket.AF_INET, socket.AF_INET6):
                ip = addr.address.split("%")[0]
                if not ip.startswith("127.") and ip != "::1":
                    ips.append(ip)
            elif addr.family == psutil.AF_LINK and addr.address and name != "lo":
                mac = addr.address.upper().replace(":", "-")
                if mac != "00-00-00-00-00-00":
                    macs.append(mac)
    return sorted(set(ips)), sorted(set(macs))


def _process_names() -> dict[int, str]:
    names: dict[int, str] = {}
    for proc in psutil.process_iter(["pid", "name"]):
        names[proc.info["pid"]] = proc.info["name"] or ""
    return names


def sockets(include_connections: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(listening ports, established connections), each with the owning process where visible."""
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, OSError):
        return [], []
    names = _process_names()
    listening: list[dict[str, Any]] = []
    established: list[dict[str, Any]] = []
    for c in conns:
        transport = "tcp" if c.type == socket.SOCK_STREAM else "udp"
        proc = {"pid": c.pid, "name": names.get(c.pid, "")} if c.pid else {}
        local: Any = c.laddr
        remote: Any = c.raddr
        if not local:
            continue
        if c.status == psutil.CONN_LISTEN or (transport == "udp" and not remote):
            listening.append({"transport": transport, "ip": local.ip, "port": local.port, "process": proc})
        elif include_connections and c.status == psutil.CONN_ESTABLISHED and remote:
            established.append(
                {
                    "transport": transport,
                    "source": {"ip": local.ip, "port": local.port},
                    "destination": {"ip": remote.ip, "port": remote.port},
                    "process": proc,
                }
            )
    unique = {(s["transport"], s["port"], s["ip"]): s for s in listening}
    return [unique[k] for k in sorted(unique)], established[:MAX_CONNECTIONS]


def users() -> list[dict[str, Any]]:
    out = []
    for u in psutil.users():
        out.append({"name": u.name, "terminal": u.terminal or "", "host": u.host or "", "started": _iso(u.started)})
    return out


def disks() -> list[dict[str, Any]]:
    out = []
    for part in psutil.disk_partitions(all=False):
        with contextlib.suppress(OSError):
            usage = psutil.disk_usage(part.mountpoint)
            out.append(
                {
                    "mount": part.mountpoint,
                    "device": part.device,
                    "fstype": part.fstype,
                    "total": usage.total,
                    "used": usage.used,
                    "usage": round(usage.percent / 100, 4),
                }
            )
    return out


def clamav_state(db_dir: Path, process_names: set[str]) -> dict[str, Any] | None:
    """ClamAV on Linux: installed? daemon running? how old are the signatures?"""
    binaries = [b for b in ("clamd", "clamscan", "freshclam") if shutil.which(b) or Path(f"/usr/sbin/{b}").exists()]
    databases = [Path(p) for p in glob.glob(str(db_dir / "*.cvd")) + glob.glob(str(db_dir / "*.cld"))]
    if not binaries and not databases:
        return None
    running = "clamd" in process_names
    state: dict[str, Any] = {"product": "ClamAV", "installed": True, "running": running, "enabled": running}
    if databases:
        newest = max(p.stat().st_mtime for p in databases)
        state["signature_updated"] = _iso(newest)
        state["signature_age_days"] = round((time.time() - newest) / 86400, 2)
    return state


def defender_state_from_json(text: str) -> dict[str, Any] | None:
    """Parse ``Get-MpComputerStatus | ConvertTo-Json``."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    enabled = bool(data.get("AntivirusEnabled")) and bool(data.get("RealTimeProtectionEnabled"))
    state: dict[str, Any] = {
        "product": "Microsoft Defender",
        "installed": True,
        "enabled": enabled,
        "running": bool(data.get("AMServiceEnabled", data.get("AntivirusEnabled"))),
        "real_time": bool(data.get("RealTimeProtectionEnabled")),
    }
    age = data.get("AntivirusSignatureAge")
    if isinstance(age, int | float):
        state["signature_age_days"] = float(age)
    if data.get("AntivirusSignatureVersion"):
        state["signature_version"] = str(data["AntivirusSignatureVersion"])
    return state


def defender_state() -> dict[str, Any] | None:  # pragma: no cover - Windows only
    try:
        out = subprocess.run(
            [
                "powershell.exe",
                "-NoProfile",
                "-NonInteractive",
                "-Command",
                "Get-MpComputerStatus | ConvertTo-Json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return defender_state_from_json(out.stdout) if out.returncode == 0 else None


def protection_state(settings: InventorySettings, process_names: set[str]) -> dict[str, Any]:
    state = defender_state() if platform.system() == "Windows" else clamav_state(settings.clamav_db_dir, process_names)
    return state or {"product": None, "installed": False, "enabled": False, "running": False}


class InventorySource(Source):
    type = "inventory"
    settings_model = InventorySettings

    def __init__(self, name: str, settings: InventorySettings | None = None) -> None:
        super().__init__(name)
        self.settings = settings or InventorySettings()
        self.snapshots = 0
        self.last_snapshot: str | None = None
        self._known_procs: set[tuple[int, float]] | None = None
        self._last_signature: str | None = None

    def _new_processes(self) -> list[dict[str, Any]]:
        current: dict[tuple[int, float], dict[str, Any]] = {}
        for proc in psutil.process_iter(["pid", "name", "create_time", "username", "cmdline", "ppid"]):
            info = proc.info
            key = (info["pid"], info.get("create_time") or 0.0)
            current[key] = info
        previous, self._known_procs = self._known_procs, set(current)
        if previous is None:
            return []
        fresh = [current[k] for k in current if k not in previous][:MAX_NEW_PROCESSES]
        return [
            {
                "pid": p["pid"],
                "parent": {"pid": p.get("ppid")},
                "name": p.get("name") or "",
                "user": {"name": p.get("username") or ""},
                "command_line": " ".join(p.get("cmdline") or [])[:1024],
                "start": _iso(p["create_time"]) if p.get("create_time") else None,
            }
            for p in fresh
        ]

    def snapshot(self) -> tuple[Event, str]:
        """(the event, a signature of the parts whose change triggers an early snapshot)."""
        hostname = socket.gethostname()
        ips, macs = addresses()
        listening, established = sockets(self.settings.connections)
        logged_in = users()
        names = {p.info["name"] for p in psutil.process_iter(["name"]) if p.info.get("name")}
        protection = protection_state(self.settings, names)
        mem = psutil.virtual_memory()
        event = new_event(kind="state", dataset="soc.inventory", module="soc")
        put(event, "event.category", ["host"])
        put(event, "event.type", ["info"])
        put(event, "event.action", "inventory_snapshot")
        put(event, "host.hostname", hostname)
        put(event, "host.name", hostname)
        put(event, "host.os", os_info())
        put(event, "host.architecture", platform.machine())
        put(event, "host.ip", ips)
        put(event, "host.mac", macs)
        put(event, "host.uptime", int(time.time() - psutil.boot_time()))
        put(event, "host.cpu.usage", round(psutil.cpu_percent(interval=None) / 100, 4))
        put(event, "soc.inventory.cpu.count", psutil.cpu_count() or 0)
        put(event, "soc.inventory.memory", {"total": mem.total, "used": mem.total - mem.available})
        put(event, "soc.inventory.memory.usage", round(mem.percent / 100, 4))
        put(event, "soc.inventory.disks", disks())
        put(event, "soc.inventory.users", logged_in)
        put(event, "soc.inventory.listening", listening)
        put(event, "soc.inventory.connections", established)
        put(event, "soc.inventory.protection", protection)
        put(event, "related.user", sorted({u["name"] for u in logged_in}))
        signature = json.dumps(
            [
                ips,
                [(s["transport"], s["ip"], s["port"]) for s in listening],
                sorted(u["name"] for u in logged_in),
                {k: protection.get(k) for k in ("product", "enabled", "running")},
            ],
            sort_keys=True,
        )
        return event, signature

    def run(self, emit: Emit, stop: threading.Event) -> None:
        psutil.cpu_percent(interval=None)  # prime: the first call has nothing to compare with
        next_full = 0.0
        while not stop.is_set():
            try:
                event, signature = self.snapshot()
            except Exception as exc:  # psutil on an odd host must not end the heartbeat
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                stop.wait(self.settings.check_interval)
                continue
            now = time.monotonic()
            if now >= next_full or signature != self._last_signature:
                put(event, "soc.inventory.trigger", "interval" if now >= next_full else "change")
                put(event, "soc.inventory.new_processes", self._new_processes())
                emit([event])
                self._last_signature = signature
                self.snapshots += 1
                self.last_snapshot = event["@timestamp"]
                next_full = now + self.settings.interval
            stop.wait(min(self.settings.check_interval, max(0.0, next_full - time.monotonic())))

    def status(self) -> dict[str, Any]:
        out = super().status()
        out.update(snapshots=self.snapshots, last_snapshot=self.last_snapshot)
        return out
